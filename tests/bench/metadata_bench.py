#!/usr/bin/env python3
"""The container-structure-test metadata suite, CST against buildtest, on both engines, in one run.

Suites (both pass on `buildtest/configured:latest`, which `scripts/builders.sh up` builds):

- `metadata`: CST's `metadataTest` of `examples/tests/cst/configured.yaml` (one test: 2 env vars, 2 labels,
  entrypoint, cmd, 1 port, 1 volume, workdir, user) against buildtest's `metadata_test` of
  `examples/tests/cst.rs` (one `metadata()` check with the same assertions, plus `53/udp`).
- `configured`: all of `examples/tests/cst/configured.yaml` (11 CST tests: 5 command, 3 file existence, 2 file
  content, 1 metadata) against the tests of `examples/tests/cst.rs` on the same image (11 checks).

Scenarios, interleaved round by round: **cold** — CST: a run (it keeps no cache); buildtest:
`BUILDTEST_NO_CACHE=1`, so every check exec runs again (the image's layers stay, as they do for CST; the
engines are shared, so no `builder prune`). **warm** — an immediate rerun (buildtest: passing checks cached; a
metadata check is never cached, it reads the config again). The buildtest suite binary is built once (dev
profile, as `cargo test` builds it) and run directly, as `cargo test` runs it.

    python3 tests/bench/bench.py setup            # CST 1.19.1 in target/bench/venv
    python3 tests/bench/metadata_bench.py --rounds 9

Writes every sample and the medians to `target/bench/metadata.json` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "target" / "bench"
VENV = BENCH / "venv"
CST = VENV / "bin" / "container-structure-test"
IMAGE = "buildtest/configured:latest"
CONFIG = ROOT / "examples" / "tests" / "cst" / "configured.yaml"
ENGINES = {
    "docker20": os.environ.get("BUILDTEST_DOCKER20_HOST", "unix:///var/run/docker.sock"),
    "docker26": os.environ.get("BUILDTEST_DOCKER26_HOST", "unix:///run/buildtest/docker26.sock"),
}
DOCKER = "/usr/bin/docker"  # CST calls the engine's API itself; `docker` on PATH is bookworm's client


def log(msg: str) -> None:
    print(f"metadata-bench: {msg}", file=sys.stderr, flush=True)


def metadata_only_config() -> Path:
    """CST's config reduced to its `metadataTest` (plus the schema version)."""
    text = CONFIG.read_text()
    start = text.index("metadataTest:")
    out = BENCH / "metadata" / "cst-metadata.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("schemaVersion: 2.0.0\n" + text[start:])
    return out


