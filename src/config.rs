//! Recorder configuration: explicit options, then environment variables, then defaults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::attribution::InvocationInfo;
use crate::buffer::{DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS};
use crate::format::OutputFormat;

/// Environment variable names, as the SDKs and aws-lambda-api-call-recorder spell them.
pub mod env {
    pub const CSM_HOST: &str = "AWS_CSM_HOST";
    pub const CSM_PORT: &str = "AWS_CSM_PORT";
    pub const FILE: &str = "API_CALL_RECORDER_FILE";
    pub const FORMAT: &str = "API_CALL_RECORDER_FORMAT";
    pub const SINK: &str = "API_CALL_RECORDER_SINK";
    pub const DELIVERY_STREAM_NAME: &str = "API_CALL_RECORDER_DELIVERY_STREAM_NAME";
    pub const DROP_ACCESS_KEY: &str = "API_CALL_RECORDER_DROP_ACCESS_KEY";
    pub const MAX_BUFFERED_RECORDS: &str = "API_CALL_RECORDER_MAX_BUFFERED_RECORDS";
    pub const MAX_BUFFERED_BYTES: &str = "API_CALL_RECORDER_MAX_BUFFERED_BYTES";
    pub const DRAIN_MS: &str = "API_CALL_RECORDER_DRAIN_MS";
    pub const FLUSH_TIMEOUT_MS: &str = "API_CALL_RECORDER_FLUSH_TIMEOUT_MS";
    pub const LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
    pub const LAMBDA_FUNCTION_VERSION: &str = "AWS_LAMBDA_FUNCTION_VERSION";
}

pub use crate::limits::{DEFAULT_DRAIN, DEFAULT_HOST, DEFAULT_PORT};
/// Upper bound on one flush when the Lambda context gives no remaining time.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A whole-number option. The Node.js binding makes it from a JS number and refuses a fraction, a
/// negative number or one too large for `T` instead of rounding or wrapping it (`binding/options.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Whole<T>(pub T);

// Declared once, here: the Node.js binding takes this same object, and binding.d.ts (with these
// comments) is generated from it.
/// Recorder options. Each option wins over its environment variable, which wins over the default.
#[cfg_attr(feature = "napi", napi_derive::napi(object))]
#[derive(Debug, Clone, Default)]
pub struct RecorderOptions {
    /// Address to receive CSM datagrams on. Anything but loopback lets other hosts send records, and
    /// logs a warning. Env: `AWS_CSM_HOST` (the variable the SDKs send to).
    /// @default '127.0.0.1'
    pub host: Option<String>,
    /// UDP port to receive CSM datagrams on, a whole number; the option `0` picks a free port (the
    /// variable `0` means 31000, as the SDKs read it). Env: `AWS_CSM_PORT`.
    /// @default 31000
    #[cfg_attr(feature = "napi", napi(ts_type = "number"))]
    pub port: Option<Whole<u16>>,
    /// Where flushed records go; `none` keeps them in memory. Env: `API_CALL_RECORDER_SINK`.
    /// @default 'firehose' when a delivery stream is set, else 'file' when a file is set, else 'stdout'
    #[cfg_attr(
        feature = "napi",
        napi(ts_type = "'firehose' | 'file' | 'stdout' | 'none'")
    )]
    pub sink: Option<String>,
    /// File that records are appended to (created with its folders if missing).
    /// Env: `API_CALL_RECORDER_FILE`.
    pub file: Option<String>,
    /// Record format for the file and stdout sinks: JSON Lines, or CSV with a header row.
    /// Env: `API_CALL_RECORDER_FORMAT`.
    /// @default 'csv' for a file ending in .csv, else 'jsonl'
    #[cfg_attr(feature = "napi", napi(ts_type = "'jsonl' | 'csv'"))]
    pub format: Option<String>,
    /// Amazon Data Firehose delivery stream to send records to with PutRecordBatch. The region comes
    /// from `AWS_REGION`; `AWS_ENDPOINT_URL_FIREHOSE` / `AWS_ENDPOINT_URL` override the endpoint.
    /// Env: `API_CALL_RECORDER_DELIVERY_STREAM_NAME`.
    pub delivery_stream_name: Option<String>,
    /// Leave the access key id (`AccessKey`) out of records. The session token is always removed.
    /// Env: `API_CALL_RECORDER_DROP_ACCESS_KEY`.
    /// @default false
    pub drop_access_key: Option<bool>,
    /// Most records held between flushes; more are dropped and counted.
    /// Env: `API_CALL_RECORDER_MAX_BUFFERED_RECORDS`.
    /// @default 100000
    #[cfg_attr(feature = "napi", napi(ts_type = "number"))]
    pub max_buffered_records: Option<Whole<u32>>,
    /// Most bytes held between flushes; more are dropped and counted.
    /// Env: `API_CALL_RECORDER_MAX_BUFFERED_BYTES`.
    /// @default 67108864
    #[cfg_attr(feature = "napi", napi(ts_type = "number"))]
    pub max_buffered_bytes: Option<Whole<u32>>,
    /// Upper bound, in milliseconds, on waiting after the handler settles for the events of its calls.
    /// The wait ends as soon as it is safe: once the v3 calls still in flight have finished and a
    /// marker datagram sent after the event loop has turned (aws-sdk v2 sends from this process's
    /// loop) has arrived. Env: `API_CALL_RECORDER_DRAIN_MS`.
    /// @default 25
    #[cfg_attr(feature = "napi", napi(ts_type = "number"))]
    pub drain_ms: Option<Whole<u32>>,
    /// Upper bound on one flush in milliseconds. In Lambda the flush also ends 300 ms before the
    /// invocation's deadline (`context.getRemainingTimeInMillis()`); what is undelivered then is
    /// counted as failed and reported in one warning. Env: `API_CALL_RECORDER_FLUSH_TIMEOUT_MS`.
    /// @default 10000
    #[cfg_attr(feature = "napi", napi(ts_type = "number"))]
    pub flush_timeout_ms: Option<Whole<u32>>,
    /// Mark records received before the first invocation `phase: 'init'`. Otherwise those records
    /// carry no phase until `beginInvocation` is called.
    /// @default true inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) and under `ApiCallRecorder`, else false
    pub init_phase: Option<bool>,
}

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// Kept in the buffer until taken by the caller.
    None,
    Stdout(OutputFormat),
    File(PathBuf, OutputFormat),
    Firehose {
        delivery_stream_name: String,
    },
}

