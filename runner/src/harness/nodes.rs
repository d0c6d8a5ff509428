//! Several builders in one run (`BUILDTEST_NODES`): connecting every node, placing each input on
//! one of them, and moving the unfinished checks of a node that was lost.
//!
//! Placement is highest-random-weight (rendezvous) hashing: the score of node `n` for an input is
//! the first 8 bytes of `sha256(n's name, 0x00, input digest)`, and the input goes to the node
//! with the highest score. Every check of one input therefore runs on the same node (the input is
//! built once there and its passing checks are cached where the next run looks them up), the same
//! input lands on the same node on the next run, and adding an `N+1`th node moves only the inputs
//! whose new highest score is the new node's: about `1/(N+1)` of them. Nodes are weighed by
//! inputs, not by checks: an input with many checks weighs as much as one with a single check, so
//! the load per node is balanced in inputs (within the binomial spread of hashing) and in checks
//! only as far as inputs are alike; BENCHMARKS.md measures both.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::client::one_line_chain;
use crate::harness::Test;
use crate::harness::backend::{Backend, Prepared};
use crate::harness::errors::BackendError;
use crate::llb::{Platform, State};
use crate::protocol::SuiteSettings;
use crate::protocol::settings::BuilderChoice;
use crate::report::{CheckRecord, ErrorKind, Outcome};

/// How long a liveness question to a node may take before it counts as lost.
const ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The score of `node` for the input with digest `key` (higher wins).
pub fn score(node: &str, key: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(node.as_bytes());
    hash.update([0u8]);
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The index in `nodes` of the node that input `key` is placed on among those `usable` says
/// yes to (`None` when none is usable). Ties go to the earlier node.
pub fn place(key: &str, nodes: &[String], usable: impl Fn(usize) -> bool) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    for (i, node) in nodes.iter().enumerate() {
        if !usable(i) {
            continue;
        }
        let s = score(node, key);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, i));
        }
    }
    best.map(|(_, i)| i)
}

/// The placement key of an input: the digest of its marshalled graph's head (its definition),
/// or, for an input that does not marshal (its checks fail at preparation anyway), its debug text.
pub(crate) fn input_key(input: &State) -> String {
    match input.marshal(&Platform::linux_amd64()) {
        Ok(def) => def.head().map(str::to_owned).unwrap_or_default(),
        Err(err) => format!("unmarshallable: {err}"),
    }
}

/// One connected node.
pub(crate) struct Node {
    /// Its name in records, JUnit and the summary (the setting's entry).
    pub(crate) name: String,
    pub(crate) backend: Arc<Backend>,
    lost: AtomicBool,
}

/// The nodes of a run that answered at the start.
pub(crate) struct Nodes {
    pub(crate) nodes: Vec<Node>,
    names: Vec<String>,
}

impl Nodes {
    /// One node: the run's single builder.
    pub(crate) fn single(backend: Arc<Backend>) -> Nodes {
        let name = backend.builder_name();
        Nodes {
            names: vec![name.clone()],
            nodes: vec![Node {
                name,
                backend,
                lost: AtomicBool::new(false),
            }],
        }
    }

    /// Connects to every node of `settings.nodes` (each with its own strategy and probe
    /// delivery), printing one header line per node; a node that does not answer is reported
    /// and left out. An error only when no node answered.
    pub(crate) async fn connect(settings: &SuiteSettings) -> Result<Nodes, BackendError> {
        let mut nodes = Vec::new();
        let mut last_err = None;
        let choices = expand(&node_choices(settings));
        let total = choices.len();
        // Every node is connected and probed at once (a probe is a few solves: sequentially,
        // each further node added 35-70 ms to a run); the header keeps the nodes' order.
        let shared = Arc::new(settings.clone());
        let mut set = tokio::task::JoinSet::new();
        for (i, choice) in choices.iter().cloned().enumerate() {
            let settings = Arc::clone(&shared);
            set.spawn(async move { (i, Backend::connect_node(&settings, &choice).await) });
        }
        let mut answers: Vec<Option<Result<Backend, BackendError>>> =
            (0..total).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, answer)) = joined {
                answers[i] = Some(answer);
            }
        }
        for (choice, answer) in choices.iter().zip(answers) {
            let name = match choice {
                BuilderChoice::Addr(a) | BuilderChoice::Named(a) => a.clone(),
            };
            let Some(answer) = answer else {
                eprintln!(
                    "buildtest: node {name}: left out: its connection task ended without an answer"
                );
                continue;
            };
            match answer {
                Ok(backend) => {
                    eprintln!("buildtest: node {name}: {}", backend.describe());
                    nodes.push(Node {
                        name,
                        backend: Arc::new(backend),
                        lost: AtomicBool::new(false),
                    });
                }
                Err(err) => {
                    eprintln!(
                        "buildtest: node {name}: left out: failed to {}",
                        one_line_chain(&err)
                    );
                    last_err = Some(err);
                }
            }
        }
        if nodes.is_empty() {
            return Err(last_err.unwrap_or(BackendError::NoNodes));
        }
        eprintln!(
            "buildtest: {} of {total} nodes answered; each input is placed on one of them by \
             rendezvous hashing of its digest",
            nodes.len()
        );
        let names = nodes.iter().map(|n| n.name.clone()).collect();
        Ok(Nodes { nodes, names })
    }

    /// The first node (what the run's single-builder steps use: export targets).
    pub(crate) fn primary(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node input `key` is placed on, among the nodes not lost (`None`: every node is lost).
    pub(crate) fn place(&self, key: &str) -> Option<usize> {
        place(key, &self.names, |i| {
            !self.nodes[i].lost.load(Ordering::SeqCst)
        })
    }

    /// Whether node `i` was marked lost (no question asked).
    pub(crate) fn is_lost(&self, i: usize) -> bool {
        self.nodes
            .get(i)
            .is_some_and(|n| n.lost.load(Ordering::SeqCst))
    }

    /// Whether node `i` still answers; a node that does not is marked lost for good (its
    /// unfinished checks move, nothing is placed on it again). Returns `false` when lost.
    pub(crate) async fn still_alive(&self, i: usize) -> bool {
        let node = &self.nodes[i];
        if node.lost.load(Ordering::SeqCst) {
            return false;
        }
        let answered = matches!(
            tokio::time::timeout(ALIVE_TIMEOUT, node.backend.client().list_workers()).await,
            Ok(Ok(_))
        );
        if !answered && !node.lost.swap(true, Ordering::SeqCst) {
            eprintln!(
                "buildtest: node {} was lost mid-run: its unfinished checks move to the other nodes",
                node.name
            );
        }
        answered
    }
}

