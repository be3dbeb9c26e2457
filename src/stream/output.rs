//! Where a stream writes: a file, appended to, or this process's standard output.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

/// The destination of a [`super::Stream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamTarget {
    Stdout,
    /// Created if missing, appended to.
    File(PathBuf),
}

impl std::fmt::Display for StreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamTarget::Stdout => f.write_str("standard output"),
            StreamTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// An open destination. Standard output is written through its own descriptor (a duplicate), so
/// records never pass through the JavaScript stream.
pub(super) struct Output {
    file: File,
    /// Whether it held nothing when opened (a header is due).
    pub was_empty: bool,
}

impl Output {
    pub fn open(target: &StreamTarget) -> io::Result<Self> {
        match target {
            StreamTarget::Stdout => {
                #[cfg(unix)]
                let file = {
                    use std::os::fd::AsFd;
                    File::from(io::stdout().as_fd().try_clone_to_owned()?)
                };
                #[cfg(windows)]
                let file = {
                    use std::os::windows::io::AsHandle;
                    File::from(io::stdout().as_handle().try_clone_to_owned()?)
                };
                Ok(Output {
                    file,
                    was_empty: true,
                })
            }
            StreamTarget::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                let was_empty = file.metadata()?.len() == 0;
                Ok(Output { file, was_empty })
            }
        }
    }

    /// Writes all of `bytes`. A descriptor left non-blocking by its other users is waited on
    /// rather than failed.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.file.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => bytes = &bytes[written..],
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.wait_writable(),
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    #[cfg(unix)]
    fn wait_writable(&self) {
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one pollfd, owned by this frame; a failure or timeout just means "try again".
        unsafe { libc::poll(&mut poll, 1, 1000) };
    }

    #[cfg(not(unix))]
    fn wait_writable(&self) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
