//! Choosing the builder: flags, environment, buildx store, Docker engine, defaults.
//!
//! Precedence (first match wins):
//!
//! 1. `--addr` ([`ResolveOptions::addr`]) — any form of [`super::addr`];
//! 2. `BUILDKIT_HOST`;
//! 3. a buildx builder: `--builder` ([`ResolveOptions::builder`]), else `BUILDX_BUILDER`, else the store's
//!    `current` builder (see [`super::buildx`]);
//! 4. `DOCKER_HOST`, else the current docker context (see [`super::docker_context`]) — that engine only;
//! 5. nothing configured: the Docker engine at `/var/run/docker.sock`, then a buildkitd at
//!    `unix:///run/buildkit/buildkitd.sock` (the first that answers is used).

use std::fmt;
use std::path::{Path, PathBuf};

use super::addr::{self, BuilderSpec, Reason, Socket, TransportSpec};
use super::buildx;
use super::docker_context;
use super::env::Env;
use super::errors::ResolveError;
use super::tls::TlsOptions;

/// Inputs of resolution.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// `--addr`.
    pub addr: Option<String>,
    /// `--builder` (a buildx builder name).
    pub builder: Option<String>,
    /// `--tlscacert/--tlscert/--tlskey/--tlsservername` (apply to a tcp `--addr`/`BUILDKIT_HOST`).
    pub tls: TlsOptions,
    /// The Docker CLI for `docker-container://` (default: `/usr/bin/docker` if present, else `docker`).
    pub docker_cli: Option<PathBuf>,
    /// The environment to read.
    pub env: Env,
}

impl ResolveOptions {
    /// No flags; the process environment.
    pub fn from_env() -> Self {
        Self {
            env: Env::from_process(),
            ..Self::default()
        }
    }

    /// These options with `--addr`.
    #[must_use]
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = Some(addr.into());
        self
    }

    /// The Docker CLI to spawn for `docker-container://` and buildx `docker-container` builders.
    pub fn docker_cli_path(&self) -> PathBuf {
        if let Some(cli) = &self.docker_cli {
            return cli.clone();
        }
        // /usr/local/bin/docker on some machines is a client without buildx; prefer the packaged one.
        let packaged = Path::new("/usr/bin/docker");
        if packaged.exists() {
            packaged.to_path_buf()
        } else {
            PathBuf::from("docker")
        }
    }
}

/// The builders to try, in order, each with why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Candidates in order; never empty.
    pub candidates: Vec<BuilderSpec>,
}

impl Resolved {
    /// Exactly one candidate.
    pub fn single(spec: BuilderSpec) -> Self {
        Self {
            candidates: vec![spec],
        }
    }

    /// `--addr ADDR` alone (no environment).
    pub fn addr(addr: &str) -> Result<Self, ResolveError> {
        resolve(&ResolveOptions::default().addr(addr))
    }
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, spec) in self.candidates.iter().enumerate() {
            if i > 0 {
                f.write_str(", then ")?;
            }
            write!(f, "{spec}")?;
        }
        Ok(())
    }
}

/// Resolve the builder candidates from flags and environment. Reads configuration files but opens
/// no connection.
pub fn resolve(options: &ResolveOptions) -> Result<Resolved, ResolveError> {
    let env = &options.env;
    let docker_cli = options.docker_cli_path();
    if let Some(addr) = options.addr.as_deref() {
        return from_addr(addr, Reason::AddrFlag, options, &docker_cli);
    }
    if let Some(addr) = env.get("BUILDKIT_HOST") {
        return from_addr(addr, Reason::BuildkitHost, options, &docker_cli);
    }
    let named = match (&options.builder, env.get("BUILDX_BUILDER")) {
        (Some(name), _) => Some((name.clone(), "--builder")),
        (None, Some(name)) => Some((name.to_owned(), "BUILDX_BUILDER")),
        (None, None) => buildx::current_builder(env)?.map(|name| (name, "current")),
    };
    if let Some((name, via)) = named {
        return Ok(Resolved::single(buildx::builder(
            env,
            &name,
            via,
            &docker_cli,
        )?));
    }
    let engine = docker_context::docker_engine(env)?;
    if engine.reason != Reason::DefaultDockerSocket {
        return Ok(Resolved::single(engine));
    }
    Ok(Resolved {
        candidates: vec![
            engine,
            BuilderSpec {
                transport: TransportSpec::Buildkitd {
                    socket: Socket::Unix(PathBuf::from(addr::DEFAULT_BUILDKITD_SOCKET)),
                    tls: None,
                },
                reason: Reason::DefaultBuildkitdSocket,
            },
        ],
    })
}

