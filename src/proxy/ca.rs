//! The proxy's certificate authority: made fresh for each run, its key held in memory only, its
//! certificate limited by name constraints to AWS domains, so that trusting it lets nothing but AWS
//! endpoints be impersonated. Leaf certificates are made per requested host name, on first use.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ProxyError;

/// The DNS subtrees the CA may issue for: AWS endpoints, and nothing else.
pub const AWS_DOMAINS: [&str; 3] = ["amazonaws.com", "amazonaws.com.cn", "api.aws"];

/// Where the system's roots are read from when the environment names no bundle.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Variables that may already name a CA bundle; the first one set is the bundle the run's one
/// extends.
const BUNDLE_VARIABLES: [&str; 2] = ["SSL_CERT_FILE", "AWS_CA_BUNDLE"];

/// Leaf certificates kept; past that the cache starts over (a run rarely sees more hosts).
const MAX_CACHED_LEAVES: usize = 4096;

/// How long the CA and its leaves are valid, from a day before they are made.
const VALIDITY_DAYS: i64 = 90;

/// Whether `host` is an AWS endpoint, the only hosts the proxy decrypts.
pub fn is_aws_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    AWS_DOMAINS.iter().any(|domain| {
        host.len() > domain.len()
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
    })
}

/// The run's certificate authority and the leaf certificates it made.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    /// One key for every leaf: the CA's signature is what binds it to a host.
    leaf_key: KeyPair,
    provider: Arc<CryptoProvider>,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
}

fn ca_error(source: rcgen::Error) -> ProxyError {
    ProxyError::Certificate(source.to_string())
}

impl CertificateAuthority {
    /// Makes a new CA: a fresh P-256 key pair, never written anywhere.
    pub fn new(provider: Arc<CryptoProvider>) -> Result<Self, ProxyError> {
        let key = KeyPair::generate().map_err(ca_error)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            "aws-api-call-recorder proxy CA (one run)",
        );
        name.push(DnType::OrganizationName, "aws-api-call-recorder");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: AWS_DOMAINS
                .iter()
                .map(|d| GeneralSubtree::DnsName((*d).to_owned()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
        params.serial_number = Some(random_serial());
        validity(&mut params);
        let cert = params.self_signed(&key).map_err(ca_error)?;
        Ok(CertificateAuthority {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            leaf_key: KeyPair::generate().map_err(ca_error)?,
            provider,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The TLS server configuration for `host`: a leaf certificate for exactly that name, made on
    /// first use and kept. ALPN offers HTTP/1.1 only, so clients that would speak h2 settle on it.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, ProxyError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = leaves.get(&host) {
            return Ok(config.clone());
        }
        let config = Arc::new(self.make_server_config(&host)?);
        if leaves.len() >= MAX_CACHED_LEAVES {
            leaves.clear();
        }
        leaves.insert(host, config.clone());
        Ok(config)
    }

    fn make_server_config(&self, host: &str) -> Result<ServerConfig, ProxyError> {
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(ca_error)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        validity(&mut params);
        let leaf = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(ca_error)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Certificate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), self.ca_der.clone()], key)
            .map_err(|e| ProxyError::Certificate(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes);
    bytes[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// The bundle of roots the run's one extends: the file the environment names, else the system's.
pub fn system_roots_path() -> PathBuf {
    BUNDLE_VARIABLES
        .iter()
        .filter_map(std::env::var_os)
        .find(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_ROOTS))
}

/// Reads PEM certificates from `path`; an unreadable or empty file gives none.
pub fn read_roots(path: &Path) -> (Vec<u8>, Vec<CertificateDer<'static>>) {
    let Ok(pem) = std::fs::read(path) else {
        return (Vec::new(), Vec::new());
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    (pem, certs)
}

/// The run's CA files: a private directory (mode 0700) holding the CA certificate and the bundle
/// (the CA, then the system roots), each mode 0600. Removed on drop.
#[derive(Debug)]
pub struct CaFiles {
    dir: PathBuf,
    cert: PathBuf,
    bundle: PathBuf,
}

impl CaFiles {
    /// Writes the files into a new directory under `parent`.
    pub fn write(parent: &Path, ca_pem: &str, roots_pem: &[u8]) -> Result<Self, ProxyError> {
        let dir = make_private_dir(parent)?;
        let files = CaFiles {
            cert: dir.join("ca.pem"),
            bundle: dir.join("bundle.pem"),
            dir,
        };
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ProxyError::Files { path, source }
        };
        write_private(&files.cert, &[ca_pem.as_bytes()]).map_err(io(&files.cert))?;
        let separator: &[u8] = if roots_pem.is_empty() || roots_pem.ends_with(b"\n") {
            b""
        } else {
            b"\n"
        };
        write_private(&files.bundle, &[ca_pem.as_bytes(), roots_pem, separator])
            .map_err(io(&files.bundle))?;
        Ok(files)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    pub fn bundle_path(&self) -> &Path {
        &self.bundle
    }
}

impl Drop for CaFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make_private_dir(parent: &Path) -> Result<PathBuf, ProxyError> {
    let mut last_error = None;
    for _ in 0..16 {
        let dir = parent.join(format!(
            "api-call-recorder-ca-{}",
            fastrand::u64(..) & 0xffff_ffff_ffff
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(source) => return Err(ProxyError::Files { path: dir, source }),
        }
    }
    Err(ProxyError::Files {
        path: parent.to_owned(),
        source: last_error.unwrap_or_else(|| std::io::Error::other("no free name")),
    })
}

fn write_private(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aws_hosts_are_decrypted() {
        for host in [
            "s3.amazonaws.com",
            "BUCKET.s3.amazonaws.com",
            "123456789012.ddb.us-east-1.amazonaws.com",
            "sts.cn-north-1.amazonaws.com.cn",
            "sqs.us-east-1.api.aws",
            "iam.amazonaws.com.",
        ] {
            assert!(is_aws_host(host), "{host}");
        }
        for host in [
            "amazonaws.com",
            "evilamazonaws.com",
            "amazonaws.com.evil.example",
            "example.com",
            "api.aws.example",
            "127.0.0.1",
            "",
        ] {
            assert!(!is_aws_host(host), "{host}");
        }
    }

    #[test]
    fn files_are_private_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let parent = std::env::temp_dir();
        let files = CaFiles::write(&parent, "CA\n", b"ROOTS").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(files.dir()), 0o700);
        assert_eq!(mode(files.cert_path()), 0o600);
        assert_eq!(mode(files.bundle_path()), 0o600);
        assert_eq!(std::fs::read(files.bundle_path()).unwrap(), b"CA\nROOTS\n");
        let dir = files.dir().to_owned();
        drop(files);
        assert!(!dir.exists());
    }
}
