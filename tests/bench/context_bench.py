#!/usr/bin/env python3
"""Local-context transfer benchmark (issue 10): how fast a 200 MiB directory of 2 000 files reaches the
engine's embedded BuildKit, and how much a rerun sends. See docs/builders.md (buildx) and BENCHMARKS.md.

    python3 tests/bench/context_bench.py prepare    make the directory (deterministic content) under /tmp
    python3 tests/bench/context_bench.py run        measure every side on every engine -> target/bench/context.json
    python3 tests/bench/context_bench.py table      print the table from target/bench/context.json

A *side* is one way of sending the directory to an engine (`SIDES` below). Each sample of each side runs:

    first       the directory under a path the engine has never seen (so nothing is cached for it)
    unchanged   the same directory again
    one-changed the same directory after rewriting one 100 KiB file

and records the wall time of the whole command, the transfer time and the bytes the sender reports. The
content is the same in every sample, so a side's later steps on it (buildx's COPY) hit the engine's cache after
the first sample, in first and one-changed runs alike: compare transfer times first. Every first run leaves one received copy of the directory
in the engine's build cache (about 200 MiB per engine and sample; buildx's COPY adds two 200 MiB layers once);
the benchmark never prunes the shared engines.

The `buildx` side is `docker buildx build` (trixie's docker-buildx 0.13.1, docker driver; install it with
`bash scripts/builders.sh buildx`) building `FROM buildtest/busybox:latest` + `COPY . /ctx` with the directory
as its context, `--network none --output type=cacheonly` (no image is left behind). Offline: only local images.

To add a side, put a function `(engine: Engine, ctx: Path) -> Transfer` into `SIDES`; it must send exactly the
directory `ctx` to `engine` and report what it sent.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "target" / "bench" / "context.json"
WORK = Path(os.environ.get("BUILDTEST_CONTEXT_BENCH_DIR", "/tmp/buildtest-context-bench"))
DATA = WORK / "data"  # the canonical directory; each sample renames it to a fresh path and back
DOCKER = "/usr/bin/docker"  # bookworm's 20.10 client (/usr/local/bin/docker is a different client)
IMAGE = os.environ.get("BUILDTEST_BASE_IMAGE", "buildtest/busybox:latest")
BUILDX_CONFIG = Path(os.environ.get("BUILDTEST_BUILDX_DOCKER_CONFIG", "/opt/buildtest/buildx/config"))

FILES = 2000
PER_DIR = 100
TOTAL = 200 * 1024 * 1024
FILE_SIZE = TOTAL // FILES  # 104 857 bytes; the first file also gets the remainder, so the sum is exactly TOTAL
CHANGED = Path("d07") / "f042.bin"  # the file a one-changed rerun rewrites (same size, new bytes)


def log(msg: str) -> None:
    print(f"context-bench: {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failed measurement; the message reads after "failed to"."""


# ---------------------------------------------------------------- the directory


def file_path(root: Path, i: int) -> Path:
    return root / f"d{i // PER_DIR:02d}" / f"f{i % PER_DIR:03d}.bin"


def file_bytes(i: int, generation: int | str = 0) -> bytes:
    size = FILE_SIZE + (TOTAL - FILE_SIZE * FILES if i == 0 else 0)
    return random.Random(f"buildtest-context-{i}-{generation}").randbytes(size)


def data_ok(root: Path) -> bool:
    """The directory holds exactly the FILES files of the right sizes (content is checked by `prepare --verify`)."""
    if not root.is_dir():
        return False
    files = [p for p in root.rglob("*") if not p.is_dir()]
    return len(files) == FILES and sum(p.stat().st_size for p in files) == TOTAL


def prepare(verify: bool = False) -> Path:
    if data_ok(DATA) and not verify:
        return DATA
    if verify and data_ok(DATA):
        bad = [i for i in range(FILES) if file_path(DATA, i).read_bytes() != file_bytes(i)]
        if not bad:
            log(f"{DATA}: {FILES} files, {TOTAL} bytes, content verified")
            return DATA
        log(f"{DATA}: {len(bad)} files differ; regenerating")
    t0 = time.monotonic()
    tmp = WORK / "data.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for i in range(FILES):
        p = file_path(tmp, i)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(file_bytes(i))
    shutil.rmtree(DATA, ignore_errors=True)
    tmp.rename(DATA)
    log(f"{DATA}: wrote {FILES} files, {TOTAL} bytes in {time.monotonic() - t0:.1f} s")
    return DATA


# ---------------------------------------------------------------- engines and sides


@dataclass
class Engine:
    name: str
    host: str


ENGINES = {
    "docker20": Engine("docker20", os.environ.get("BUILDTEST_DOCKER20_HOST", "unix:///var/run/docker.sock")),
    "docker26": Engine("docker26", os.environ.get("BUILDTEST_DOCKER26_HOST", "unix:///run/buildtest/docker26.sock")),
}


