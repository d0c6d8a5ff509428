#!/usr/bin/env bash
# CI for several nodes in one run (issue 13): the example suites on two nodes (Docker 20.10 +
# Docker 26.1, and the two Docker 26.1 engines) give the same outcomes as on one engine, and a
# rerun on the same nodes is fully cached (placement is stable). Needs `scripts/builders.sh up`
# (which starts docker26b too), and its `env` evaluated. The kill-a-node test is in runner/tests/nodes.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BUILDTEST_DOCKER20_HOST:?run scripts/builders.sh env}" "${BUILDTEST_DOCKER26_HOST:?}"
: "${BUILDTEST_DOCKER26B_HOST:?run scripts/builders.sh up (it starts docker26b)}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# run NAME NODES...: the examples with BUILDTEST_NODES (or DOCKER_HOST for one node), records in $dir/NAME.jsonl
run() {
    local name=$1 nodes
    shift
    nodes=$(printf 'docker+%s,' "$@")
    nodes=${nodes%,}
    local -a env=(BUILDTEST_RESULTS="$dir/$name.jsonl" BUILDTEST_SUITE=examples)
    if (($# == 1)); then env+=(BUILDKIT_HOST="docker+$1"); else env+=(BUILDTEST_NODES="$nodes"); fi
    rm -f "$dir/$name.jsonl"
    out=$(env -u DOCKER_HOST "${env[@]}" cargo test -q -p buildtest-examples --locked 2>&1) || {
        printf '%s\n' "$out"
        echo "nodes-ci: the examples failed on $* ($name)" >&2
        exit 1
    }
    printf '%s\n' "$out" | grep -E '^buildtest: (node .*(checks|answered)|[0-9]+ checks? in )' || true
}

compare() { # ONE TWO RERUN: same outcomes as on one node; the rerun all cached and on the same nodes
    python3 - "$dir/$1.jsonl" "$dir/$2.jsonl" "$dir/$3.jsonl" <<'PY'
import json, sys
def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]
one, two, rerun = (load(p) for p in sys.argv[1:4])
key = lambda r: (r["suite"], r["test"], r["check"], r["label"])
outcomes = lambda rs: {key(r): r["outcome"] for r in rs if not r.get("export")}
assert outcomes(one) == outcomes(two), "outcomes differ between one node and two"
assert outcomes(two) == outcomes(rerun), "outcomes differ on the rerun"
nodes = {r.get("builder") for r in two if r["outcome"] != "ignored"}
assert len(nodes) == 2, f"both nodes get inputs: {nodes}"
place = lambda rs: {key(r): r.get("builder") for r in rs if r["outcome"] != "ignored"}
assert place(two) == place(rerun), "the rerun placed inputs on other nodes"
solved = [r for r in rerun if r["outcome"] == "pass" and not r["label"].startswith("metadata")]
uncached = [key(r) for r in solved if not r.get("cached")]
assert not uncached, f"the rerun is not fully cached: {uncached}"
print(f"nodes-ci: {len(outcomes(two))} checks: same outcomes on one and two nodes; rerun of {len(solved)} exec checks all cached on the same nodes")
PY
}

t0=$(date +%s)
run one26 "$BUILDTEST_DOCKER26_HOST"
run mixed "$BUILDTEST_DOCKER20_HOST" "$BUILDTEST_DOCKER26_HOST"
run mixed-rerun "$BUILDTEST_DOCKER20_HOST" "$BUILDTEST_DOCKER26_HOST"
compare one26 mixed mixed-rerun
run same "$BUILDTEST_DOCKER26_HOST" "$BUILDTEST_DOCKER26B_HOST"
run same-rerun "$BUILDTEST_DOCKER26_HOST" "$BUILDTEST_DOCKER26B_HOST"
compare one26 same same-rerun
echo "nodes-ci: done in $(($(date +%s) - t0)) s"