impl SinkConfig {
    /// The sink's kind: `none`, `stdout`, `file` or `firehose`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::None => "none",
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::File(..) => "file",
            SinkConfig::Firehose { .. } => "firehose",
        }
    }
}

/// What an environment variable that holds no boolean does to a boolean setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnrecognisedFlag {
    /// A configuration error (`new Recorder`: the caller asked for this recorder).
    #[default]
    Fails,
    /// The setting's default, with a warning (`ApiCallRecorder`: a typo must not stop recording).
    FallsBack,
}

/// A fully resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    pub bind_addr: SocketAddr,
    pub sink: SinkConfig,
    pub drop_access_key: bool,
    pub max_buffered_records: usize,
    pub max_buffered_bytes: usize,
    pub drain: Duration,
    pub flush_timeout: Duration,
    /// The function as known before any invocation (Lambda sets these variables at init).
    pub init_info: InvocationInfo,
    /// Records received before the first invocation are marked `init` (inside Lambda, or when the
    /// Lambda wrapper asks); otherwise they carry no phase.
    pub init_phase: bool,
    /// Things the caller should be told about the configuration (it still works).
    pub warnings: Vec<String>,
}

/// An option or environment variable with a value the recorder cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name} {value:?}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

impl RecorderConfig {
    /// Resolves from the process environment.
    pub fn from_options(
        options: RecorderOptions,
        unrecognised_flag: UnrecognisedFlag,
    ) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::resolve_with(options, env, unrecognised_flag)
    }

    /// Resolves with `env` as the environment (so tests need not touch the process's).
    pub fn resolve(
        options: RecorderOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::resolve_with(options, env, UnrecognisedFlag::Fails)
    }

    pub fn resolve_with(
        options: RecorderOptions,
        env: impl Fn(&str) -> Option<String>,
        unrecognised_flag: UnrecognisedFlag,
    ) -> Result<Self, ConfigError> {
        let settings = Settings {
            env: &env,
            unrecognised_flag,
        };
        let mut warnings = Vec::new();
        let bind_addr = settings.bind_addr(options.host, options.port)?;
        if !bind_addr.ip().is_loopback() {
            warnings.push(format!(
                "listening for CSM datagrams on {bind_addr}, which is not a loopback address: other hosts can send records"
            ));
        }
        let sink = settings.sink(
            options.sink,
            options.file,
            options.format,
            options.delivery_stream_name,
        )?;
        let init_info = InvocationInfo {
            function_name: env(env::LAMBDA_FUNCTION_NAME),
            function_version: env(env::LAMBDA_FUNCTION_VERSION),
            aws_request_id: None,
            cold_start: None,
        };
        Ok(RecorderConfig {
            bind_addr,
            sink,
            drop_access_key: settings.flag(
                options.drop_access_key,
                env::DROP_ACCESS_KEY,
                false,
                &mut warnings,
            )?,
            max_buffered_records: settings.number(
                options.max_buffered_records,
                env::MAX_BUFFERED_RECORDS,
                DEFAULT_MAX_RECORDS,
            )?,
            max_buffered_bytes: settings.number(
                options.max_buffered_bytes,
                env::MAX_BUFFERED_BYTES,
                DEFAULT_MAX_BYTES,
            )?,
            drain: settings.millis(options.drain_ms, env::DRAIN_MS, DEFAULT_DRAIN)?,
            flush_timeout: settings.millis(
                options.flush_timeout_ms,
                env::FLUSH_TIMEOUT_MS,
                DEFAULT_FLUSH_TIMEOUT,
            )?,
            init_phase: options
                .init_phase
                .unwrap_or(init_info.function_name.is_some()),
            init_info,
            warnings,
        })
    }
}

