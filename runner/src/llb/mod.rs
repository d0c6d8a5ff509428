//! Layer 2 — `llb`: the pure, synchronous model of BuildKit's LLB graphs.
//!
//! Everything cargo buildtest sends to a builder is an LLB graph: the input
//! under test, one exec per check, and the passthrough edge tying a check to
//! its input. This module builds those graphs and marshals them into a
//! `pb.Definition` whose bytes — and so whose op digests — are identical to
//! what BuildKit's Go client (`client/llb`, v0.32) produces for the same graph.
//! It performs no I/O and has no async code.
//!
//! # Model
//!
//! - [`State`] is an immutable handle on one output of an op (or scratch).
//!   Cloning it is cheap; every method returns a new state.
//! - Ops, one file each: sources ([`State::image`], [`State::local_dir`],
//!   [`State::local`], [`State::scratch`]), definitions made elsewhere
//!   ([`State::from_definition`]), exec ([`State::run`] → [`Exec`] → [`Exec::root`]),
//!   file ([`State::file`] with [`FileAction`]), [`merge`], [`diff`], and
//!   passthrough ([`State::requires`]).
//! - [`State::marshal`] walks the graph depth-first in input order (each op
//!   once, post-order), adds per-op metadata with the caps the Go client
//!   declares, and appends the terminal op. The result is a [`Definition`]:
//!   [`Definition::to_bytes`] for the wire, [`Definition::digests`], and
//!   [`Definition::decode`] to read a definition back in tests.
//! - Builders never fail; a problem (an invalid image reference, an empty
//!   passthrough id, a relative mount destination, …) is carried in the graph
//!   and returned by `marshal` as an [`LlbError`].
//!
//! The byte-level details that differ from a plain prost encoding (the op
//! body is written after `platform` and `constraints`; empty map values are
//! written) live in `encode.rs`.
//!
//! # Requiring checks: `State::requires`
//!
//! A check is an exec on the input whose only purpose is to succeed or fail.
//! `input.requires(id, [check])` is a passthrough op: BuildKit builds the
//! input and every check, and forwards the input unchanged, so a failed check
//! fails the result and passing checks leave no trace in it.
//!
//! ```
//! use buildtest::llb::{NetMode, Platform, State};
//!
//! let input = State::image("alpine:3.20");
//! let check = input
//!     .run(["/bin/sh", "-c", "test -f /etc/os-release"])
//!     .network(NetMode::None)
//!     .root();
//! let gated = input.requires("os-release", [check]);
//!
//! let def = gated.marshal(&Platform::linux_amd64())?;
//! let ops = def.ops()?;
//! let kinds: Vec<&str> = ops.iter().map(|op| op.kind()).collect();
//! assert_eq!(kinds, ["source", "exec", "passthrough", "terminal"]);
//! assert_eq!(ops[2].caps(), ["passthroughop"]);
//!
//! // No dependencies: the state itself, nothing added.
//! let same = input.requires("nothing", []).marshal(&Platform::linux_amd64())?;
//! assert_eq!(same.to_bytes(), input.marshal(&Platform::linux_amd64())?.to_bytes());
//! # Ok::<(), buildtest::llb::LlbError>(())
//! ```
//!
//! # Local inputs: `local_dir`, `cargo_bin!`, `local_sources`
//!
//! [`State::local_dir`] is a host directory; `buildtest::cargo_bin!("name")`
//! is the one file cargo built for `[[bin]] name`. Both are `local://NAME`
//! sources that the runner's session serves when a solve asks for them; this
//! layer only names them, deterministically, so that the runner needs no
//! side table and the op digest is the same in every run:
//!
//! - NAME is `dir=` + the absolute path, lexically cleaned like Go's
//!   `filepath.Clean`, with every byte other than ASCII letters, digits and
//!   `-._~/` written `%XX`. Different paths never share a NAME; NAME is
//!   printable ASCII (it travels as the `dir-name` gRPC header) and never
//!   contains `:`. A relative path is made absolute against the current
//!   directory when the state is built (the package root under cargo), so
//!   two packages' `tests/data` never share a NAME or a digest.
//! - `local.sharedkeyhint` is `buildtest`, or `buildtest-<16 hex>` derived
//!   from the include / exclude / follow lists, so each filter set of a
//!   directory keeps its own incremental-transfer snapshot in the daemon.
//! - No `local.session` / `local.unique`: the solve's session serves it.
//!
//! [`local_sources`] (also [`State::local_sources`] and
//! [`Definition::local_sources`]) lists a graph's local sources as
//! [`LocalSource`]s — name, host path (`None` for a name not made by
//! `local_dir`), filters — for the runner to check the directories exist and
//! register them with its session before it solves.
//!
//! ```
//! use buildtest::llb::{FileAction, LocalOptions, Platform, State};
//!
//! let site = State::local_dir_with("/srv/site", LocalOptions::new().exclude_patterns(["*.tmp"]));
//! let input = State::image("nginx:1.27").file(FileAction::copy(&site, "/", "/usr/share/nginx/html"));
//! let def = input.marshal(&Platform::linux_amd64())?;
//! let sources = def.local_sources()?;
//! assert_eq!(sources[0].name, "dir=/srv/site");
//! assert_eq!(sources[0].path.as_deref(), Some(std::path::Path::new("/srv/site")));
//! # Ok::<(), buildtest::llb::LlbError>(())
//! ```
//!
//! # Definitions made elsewhere: `from_definition`
//!
//! [`State::from_definition`] takes an encoded `pb.Definition` from any
//! producer (BuildKit's Go client, the `buildkit-llb` crate, a frontend) and
//! makes its terminal op's input a state. Its ops keep their exact bytes, so
//! their digests (and the daemon's cache for them) are unchanged.
//!
//! # Resolved later: image configs and Dockerfiles
//!
//! A test fn builds its graph before the runner contacts a builder, so what only a builder
//! knows is applied afterwards, by a pure rewrite: [`State::image_sources`] and
//! [`State::dockerfile_sources`] list what a graph needs, the runner resolves it once per run
//! into [`ResolvedInputs`], and [`State::apply_resolved`] substitutes each [`State::dockerfile`]
//! node's result and gives every exec that set no config of its own the `Env`, `WorkingDir` and
//! `User` of the image its root comes from (as `docker run` does; Go's `llb.Image` applies only
//! `Env` and `WorkingDir`). Execs whose defaults do not change keep their bytes, so unresolved
//! graphs marshal exactly as Go's client marshals them. [`ImageOptions::apply_config`] and
//! [`State::without_image_config`] opt out.
//!
//! Passthrough needs BuildKit v0.31 or later (cap `passthroughop`); older
//! daemons need another way to depend on a check (for example [`merge`] of
//! the input with a [`diff`] of the check, or a no-op exec mounting the check
//! read-only).

mod definition;
mod diff;
mod dockerfile;
mod encode;
mod error;
mod exec;
mod file;
mod image_config;
pub(crate) mod local;
mod marshal;
mod merge;
mod origin;
mod passthrough;
mod path;
mod reference;
mod resolve;
mod source;
mod state;

pub use diff::diff;
pub use dockerfile::{DEFAULT_DOCKERFILE, DockerfileOptions, DockerfileSource};
pub use error::LlbError;
pub use exec::{CacheSharing, Exec, NetMode};
pub use file::{FileAction, FileActionChain};
pub use image_config::{ImageConfig, normalize_reference};
pub use local::{LocalSource, local_sources};
pub use marshal::{DecodedOp, Definition};
pub use merge::merge;
pub use origin::Origin;
pub use resolve::ResolvedInputs;
pub use source::{ImageOptions, ImageSource, LocalOptions, ResolveMode};
pub use state::{Platform, State};
