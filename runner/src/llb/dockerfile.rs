//! Dockerfile inputs: [`State::dockerfile`] and [`State::dockerfile_with`].
//!
//! A Dockerfile input is a node naming a context directory on the host and the build's options
//! ([`DockerfileOptions`]): this layer does no I/O, so it cannot build it. The runner resolves
//! each distinct node once per run — it sends the context (and the Dockerfile's directory) through
//! its session, solves them with BuildKit's `dockerfile.v0` frontend, and substitutes the
//! frontend's result (its LLB definition, ops verbatim) for the node with
//! [`State::apply_resolved`], with the result's image config applied like an image's. Checks and
//! `run` steps built on the node before that then run on the result, in the same graph.
//!
//! Marshalling a graph that still holds an unresolved node is an error
//! ([`LlbError::UnresolvedDockerfile`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::error::LlbError;
use super::exec::NetMode;
use super::state::{OpKind, Platform, State, Vertex};

/// The Dockerfile's default name in the context directory.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// Options of [`State::dockerfile_with`]: which Dockerfile, which stage, build arguments, the
/// platform, the network of `RUN` steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DockerfileOptions {
    file: Option<PathBuf>,
    target: Option<String>,
    build_args: BTreeMap<String, String>,
    platform: Option<Platform>,
    network: NetMode,
    no_config: bool,
}

impl DockerfileOptions {
    /// Default options: `Dockerfile` in the context directory, the last stage, no build
    /// arguments, the run's platform, the builder's default network.
    pub fn new() -> Self {
        Self::default()
    }

    /// The Dockerfile (`docker build -f`). A relative path is relative to the current directory
    /// (the package root under cargo), as the context directory is; it need not be inside the
    /// context.
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Builds stage `target` instead of the last one (`docker build --target`).
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets build argument `key` (`docker build --build-arg KEY=VALUE`).
    #[must_use]
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// Builds for `platform` (`docker build --platform`), and runs the checks on it for that
    /// platform, instead of the run's.
    #[must_use]
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// The network of the Dockerfile's `RUN` steps: [`NetMode::None`] builds without network
    /// (what a builder without a bridge network needs, and hermetic), [`NetMode::Host`] with the
    /// host's (needs the builder's entitlement). Default: the builder's default network, as
    /// `docker build`.
    #[must_use]
    pub fn network(mut self, network: NetMode) -> Self {
        self.network = network;
        self
    }

    /// Whether the result's image config (`ENV`, `WORKDIR`, `USER`) applies to the checks and
    /// `run` steps on it (default `true`), as [`ImageOptions::apply_config`](super::ImageOptions::apply_config)
    /// for images.
    #[must_use]
    pub fn apply_config(mut self, apply: bool) -> Self {
        self.no_config = !apply;
        self
    }
}

/// A Dockerfile input of a graph, as the runner resolves it (listed by
/// [`State::dockerfile_sources`]). Paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DockerfileSource {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile.
    pub file: PathBuf,
    /// The stage to build (`None`: the last one).
    pub target: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// The platform to build for (`None`: the run's).
    pub platform: Option<Platform>,
    /// The network of `RUN` steps.
    pub network: NetMode,
    /// Whether the result's image config applies to the execs on it.
    pub apply_config: bool,
}

impl DockerfileSource {
    /// The Dockerfile input `State::dockerfile_with(context, options)` names.
    pub fn new(context: impl AsRef<Path>, options: DockerfileOptions) -> Self {
        let context = absolute(context.as_ref());
        let file = match &options.file {
            Some(file) => absolute(file),
            None => context.join(DEFAULT_DOCKERFILE),
        };
        Self {
            context,
            file,
            target: options.target,
            build_args: options.build_args,
            platform: options.platform,
            network: options.network,
            apply_config: !options.no_config,
        }
    }

    /// How it reads in messages: `Dockerfile <file> (context <dir>, target <t>, build-arg K=V, …)`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "Dockerfile {} (context {}",
            self.file.display(),
            self.context.display()
        );
        if let Some(target) = &self.target {
            text.push_str(", target ");
            text.push_str(target);
        }
        for (key, value) in &self.build_args {
            let _ = write!(text, ", build-arg {key}={value}");
        }
        if let Some(platform) = &self.platform {
            let _ = write!(text, ", platform {platform}");
        }
        text.push(')');
        text
    }
}

/// `path` made absolute against the current directory, lexically cleaned.
fn absolute(path: &Path) -> PathBuf {
    let joined = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.to_path_buf(),
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The unresolved node: a [`DockerfileSource`].
#[derive(Debug, Clone)]
pub(crate) struct DockerfileOp {
    pub(crate) source: DockerfileSource,
}

impl DockerfileOp {
    pub(crate) fn unresolved(&self) -> LlbError {
        LlbError::UnresolvedDockerfile {
            dockerfile: self.source.describe(),
        }
    }
}

impl State {
    /// The image the Dockerfile in `context_dir` builds (`docker build context_dir`), as an input
    /// to test. A relative path is relative to the current directory (the package root under
    /// cargo). The runner builds it once per run with BuildKit's `dockerfile.v0` frontend, the
    /// context sent through its session (its `.dockerignore` applies), and the result's image
    /// config applies to the checks and `run` steps on it, as for [`State::image`]. An unchanged
    /// Dockerfile and context build from the builder's cache. A Dockerfile that fails to build is
    /// an error of every check on it, naming the failing instruction.
    ///
    /// ```
    /// use buildtest::llb::{DockerfileOptions, NetMode, Platform, State};
    ///
    /// let app = State::dockerfile_with(
    ///     "docker/app",
    ///     DockerfileOptions::new().target("runtime").build_arg("VERSION", "1.2").network(NetMode::None),
    /// );
    /// let sources = app.dockerfile_sources();
    /// assert!(sources[0].file.ends_with("docker/app/Dockerfile"));
    /// assert_eq!(sources[0].target.as_deref(), Some("runtime"));
    /// // Only the runner can build it: marshalling it unresolved says so.
    /// let err = app.marshal(&Platform::linux_amd64()).unwrap_err();
    /// assert!(err.to_string().contains("not built yet"), "{err}");
    /// ```
    pub fn dockerfile(context_dir: impl AsRef<Path>) -> State {
        Self::dockerfile_with(context_dir, DockerfileOptions::default())
    }

    /// [`State::dockerfile`] with another Dockerfile, a target stage, build arguments, a
    /// platform or the network of `RUN` steps.
    pub fn dockerfile_with(context_dir: impl AsRef<Path>, options: DockerfileOptions) -> State {
        let platform = options.platform.clone();
        let source = DockerfileSource::new(context_dir, options);
        State::from_vertex(
            Vertex::new(OpKind::Dockerfile(Box::new(DockerfileOp { source }))),
            0,
            platform,
        )
    }
}