/// Each setting: the option when given, else its environment variable, else the default.
struct Settings<'a, E: Fn(&str) -> Option<String>> {
    env: &'a E,
    unrecognised_flag: UnrecognisedFlag,
}

impl<E: Fn(&str) -> Option<String>> Settings<'_, E> {
    fn bind_addr(
        &self,
        host: Option<String>,
        port: Option<Whole<u16>>,
    ) -> Result<SocketAddr, ConfigError> {
        let host = host
            .or_else(|| (self.env)(env::CSM_HOST))
            .unwrap_or_else(|| DEFAULT_HOST.into());
        let port = match port {
            Some(Whole(port)) => port,
            None => match (self.env)(env::CSM_PORT) {
                // aws-sdk v2 treats 0 as the default port; so do we.
                Some(raw) => match raw.trim().parse::<u16>() {
                    Ok(0) => DEFAULT_PORT,
                    Ok(port) => port,
                    Err(_) => {
                        return Err(invalid(
                            env::CSM_PORT,
                            &raw,
                            "expected a port number 0-65535",
                        ));
                    }
                },
                None => DEFAULT_PORT,
            },
        };
        resolve_host(&host, port)
    }

    fn sink(
        &self,
        sink: Option<String>,
        file: Option<String>,
        format: Option<String>,
        delivery_stream_name: Option<String>,
    ) -> Result<SinkConfig, ConfigError> {
        let format = match format.or_else(|| (self.env)(env::FORMAT)) {
            Some(raw) => Some(
                raw.parse::<OutputFormat>()
                    .map_err(|reason| invalid("format", &raw, reason))?,
            ),
            None => None,
        };
        let file = file.or_else(|| (self.env)(env::FILE)).map(PathBuf::from);
        let stream = delivery_stream_name.or_else(|| (self.env)(env::DELIVERY_STREAM_NAME));
        let Some(kind) = sink.or_else(|| (self.env)(env::SINK)) else {
            // No sink named: the most specific destination given.
            return Ok(match (stream, file) {
                (Some(delivery_stream_name), _) => SinkConfig::Firehose {
                    delivery_stream_name,
                },
                (None, Some(path)) => file_sink(path, format),
                (None, None) => SinkConfig::Stdout(format.unwrap_or_default()),
            });
        };
        match kind.to_ascii_lowercase().as_str() {
            "firehose" => Ok(SinkConfig::Firehose {
                delivery_stream_name: stream.ok_or_else(|| {
                    invalid(
                        "sink",
                        "firehose",
                        format!("needs deliveryStreamName or {}", env::DELIVERY_STREAM_NAME),
                    )
                })?,
            }),
            "file" => Ok(file_sink(
                file.ok_or_else(|| {
                    invalid("sink", "file", format!("needs file or {}", env::FILE))
                })?,
                format,
            )),
            "stdout" => Ok(SinkConfig::Stdout(format.unwrap_or_default())),
            "none" => Ok(SinkConfig::None),
            _ => Err(invalid(
                "sink",
                &kind,
                "expected firehose, file, stdout or none",
            )),
        }
    }

    fn flag(
        &self,
        option: Option<bool>,
        name: &str,
        default: bool,
        warnings: &mut Vec<String>,
    ) -> Result<bool, ConfigError> {
        if let Some(value) = option {
            return Ok(value);
        }
        let Some(raw) = (self.env)(name) else {
            return Ok(default);
        };
        match (parse_flag(&raw), self.unrecognised_flag) {
            (Some(value), _) => Ok(value),
            (None, UnrecognisedFlag::Fails) => Err(invalid(name, &raw, FLAG_GRAMMAR)),
            (None, UnrecognisedFlag::FallsBack) => {
                warnings.push(format!(
                    "{name}={raw:?} is not a boolean ({FLAG_GRAMMAR}); using the default, {default}"
                ));
                Ok(default)
            }
        }
    }

    fn number(
        &self,
        option: Option<Whole<u32>>,
        name: &str,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match option {
            Some(Whole(n)) => Ok(n as usize),
            None => match (self.env)(name) {
                Some(raw) => raw
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| invalid(name, &raw, "expected a whole number")),
                None => Ok(default),
            },
        }
    }

    fn millis(
        &self,
        option: Option<Whole<u32>>,
        name: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let ms = self.number(option, name, default.as_millis() as usize)?;
        Ok(Duration::from_millis(ms as u64))
    }
}

