//! Which Docker engine the Docker CLI would talk to, with the CLI's precedence:
//! `DOCKER_HOST` (forces the `default` context), else the context named by `DOCKER_CONTEXT` or by
//! `currentContext` in `$DOCKER_CONFIG/config.json`, else `/var/run/docker.sock`.
//!
//! A context's metadata lives in `$DOCKER_CONFIG/contexts/meta/<sha256hex(name)>/meta.json`
//! (`Endpoints.docker.Host`), its TLS material in `contexts/tls/<sha256hex(name)>/docker/`.
//! For tcp, `DOCKER_TLS_VERIFY` turns on TLS with `ca.pem`/`cert.pem`/`key.pem` from `DOCKER_CERT_PATH`
//! (default `~/.docker`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::addr::{self, BuilderSpec, Reason, Socket, TransportSpec};
use super::env::Env;
use super::errors::ResolveError;
use super::tls::TlsOptions;

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    current_context: String,
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::BTreeMap<String, EndpointMeta>,
}

#[derive(Deserialize)]
struct EndpointMeta {
    #[serde(rename = "Host", default)]
    host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The name of the current Docker context (`DOCKER_CONTEXT`, else `config.json`'s `currentContext`),
/// or `None` for the `default` context.
pub fn current_context(env: &Env) -> Result<Option<String>, ResolveError> {
    if let Some(name) = env.get("DOCKER_CONTEXT") {
        return Ok(Some(name.to_owned()).filter(|n| n != "default"));
    }
    let Some(dir) = env.docker_config_dir() else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ResolveError::Read {
                what: "docker config",
                path,
                source,
            });
        }
    };
    let config: ConfigFile = serde_json::from_str(&text).map_err(|source| ResolveError::Json {
        what: "docker config",
        path: path.clone(),
        source,
    })?;
    Ok(Some(config.current_context).filter(|n| !n.is_empty() && n != "default"))
}

/// The Docker engine the Docker CLI would use, and why.
pub fn docker_engine(env: &Env) -> Result<BuilderSpec, ResolveError> {
    if let Some(host) = env.get("DOCKER_HOST") {
        let transport = addr::parse_docker_host(host, docker_tls_from_env(env))?;
        return Ok(BuilderSpec {
            transport,
            reason: Reason::DockerHost,
        });
    }
    if let Some(name) = current_context(env)? {
        return context_engine(env, &name);
    }
    Ok(default_engine())
}

/// `unix:///var/run/docker.sock`.
pub fn default_engine() -> BuilderSpec {
    BuilderSpec {
        transport: TransportSpec::DockerEngine {
            socket: Socket::Unix(PathBuf::from(addr::DEFAULT_DOCKER_SOCKET)),
            tls: None,
        },
        reason: Reason::DefaultDockerSocket,
    }
}

/// The Docker engine of the context `name` (`default` = the default engine).
pub fn context_engine(env: &Env, name: &str) -> Result<BuilderSpec, ResolveError> {
    if name == "default" {
        let mut spec = match env.get("DOCKER_HOST") {
            Some(host) => BuilderSpec {
                transport: addr::parse_docker_host(host, docker_tls_from_env(env))?,
                reason: Reason::DockerHost,
            },
            None => default_engine(),
        };
        if spec.reason == Reason::DefaultDockerSocket {
            spec.reason = Reason::DockerContext {
                name: name.to_owned(),
            };
        }
        return Ok(spec);
    }
    let config = env
        .docker_config_dir()
        .ok_or_else(|| ResolveError::NoSuchContext {
            name: name.to_owned(),
            path: PathBuf::from("$DOCKER_CONFIG (neither DOCKER_CONFIG nor HOME is set)"),
        })?;
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    let meta_path = config
        .join("contexts")
        .join("meta")
        .join(&hash)
        .join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ResolveError::NoSuchContext {
                name: name.to_owned(),
                path: meta_path.clone(),
            }
        } else {
            ResolveError::Read {
                what: "docker context metadata",
                path: meta_path.clone(),
                source: e,
            }
        }
    })?;
    let meta: ContextMeta = serde_json::from_str(&text).map_err(|source| ResolveError::Json {
        what: "docker context metadata",
        path: meta_path.clone(),
        source,
    })?;
    let endpoint = meta
        .endpoints
        .get("docker")
        .filter(|e| !e.host.is_empty())
        .ok_or_else(|| ResolveError::BadContext {
            name: name.to_owned(),
            reason: format!("{} has no docker endpoint host", meta_path.display()),
        })?;
    if endpoint.skip_tls_verify {
        return Err(ResolveError::BadContext {
            name: name.to_owned(),
            reason: "SkipTLSVerify is not supported; give the context a ca certificate".to_owned(),
        });
    }
    let tls_dir = config
        .join("contexts")
        .join("tls")
        .join(&hash)
        .join("docker");
    let tls = Some(TlsOptions::docker_dir(&tls_dir)).filter(|t| !t.is_empty());
    let transport = addr::parse_docker_host(&endpoint.host, tls)?;
    Ok(BuilderSpec {
        transport,
        reason: Reason::DockerContext {
            name: name.to_owned(),
        },
    })
}

