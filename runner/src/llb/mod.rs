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
//! - Ops, one file each: sources ([`State::image`], [`State::local`],
//!   [`State::scratch`]), exec ([`State::run`] → [`Exec`] → [`Exec::root`]),
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
//! Passthrough needs BuildKit v0.31 or later (cap `passthroughop`); older
//! daemons need another way to depend on a check (for example [`merge`] of
//! the input with a [`diff`] of the check, or a no-op exec mounting the check
//! read-only).

mod diff;
mod encode;
mod error;
mod exec;
mod file;
mod image_config;
mod marshal;
mod merge;
mod passthrough;
mod path;
mod reference;
mod source;
mod state;

pub use diff::diff;
pub use error::LlbError;
pub use exec::{CacheSharing, Exec, NetMode};
pub use file::{FileAction, FileActionChain};
pub use image_config::{ImageConfig, normalize_reference};
pub use marshal::{DecodedOp, Definition};
pub use merge::merge;
pub use source::{ImageOptions, LocalOptions, ResolveMode};
pub use state::{Platform, State};