fn file_sink(path: PathBuf, format: Option<OutputFormat>) -> SinkConfig {
    let format = format.unwrap_or_else(|| OutputFormat::for_path(&path));
    SinkConfig::File(path, format)
}

/// The boolean grammar of every environment variable, here and on the JavaScript side (options.js).
const FLAG_GRAMMAR: &str = "expected true/false, 1/0, yes/no or on/off";

/// `true`, `1`, `yes`, `on` / `false`, `0`, `no`, `off`, in any case; anything else is `None`.
pub fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// IPv4 first, as the SDKs send over IPv4 only.
fn resolve_host(host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| invalid("host", host, error.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| invalid("host", host, "resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults() {
        let config = RecorderConfig::resolve(RecorderOptions::default(), env_of(&[])).unwrap();
        assert_eq!(config.bind_addr, "127.0.0.1:31000".parse().unwrap());
        assert_eq!(config.sink, SinkConfig::Stdout(OutputFormat::Jsonl));
        assert!(!config.drop_access_key);
        assert_eq!(config.drain, DEFAULT_DRAIN);
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn option_beats_env_beats_default() {
        let env = env_of(&[
            (env::CSM_PORT, "31555"),
            (env::FILE, "/tmp/x.csv"),
            (env::DRAIN_MS, "7"),
        ]);
        let config = RecorderConfig::resolve(RecorderOptions::default(), &env).unwrap();
        assert_eq!(config.bind_addr.port(), 31555);
        assert_eq!(
            config.sink,
            SinkConfig::File("/tmp/x.csv".into(), OutputFormat::Csv)
        );
        assert_eq!(config.drain, Duration::from_millis(7));
        let options = RecorderOptions {
            port: Some(Whole(4000)),
            file: Some("out.jsonl".into()),
            ..Default::default()
        };
        let config = RecorderConfig::resolve(options, &env).unwrap();
        assert_eq!(config.bind_addr.port(), 4000);
        assert_eq!(
            config.sink,
            SinkConfig::File("out.jsonl".into(), OutputFormat::Jsonl)
        );
    }

    #[test]
    fn delivery_stream_wins_over_file() {
        let env = env_of(&[(env::DELIVERY_STREAM_NAME, "calls"), (env::FILE, "/tmp/x")]);
        let config = RecorderConfig::resolve(RecorderOptions::default(), env).unwrap();
        assert_eq!(
            config.sink,
            SinkConfig::Firehose {
                delivery_stream_name: "calls".into()
            }
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let error = RecorderConfig::resolve(
            RecorderOptions::default(),
            env_of(&[(env::CSM_PORT, "abc")]),
        )
        .unwrap_err();
        assert_eq!(error.name, "AWS_CSM_PORT");
        assert!(error.to_string().contains("abc"));
        let options = RecorderOptions {
            sink: Some("kafka".into()),
            ..Default::default()
        };
        assert!(RecorderConfig::resolve(options, env_of(&[])).is_err());
    }

    #[test]
    fn an_unrecognised_flag_fails_or_falls_back_with_a_warning() {
        let env = env_of(&[(env::DROP_ACCESS_KEY, "maybe")]);
        let error = RecorderConfig::resolve(RecorderOptions::default(), &env).unwrap_err();
        assert_eq!(error.name, env::DROP_ACCESS_KEY);
        let config = RecorderConfig::resolve_with(
            RecorderOptions::default(),
            &env,
            UnrecognisedFlag::FallsBack,
        )
        .unwrap();
        assert!(!config.drop_access_key);
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("API_CALL_RECORDER_DROP_ACCESS_KEY=\"maybe\""));
        for (raw, value) in [("YES", true), (" on ", true), ("0", false), ("Off", false)] {
            assert_eq!(parse_flag(raw), Some(value), "{raw}");
        }
    }

    #[test]
    fn non_loopback_host_warns() {
        let options = RecorderOptions {
            host: Some("0.0.0.0".into()),
            ..Default::default()
        };
        let config = RecorderConfig::resolve(options, env_of(&[])).unwrap();
        assert_eq!(config.warnings.len(), 1);
    }
}
