#!/usr/bin/env python3
"""Checks solved inside one gateway build vs one Control.Solve each (issue 11 item 6).

    python3 tests/bench/bench.py setup                  # once: the peers' venv (testinfra)
    python3 tests/bench/gateway_bench.py run --samples 3 -n 100 1000 --engines docker20 docker26

The benchmark's suites (`bench.py`'s generated project: N distinct checks on buildtest/busybox, one
test per check) run with BUILDTEST_SOLVE=gateway and =control, interleaved, on each engine:

- cold: the suite's input is the image plus one exec carrying a fresh nonce (`BENCH_INPUT=prepared`),
  so the input step and all N check execs are new to the builder. The engines' build caches are
  shared with other people's tests here, so they are never pruned; the probe image stays loaded.
- warm: the same suite with the same nonce again right after (every check answered from the cache).

testinfra (docker backend) runs the plain N = 100 suite in the same loop, for the issue's ratio
(a warm rerun of 100 checks at least 50x faster than testinfra). Every sample goes to
target/bench/gateway.json with the 1-minute load average; `table` prints the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402

OUT = bench.BENCH / "gateway.json"
PATHS = ("gateway", "control")


def solved_line(log: str) -> str:
    for line in Path(log).read_text(errors="replace").splitlines():
        if line.startswith("buildtest: checks solved: "):
            return line.removeprefix("buildtest: checks solved: ")
    return ""


def one(exe: str, engine: str, n: int, path: str, scenario: str, nonce: str, k: int) -> dict:
    tag = f"gateway-{path}-{engine}-n{n}-{scenario}-{k}"
    extra = {"BUILDTEST_SOLVE": path, "BENCH_INPUT": "prepared", "BENCH_NONCE": nonce}
    load = bench.load_avg()
    r = bench.run_buildtest(exe, engine, "auto", tag, extra)
    line = solved_line(r["log"])
    ok = r["rc"] == 0 and r["outcomes"].get("pass", 0) == n and line.startswith(path)
    if scenario == "warm":
        ok = ok and r["cached"] == n
    rec = {"tool": "buildtest", "path": path, "engine": engine, "scenario": scenario, "checks": n, "sample": k,
           "seconds": round(r["seconds"], 4), "cached": r["cached"], "rss_mib": round(r["rss_mib"], 1),
           "load1": round(load, 2), "ok": ok, "solved": line}
    flag = "" if ok else f"  <-- NOT OK {r['outcomes']} rc={r['rc']} log={r['log']}"
    bench.log(f"n={n} #{k} {engine} {path:8} {scenario:4} {r['seconds']:8.3f} s cached={r['cached']} load={load:.1f}{flag}")
    return rec


def cmd_run(args: argparse.Namespace) -> None:
    bench.gen_project(sorted(set(args.n) | {10, 100, 1000}))
    exes, _ = bench.build_project()
    bench.ensure_engines(args.engines)
    samples: list[dict] = []
    for k in range(args.samples):
        for n in args.n:
            for engine in args.engines:
                for path in PATHS:
                    nonce = uuid.uuid4().hex[:12]
                    for scenario in ("cold", "warm"):
                        samples.append(one(exes[f"n{n}"], engine, n, path, scenario, nonce, k))
            if n == 100 and args.testinfra:
                bench.generate(100)
                load = bench.load_avg()
                r = bench.run_peer("testinfra", 100)
                ok = r.passed == 100 and r.failed == 0
                samples.append({"tool": "testinfra", "path": "-", "engine": "docker20", "scenario": "warm",
                                "checks": 100, "sample": k, "seconds": round(r.seconds, 4), "load1": round(load, 2),
                                "ok": ok})
                bench.log(f"n=100 #{k} testinfra {r.seconds:8.3f} s ok={ok} load={load:.1f}")
        OUT.write_text(json.dumps({"samples": samples}, indent=1) + "\n")
    OUT.write_text(json.dumps({"samples": samples}, indent=1) + "\n")
    print(table(samples))


def table(samples: list[dict]) -> str:
    groups: dict[tuple, list[float]] = {}
    loads: list[float] = []
    for s in samples:
        loads.append(s["load1"])
        if s["ok"]:
            groups.setdefault((s["checks"], s["scenario"], s["engine"], s["tool"], s["path"]), []).append(s["seconds"])
    bad = sum(1 for s in samples if not s["ok"])
    rows = ["| N | scenario | engine | gateway (median, min–max) | control (median, min–max) | control / gateway |",
            "|---|---|---|---|---|---|"]

    def cell(v: list[float] | None) -> str:
        if not v:
            return "—"
        return f"{statistics.median(v) * 1000:.0f} ms ({min(v) * 1000:.0f}–{max(v) * 1000:.0f}, {len(v)} samples)"

    keys = sorted({(n, sc, e) for (n, sc, e, tool, _) in groups if tool == "buildtest"},
                  key=lambda t: (t[0], t[1] != "warm", t[2]))
    for n, sc, e in keys:
        g = groups.get((n, sc, e, "buildtest", "gateway"))
        c = groups.get((n, sc, e, "buildtest", "control"))
        ratio = f"{statistics.median(c) / statistics.median(g):.2f}×" if g and c else "—"
        rows.append(f"| {n} | {sc} | {e} | {cell(g)} | {cell(c)} | {ratio} |")
    ti = groups.get((100, "warm", "docker20", "testinfra", "-"))
    lines = ["\n".join(rows)]
    if ti:
        lines.append(f"\ntestinfra, N = 100 (docker20): median {statistics.median(ti):.2f} s "
                     f"({min(ti):.2f}–{max(ti):.2f}, {len(ti)} samples)")
        for path in PATHS:
            v = groups.get((100, "warm", "docker20", "buildtest", path))
            if v:
                lines.append(f"warm N = 100 on docker20, {path}: testinfra / buildtest = "
                             f"{statistics.median(ti) / statistics.median(v):.1f}×")
    if loads:
        lines.append(f"load1 during the run: {min(loads):.1f}–{max(loads):.1f}; samples not OK: {bad}")
    return "\n".join(lines)


def cmd_table(_args: argparse.Namespace) -> None:
    print(table(json.loads(OUT.read_text())["samples"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("-n", type=int, nargs="+", default=[100, 1000])
    r.add_argument("--samples", type=int, default=3)
    r.add_argument("--engines", nargs="+", default=["docker20", "docker26"])
    r.add_argument("--no-testinfra", dest="testinfra", action="store_false")
    r.set_defaults(fn=cmd_run)
    t = sub.add_parser("table")
    t.set_defaults(fn=cmd_table)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
