#!/usr/bin/env bash
# Several-nodes benchmark (BENCHMARKS.md, "Several nodes"): the harness_nodes_bench fixture
# (100 inputs × 10 checks = 1 000 checks) cold and warm on one Docker 26 engine and on two
# (docker26 + docker26b), then on three nodes (a third name for docker26b's socket: a symlink)
# to measure how many inputs move when a node is added. Needs `scripts/builders.sh up` and
# `up-docker26b` and their `env`. Prints one line per run and the placement figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BUILDTEST_DOCKER26_HOST:?}" "${BUILDTEST_DOCKER26B_HOST:?}"
exe=$(cargo build -q -p buildtest --test harness_nodes_bench --locked --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "harness_nodes_bench":
        print(m["executable"])')
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
alias_dir=$(mktemp -d)
ln -s "${BUILDTEST_DOCKER26B_HOST#unix://}" "$alias_dir/docker26c.sock"
trap 'rm -rf "$alias_dir"' EXIT
one="docker+$BUILDTEST_DOCKER26_HOST"
two="$one,docker+$BUILDTEST_DOCKER26B_HOST"
three="$two,docker+unix://$alias_dir/docker26c.sock"
salt=$(date +%s%N)

run() { # NAME NODES SALT
    local name=$1 nodes=$2 t0 t1
    rm -f "$out/$name.jsonl"
    t0=$(date +%s.%N)
    env -u BUILDKIT_HOST -u DOCKER_HOST BUILDTEST_NODES="$nodes" BUILDTEST_RESULTS="$out/$name.jsonl" \
        BUILDTEST_SUITE=bench NODES_BENCH_SALT="$3" "$exe" >"$out/$name.out" 2>"$out/$name.err" || {
        tail -20 "$out/$name.err"
        echo "bench: $name failed" >&2
        exit 1
    }
    t1=$(date +%s.%N)
    python3 - "$name" "$t0" "$t1" "$out/$name.jsonl" <<'PY'
import json, sys, collections
name, t0, t1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
recs = [json.loads(l) for l in open(path) if l.strip()]
passed = sum(r["outcome"] == "pass" for r in recs)
cached = sum(bool(r.get("cached")) for r in recs)
per = collections.defaultdict(list)
for r in recs:
    per[r.get("builder", "?")].append(r)
nodes = []
for node, rs in sorted(per.items()):
    starts = [r["started_at_ms"] for r in rs if r.get("started_at_ms")]
    ends = [r["started_at_ms"] + r["duration_ms"] for r in rs if r.get("started_at_ms")]
    wall = (max(ends) - min(starts)) / 1000 if starts else 0
    inputs = len({r["test"] for r in rs})
    nodes.append(f"{node.split('/')[-1]}: {inputs} inputs, {len(rs)} checks, wall {wall:.1f} s")
print(f"bench: {name}: {len(recs)} checks, {passed} passed ({cached} cached) in {t1 - t0:.2f} s "
      f"({(t1 - t0) * 1000 / max(len(recs), 1):.1f} ms/check); " + "; ".join(nodes))
PY
}

run one-cold "$one" "$salt-1"
run one-warm "$one" "$salt-1"
run two-cold "$two" "$salt-2"
run two-warm "$two" "$salt-2"
run three-warm "$three" "$salt-2"
python3 - "$out/two-warm.jsonl" "$out/three-warm.jsonl" <<'PY'
import json, sys
def place(p):
    return {r["test"]: r.get("builder") for r in (json.loads(l) for l in open(p) if l.strip())}
two, three = place(sys.argv[1]), place(sys.argv[2])
moved = [t for t in two if two[t] != three[t]]
to_new = all(three[t].endswith("docker26c.sock") for t in moved)
print(f"bench: adding a third node moved {len(moved)} of {len(two)} inputs ({100 * len(moved) / len(two):.0f} %), "
      f"{'all' if to_new else 'NOT all'} to the new node")
PY
echo "bench: logs and records in $out"
