//! A snapshot of the process environment that address resolution reads.
//!
//! Resolution never reads `std::env` directly: it reads an [`Env`], so tests can describe
//! `DOCKER_HOST`, `DOCKER_CONFIG`, `HOME` … without mutating the (shared) process environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment variables and the home directory, as resolution sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
    home: Option<PathBuf>,
}

/// The variables resolution reads (everything else in the process environment is ignored).
pub(crate) const RESOLUTION_VARS: &[&str] = &[
    "BUILDKIT_HOST",
    "BUILDX_BUILDER",
    "BUILDX_CONFIG",
    "DOCKER_CONFIG",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
];

impl Env {
    /// An empty environment with no home directory.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The variables in [`RESOLUTION_VARS`] and `$HOME` of the running process.
    pub fn from_process() -> Self {
        let mut env = Self::empty();
        for name in RESOLUTION_VARS {
            if let Some(value) = std::env::var_os(name) {
                env.vars
                    .insert((*name).to_owned(), value.to_string_lossy().into_owned());
            }
        }
        env.home = std::env::var_os("HOME").map(PathBuf::from);
        env
    }

    /// This environment with `name` set to `value`.
    #[must_use]
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// This environment with the home directory set.
    #[must_use]
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// The value of `name` when it is set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The home directory, if known.
    pub fn home_dir(&self) -> Option<&PathBuf> {
        self.home.as_ref()
    }

    /// The Docker CLI's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn docker_config_dir(&self) -> Option<PathBuf> {
        match self.get("DOCKER_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir)),
            None => self.home.as_ref().map(|h| h.join(".docker")),
        }
    }

    /// The buildx store: `$BUILDX_CONFIG`, else `$DOCKER_CONFIG/buildx`, else `~/.docker/buildx`.
    pub fn buildx_config_dir(&self) -> Option<PathBuf> {
        match self.get("BUILDX_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir)),
            None => self.docker_config_dir().map(|d| d.join("buildx")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::empty().var("DOCKER_HOST", "");
        assert_eq!(env.get("DOCKER_HOST"), None);
    }

    #[test]
    fn config_dirs_follow_docker_and_buildx_precedence() {
        let env = Env::empty().home("/home/u");
        assert_eq!(
            env.docker_config_dir(),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(
            env.buildx_config_dir(),
            Some(PathBuf::from("/home/u/.docker/buildx"))
        );
        let env = env.var("DOCKER_CONFIG", "/cfg");
        assert_eq!(env.buildx_config_dir(), Some(PathBuf::from("/cfg/buildx")));
        let env = env.var("BUILDX_CONFIG", "/bx");
        assert_eq!(env.buildx_config_dir(), Some(PathBuf::from("/bx")));
        assert_eq!(Env::empty().docker_config_dir(), None);
    }
}