@dataclass
class Transfer:
    wall_s: float  # the whole command
    transfer_s: float  # the transfer alone, as the side reports it
    bytes_sent: int  # what the side reports it sent (file data plus its per-file metadata)
    detail: str  # the side's own words for it, verbatim


def buildx_env() -> dict[str, str]:
    plugin = BUILDX_CONFIG / "cli-plugins" / "docker-buildx"
    if not os.access(plugin, os.X_OK):
        raise BenchError(f"find the buildx plugin at {plugin} (run: bash scripts/builders.sh buildx)")
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT", "BUILDX_BUILDER")}
    env["DOCKER_CONFIG"] = str(BUILDX_CONFIG)
    return env


def json_stream(text: str) -> list[dict]:
    """The concatenated JSON objects `--progress rawjson` prints (BuildKit's SolveStatus, one per update)."""
    dec, objs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return objs
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise BenchError(f"parse buildx's rawjson progress at offset {i}: {e}\n{text[i:i + 500]}") from e
        objs.append(obj)


def rfc3339(ts: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC timestamp with up to nanoseconds, as BuildKit prints them."""
    head, _, frac = ts.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def buildx_transfer(engine: Engine, ctx: Path) -> Transfer:
    """`docker buildx build` with `ctx` as the context; bytes and time are BuildKit's own "transferring context"
    status of the "[internal] load build context" vertex (`--progress rawjson`: exact bytes, ns timestamps)."""
    dockerfile = WORK / "Dockerfile"
    dockerfile.write_text(f"FROM {IMAGE}\nCOPY . /ctx\n")
    argv = [DOCKER, "-H", engine.host, "buildx", "build", "--progress", "rawjson", "--network", "none"]
    argv += ["--output", "type=cacheonly", "-f", str(dockerfile), str(ctx)]
    t0 = time.monotonic()
    out = subprocess.run(argv, env=buildx_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise BenchError(f"run docker buildx build on {engine.name} (exit {out.returncode}):\n{out.stderr[-3000:]}")
    updates = json_stream(out.stderr)
    name = "[internal] load build context"
    vertex = {v["digest"] for u in updates for v in u.get("vertexes") or [] if v.get("name") == name}
    if len(vertex) != 1:
        raise BenchError(f"find exactly one 'load build context' vertex in buildx's progress (found {len(vertex)})")
    done = [
        st
        for u in updates
        for st in u.get("statuses") or []
        if st.get("vertex") in vertex and st.get("id") == "transferring context:" and st.get("completed")
    ]
    if not done:
        raise BenchError("find a completed 'transferring context' status in buildx's progress")
    st = done[-1]
    secs = rfc3339(st["completed"]) - rfc3339(st["started"])
    return Transfer(wall, secs, int(st["current"]), f"transferring context: {st['current']} B in {secs:.3f} s")


def buildtest_exe() -> Path:
    """The `harness_locals` fixture of the runner (its `bench::context` test sends a directory through the
    run's session), built once per benchmark run."""
    global _BUILDTEST_EXE
    if _BUILDTEST_EXE is None:
        argv = ["cargo", "build", "-q", "-p", "buildtest", "--test", "harness_locals", "--message-format=json"]
        out = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if out.returncode != 0:
            raise BenchError(f"build the harness_locals fixture:\n{out.stderr[-3000:]}")
        for line in out.stdout.splitlines():
            msg = json.loads(line)
            if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "harness_locals":
                _BUILDTEST_EXE = Path(msg["executable"])
        if _BUILDTEST_EXE is None:
            raise BenchError("find the harness_locals executable in cargo's output")
    return _BUILDTEST_EXE


_BUILDTEST_EXE: Path | None = None


def buildtest_transfer(engine: Engine, ctx: Path) -> Transfer:
    """A suite whose input copies `State::local_dir(ctx)` into busybox, served by the run's session; bytes and time
    are the session's own count (`buildtest: local files sent: N bytes in F files (T transfers, S s)`: file data
    only, the transfer from the daemon's request to its FIN)."""
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "BUILDX_BUILDER", "DOCKER_CONTEXT")}
    env["DOCKER_HOST"] = engine.host
    env["BUILDTEST_FIXTURE_DIR"] = str(ctx)
    t0 = time.monotonic()
    out = subprocess.run(
        [str(buildtest_exe()), "--exact", "bench::context"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise BenchError(f"run the buildtest side on {engine.name} (exit {out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    line = next((l for l in out.stderr.splitlines() if l.startswith("buildtest: local files sent: ")), None)
    if line is None:
        raise BenchError(f"find the session's 'local files sent' line:\n{out.stderr[-2000:]}")
    words = line.split()
    sent = int(words[4])
    secs = float(line.rsplit(", ", 1)[1].rstrip(" s)"))
    return Transfer(wall, secs, sent, line.removeprefix("buildtest: "))


SIDES: dict[str, Callable[[Engine, Path], Transfer]] = {
    "buildx": buildx_transfer,
    "buildtest": buildtest_transfer,
}


# ---------------------------------------------------------------- running


def rewrite_changed(root: Path, generation: int | str) -> None:
    i = int(CHANGED.parent.name[1:]) * PER_DIR + int(CHANGED.stem[1:])
    (root / CHANGED).write_bytes(file_bytes(i, generation))


def sample(side: str, engine: Engine, n: int) -> list[dict]:
    """One first/unchanged/one-changed series of `side` on `engine`, on a path never used before."""
    ctx = WORK / f"ctx-{side}-{engine.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{n}"
    DATA.rename(ctx)
    rows = []
    try:
        for run in ("first", "unchanged", "one-changed"):
            if run == "one-changed":
                # The same new bytes in every sample: deterministic, and the engine's disk grows by one
                # changed copy of the directory per side's later steps (COPY), not one per sample.
                rewrite_changed(ctx, generation=1)
            t = SIDES[side](engine, ctx)
            rows.append({"side": side, "engine": engine.name, "sample": n, "run": run, **asdict(t)})
            log(f"{side} on {engine.name} #{n} {run}: {fmt_row(rows[-1])}")
    finally:
        rewrite_changed(ctx, generation=0)
        ctx.rename(DATA)
    return rows


def fmt_row(r: dict) -> str:
    mib = r["bytes_sent"] / 2**20
    rate = f"{TOTAL / 2**20 / r['transfer_s']:.1f} MiB/s" if r["run"] == "first" and r["transfer_s"] > 0 else ""
    return (
        f"wall {r['wall_s']:.2f} s, transfer {r['transfer_s']:.3f} s, sent {mib:.2f} MiB "
        f"({100 * r['bytes_sent'] / TOTAL:.3f} % of the directory) {rate} [{r['detail']}]"
    )


def cmd_prepare(args: argparse.Namespace) -> None:
    prepare(verify=args.verify)


def cmd_run(args: argparse.Namespace) -> None:
    unknown = [s for s in args.sides if s not in SIDES] + [e for e in args.engines if e not in ENGINES]
    if unknown:
        known = f"sides: {list(SIDES)}, engines: {list(ENGINES)}"
        raise BenchError(f"select sides and engines: unknown {unknown} ({known})")
    prepare()
    rows = []
    for n in range(args.samples):
        for engine in args.engines:
            for side in args.sides:
                rows += sample(side, ENGINES[engine], n)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"files": FILES, "bytes": TOTAL, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    log(f"wrote {RESULTS}")
    print(render(rows))


def render(rows: list[dict]) -> str:
    out = [
        "| side | engine | run | wall | transfer | sent (bytes) | % of dir | MiB/s (200 MiB / transfer) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        rate = f"{TOTAL / 2**20 / r['transfer_s']:.0f}" if r["run"] == "first" and r["transfer_s"] > 0 else ""
        out.append(
            f"| {r['side']} | {r['engine']} | {r['run']} | {r['wall_s']:.2f} s | {r['transfer_s']:.3f} s "
            f"| {r['bytes_sent']} B | {100 * r['bytes_sent'] / TOTAL:.3f} % | {rate} |"
        )
    out += ["", "| side | engine | samples | first run: median transfer | MiB/s | one-changed: bytes sent (max) |"]
    out.append("| --- | --- | --- | --- | --- | --- |")
    for side, engine in dict.fromkeys((r["side"], r["engine"]) for r in rows):
        firsts = [r["transfer_s"] for r in rows if (r["side"], r["engine"], r["run"]) == (side, engine, "first")]
        changed = [r["bytes_sent"] for r in rows if (r["side"], r["engine"], r["run"]) == (side, engine, "one-changed")]
        med = statistics.median(firsts)
        out.append(
            f"| {side} | {engine} | {len(firsts)} | {med:.3f} s | {TOTAL / 2**20 / med:.0f} "
            f"| {max(changed)} B ({100 * max(changed) / TOTAL:.3f} %) |"
        )
    return "\n".join(out)


def cmd_table(_args: argparse.Namespace) -> None:
    if not RESULTS.exists():
        raise BenchError(f"read {RESULTS} (run `context_bench.py run` first)")
    print(render(json.loads(RESULTS.read_text())["rows"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="make the 200 MiB / 2 000-file directory")
    p.add_argument("--verify", action="store_true", help="also compare every file's content")
    p.set_defaults(fn=cmd_prepare)
    p = sub.add_parser("run", help="measure")
    p.add_argument("--sides", nargs="+", default=list(SIDES))
    p.add_argument("--engines", nargs="+", default=list(ENGINES))
    p.add_argument("--samples", type=int, default=1, help="first/unchanged/one-changed series per side and engine")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("table", help="print the table of the last run")
    p.set_defaults(fn=cmd_table)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        args.fn(args)
    except BenchError as e:
        print(f"context-bench: error: failed to {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
