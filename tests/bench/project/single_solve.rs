//! The single-solve lower bound (copied into the generated bench project by tests/bench/bench.py).
//!
//! `single_solve N`: every check of suite N becomes the same probe exec the runner would solve,
//! all of them joined under ONE root, solved with ONE `Control.Solve` on the builder chosen like the
//! runner chooses it (`BUILDKIT_HOST`, `DOCKER_HOST`, …). Joining: `merge([input, diff(c, c)…])`
//! where the builder has merge/diff, else no-op `true` execs mounting up to 64 checks read-only each
//! (a tree). Prints one JSON line: solve seconds, vertex counts, the Definition's size.
//!
//! `single_solve --status N`: like `N`, but instead of one graph, one solve per check (like the
//! runner's `direct` strategy), concurrently, and reports from the Status streams how many distinct
//! executions of each non-check vertex were seen (proof that the shared input ran once).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use buildtest::client::{Client, ResolveOptions, SolveOptions, resolve};
use buildtest::llb::{self, Definition, NetMode, Platform, State};
use buildtest::proto::pb;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The Definition to send, without `source` like the runner sends it (prost would drop the empty
/// `locations` values, and BuildKit v0.8.3/v0.13.2 crash on a nil `*pb.Locations` when a vertex fails).
fn wire(def: Definition) -> pb::Definition {
    let mut proto = def.into_proto();
    proto.source = None;
    proto
}

/// The same exec the runner solves for this check (the probe mounted read-only, network none).
fn check_exec(input: &State, check: &buildtest::check::Check) -> Result<State, Error> {
    let probe = buildtest::check::probe_state();
    Ok(check.to_exec(input, &probe)?)
}

fn join_discard(input: &State, mut leaves: Vec<State>) -> State {
    const FAN_IN: usize = 64;
    loop {
        let mut next = Vec::new();
        for group in leaves.chunks(FAN_IN) {
            let mut exec = input.run(["true"]).network(NetMode::None);
            for (i, leaf) in group.iter().enumerate() {
                exec = exec.mount_readonly(format!("/.bench/{i}"), leaf.clone());
            }
            next.push(exec.root());
        }
        if next.len() == 1 {
            return next.remove(0);
        }
        leaves = next;
    }
}

async fn one_graph(client: &Client, n: usize, join: &str) -> Result<serde_json::Value, Error> {
    let input = bench_suite::input();
    let mut leaves = Vec::with_capacity(n);
    for (_, check) in bench_suite::checks(n) {
        leaves.push(check_exec(&input, &check)?);
    }
    let caps = client.caps().await?;
    let join = match join {
        "auto" if caps.merge_diff => "mergediff",
        "auto" => "discard",
        other => other,
    };
    let root = if join == "mergediff" {
        llb::merge(std::iter::once(input.clone()).chain(leaves.iter().map(|c| llb::diff(c, c))))
    } else {
        join_discard(&input, leaves)
    };
    let def = root.marshal(&Platform::linux_amd64())?;
    let def_bytes = def.to_bytes().len();
    let t0 = Instant::now();
    let report = client.solve_and_wait(wire(def), SolveOptions::default()).await;
    let secs = t0.elapsed().as_secs_f64();
    report.result?;
    let cached = report.vertices.iter().filter(|v| v.cached).count();
    Ok(serde_json::json!({
        "mode": "one-graph", "join": join, "checks": n, "solve_s": secs, "definition_bytes": def_bytes,
        "vertices": report.vertices.len(), "cached": cached,
    }))
}

async fn per_check_status(client: &Client, n: usize) -> Result<serde_json::Value, Error> {
    let input = bench_suite::input();
    let mut solves = Vec::new();
    let t0 = Instant::now();
    for (_, check) in bench_suite::checks(n) {
        let def = check_exec(&input, &check)?.marshal(&Platform::linux_amd64())?;
        let client = client.clone();
        solves.push(tokio::spawn(async move { client.solve_and_wait(wire(def), SolveOptions::default()).await }));
    }
    // digest -> (name, solves that mention it, distinct (started, completed) of non-cached reports,
    // cached reports). A vertex mentioned by more than one solve is shared (the input, the probe).
    type Seen = (String, usize, BTreeSet<String>, usize);
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut failed = 0;
    for s in solves {
        let report = s.await?;
        failed += usize::from(report.result.is_err());
        for v in &report.vertices {
            let e = seen.entry(v.digest.clone()).or_insert_with(|| (v.name.clone(), 0, BTreeSet::new(), 0));
            e.1 += 1;
            if v.cached {
                e.3 += 1;
            } else {
                e.2.insert(format!("{:?}/{:?}", v.started, v.completed));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let vertices: Vec<serde_json::Value> = seen
        .iter()
        .filter(|(_, e)| e.1 > 1)
        .map(|(digest, e)| {
            serde_json::json!({"digest": digest, "name": e.0, "solves": e.1,
                "distinct_executions": e.2.len(), "cached_reports": e.3})
        })
        .collect();
    Ok(serde_json::json!({"mode": "per-check", "checks": n, "seconds": secs, "failed": failed, "shared_vertices": vertices}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let resolved = resolve(&ResolveOptions::from_env())?;
    let client = Client::connect(&resolved).await?;
    let out = match args.first().map(String::as_str) {
        Some("--status") => per_check_status(&client, args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100)).await?,
        Some(n) => {
            let join = args.get(1).map(String::as_str).unwrap_or("auto");
            one_graph(&client, n.parse()?, join).await?
        }
        None => return Err("usage: single_solve N [auto|discard|mergediff] | --status N".into()),
    };
    println!("{out}");
    Ok(())
}