/// `choices` with every buildx builder that has several nodes replaced by its nodes
/// (`NAME/NODE` each, in the store's order).
pub fn expand(choices: &[BuilderChoice]) -> Vec<BuilderChoice> {
    let env = crate::client::Env::from_process();
    let mut out = Vec::new();
    for choice in choices {
        match choice {
            BuilderChoice::Named(name) => match crate::client::buildx::node_names(&env, name) {
                Ok(nodes) if nodes.len() > 1 => out.extend(
                    nodes
                        .into_iter()
                        .map(|node| BuilderChoice::Named(format!("{name}/{node}"))),
                ),
                _ => out.push(choice.clone()),
            },
            BuilderChoice::Addr(_) => out.push(choice.clone()),
        }
    }
    out
}

/// The nodes a run uses (empty: one builder): `BUILDTEST_NODES`, or the nodes of a buildx
/// builder with several nodes named as the run's one builder.
pub fn node_choices(settings: &SuiteSettings) -> Vec<BuilderChoice> {
    if !settings.nodes.is_empty() {
        return settings.nodes.clone();
    }
    match &settings.builder {
        Some(named @ BuilderChoice::Named(_)) => {
            let nodes = expand(std::slice::from_ref(named));
            if nodes.len() > 1 { nodes } else { Vec::new() }
        }
        _ => Vec::new(),
    }
}

/// What moving a check to another node needs.
pub(crate) struct Again {
    /// Its test (as the run built it).
    pub(crate) test: Arc<Test>,
    /// The test's name.
    pub(crate) name: String,
    /// The check's index in the test (0-based).
    pub(crate) index: usize,
    /// The input's placement key ([`input_key`]).
    pub(crate) key: String,
}

/// When `record` is a builder error and its node `node` no longer answers: the check again on
/// the node its input is placed on among those left (by `run`, with the check prepared for that
/// node, or `None` for a metadata check), its record saying so in `moved`; repeated while nodes
/// are lost. With no node left, the builder error says that every node was lost.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn move_if_lost<F, Fut>(
    nodes: &Nodes,
    mut node: usize,
    again: &Again,
    base: CheckRecord,
    mut record: CheckRecord,
    no_cache: bool,
    session_of: &impl Fn(usize) -> Result<Option<String>, String>,
    run: F,
) -> CheckRecord
where
    F: Fn(Arc<Backend>, usize, Option<Prepared>, CheckRecord, Option<String>) -> Fut,
    Fut: Future<Output = CheckRecord>,
{
    loop {
        if record.outcome != Outcome::Error || record.error_kind != Some(ErrorKind::Builder) {
            return record;
        }
        if nodes.still_alive(node).await {
            return record;
        }
        let lost = nodes.nodes[node].name.clone();
        let Some(next) = nodes.place(&again.key) else {
            let why = format!(
                "node {lost} was lost mid-run and no other node of the run is left to re-run the check on"
            );
            record.message = Some(match record.message.take() {
                Some(msg) => format!("{why}\n{msg}"),
                None => why,
            });
            return record;
        };
        let target = &nodes.nodes[next];
        let mut fresh = base.clone();
        fresh.builder = Some(target.name.clone());
        fresh.strategy = Some(target.backend.strategy_name());
        fresh.moved = Some(format!(
            "re-run on node {} because node {lost} was lost mid-run",
            target.name
        ));
        let Some(check) = again.test.checks.get(again.index) else {
            return record;
        };
        let prepared = if check.is_metadata() {
            None
        } else {
            match target
                .backend
                .prepare(&again.test, &again.name, again.index, no_cache, check)
            {
                Ok(prepared) => Some(prepared),
                Err(err) => {
                    fresh.error_kind = Some(ErrorKind::Setup);
                    fresh.message = Some(format!("failed to {}", one_line_chain(&err)));
                    return fresh;
                }
            }
        };
        // The node's own session error where its session did not open.
        let session = match session_of(next) {
            Ok(session) => session,
            Err(msg) => {
                fresh.error_kind = Some(ErrorKind::Builder);
                fresh.message = Some(msg);
                return fresh;
            }
        };
        record = run(Arc::clone(&target.backend), next, prepared, fresh, session).await;
        node = next;
    }
}

