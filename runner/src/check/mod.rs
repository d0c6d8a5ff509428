//! Layer 4 — `check`: command, file and metadata checks, and how each becomes an exec.
//!
//! ```
//! use buildtest::check::{Check, cmd, file};
//!
//! let curl = cmd(["curl", "--version"]).stdout_starts_with("curl ").stderr_empty();
//! let binary = file("/usr/bin/curl").exists().mode(0o755).owner(0, 0);
//! assert_eq!(Check::from(curl).label(), "cmd: curl --version");
//! assert_eq!(Check::from(binary).label(), "file: /usr/bin/curl");
//! ```
//!
//! One check is one exec is one edge is one JUnit testcase. [`cmd`] runs argv directly (never a
//! shell line) with optional [`env`](Cmd::env), [`cwd`](Cmd::cwd), [`user`](Cmd::user) and
//! [`stdin`](Cmd::stdin), and asserts the exit code (0 by default) and stdout/stderr with
//! `equals`, `contains`, `matches`, `starts_with`, `ends_with`, `empty`. [`file`] asserts
//! `exists`, `absent`, `is_dir`, `mode`, `owner`, `link_target` and the content with the same
//! six text assertions. All assertions of a check are evaluated and every failure is reported
//! with expected and actual values.
//!
//! [`metadata`] checks are the exception: they assert the input's image config (`ENV`,
//! `ENTRYPOINT`, `CMD`, `WORKDIR`, `USER`, `EXPOSE`, `VOLUME`, `LABEL`) and the runner evaluates
//! them itself, with no exec (see [`Metadata`] for what config an input carries).
//!
//! # How a check runs: the probe
//!
//! Images under test may have no shell and no libc. Every check therefore runs the project's
//! own static probe (package `buildtest-probe`, built by the runner's build script for
//! linux/amd64, and for linux/arm64 when the host can build it, and embedded in this crate;
//! [`ProbePlatform`] picks the one for the platform a check's input is solved for):
//! [`probe_state`] is a FileOp `mkfile` of the probe
//! on scratch, and [`Check::to_exec`] is an exec whose writable root is the input, with the
//! probe mounted read-only at [`PROBE_MOUNT`], network `none`, argv = [`PROBE_PATH`] + the
//! check's spec ([`Check::probe_args`]) — so the exec's cache key is the check itself. A check
//! that fails makes the exec exit non-zero, and BuildKit never caches a failed exec; a passing
//! check is cached.
//!
//! Probes exist for linux/amd64 and linux/arm64: [`ensure_platform`] and [`Check::to_exec`]
//! return [`CheckError::UnsupportedPlatform`] for other platforms, and
//! [`ProbePlatform::embedded`] returns [`CheckError::ProbeMissing`] (which platform, why, what to
//! do) when this build could not embed the probe a platform needs.
//!
//! Cost: the probe's bytes travel inline in every Definition that uses it (one Solve per check);
//! the probe is a size-optimised static-pie binary of about 1.2 MB.
//!
//! # The probe spec (v1)
//!
//! ```text
//! buildtest-probe v1 cmd [--env K=V]... [--cwd DIR] [--user U[:G]] [--stdin TEXT] --exit-code N
//!                        [--stdout-<a> [VALUE]]... [--stderr-<a> [VALUE]]... -- PROGRAM [ARG]...
//! buildtest-probe v1 file PATH [--exists|--absent|--is-dir|--mode OCTAL|--owner UID:GID
//!                               |--link-target T|--<a> [VALUE]]...
//! ```
//!
//! `<a>` is one of `equals`, `contains`, `matches`, `starts-with`, `ends-with` (each followed by
//! its value) or `empty`. Each value is one argument, verbatim; values cannot contain NUL bytes
//! ([`CheckError::NulByte`]). Assertions keep the order they were added in.
//!
//! # Regex syntax
//!
//! `matches` uses the `regex-lite` crate on both sides (validated here, evaluated in the probe):
//! Rust `regex` syntax, unanchored search, flags like `(?m)`, `(?s)`, `(?i)`, but without
//! Unicode-aware classes: `\w`, `\d`, `\s`, `\b` are ASCII-only and `\p{..}` is rejected
//! ([`CheckError::InvalidRegex`], reported before anything is solved). Output that is not UTF-8
//! is matched after a lossy conversion. (`regex-lite` adds ~61 KB to the static probe; `regex`
//! would add ~295 KB without Unicode tables and ~1.2 MB with them.)
//!
//! # The report block
//!
//! The probe echoes the command's stdout and stderr (first and last 32 KiB of each), then writes
//! its report on stderr, every line prefixed with [`REPORT_MARKER`]:
//!
//! ```text
//! ##buildtest-probe begin v1 cmd "curl" "--version"
//! ##buildtest-probe pass exit_code 0
//! ##buildtest-probe fail stdout.starts_with
//! ##buildtest-probe expected "curl 7"
//! ##buildtest-probe actual "curl 8.5.0 (x86_64-pc-linux-gnu) libcurl/8.5.0"… (812 bytes)
//! ##buildtest-probe summary 1 of 2 assertions failed: stdout.starts_with: expected "curl 7", got "curl 8.5.0 …"… (812 bytes)
//! ##buildtest-probe end fail 1/2
//! ```
//!
//! Values are escaped onto one line (`\n`, `\t`, `\"`, `\xNN` for bytes that are not UTF-8) and
//! long ones truncated with their size. `error <message>` replaces the assertions when the check
//! could not be evaluated. [`CheckReport::parse`] reads the block back; [`ProbeExit`] maps the
//! exit code: 0 pass, 1 assertion mismatch, 2 malformed spec or probe failure, 3 command could
//! not be started.

mod encode;
mod errors;
mod exec;
mod image;
mod local;
mod metadata;
mod model;
mod platforms;
mod probe_report;
mod toolchain;

pub use encode::SPEC_VERSION;
pub use errors::CheckError;
pub use exec::{PROBE_FILE, PROBE_MOUNT, PROBE_PATH, ensure_platform, probe_bytes, probe_state};
pub use image::{
    PROBE_IMAGE_REPOSITORY, ProbeImage, probe_image, probe_image_reference, probe_image_state,
};
pub use local::{PROBE_MTIME, probe_local_dir, probe_local_state};
pub use metadata::{METADATA_LABEL, Metadata, MetadataAssertion, metadata};
pub use model::{Check, Cmd, File, FileAssertion, Stream, TextAssertion, cmd, file};
pub use platforms::{ProbeBinary, ProbePlatform, embedded_probe_platforms};
pub use probe_report::{AssertionReport, CheckReport, ProbeExit, REPORT_MARKER, Verdict};
pub use toolchain::{DEFAULT_TOOLCHAIN_IMAGE, probe_build_state, probe_source};