fn from_addr(
    addr: &str,
    reason: Reason,
    options: &ResolveOptions,
    docker_cli: &Path,
) -> Result<Resolved, ResolveError> {
    if addr == addr::DOCKER_DEFAULT_SCHEME {
        let engine = docker_context::docker_engine(&options.env)?;
        return Ok(Resolved::single(BuilderSpec {
            transport: engine.transport,
            reason,
        }));
    }
    let transport = addr::parse_addr(addr, &options.tls, docker_cli)?;
    Ok(Resolved::single(BuilderSpec { transport, reason }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(env: Env) -> ResolveOptions {
        ResolveOptions {
            env,
            docker_cli: Some("docker".into()),
            ..ResolveOptions::default()
        }
    }

    #[test]
    fn nothing_configured_tries_docker_then_buildkitd() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = resolve(&opts(Env::empty().home(dir.path()))).unwrap();
        assert_eq!(
            resolved.to_string(),
            "docker engine at unix:///var/run/docker.sock (default docker socket), then \
             buildkitd at unix:///run/buildkit/buildkitd.sock (default buildkitd socket)"
        );
    }

    #[test]
    fn precedence_addr_then_buildkit_host_then_builder_then_docker() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::empty()
            .home(dir.path())
            .var("BUILDKIT_HOST", "tcp://127.0.0.1:1234")
            .var("DOCKER_HOST", "unix:///run/d.sock");
        let mut o = opts(env.clone());
        o.addr = Some("unix:///run/x.sock".into());
        assert_eq!(
            resolve(&o).unwrap().to_string(),
            "buildkitd at unix:///run/x.sock (--addr flag)"
        );
        o.addr = None;
        assert_eq!(
            resolve(&o).unwrap().to_string(),
            "buildkitd at tcp://127.0.0.1:1234 (BUILDKIT_HOST)"
        );
        let o = opts(env.clone().var("BUILDKIT_HOST", ""));
        assert_eq!(
            resolve(&o).unwrap().to_string(),
            "docker engine at unix:///run/d.sock (DOCKER_HOST)"
        );
        let mut o = opts(
            env.var("BUILDKIT_HOST", "")
                .var("BUILDX_BUILDER", "default"),
        );
        let r = resolve(&o).unwrap().to_string();
        assert!(
            r.starts_with("docker engine at unix:///run/d.sock (buildx builder default from "),
            "{r}"
        );
        assert!(r.ends_with("(BUILDX_BUILDER))"), "{r}");
        o.builder = Some("nope".into());
        assert!(
            resolve(&o)
                .unwrap_err()
                .to_string()
                .starts_with("find buildx builder `nope`")
        );
    }

    #[test]
    fn docker_scheme_follows_the_docker_cli() {
        let env = Env::empty().var("DOCKER_HOST", "tcp://127.0.0.1:2375");
        let mut o = opts(env);
        o.addr = Some("docker://".into());
        assert_eq!(
            resolve(&o).unwrap().to_string(),
            "docker engine at tcp://127.0.0.1:2375 (--addr flag)"
        );
    }

    #[test]
    fn tls_flags_apply_to_tcp_addr() {
        let mut o = opts(Env::empty());
        o.addr = Some("tcp://localhost:1234".into());
        o.tls.server_name = Some("bk".into());
        let r = resolve(&o).unwrap();
        let TransportSpec::Buildkitd { tls: Some(tls), .. } = &r.candidates[0].transport else {
            panic!()
        };
        assert_eq!(tls.server_name.as_deref(), Some("bk"));
    }
}