/// What one node did in a run: its checks (and how many of them moved there from a lost node)
/// and its wall time, from its first check's start to its last check's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    /// The node (the records' `builder`).
    pub node: String,
    /// Checks it ran.
    pub checks: usize,
    /// Of which moved there from a lost node.
    pub moved: usize,
    /// Wall time in milliseconds (`None`: no check of it was solved).
    pub wall_ms: Option<u64>,
}

impl NodeLoad {
    /// `N checks (M moved here from a lost node), wall T s`.
    pub fn describe(&self) -> String {
        let wall = self.wall_ms.map_or_else(
            || "no solve".to_owned(),
            |ms| format!("{:.1} s", ms as f64 / 1000.0),
        );
        let moved = if self.moved > 0 {
            format!(" ({} moved here from a lost node)", self.moved)
        } else {
            String::new()
        };
        format!("{} checks{moved}, wall {wall}", self.checks)
    }
}

/// The load of every node the records name (exports left out), by node name; empty unless they
/// name two nodes or more.
pub fn loads<'a>(records: impl IntoIterator<Item = &'a CheckRecord>) -> Vec<NodeLoad> {
    let mut by: BTreeMap<&str, (usize, usize, u64, u64)> = BTreeMap::new();
    for r in records.into_iter().filter(|r| r.export.is_none()) {
        let Some(b) = r.builder.as_deref() else {
            continue;
        };
        let e = by.entry(b).or_insert((0, 0, u64::MAX, 0));
        e.0 += 1;
        if r.moved.is_some() {
            e.1 += 1;
        }
        if let Some(start) = r.started_at_ms {
            e.2 = e.2.min(start);
            e.3 = e.3.max(start.saturating_add(r.duration_ms));
        }
    }
    if by.len() < 2 {
        return Vec::new();
    }
    by.into_iter()
        .map(|(node, (checks, moved, first, last))| NodeLoad {
            node: node.to_owned(),
            checks,
            moved,
            wall_ms: (last >= first).then(|| last - first),
        })
        .collect()
}

/// One line per node for the suite's summary, when the records name more than one node.
pub(crate) fn per_node(records: &[CheckRecord]) -> Option<String> {
    let lines: Vec<String> = loads(records)
        .iter()
        .map(|l| format!("buildtest: node {}: {}", l.node, l.describe()))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node{i}")).collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("sha256:{i:064x}")).collect()
    }

    #[test]
    fn placement_is_stable_and_ignores_node_order() {
        let nodes = names(3);
        let mut reversed = nodes.clone();
        reversed.reverse();
        for key in keys(200) {
            let a = place(&key, &nodes, |_| true).unwrap();
            let b = place(&key, &reversed, |_| true).unwrap();
            assert_eq!(nodes[a], reversed[b]);
            assert_eq!(place(&key, &nodes, |_| true), Some(a));
        }
    }

    #[test]
    fn adding_a_third_node_moves_about_a_third_and_only_to_it() {
        let two = names(2);
        let three = names(3);
        let all = keys(10_000);
        let mut moved = 0;
        for key in &all {
            let before = place(key, &two, |_| true).unwrap();
            let after = place(key, &three, |_| true).unwrap();
            if before != after {
                assert_eq!(after, 2, "an input moves only to the new node");
                moved += 1;
            }
        }
        let fraction = f64::from(moved) / all.len() as f64;
        assert!((0.30..0.37).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn inputs_are_balanced_and_a_lost_node_spreads_its_share() {
        let nodes = names(4);
        let all = keys(8_000);
        let mut per = [0usize; 4];
        for key in &all {
            per[place(key, &nodes, |_| true).unwrap()] += 1;
        }
        for n in per {
            assert!((1_850..2_150).contains(&n), "{per:?}");
        }
        // Node 1 lost: only its inputs move, and they spread over the other three.
        let mut spread = [0usize; 4];
        for key in &all {
            let before = place(key, &nodes, |_| true).unwrap();
            let after = place(key, &nodes, |i| i != 1).unwrap();
            if before == 1 {
                spread[after] += 1;
            } else {
                assert_eq!(before, after);
            }
        }
        assert_eq!(spread[1], 0);
        assert!(
            spread.iter().filter(|n| **n > 500).count() == 3,
            "{spread:?}"
        );
        assert_eq!(place("k", &nodes, |_| false), None);
    }
}
