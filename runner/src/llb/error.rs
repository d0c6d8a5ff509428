//! Typed errors of the LLB layer.
//!
//! Builders never fail: a graph that cannot be marshalled carries its error
//! until [`State::marshal`](super::State::marshal), which returns it. Every
//! message is a lowercase fragment that reads well after "failed to".

/// Why an LLB graph could not be built or marshalled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LlbError {
    /// `State::requires` was given an empty id.
    #[error("build passthrough op: the id is empty")]
    EmptyPassthroughId,

    /// `State::requires` was called on scratch, which has nothing to forward.
    #[error(
        "build passthrough op `{id}`: the required state is scratch, so there is no output to forward"
    )]
    PassthroughWithoutOutput {
        /// The passthrough id.
        id: String,
    },

    /// An image reference that Docker's reference grammar rejects.
    #[error("parse image reference `{reference}`: {reason}")]
    InvalidImageReference {
        /// The reference as the user wrote it.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `State::run` was given no arguments.
    #[error("build exec op: no arguments were given")]
    EmptyExecArgs,

    /// The working directory of an exec is not an absolute path.
    #[error("build exec op `{args}`: working directory `{cwd}` is not absolute")]
    RelativeCwd {
        /// The exec's arguments, joined by spaces.
        args: String,
        /// The offending directory.
        cwd: String,
    },

    /// A mount destination is not an absolute path.
    #[error("build exec op `{args}`: mount destination `{dest}` is not absolute")]
    RelativeMountDest {
        /// The exec's arguments, joined by spaces.
        args: String,
        /// The offending destination.
        dest: String,
    },

    /// Two mounts of one exec share a destination (the root `/` included).
    #[error("build exec op `{args}`: more than one mount at `{dest}`")]
    DuplicateMountDest {
        /// The exec's arguments, joined by spaces.
        args: String,
        /// The duplicated destination.
        dest: String,
    },

    /// A cache mount was given an empty id.
    #[error("build exec op `{args}`: cache mount at `{dest}` has an empty id")]
    EmptyCacheId {
        /// The exec's arguments, joined by spaces.
        args: String,
        /// The cache mount's destination.
        dest: String,
    },

    /// `Exec::get_mount` named a destination the exec does not mount.
    #[error("use mount `{dest}` of an exec: the exec has no mount there")]
    NoSuchMount {
        /// The requested destination.
        dest: String,
    },

    /// `Exec::get_mount` named a tmpfs or cache mount, which has no output.
    #[error("use mount `{dest}` of an exec: a {kind} mount has no output to build on")]
    MountWithoutOutput {
        /// The requested destination.
        dest: String,
        /// `tmpfs` or `cache`.
        kind: &'static str,
    },

    /// `State::local` was given an empty name.
    #[error("build local source: the name is empty")]
    EmptyLocalName,

    /// A file-action option was applied to an action that has no such option.
    #[error("build file op: option `{option}` does not apply to a {action} action")]
    FileOptionNotApplicable {
        /// The option's method name.
        option: &'static str,
        /// The action it was applied to (`mkfile`, `mkdir`, `copy`, `rm`, `symlink`).
        action: &'static str,
    },

    /// A file-action option was called before any action was added.
    #[error("build file op: option `{option}` was set before any action")]
    FileOptionWithoutAction {
        /// The option's method name.
        option: &'static str,
    },

    /// A file action has an empty path.
    #[error("build file op: {action} action has an empty path")]
    EmptyFilePath {
        /// The action (`mkfile`, `mkdir`, `copy`, `rm`, `symlink`).
        action: &'static str,
    },

    /// `State::local_dir` was given a path that is not UTF-8 on a platform
    /// where paths are not byte strings (on Unix any path works).
    #[error("build local source for `{path}`: the path is not valid UTF-8")]
    NonUtf8LocalPath {
        /// The path, lossily converted.
        path: String,
    },

    /// A local source attr that should hold a JSON array of strings does not.
    #[error("read local source `{name}`: attr `{key}` is not a JSON array of strings")]
    InvalidLocalAttr {
        /// The source's name.
        name: String,
        /// The attr's key.
        key: String,
    },

    /// `cargo_bin!` got a `CARGO_BIN_EXE_<name>` that is not a UTF-8 file path.
    #[error("use cargo binary `{name}`: `{path}` is not a UTF-8 file path")]
    InvalidCargoBin {
        /// The `[[bin]]` name.
        name: String,
        /// The value of `CARGO_BIN_EXE_<name>`.
        path: String,
    },

    /// Bytes given to `State::from_definition` are not a usable definition.
    #[error("read llb definition: {reason}")]
    InvalidDefinition {
        /// What is wrong with it.
        reason: String,
    },

    /// The graph holds a Dockerfile input ([`State::dockerfile`](super::State::dockerfile)) that
    /// the runner has not built: only the runner can build it.
    #[error(
        "marshal {dockerfile}: it is not built yet; the buildtest runner builds Dockerfile inputs \
         of a test's input before it marshals the checks (`State::apply_resolved` substitutes the \
         built result), so a graph holding one cannot be marshalled on its own"
    )]
    UnresolvedDockerfile {
        /// The Dockerfile and its context.
        dockerfile: String,
    },

    /// A Dockerfile's result was empty (`FROM scratch` with nothing added), which no op can read.
    #[error("use the result of {dockerfile}: it is empty (scratch), so there is nothing to test")]
    EmptyDockerfileResult {
        /// The Dockerfile and its context.
        dockerfile: String,
    },

    /// Bytes given to `Definition::decode` are not a valid `pb.Definition`.
    #[error("decode llb definition: {reason}")]
    Decode {
        /// The decoder's message.
        reason: String,
    },
}
