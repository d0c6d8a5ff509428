//! Builder addresses: what to connect to ([`TransportSpec`]) and why it was chosen ([`Reason`]).
//!
//! # Address forms (`--addr`, `BUILDKIT_HOST`)
//!
//! | form | meaning |
//! |---|---|
//! | `unix:///run/buildkit/buildkitd.sock` | a buildkitd's gRPC socket |
//! | `tcp://127.0.0.1:1234` | a buildkitd over TCP; TLS when any TLS option is given (buildctl's `--tlscacert`, `--tlscert`, `--tlskey`, `--tlsservername`, `--tlsdir`) |
//! | `docker-container://NAME[?context=CTX]` | a BuildKit inside container NAME, through `docker [--context CTX] exec -i NAME buildctl dial-stdio` |
//! | `podman-container://NAME`, `nerdctl-container://NAME` | the same through `podman exec` / `nerdctl exec` |
//! | `docker+unix:///var/run/docker.sock` | **the embedded BuildKit of the Docker engine** on that API socket (`POST /grpc` upgraded to h2c, as buildx's `docker` driver does) |
//! | `docker+tcp://127.0.0.1:2376` | the same over TCP; TLS when TLS options are given or `DOCKER_TLS_VERIFY` is set (certificates from `DOCKER_CERT_PATH`) |
//! | `docker://` | the Docker engine the Docker CLI would use (`DOCKER_HOST`, else the current docker context, else `/var/run/docker.sock`) |
//!
//! The `docker+` prefix is this project's explicit way to name a Docker engine: a plain `unix://` address
//! is always spoken to as a buildkitd (plain gRPC), because that is what buildctl does with it.

use std::fmt;
use std::path::PathBuf;

use super::errors::ResolveError;
use super::tls::TlsOptions;

/// Where a stream socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    /// A unix domain socket at this path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Unix(path) => write!(f, "unix://{}", path.display()),
            Socket::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// A command whose stdin/stdout carry the gRPC connection (`buildctl dial-stdio`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program to spawn.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}", self.program.display())?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        f.write_str("`")
    }
}

/// How to reach a builder; every variant ends in one tonic `Channel` (see [`super::transport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    /// Plain gRPC to a buildkitd, optionally over TLS (tcp only).
    Buildkitd {
        /// The socket.
        socket: Socket,
        /// TLS settings (tcp only).
        tls: Option<TlsOptions>,
    },
    /// A Docker engine's embedded BuildKit: `POST /grpc` with `Upgrade: h2c` on its API socket.
    DockerEngine {
        /// The Docker API socket.
        socket: Socket,
        /// TLS settings for a tcp Docker API.
        tls: Option<TlsOptions>,
    },
    /// gRPC over the stdio of a spawned command.
    Command(CommandSpec),
}

impl fmt::Display for TransportSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportSpec::Buildkitd { socket, tls } => {
                write!(
                    f,
                    "buildkitd at {socket}{}",
                    if tls.is_some() { " (tls)" } else { "" }
                )
            }
            TransportSpec::DockerEngine { socket, tls } => {
                let tls = if tls.is_some() { " (tls)" } else { "" };
                write!(f, "docker engine at {socket}{tls}")
            }
            TransportSpec::Command(cmd) => write!(f, "{cmd}"),
        }
    }
}

/// Why a builder address was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Given with `--addr`.
    AddrFlag,
    /// `$BUILDKIT_HOST`.
    BuildkitHost,
    /// A buildx builder from the buildx store.
    BuildxBuilder {
        /// Builder name.
        name: String,
        /// The store directory it came from.
        store: PathBuf,
        /// How the name was chosen: `--builder`, `BUILDX_BUILDER` or the store's `current`.
        via: String,
    },
    /// `$DOCKER_HOST`.
    DockerHost,
    /// A Docker CLI context.
    DockerContext {
        /// Context name.
        name: String,
    },
    /// `/var/run/docker.sock`, because nothing else was configured.
    DefaultDockerSocket,
    /// `/run/buildkit/buildkitd.sock`, because nothing else was configured.
    DefaultBuildkitdSocket,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::AddrFlag => f.write_str("--addr flag"),
            Reason::BuildkitHost => f.write_str("BUILDKIT_HOST"),
            Reason::BuildxBuilder { name, store, via } => {
                write!(f, "buildx builder {name} from {} ({via})", store.display())
            }
            Reason::DockerHost => f.write_str("DOCKER_HOST"),
            Reason::DockerContext { name } => write!(f, "docker context {name}"),
            Reason::DefaultDockerSocket => f.write_str("default docker socket"),
            Reason::DefaultBuildkitdSocket => f.write_str("default buildkitd socket"),
        }
    }
}

