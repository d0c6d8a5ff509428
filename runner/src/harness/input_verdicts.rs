//! Input verdicts: one cache record that answers every check of an input at once.
//!
//! BuildKit loads an imported check result in ~45 ms and computes one for export in as long
//! (Docker 26.1.5, BENCHMARKS.md), so the shared cache ([`crate::harness::cache`]) carries, for
//! each input whose every check passed, that input's verdict ([`Backend::input_verdict`])
//! instead of the checks' results; a fresh runner looks each input's verdict up first
//! ([`Group`]) and answers all its checks from it.

use crate::check;
use crate::harness::backend::{Backend, Prepared, noop_probe_args};
use crate::harness::errors::PrepareError;
use crate::proto::pb;

/// A check the run solved, for the export: its graph, its input (the group it belongs to) and
/// whether it passed.
#[derive(Debug, Clone)]
pub(crate) struct Solved {
    /// The digest of the check's input; the checks of one input form a group.
    pub(crate) group: Option<String>,
    /// The check's exec vertex.
    pub(crate) vertex: Option<String>,
    /// The check's input.
    pub(crate) input: Option<crate::llb::State>,
    /// The graph that was solved.
    pub(crate) definition: pb::Definition,
    /// It passed.
    pub(crate) passed: bool,
    /// It was answered by its input's verdict from an import (not solved in this run).
    pub(crate) answered: bool,
}

/// The inputs of `solved` whose every check passed (each one's checks), and the passing checks
/// outside them (the passing checks of an input with a failure, and checks without an input or
/// a vertex).
pub(crate) fn split_groups(solved: Vec<Solved>) -> (Vec<Vec<Solved>>, Vec<pb::Definition>) {
    let mut groups: std::collections::BTreeMap<String, Vec<Solved>> =
        std::collections::BTreeMap::new();
    let mut loose = Vec::new();
    for s in solved {
        match (&s.group, &s.vertex, &s.input) {
            (Some(group), Some(_), Some(_)) => groups.entry(group.clone()).or_default().push(s),
            _ if s.passed => loose.push(s.definition),
            _ => {}
        }
    }
    let mut whole = Vec::new();
    for (_, checks) in groups {
        if checks.iter().all(|s| s.passed) {
            whole.push(checks);
        } else {
            loose.extend(
                checks
                    .into_iter()
                    .filter(|s| s.passed)
                    .map(|s| s.definition),
            );
        }
    }
    (whole, loose)
}

/// The checks of one input on one node, to be answered from the imported cache at once by
/// their verdict ([`Backend::input_verdict`]).
pub(crate) struct Group {
    /// The node's backend.
    pub(crate) backend: std::sync::Arc<Backend>,
    /// The node (index in the run's nodes).
    pub(crate) node: usize,
    /// The checks' exec vertices.
    pub(crate) vertices: Vec<String>,
    /// The verdict's graph and vertex.
    pub(crate) verdict: crate::harness::backend::Prepared,
}

impl Group {
    /// Groups `checks` (backend, node, input digest, check vertex, input) by node and input and
    /// builds each group's verdict ([`Backend::input_verdict`]) on its node's backend. A group
    /// whose verdict cannot be built is left out (its checks are solved one by one).
    pub(crate) fn collect(checks: Vec<GroupMember>) -> Vec<Group> {
        type Key = (usize, String);
        type Members = (std::sync::Arc<Backend>, crate::llb::State, Vec<String>);
        let mut by: std::collections::BTreeMap<Key, Members> = std::collections::BTreeMap::new();
        for (backend, node, digest, vertex, input) in checks {
            by.entry((node, digest))
                .or_insert_with(|| (backend, input, Vec::new()))
                .2
                .push(vertex);
        }
        by.into_iter()
            .filter_map(|((node, _), (backend, input, vertices))| {
                let verdict = backend.input_verdict(&input, &vertices).ok()?;
                verdict.vertex.as_ref()?;
                Some(Group {
                    node,
                    vertices,
                    verdict,
                    backend,
                })
            })
            .collect()
    }
}

