//! How a check is attached to its input in the graph that is solved.
//!
//! | strategy | graph per check | needs |
//! |---|---|---|
//! | `passthrough` | `input.requires(id, [check])` | cap `passthroughop` (BuildKit v0.31+) |
//! | `direct` | `check` alone (the check exec already builds on the input) | nothing |
//! | `discard` | a no-op exec on `input` with `check` mounted read-only at [`CHECK_MOUNT`] | a no-op program (see below) |
//! | `mergediff` | `merge([input, diff(check, check)])` | caps `mergeop`, `diffop` (BuildKit v0.10+; in a Docker engine only with the containerd image store — Docker 26 with its default graph-driver store refuses them) |
//! | `auto` | `passthrough` when the builder supports it, else `direct` | — |
//!
//! `direct` gives the same pass/fail and the same exec count as `passthrough` (one Solve per check; the
//! shared input is de-duplicated by digest). `discard` and `mergediff` are the pre-passthrough ways
//! of making an output depend on a check; they are kept for gating and the benchmark.
//!
//! **The `discard` no-op**: [`Strategy::wrap`] runs `true` from the input image's `PATH`, which fails
//! on images without it (scratch, distroless). Callers that carry their own static binary (the check
//! probe) use [`Strategy::wrap_with_noop`] to run that instead.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::caps::Caps;
use crate::llb::{self, Exec, NetMode, State};

/// Where `discard` mounts the check's result (read-only) in its no-op exec.
pub const CHECK_MOUNT: &str = "/.buildtest-check";

/// How checks are attached to their input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// `passthrough` if supported, else `direct`.
    #[default]
    Auto,
    /// The passthrough op.
    Passthrough,
    /// The check exec alone.
    Direct,
    /// A no-op exec mounting the check read-only.
    Discard,
    /// Merge of the input with an empty diff of the check.
    MergeDiff,
}

impl Strategy {
    /// All strategies, in documentation order.
    pub const ALL: [Strategy; 5] = [
        Strategy::Auto,
        Strategy::Passthrough,
        Strategy::Direct,
        Strategy::Discard,
        Strategy::MergeDiff,
    ];

    /// The name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Passthrough => "passthrough",
            Strategy::Direct => "direct",
            Strategy::Discard => "discard",
            Strategy::MergeDiff => "mergediff",
        }
    }

    /// The graph to solve for one check (`check` = the check exec's root, built on `input`).
    ///
    /// `Auto` must be resolved first ([`resolve_strategy`]); unresolved it acts as `Direct`, which
    /// works everywhere.
    pub fn wrap(self, input: &State, id: &str, check: State) -> State {
        self.wrap_with_noop(input, id, check, |input| input.run(["true"]))
    }

    /// Like [`Strategy::wrap`], with the `discard` no-op exec built by `noop` (given the input).
    /// The check is mounted read-only at [`CHECK_MOUNT`] and the exec runs without network.
    pub fn wrap_with_noop(
        self,
        input: &State,
        id: &str,
        check: State,
        noop: impl FnOnce(&State) -> Exec,
    ) -> State {
        match self {
            Strategy::Passthrough => input.requires(id, [check]),
            Strategy::Auto | Strategy::Direct => check,
            Strategy::Discard => noop(input)
                .network(NetMode::None)
                .mount_readonly(CHECK_MOUNT, check)
                .root(),
            Strategy::MergeDiff => llb::merge([input.clone(), llb::diff(&check, &check)]),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name that is not one of ours.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("parse strategy `{0}`: expected one of auto, passthrough, direct, discard, mergediff")]
pub struct ParseStrategyError(pub String);

impl FromStr for Strategy {
    type Err = ParseStrategyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Strategy::Auto),
            "passthrough" => Ok(Strategy::Passthrough),
            "direct" => Ok(Strategy::Direct),
            "discard" => Ok(Strategy::Discard),
            "mergediff" | "merge-diff" | "merge+diff" => Ok(Strategy::MergeDiff),
            _ => Err(ParseStrategyError(s.to_owned())),
        }
    }
}