/// One builder to try: how to reach it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderSpec {
    /// How to reach it.
    pub transport: TransportSpec,
    /// Why it was chosen.
    pub reason: Reason,
}

impl fmt::Display for BuilderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.transport, self.reason)
    }
}

/// The default buildkitd socket on Linux.
pub const DEFAULT_BUILDKITD_SOCKET: &str = "/run/buildkit/buildkitd.sock";
/// The default Docker API socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// The scheme `docker://`: "the Docker engine the Docker CLI would use".
pub(crate) const DOCKER_DEFAULT_SCHEME: &str = "docker://";

/// Parse a buildctl-style address (see the module docs) into a transport.
///
/// `docker://` is not handled here (it needs the environment); see [`super::resolve`].
pub fn parse_addr(
    addr: &str,
    tls: &TlsOptions,
    docker_cli: &std::path::Path,
) -> Result<TransportSpec, ResolveError> {
    let bad = |reason: &str| ResolveError::BadAddress {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((scheme, rest)) = addr.split_once("://") else {
        return Err(bad(
            "expected SCHEME://… (e.g. unix:///run/buildkit/buildkitd.sock or tcp://host:port)",
        ));
    };
    let tls = (!tls.is_empty()).then(|| tls.clone());
    match scheme {
        "unix" | "docker+unix" => {
            if tls.is_some() {
                return Err(bad("tls options apply only to tcp:// addresses"));
            }
            let socket =
                Socket::Unix(parse_unix_path(rest).ok_or_else(|| bad("missing socket path"))?);
            Ok(if scheme == "unix" {
                TransportSpec::Buildkitd { socket, tls: None }
            } else {
                TransportSpec::DockerEngine { socket, tls: None }
            })
        }
        "tcp" | "docker+tcp" => {
            let socket = parse_tcp(rest).map_err(|reason| bad(&reason))?;
            Ok(if scheme == "tcp" {
                TransportSpec::Buildkitd { socket, tls }
            } else {
                TransportSpec::DockerEngine { socket, tls }
            })
        }
        "docker-container" | "podman-container" | "nerdctl-container" => {
            let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
            let name = name.trim_end_matches('/');
            if name.is_empty() || name.contains('/') {
                return Err(bad(
                    "expected a container name, e.g. docker-container://buildkitd",
                ));
            }
            let mut args = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("context", ctx)) if scheme == "docker-container" && !ctx.is_empty() => {
                        args.extend(["--context".to_owned(), ctx.to_owned()]);
                    }
                    _ => return Err(bad(&format!("unsupported query parameter `{pair}`"))),
                }
            }
            let program = match scheme {
                "docker-container" => docker_cli.to_path_buf(),
                "podman-container" => PathBuf::from("podman"),
                _ => PathBuf::from("nerdctl"),
            };
            args.extend(["exec", "-i", name, "buildctl", "dial-stdio"].map(str::to_owned));
            Ok(TransportSpec::Command(CommandSpec { program, args }))
        }
        _ => Err(ResolveError::UnsupportedScheme {
            addr: addr.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

/// Parse a Docker host (`DOCKER_HOST` syntax: `unix://…`, `tcp://…`) into a Docker engine transport.
pub fn parse_docker_host(
    host: &str,
    tls: Option<TlsOptions>,
) -> Result<TransportSpec, ResolveError> {
    let bad = |reason: &str| ResolveError::BadAddress {
        addr: host.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((scheme, rest)) = host.split_once("://") else {
        return Err(bad("expected unix://PATH or tcp://HOST:PORT"));
    };
    match scheme {
        "unix" => {
            let path = parse_unix_path(rest).ok_or_else(|| bad("missing socket path"))?;
            Ok(TransportSpec::DockerEngine {
                socket: Socket::Unix(path),
                tls: None,
            })
        }
        "tcp" | "http" | "https" => {
            let socket = parse_tcp(rest).map_err(|reason| bad(&reason))?;
            Ok(TransportSpec::DockerEngine { socket, tls })
        }
        _ => Err(ResolveError::UnsupportedScheme {
            addr: host.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

fn parse_unix_path(rest: &str) -> Option<PathBuf> {
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}

fn parse_tcp(rest: &str) -> Result<Socket, String> {
    let hostport = rest.trim_end_matches('/');
    if hostport.contains('/') {
        return Err("a tcp address has no path".to_owned());
    }
    let (host, port) = hostport.rsplit_once(':').ok_or("expected HOST:PORT")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("`{port}` is not a port number"))?;
    Ok(Socket::Tcp {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(addr: &str) -> Result<TransportSpec, ResolveError> {
        parse_addr(addr, &TlsOptions::default(), Path::new("/usr/bin/docker"))
    }

    #[test]
    fn unix_and_tcp_are_buildkitd() {
        assert_eq!(
            parse("unix:///run/buildkit/buildkitd.sock").unwrap(),
            TransportSpec::Buildkitd {
                socket: Socket::Unix("/run/buildkit/buildkitd.sock".into()),
                tls: None
            }
        );
        assert_eq!(
            parse("tcp://127.0.0.1:1234").unwrap(),
            TransportSpec::Buildkitd {
                socket: Socket::Tcp {
                    host: "127.0.0.1".into(),
                    port: 1234
                },
                tls: None
            }
        );
        assert_eq!(
            parse("tcp://[::1]:1234/").unwrap(),
            TransportSpec::Buildkitd {
                socket: Socket::Tcp {
                    host: "::1".into(),
                    port: 1234
                },
                tls: None
            }
        );
    }

    #[test]
    fn docker_prefix_names_a_docker_engine() {
        assert_eq!(
            parse("docker+unix:///var/run/docker.sock").unwrap(),
            TransportSpec::DockerEngine {
                socket: Socket::Unix("/var/run/docker.sock".into()),
                tls: None
            }
        );
        let tls = TlsOptions {
            ca_cert: Some("/ca.pem".into()),
            ..TlsOptions::default()
        };
        let spec = parse_addr("docker+tcp://localhost:2376", &tls, Path::new("docker")).unwrap();
        assert_eq!(
            spec,
            TransportSpec::DockerEngine {
                socket: Socket::Tcp {
                    host: "localhost".into(),
                    port: 2376
                },
                tls: Some(tls)
            }
        );
        assert_eq!(
            spec.to_string(),
            "docker engine at tcp://localhost:2376 (tls)"
        );
    }

    #[test]
    fn docker_container_spawns_dial_stdio() {
        let spec = parse("docker-container://bk?context=remote").unwrap();
        let TransportSpec::Command(cmd) = spec else {
            panic!("not a command")
        };
        assert_eq!(cmd.program, PathBuf::from("/usr/bin/docker"));
        assert_eq!(
            cmd.args,
            [
                "--context",
                "remote",
                "exec",
                "-i",
                "bk",
                "buildctl",
                "dial-stdio"
            ]
        );
        assert_eq!(
            cmd.to_string(),
            "`/usr/bin/docker --context remote exec -i bk buildctl dial-stdio`"
        );
        let TransportSpec::Command(cmd) = parse("podman-container://bk").unwrap() else {
            panic!()
        };
        assert_eq!(cmd.program, PathBuf::from("podman"));
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let msg = |a: &str| parse(a).unwrap_err().to_string();
        assert!(
            msg("localhost:1234").contains("expected SCHEME://"),
            "{}",
            msg("localhost:1234")
        );
        assert!(msg("tcp://127.0.0.1").contains("HOST:PORT"));
        assert!(msg("tcp://127.0.0.1:http").contains("not a port number"));
        assert!(msg("unix://").contains("missing socket path"));
        assert!(msg("docker-container://").contains("container name"));
        assert!(msg("docker-container://x?namespace=y").contains("unsupported query parameter"));
        let ssh = msg("ssh://me@host");
        assert!(
            ssh.contains("`ssh`") && ssh.contains("docker-container://"),
            "{ssh}"
        );
        let tls = TlsOptions {
            cert: Some("/c.pem".into()),
            ..TlsOptions::default()
        };
        let err = parse_addr("unix:///x.sock", &tls, Path::new("docker"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls options apply only to tcp://"), "{err}");
    }

    #[test]
    fn docker_hosts() {
        assert_eq!(
            parse_docker_host("tcp://10.0.0.1:2375", None).unwrap(),
            TransportSpec::DockerEngine {
                socket: Socket::Tcp {
                    host: "10.0.0.1".into(),
                    port: 2375
                },
                tls: None
            }
        );
        assert!(parse_docker_host("ssh://host", None).is_err());
        assert!(parse_docker_host("/var/run/docker.sock", None).is_err());
    }

    #[test]
    fn reasons_read_as_documented() {
        assert_eq!(Reason::AddrFlag.to_string(), "--addr flag");
        assert_eq!(
            Reason::DockerContext { name: "ci".into() }.to_string(),
            "docker context ci"
        );
        let spec = BuilderSpec {
            transport: TransportSpec::DockerEngine {
                socket: Socket::Unix(DEFAULT_DOCKER_SOCKET.into()),
                tls: None,
            },
            reason: Reason::DefaultDockerSocket,
        };
        assert_eq!(
            spec.to_string(),
            "docker engine at unix:///var/run/docker.sock (default docker socket)"
        );
    }
}