/// A check for [`Group::collect`]: its node's backend, the node, its input's digest, its exec
/// vertex and its input.
pub(crate) type GroupMember = (
    std::sync::Arc<Backend>,
    usize,
    String,
    String,
    crate::llb::State,
);

/// An input's verdict's parts from its checks' records: the input and the checks' vertices.
pub(crate) fn group_verdict_parts(group: &[Solved]) -> (crate::llb::State, Vec<String>) {
    let input = group
        .iter()
        .find_map(|s| s.input.clone())
        .unwrap_or_else(crate::llb::State::scratch);
    let vertices = group.iter().filter_map(|s| s.vertex.clone()).collect();
    (input, vertices)
}

impl Backend {
    /// One vertex that depends on every graph in `graphs` (solved graphs: input verdicts,
    /// checks) and that BuildKit can only produce after all of them were: the root of the cache
    /// export ([`crate::harness::cache`]).
    ///
    /// It is an exec of the probe's no-op (a check that `/` exists) on a tiny constant state
    /// mounted as a read-only root, with the graphs as inputs it does not mount, and whose
    /// output is a read-only mount of that same tiny state: BuildKit hands back the mounted
    /// snapshot itself, so its result is the one shared snapshot every verdict gives back. The
    /// graphs are ordered by digest.
    pub(crate) fn export_root(&self, checks: &[&pb::Definition]) -> Result<Prepared, PrepareError> {
        let marshal = |source| PrepareError::Marshal {
            what: "the graphs under the cache export's root",
            source,
        };
        let mut states = checks
            .iter()
            .map(|d| {
                let key = d.def.last().cloned().unwrap_or_default();
                crate::llb::State::from_pb_definition(d).map(|s| (key, s))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(marshal)?;
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states.dedup_by(|a, b| a.0 == b.0);
        let probe = self.run_probe()?;
        let mark = verdict_mark();
        let mut exec = mark
            .run(noop_probe_args()?)
            .readonly_root()
            .user("")
            .network(crate::llb::NetMode::None)
            .mount_readonly(check::PROBE_MOUNT, probe);
        for (_, state) in &states {
            exec = exec.depend_on(state);
        }
        let root = exec
            .mount_readonly_output(VERDICT_MOUNT, mark)
            .custom_name(format!(
                "buildtest: the cache export's root over {} graphs",
                states.len()
            ))
            .get_mount(VERDICT_MOUNT);
        self.prepared_of(&root, "the cache export's root")
    }

    /// `state` marshalled for this builder, with the vertex it ends in.
    fn prepared_of(
        &self,
        state: &crate::llb::State,
        what: &'static str,
    ) -> Result<Prepared, PrepareError> {
        let marshalled = state
            .marshal(self.platform())
            .map_err(|source| PrepareError::Marshal { what, source })?;
        let vertex = marshalled.head().map(str::to_owned);
        Ok(Prepared {
            definition: marshalled.into_proto(),
            vertex,
            input: None,
        })
    }

    /// The cache **verdict** of an input's checks: a vertex whose cache record stands for
    /// "these checks (`checks`, their exec vertices' digests) all passed on this input". The
    /// run exports it only for an input whose every check passed; a fresh runner that finds it
    /// in an import answers all those checks from it without loading each one (BuildKit takes
    /// ~45 ms per loaded result on Docker 26.1.5, see BENCHMARKS.md).
    ///
    /// Its cache key covers the input (mounted writable and thrown away) and the checks (the
    /// digest of their sorted vertex digests, which cover each check's command, assertions,
    /// probe and input graph, is in its environment) — not the checks' own records, so an
    /// export walks a few records per input instead of one per check. Where the input's own key
    /// does not match a record (a local directory, whose key is per session; a miss), BuildKit
    /// also keys it on a checksum of the input's files. It can only be built by a solve that
    /// carries the session secret [`VERDICT_SECRET`] (a required secret mount; a secret's bytes
    /// are not part of the key): the cache export serves it, at the end of the build the checks
    /// were solved in (so the verdict sees the same images and directory contents they did), and
    /// nothing else does, so looking a verdict up never creates one — where it is not in the
    /// cache, the lookup fails. Its output is a read-only mount of a tiny constant state, which
    /// BuildKit hands back as is: every verdict's result is one shared snapshot with one small
    /// blob.
    pub(crate) fn input_verdict(
        &self,
        input: &crate::llb::State,
        checks: &[String],
    ) -> Result<Prepared, PrepareError> {
        use sha2::Digest as _;
        let mut checks = checks.to_vec();
        checks.sort();
        checks.dedup();
        let mut hash = sha2::Sha256::new();
        for check in &checks {
            hash.update(check.as_bytes());
            hash.update(b"\n");
        }
        let identity = format!("sha256:{:x}", hash.finalize());
        let probe = self.run_probe()?;
        let mark = verdict_mark();
        let verdict = mark
            .run(noop_probe_args()?)
            .readonly_root()
            .user("")
            .network(crate::llb::NetMode::None)
            .env("BUILDTEST_VERDICT_CHECKS", identity)
            .mount_readonly(check::PROBE_MOUNT, probe)
            .mount_discarded(VERDICT_INPUT, input.clone())
            .secret(VERDICT_SECRET_PATH, VERDICT_SECRET)
            .mount_readonly_output(VERDICT_MOUNT, mark)
            .custom_name(format!(
                "buildtest: verdict of {} checks on their input",
                checks.len()
            ))
            .get_mount(VERDICT_MOUNT);
        self.prepared_of(&verdict, "the verdict of an input's checks")
    }
}

/// The file of the tiny state a verdict ([`Backend::export_root`]) mounts and gives back.
const VERDICT_FILE: &str = "/buildtest-verdict";
/// Where a verdict mounts it as its output.
const VERDICT_MOUNT: &str = "/.buildtest-verdict";
/// Where an input's verdict mounts the input.
const VERDICT_INPUT: &str = "/.buildtest-input";
/// The session secret that lets an input's verdict be built: served only to the cache export.
pub(crate) const VERDICT_SECRET: &str = "buildtest-cache-verdict";
/// Where an input's verdict mounts that secret.
const VERDICT_SECRET_PATH: &str = "/.buildtest-permission";

/// The tiny constant state a verdict runs on and gives back.
fn verdict_mark() -> crate::llb::State {
    crate::llb::State::scratch().file(crate::llb::FileAction::mkfile(
        VERDICT_FILE,
        0o644,
        "every check this verdict stands for passed\n",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(tag: &str) -> pb::Definition {
        pb::Definition {
            def: vec![tag.as_bytes().to_vec().into()],
            ..pb::Definition::default()
        }
    }

    fn solved(group: Option<&str>, tag: &str, passed: bool) -> Solved {
        Solved {
            group: group.map(str::to_owned),
            vertex: Some(tag.to_owned()),
            input: Some(crate::llb::State::scratch()),
            definition: def(tag),
            passed,
            answered: false,
        }
    }

    #[test]
    fn only_inputs_whose_every_check_passed_become_verdicts() {
        let mut no_vertex = solved(Some("c"), "c1", true);
        no_vertex.vertex = None;
        let (whole, loose) = split_groups(vec![
            solved(Some("a"), "a1", true),
            solved(Some("b"), "b1", true),
            solved(Some("a"), "a2", true),
            solved(Some("b"), "b2", false),
            solved(Some("b"), "b3", true),
            solved(None, "n1", true),
            solved(None, "n2", false),
            no_vertex,
        ]);
        let whole: Vec<Vec<String>> = whole.iter().map(|g| group_verdict_parts(g).1).collect();
        assert_eq!(whole, vec![vec!["a1".to_owned(), "a2".to_owned()]]);
        assert_eq!(
            loose,
            vec![def("n1"), def("c1"), def("b1"), def("b3")],
            "the passing checks of an input with a failure, and of no known input, one by one; never a failing one"
        );
    }
}
