//! TLS settings (buildctl's `--tlscacert/--tlscert/--tlskey/--tlsservername/--tlsdir`, Docker's
//! `DOCKER_CERT_PATH`) and their rustls client configuration (ring provider).
//!
//! Files are read and checked when the connection is made, so a missing or malformed file fails with
//! its path instead of surfacing as a handshake error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::errors::TlsError;

/// The Debian/Ubuntu system CA bundle, used when no CA certificate is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// TLS settings for a tcp connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificate(s) (PEM) that sign the server's certificate; the system bundle when unset.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    pub key: Option<PathBuf>,
    /// Name to verify the server certificate against; defaults to the address's host.
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// No TLS setting is given.
    pub fn is_empty(&self) -> bool {
        self.ca_cert.is_none()
            && self.cert.is_none()
            && self.key.is_none()
            && self.server_name.is_none()
    }

    /// buildctl's `--tlsdir`: `ca.pem`/`cert.pem`/`key.pem`, or `ca.crt`/`tls.crt`/`tls.key`
    /// (whichever files exist).
    pub fn from_dir(dir: &Path) -> Self {
        let pick = |names: [&str; 2]| names.iter().map(|n| dir.join(n)).find(|p| p.exists());
        Self {
            ca_cert: pick(["ca.pem", "ca.crt"]),
            cert: pick(["cert.pem", "tls.crt"]),
            key: pick(["key.pem", "tls.key"]),
            server_name: None,
        }
    }

    /// Docker's layout in `DOCKER_CERT_PATH` or a context's TLS directory: `ca.pem`, `cert.pem`,
    /// `key.pem` (each used when present).
    pub fn docker_dir(dir: &Path) -> Self {
        let pick = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        Self {
            ca_cert: pick("ca.pem"),
            cert: pick("cert.pem"),
            key: pick("key.pem"),
            server_name: None,
        }
    }

    /// Read the files and build a rustls client configuration advertising `alpn`, plus the name to
    /// verify (`server_name`, else `default_host`).
    pub fn client_config(
        &self,
        default_host: &str,
        alpn: &[&[u8]],
    ) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        let (ca_path, what) = match &self.ca_cert {
            Some(path) => (path.clone(), "ca certificate"),
            None => (
                PathBuf::from(SYSTEM_CA_BUNDLE),
                "system ca bundle (no ca certificate given)",
            ),
        };
        for cert in read_certs(&ca_path, what)? {
            roots.add(cert).map_err(|e| TlsError::Invalid {
                what,
                path: ca_path.clone(),
                message: e.to_string(),
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_root_certificates(roots);
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "client certificate")?;
                let key_der = read_key(key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| TlsError::Invalid {
                        what: "client certificate",
                        path: cert.clone(),
                        message: e.to_string(),
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(TlsError::Incomplete {
                    given: "client certificate",
                    missing: "key",
                });
            }
            (None, Some(_)) => {
                return Err(TlsError::Incomplete {
                    given: "client key",
                    missing: "certificate",
                });
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = self.server_name.as_deref().unwrap_or(default_host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::ServerName(name.to_owned()))?;
        Ok((Arc::new(config), server_name))
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "client key";
    let pem = read(path, what)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPem {
            what,
            path: path.to_owned(),
        },
        e => TlsError::Invalid {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_names_the_path() {
        let opts = TlsOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let err = opts.client_config("localhost", &[]).unwrap_err();
        // The cause is the source, not repeated in the message.
        assert_eq!(
            err.to_string(),
            "read tls ca certificate /nonexistent/ca.pem"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source.is_some_and(|s| s.contains("No such file")),
            "{err:?}"
        );
        let line = super::super::errors::one_line_chain(&err);
        assert!(
            line.starts_with("read tls ca certificate /nonexistent/ca.pem: No such file"),
            "{line}"
        );
    }

    #[test]
    fn non_pem_and_half_pairs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("ca.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let opts = TlsOptions {
            ca_cert: Some(junk.clone()),
            ..TlsOptions::default()
        };
        let err = opts
            .client_config("localhost", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no pem") && err.contains("ca.pem"), "{err}");

        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(&junk, ca.cert.pem()).unwrap();
        let opts = TlsOptions {
            ca_cert: Some(junk.clone()),
            cert: Some(junk.clone()),
            ..TlsOptions::default()
        };
        let err = opts
            .client_config("localhost", &[])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "configure tls: client certificate given without key");
        let missing_key = dir.path().join("key.pem");
        let opts = TlsOptions {
            key: Some(missing_key),
            ..opts
        };
        let err = opts
            .client_config("localhost", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("read tls client key ") && err.contains("key.pem"),
            "{err}"
        );
        let opts = TlsOptions {
            ca_cert: Some(junk.clone()),
            ..TlsOptions::default()
        };
        assert!(opts.client_config("localhost", &[b"h2"]).is_ok());
    }

    #[test]
    fn tls_dir_layouts() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.crt", "tls.crt", "tls.key"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let opts = TlsOptions::from_dir(dir.path());
        assert_eq!(opts.ca_cert, Some(dir.path().join("ca.crt")));
        assert_eq!(opts.key, Some(dir.path().join("tls.key")));
        std::fs::write(dir.path().join("ca.pem"), "").unwrap();
        assert_eq!(
            TlsOptions::from_dir(dir.path()).ca_cert,
            Some(dir.path().join("ca.pem"))
        );
        let docker = TlsOptions::docker_dir(dir.path());
        assert_eq!(docker.ca_cert, Some(dir.path().join("ca.pem")));
        assert_eq!(docker.cert, None);
    }
}
