#!/usr/bin/env python3
"""Cache export/import benchmark (issue 14). See BENCHMARKS.md, "Sharing the cache between runners".

    python3 tests/bench/cache_bench.py [--samples 3] [-n 100 1000]
    python3 tests/bench/cache_bench.py --example dockerfile -n 13 [--samples 3]

On the Docker 26.1.5 engine with the containerd image store (`docker26c` of scripts/builders.sh, the
only engine here that can export cache), for each N and sample, with the bench project's suites
(`bench.py`: one check per test on buildtest/busybox:latest):

  cold          build cache wiped, no cache flags
  cold+export   build cache wiped, BUILDTEST_CACHE_TO=type=local,dest=<fresh dir>
  warm          right after, no cache flags (the engine's own cache)
  imported      build cache wiped (a fresh runner), BUILDTEST_CACHE_FROM=type=local,src=<that dir>

With `--example NAME` the suite is the examples package's test target NAME instead (e.g. `dockerfile`:
Dockerfile inputs), run from examples/ as cargo runs it; N is its number of checks, all passing.

Writes target/bench/cache-results.json (cache-NAME-results.json with --example) and prints the
BENCHMARKS.md rows (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402

ENGINE = "docker26c"
bench.ENGINES[ENGINE] = os.environ.get("BUILDTEST_DOCKER26C_HOST", "unix:///run/buildtest/docker26c.sock")
OUT = bench.BENCH / "cache-results.json"
EXPORT_LINE = re.compile(r"cache: exported \(.*\): (\d+) passing checks? in ([0-9.]+) s(?:; (\d+) blobs, (\d+) bytes)?")
READ_LINE = re.compile(r"cache: the builder read (\d+) bytes")


def one(exe: str, n: int, scenario: str, tag: str, extra: dict[str, str] | None = None) -> dict:
    r = bench.run_buildtest(exe, ENGINE, "auto", tag, extra)
    text = Path(r["log"]).read_text(errors="replace")
    m = EXPORT_LINE.search(text)
    if m:
        r["export_s"] = float(m.group(2))
        r["export_bytes"] = int(m.group(4) or 0)
    m = READ_LINE.search(text)
    if m:
        r["import_read_bytes"] = int(m.group(1))
    if r["outcomes"] != {"pass": n}:
        raise SystemExit(f"bench: {tag}: expected {n} passes, got {r['outcomes']} (log {r['log']})")
    r.update(n=n, scenario=scenario)
    bench.log(f"{tag}: {r['seconds']:.2f} s, {r['cached']} cached" + (f", export {r['export_s']:.2f} s" if "export_s" in r else ""))
    return r


def example_exe(name: str) -> str:
    """Builds the examples package's test target `name`; its executable."""
    p = subprocess.run(
        ["cargo", "test", "-p", "buildtest-examples", "--locked", "--no-run", "--test", name, "--message-format=json"],
        cwd=bench.ROOT,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise SystemExit(f"bench: building the {name} example failed:\n{p.stderr[-4000:]}")
    for line in p.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name and msg.get("executable"):
            return msg["executable"]
    raise SystemExit(f"bench: no executable for the {name} example")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("-n", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--example", help="an examples/ test target instead of bench.py's suites (-n: its check count)")
    args = p.parse_args()
    out = OUT
    if args.example:
        if len(args.n) != 1:
            raise SystemExit("bench: --example takes one -n (the suite's check count)")
        exes = {f"n{args.n[0]}": example_exe(args.example)}
        # Its inputs' paths (a Dockerfile's context) are relative to the package root, as under cargo.
        os.chdir(bench.ROOT / "examples")
        out = bench.BENCH / f"cache-{args.example}-results.json"
    else:
        bench.gen_project(sorted(set([10, *args.n])))
        exes, _ = bench.build_project()
    prefix = f"cache-{args.example}" if args.example else "cache"
    runs = []
    for sample in range(args.samples):
        for n in args.n:
            exe = exes[f"n{n}"]
            cache = bench.BENCH / "cache-dirs" / f"{prefix}-n{n}-{sample}"
            shutil.rmtree(cache, ignore_errors=True)
            bench.prune(ENGINE)
            runs.append(one(exe, n, "cold", f"{prefix}-n{n}-cold-{sample}"))
            bench.prune(ENGINE)
            runs.append(one(exe, n, "cold+export", f"{prefix}-n{n}-coldx-{sample}", {"BUILDTEST_CACHE_TO": f"type=local,dest={cache}"}))
            runs.append(one(exe, n, "warm", f"{prefix}-n{n}-warm-{sample}"))
            bench.prune(ENGINE)
            runs.append(one(exe, n, "imported", f"{prefix}-n{n}-imported-{sample}", {"BUILDTEST_CACHE_FROM": f"type=local,src={cache}"}))
            runs[-1]["cache_dir_bytes"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    out.write_text(json.dumps(runs, indent=1))
    print(table(runs, args.n))


def table(runs: list[dict], ns: list[int]) -> str:
    def med(n: int, scenario: str, key: str = "seconds") -> float | None:
        vals = [r[key] for r in runs if r["n"] == n and r["scenario"] == scenario and key in r]
        return statistics.median(vals) if vals else None

    lines = [
        "| N | cold | cold + export (of which the export solve) | warm | fresh runner, imported cache | imported ÷ warm | export ÷ cold | cache dir | read on import |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in ns:
        cold, coldx, warm, imp = (med(n, s) for s in ("cold", "cold+export", "warm", "imported"))
        exp = med(n, "cold+export", "export_s")
        cached = med(n, "imported", "cached")
        size = med(n, "imported", "cache_dir_bytes")
        read = med(n, "imported", "import_read_bytes")
        lines.append(
            f"| {n} | {cold:.2f} s | {coldx:.2f} s ({exp:.2f} s) | {warm:.2f} s | {imp:.2f} s ({int(cached)}/{n} cached) "
            f"| {imp / warm:.1f}× | +{100 * (coldx - cold) / cold:.0f} % (solve: {100 * exp / cold:.0f} %) "
            f"| {size / 1e6:.1f} MB | {read / 1e6:.1f} MB |"
        )
    samples = len([r for r in runs if r["scenario"] == "cold" and r["n"] == ns[0]])
    lines.append(f"\n(medians of {samples} samples; `python3 tests/bench/cache_bench.py`)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