def build_suite() -> str:
    """`cargo build -p buildtest-examples --test cst`; the suite binary's path."""
    out = subprocess.run(
        ["cargo", "build", "-q", "--locked", "-p", "buildtest-examples", "--test", "cst",
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "cst" and msg.get("executable"):
            return msg["executable"]
    raise SystemExit("cargo reported no `cst` test executable")


def env_for(host: str) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("BUILDKIT_HOST", "BUILDX_BUILDER", "DOCKER_CONTEXT", "BUILDTEST_NO_CACHE", "BUILDTEST_RESULTS",
              "BUILDTEST_JUNIT", "BUILDTEST_STRATEGY", "BUILDTEST_PROBE"):
        env.pop(k, None)
    env["DOCKER_HOST"] = host
    shim = BENCH / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    if not (shim / "docker").exists():
        (shim / "docker").symlink_to(DOCKER)
    env["PATH"] = f"{shim}:{env.get('PATH', '')}"
    return env


def run_cst(config: Path, host: str, expect: int) -> float:
    report = BENCH / "metadata" / "cst-report.json"
    report.unlink(missing_ok=True)
    t0 = time.perf_counter()
    p = subprocess.run([str(CST), "test", "--image", IMAGE, "--config", str(config), "--output", "json",
                        "--test-report", str(report)], env=env_for(host), capture_output=True, text=True)
    dt = time.perf_counter() - t0
    data = json.loads(report.read_text()) if report.exists() else {}
    if p.returncode != 0 or data.get("Pass") != expect or data.get("Fail") != 0:
        raise SystemExit(f"CST did not pass {expect} tests on {host}: {data}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return dt


SUITE_ARGS = {
    "metadata": ["metadata_test", "--exact"],
    # Every test of cst.rs on the configured image (with_setup is on busybox, license_tests on Debian).
    "configured": ["--skip", "with_setup", "--skip", "license_tests"],
}
SUITE_CHECKS = {"metadata": 1, "configured": 11}


def run_buildtest(exe: str, suite: str, host: str, cold: bool) -> tuple[float, int]:
    env = env_for(host)
    if cold:
        env["BUILDTEST_NO_CACHE"] = "1"
    t0 = time.perf_counter()
    p = subprocess.run([exe, *SUITE_ARGS[suite]], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    m = re.search(r"^buildtest: (\d+) checks? in .* run: (\d+) passed \((\d+) cached\), 0 failed, 0 errored",
                  p.stderr, re.M)
    n = SUITE_CHECKS[suite]
    if p.returncode != 0 or not m or int(m.group(1)) != n or int(m.group(2)) != n:
        raise SystemExit(f"buildtest did not pass {n} checks ({suite}) on {host}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return dt, int(m.group(3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES))
    args = ap.parse_args()
    if not CST.exists():
        raise SystemExit(f"{CST} is missing: run `python3 tests/bench/bench.py setup` first")
    cst_version = subprocess.run([str(CST), "version"], capture_output=True, text=True).stdout.strip()
    configs = {"metadata": metadata_only_config(), "configured": CONFIG}
    exe = build_suite()
    log(f"CST {cst_version}; buildtest suite {exe}")
    samples: list[dict] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for r in range(args.rounds):
        for engine in args.engines:
            host = ENGINES[engine]
            for suite in ("metadata", "configured"):
                for scenario in ("cold", "warm"):
                    dt = run_cst(configs[suite], host, SUITE_CHECKS[suite])
                    samples.append(dict(round=r, engine=engine, suite=suite, scenario=scenario,
                                        tool="container-structure-test", seconds=dt, load1=os.getloadavg()[0]))
                    dt, cached = run_buildtest(exe, suite, host, cold=scenario == "cold")
                    samples.append(dict(round=r, engine=engine, suite=suite, scenario=scenario, tool="buildtest",
                                        seconds=dt, cached=cached, load1=os.getloadavg()[0]))
        log(f"round {r + 1}/{args.rounds} done")
    table = []
    for engine in args.engines:
        for suite in ("metadata", "configured"):
            row = dict(engine=engine, suite=suite)
            for scenario in ("cold", "warm"):
                for tool in ("container-structure-test", "buildtest"):
                    xs = [s["seconds"] for s in samples if (s["engine"], s["suite"], s["scenario"], s["tool"])
                          == (engine, suite, scenario, tool)]
                    row[f"{tool}/{scenario}"] = (statistics.median(xs), min(xs), max(xs))
                row[f"ratio/{scenario}"] = (row[f"container-structure-test/{scenario}"][0]
                                            / row[f"buildtest/{scenario}"][0])
            table.append(row)
    loads = [s["load1"] for s in samples]
    out = dict(started=started, finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               rounds=args.rounds, cst=cst_version, load1=(min(loads), max(loads)), samples=samples, table=table)
    (BENCH / "metadata.json").write_text(json.dumps(out, indent=1) + "\n")

    def cell(v: tuple[float, float, float]) -> str:
        return f"{v[0] * 1000:.0f} ms ({v[1] * 1000:.0f}–{v[2] * 1000:.0f})"

    print(f"{started} – {out['finished']}, {args.rounds} rounds, load1 {min(loads):.1f}–{max(loads):.1f}, CST {cst_version}")
    print("| suite | engine | CST cold | buildtest cold | × | CST warm | buildtest warm | × |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['suite']} | {row['engine']} | {cell(row['container-structure-test/cold'])} | "
              f"{cell(row['buildtest/cold'])} | {row['ratio/cold']:.2f} | {cell(row['container-structure-test/warm'])} | "
              f"{cell(row['buildtest/warm'])} | {row['ratio/warm']:.2f} |")


if __name__ == "__main__":
    main()