/// The requested strategy cannot run on this builder.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StrategyError {
    /// `passthrough` was forced but the builder lacks `passthroughop`.
    #[error(
        "use strategy `passthrough`: the builder does not support the passthrough op (cap `passthroughop`, \
         BuildKit v0.31+){}; use `--strategy auto` or `direct`",
        refusal(.0)
    )]
    NoPassthrough(Option<String>),
    /// `mergediff` was requested but the builder lacks `mergeop`/`diffop`.
    #[error(
        "use strategy `mergediff`: the builder does not support merge/diff ops (caps `mergeop`/`diffop` \
         need BuildKit v0.10+ — Docker 20.10 embeds v0.8 — and, in a Docker engine, the containerd image \
         store){}; use `--strategy auto`, `direct` or `discard`",
        refusal(.0)
    )]
    NoMergeDiff(Option<String>),
}

fn refusal(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(" — it answered: {m}"),
        None => String::new(),
    }
}

/// The strategy to use: `auto` becomes `passthrough` or `direct`; a forced strategy the builder
/// cannot run is an error.
pub fn resolve_strategy(requested: Strategy, caps: &Caps) -> Result<Strategy, StrategyError> {
    match requested {
        Strategy::Auto if caps.passthrough => Ok(Strategy::Passthrough),
        Strategy::Auto => Ok(Strategy::Direct),
        Strategy::Passthrough if !caps.passthrough => Err(StrategyError::NoPassthrough(
            caps.passthrough_refusal.clone(),
        )),
        Strategy::MergeDiff if !caps.merge_diff => {
            Err(StrategyError::NoMergeDiff(caps.merge_diff_refusal.clone()))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::llb::Platform;

    fn caps(passthrough: bool, merge_diff: bool) -> Caps {
        Caps {
            passthrough,
            passthrough_refusal: (!passthrough)
                .then(|| "unknown API capability passthroughop".to_owned()),
            merge_diff,
            merge_diff_refusal: None,
            version: None,
            engine: None,
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(s.to_string().parse::<Strategy>().unwrap(), s);
        }
        assert_eq!(
            "Merge-Diff".parse::<Strategy>().unwrap(),
            Strategy::MergeDiff
        );
        assert!(
            "fast"
                .parse::<Strategy>()
                .unwrap_err()
                .to_string()
                .contains("expected one of auto")
        );
    }

    #[test]
    fn auto_and_forced_strategies() {
        assert_eq!(
            resolve_strategy(Strategy::Auto, &caps(true, true)),
            Ok(Strategy::Passthrough)
        );
        assert_eq!(
            resolve_strategy(Strategy::Auto, &caps(false, false)),
            Ok(Strategy::Direct)
        );
        let err = resolve_strategy(Strategy::Passthrough, &caps(false, true))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not support the passthrough op")
                && err.contains("unknown API capability"),
            "{err}"
        );
        let err = resolve_strategy(Strategy::MergeDiff, &caps(false, false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BuildKit v0.10+"), "{err}");
        assert_eq!(
            resolve_strategy(Strategy::Discard, &caps(false, false)),
            Ok(Strategy::Discard)
        );
    }

    #[test]
    fn wrapped_graphs_have_the_expected_shape() {
        let input = State::image("busybox:latest");
        let check = input
            .run(["sh", "-c", "true"])
            .network(NetMode::None)
            .root();
        let kinds = |s: Strategy| -> Vec<&'static str> {
            let def = s
                .wrap(&input, "c1", check.clone())
                .marshal(&Platform::linux_amd64())
                .unwrap();
            def.ops().unwrap().iter().map(|o| o.kind()).collect()
        };
        assert_eq!(
            kinds(Strategy::Passthrough),
            ["source", "exec", "passthrough", "terminal"]
        );
        assert_eq!(kinds(Strategy::Direct), ["source", "exec", "terminal"]);
        assert_eq!(
            kinds(Strategy::Discard)
                .iter()
                .filter(|k| **k == "exec")
                .count(),
            2
        );
        assert!(kinds(Strategy::MergeDiff).ends_with(&["diff", "merge", "terminal"]));
    }
}
