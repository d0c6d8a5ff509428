//! Typed errors of the check layer. Messages are lowercase fragments that read after
//! "failed to".

/// Why a check cannot become an exec (reported before anything is solved).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// `cmd([])`: there is no program to run.
    #[error("build check `{label}`: the command has no arguments")]
    EmptyCommand {
        /// The check's label.
        label: String,
    },

    /// A value contains a NUL byte, which no argv can carry.
    #[error("encode check `{label}`: {what} contains a NUL byte")]
    NulByte {
        /// The check's label.
        label: String,
        /// Which value (e.g. `argument 2`, `stdout_equals value`).
        what: String,
    },

    /// An environment variable name that is empty or contains `=`.
    #[error("encode check `{label}`: environment variable name {key:?} is empty or contains `=`")]
    InvalidEnvKey {
        /// The check's label.
        label: String,
        /// The offending name.
        key: String,
    },

    /// A `matches` pattern that does not compile (probe syntax: `regex-lite`).
    #[error("compile regex {pattern:?} of check `{label}`: {reason}")]
    InvalidRegex {
        /// The check's label.
        label: String,
        /// The pattern as written.
        pattern: String,
        /// What the regex parser said.
        reason: String,
    },

    /// `mode()` with bits outside `0o7777`.
    #[error("check the mode of `{label}`: {mode:#o} is not a permission mode (at most 0o7777)")]
    InvalidMode {
        /// The check's label.
        label: String,
        /// The mode given.
        mode: u32,
    },

    /// A file path or working directory that is not absolute.
    #[error("build check `{label}`: {what} {path:?} is not an absolute path")]
    RelativePath {
        /// The check's label.
        label: String,
        /// `path` or `working directory`.
        what: &'static str,
        /// The path given.
        path: String,
    },

    /// The image (or the requested platform) is neither linux/amd64 nor linux/arm64.
    #[error(
        "run checks on platform {platform}: unsupported platform (the check probe exists for linux/amd64 and linux/arm64 only)"
    )]
    UnsupportedPlatform {
        /// The platform, as `os/arch[/variant]`.
        platform: String,
    },

    /// This build of `buildtest` embeds no probe for a platform a check needs (see the runner's
    /// build script), and none was delivered otherwise.
    #[error(
        "run checks on {platform}: this build of buildtest embeds no probe for it ({reason}); it embeds probes for: {embedded}"
    )]
    ProbeMissing {
        /// The platform, as `os/arch`.
        platform: String,
        /// Why the build embedded none, and how to embed one.
        reason: String,
        /// The platforms it embeds probes for (`none` when it embeds none).
        embedded: String,
    },

    /// A check that asserts nothing (`metadata()` with no assertion).
    #[error("build check `{label}`: it has no assertions")]
    NoAssertions {
        /// The check's label.
        label: String,
    },

    /// `exposes(..)` with something that is not `PORT`, `PORT/tcp`, `PORT/udp` or `PORT/sctp`.
    #[error(
        "build check `{label}`: {port:?} is not a port (expected e.g. `8080`, `8080/tcp` or `53/udp`)"
    )]
    InvalidPort {
        /// The check's label.
        label: String,
        /// The port as given.
        port: String,
    },

    /// A metadata check asked for an exec: it is evaluated from the image config, never run.
    #[error(
        "build an exec for check `{label}`: a metadata check runs nothing; the runner evaluates it from the input's image config"
    )]
    NotAnExec {
        /// The check's label.
        label: String,
    },

    /// This build of `buildtest` carries no probe (see the runner's build script).
    #[error("embed the check probe: {reason}")]
    ProbeUnavailable {
        /// Why there is none.
        reason: String,
    },
}
