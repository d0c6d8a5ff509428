#!/usr/bin/env python3
"""The 100-check bench suite on linux/arm64 under emulation vs linux/amd64 native (issue 15).

    python3 tests/bench/platforms.py [--samples 3] [--engines docker20 docker26] [-n 100]

Uses bench.py's generated project (`target/bench/project`, suite `n<N>`, built in the dev profile)
and runs its test binary directly:

- amd64: `BENCH_IMAGE=buildtest/busybox:latest` (linux/amd64, native);
- arm64: `BUILDTEST_PLATFORM=linux/arm64`, `BENCH_IMAGE=buildtest/busybox:arm64` (the same busybox
  rootfs from Debian's busybox-static:arm64; every check exec runs under qemu-aarch64).

Scenarios: "cold" = `BUILDTEST_NO_CACHE=1` (every check exec re-runs; the image and the probe image
stay: the shared engines' build caches are never pruned, other work uses them); "warm" = the
immediate rerun without it (all cached). Samples are interleaved (amd64 cold, amd64 warm, arm64
cold, arm64 warm, per round). Prints a markdown table and writes target/bench/platforms.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

VARIANTS = {
    "linux/amd64 (native)": {"BENCH_IMAGE": "buildtest/busybox:latest"},
    "linux/arm64 (qemu-aarch64)": {
        "BENCH_IMAGE": "buildtest/busybox:arm64",
        "BUILDTEST_PLATFORM": "linux/arm64",
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--engines", nargs="+", default=["docker20", "docker26"])
    args = ap.parse_args()

    bench.ensure_engines(args.engines)
    bench.gen_project([args.n])
    exes, dt = bench.build_project()
    bench.log(f"built the bench project in {dt:.1f} s")
    exe = exes[f"n{args.n}"]
    rows = []
    for engine in args.engines:
        times: dict[tuple[str, str], list[float]] = {}
        for sample in range(args.samples):
            for variant, extra in VARIANTS.items():
                for scenario in ("cold", "warm"):
                    env = dict(extra)
                    if scenario == "cold":
                        env["BUILDTEST_NO_CACHE"] = "1"
                    tag = f"platforms-{engine}-{variant.split()[0].replace('/', '-')}-{scenario}-{sample}"
                    r = bench.run_buildtest(exe, engine, "auto", tag, env)
                    passed = r["outcomes"].get("pass", 0)
                    if r["rc"] != 0 or passed != args.n:
                        raise SystemExit(f"platforms: {tag} did not pass all {args.n} checks: {r}")
                    if scenario == "warm" and r["cached"] != args.n:
                        raise SystemExit(f"platforms: {tag} was not all cached: {r}")
                    times.setdefault((variant, scenario), []).append(r["seconds"])
                    bench.log(f"{tag}: {r['seconds']:.2f} s, {passed} passed, {r['cached']} cached")
        for (variant, scenario), values in sorted(times.items()):
            rows.append(
                {
                    "engine": engine,
                    "variant": variant,
                    "scenario": scenario,
                    "n": args.n,
                    "median_s": statistics.median(values),
                    "min_s": min(values),
                    "max_s": max(values),
                    "samples": len(values),
                }
            )
    (bench.BENCH / "platforms.json").write_text(json.dumps(rows, indent=1))
    print(f"| engine | platform | N = {args.n}, cold (no cache) | N = {args.n}, warm |")
    print("|---|---|---|---|")
    for engine in args.engines:
        for variant in VARIANTS:
            cell = {}
            for row in rows:
                if row["engine"] == engine and row["variant"] == variant:
                    cell[row["scenario"]] = f"{row['median_s']:.2f} s ({row['min_s']:.2f}–{row['max_s']:.2f})"
            print(f"| {engine} | {variant} | {cell.get('cold', '—')} | {cell.get('warm', '—')} |")


if __name__ == "__main__":
    main()