/// TLS for a tcp `DOCKER_HOST` when `DOCKER_TLS_VERIFY` is set.
fn docker_tls_from_env(env: &Env) -> Option<TlsOptions> {
    env.get("DOCKER_TLS_VERIFY")?;
    let dir = match env.get("DOCKER_CERT_PATH") {
        Some(dir) => PathBuf::from(dir),
        None => env.docker_config_dir()?,
    };
    Some(tls_or_missing(&dir))
}

/// Docker's cert directory; when a file is missing it is still named, so the connection fails with
/// the path instead of silently dropping TLS.
fn tls_or_missing(dir: &Path) -> TlsOptions {
    TlsOptions {
        ca_cert: Some(dir.join("ca.pem")),
        cert: Some(dir.join("cert.pem")).filter(|p| p.exists() || dir.join("key.pem").exists()),
        key: Some(dir.join("key.pem")).filter(|p| p.exists() || dir.join("cert.pem").exists()),
        server_name: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn default_is_the_docker_socket() {
        let dir = tempfile::tempdir().unwrap();
        let spec = docker_engine(&Env::empty().home(dir.path())).unwrap();
        assert_eq!(spec, default_engine());
    }

    #[test]
    fn docker_host_wins_and_tls_verify_uses_cert_path() {
        let env = Env::empty()
            .var("DOCKER_HOST", "tcp://127.0.0.1:2376")
            .var("DOCKER_CONTEXT", "other");
        let spec = docker_engine(&env).unwrap();
        assert_eq!(spec.reason, Reason::DockerHost);
        assert!(matches!(
            spec.transport,
            TransportSpec::DockerEngine { tls: None, .. }
        ));

        let env = env
            .var("DOCKER_TLS_VERIFY", "1")
            .var("DOCKER_CERT_PATH", "/certs");
        let TransportSpec::DockerEngine { tls: Some(tls), .. } =
            docker_engine(&env).unwrap().transport
        else {
            panic!("no tls")
        };
        assert_eq!(tls.ca_cert, Some(PathBuf::from("/certs/ca.pem")));
    }

    #[test]
    fn current_context_from_config_json() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(".docker");
        write(
            &cfg.join("config.json"),
            r#"{"auths":{},"currentContext":"ci"}"#,
        );
        let hash = hex::encode(Sha256::digest(b"ci"));
        write(
            &cfg.join(format!("contexts/meta/{hash}/meta.json")),
            r#"{"Name":"ci","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///run/ci.sock","SkipTLSVerify":false}}}"#,
        );
        let env = Env::empty().home(dir.path());
        assert_eq!(current_context(&env).unwrap().as_deref(), Some("ci"));
        let spec = docker_engine(&env).unwrap();
        assert_eq!(
            spec.to_string(),
            "docker engine at unix:///run/ci.sock (docker context ci)"
        );

        // DOCKER_CONTEXT overrides config.json; a missing context is a clear error.
        let env = env.var("DOCKER_CONTEXT", "nope");
        let err = docker_engine(&env).unwrap_err().to_string();
        assert!(err.starts_with("find docker context `nope`: no "), "{err}");
        assert!(err.contains("meta.json"), "{err}");
    }

    #[test]
    fn context_tls_files_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let hash = hex::encode(Sha256::digest(b"remote"));
        write(
            &dir.path().join(format!("contexts/meta/{hash}/meta.json")),
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://10.1.1.1:2376"}}}"#,
        );
        write(
            &dir.path()
                .join(format!("contexts/tls/{hash}/docker/ca.pem")),
            "x",
        );
        let env = Env::empty().var("DOCKER_CONFIG", dir.path().to_str().unwrap());
        let spec = context_engine(&env, "remote").unwrap();
        let TransportSpec::DockerEngine { tls: Some(tls), .. } = spec.transport else {
            panic!("no tls")
        };
        assert!(tls.ca_cert.unwrap().ends_with("docker/ca.pem"));
        assert_eq!(tls.cert, None);
    }

    #[test]
    fn malformed_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("config.json"), "{not json");
        let env = Env::empty().var("DOCKER_CONFIG", dir.path().to_str().unwrap());
        let err = current_context(&env).unwrap_err().to_string();
        assert!(
            err.starts_with("parse docker config ") && err.contains("config.json"),
            "{err}"
        );
    }
}
