"""Generates one abstract suite of N checks and renders it for every tool in the benchmark.

The abstract suite is a list of dicts (see `make_checks`). Every check is distinct (no two checks of a
kind are the same command or the same path/assertion), so a cache or de-duplication in one tool cannot
collapse checks that the other tools have to run.

Mix for N checks: N/2 command checks with output assertions (echo / test -e / grep, in turn), N/4 file
mode checks (exists + mode), N/4 file content checks (contains a fixed string); for N = 10: 5, 2, 3.

All paths come from the base image `buildtest/busybox:latest` (made from busybox-static): 9 directories,
3 image files and 269 applet symlinks. Mode checks take the directories and files first, then the
symlinks. What "the mode of a symlink" means is each tool's own rule, so the expected value is rendered
per tool: container-structure-test and `stat -c` look at the link itself (`Lrwxrwxrwx`, 0777),
testinfra's `File.mode` runs `stat -Lc %a` (follows it: 0755); each is one stat of one path.
"""

from __future__ import annotations

import json
import re

IMAGE = "buildtest/busybox:latest"

# Directories and plain files of the image (not the ones Docker or BuildKit mount per container, such as
# /etc/hosts, /etc/hostname or /.dockerenv). /tmp (1777) is left out: the tools disagree on whether the
# sticky bit is part of "mode".
DIRS = ["/", "/bin", "/etc", "/root", "/sbin", "/usr", "/usr/bin", "/usr/sbin"]
FILES = {"/bin/busybox": 0o755, "/etc/passwd": 0o644, "/etc/group": 0o644}

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def content_needles() -> list[tuple[str, str]]:
    """Distinct (path, substring) pairs of the image's text files, longest first."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for length in range(16, 3, -1):
        for path, text in (("/etc/passwd", PASSWD), ("/etc/group", GROUP)):
            for line in text.splitlines():
                for off in range(0, max(0, len(line) - length) + 1, 3):
                    s = line[off : off + length]
                    if len(s) != length or (path, s) in seen:
                        continue
                    seen.add((path, s))
                    out.append((path, s))
    return out


def make_checks(n: int, symlinks: list[str]) -> list[dict]:
    """The abstract suite: n checks, names `c0000_echo` etc. (sortable, valid identifiers)."""
    n_cmd = n // 2
    n_mode = (n - n_cmd) // 2
    n_content = n - n_cmd - n_mode
    checks: list[dict] = []
    test_paths = list(symlinks)
    for i in range(n_cmd):
        kind = ("echo", "test", "grep")[i % 3]
        if kind == "echo":
            c = {"kind": "cmd", "argv": ["echo", f"bench-{i}"], "stdout_equals": f"bench-{i}\n"}
        elif kind == "test":
            path = test_paths[(i // 3) % len(test_paths)]
            argv = ["test", "-e", path]
            if i // 3 >= len(test_paths):
                argv += ["-a", "-n", f"bench-{i}"]
            c = {"kind": "cmd", "argv": argv, "stdout_equals": ""}
        else:
            c = {
                "kind": "cmd",
                "argv": ["grep", "-e", "^root:", "-e", f"^bench-{i}:", "/etc/passwd"],
                "stdout_equals": "root:x:0:0:root:/root:/bin/sh\n",
            }
        c["name"] = f"c{i:04}_{kind}"
        checks.append(c)
    mode_paths: list[tuple[str, int, bool]] = [(d, 0o755, False) for d in DIRS]
    mode_paths += [(p, m, False) for p, m in FILES.items()]
    mode_paths += [(p, 0o777, True) for p in symlinks]
    if n_mode > len(mode_paths):
        raise ValueError(f"only {len(mode_paths)} distinct paths for {n_mode} mode checks")
    for j in range(n_mode):
        path, mode, is_link = mode_paths[j]
        checks.append(
            {
                "kind": "mode",
                "name": f"c{n_cmd + j:04}_mode",
                "path": path,
                "mode": mode,
                "symlink": is_link,
                "is_dir": path in DIRS,
            }
        )
    needles = content_needles()
    if n_content > len(needles):
        raise ValueError(f"only {len(needles)} distinct content checks for {n_content}")
    for k in range(n_content):
        path, s = needles[k]
        checks.append({"kind": "content", "name": f"c{n_cmd + n_mode + k:04}_content", "path": path, "contains": s})
    return checks


def break_one(checks: list[dict]) -> list[dict]:
    """A copy of the suite where one check of each kind must fail (for the honesty check)."""
    out = [dict(c) for c in checks]
    for kind in ("cmd", "mode", "content"):
        c = next(c for c in out if c["kind"] == kind)
        if kind == "cmd":
            c["stdout_equals"] = "not-" + (c["stdout_equals"] or "empty")
        elif kind == "mode":
            c["mode"] = 0o700
        else:
            c["contains"] = "no-such-text-in-file"
    return out


# ---------------------------------------------------------------- container-structure-test


def go_regex_literal(s: str) -> str:
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", s)


def perm_string(mode: int, is_dir: bool, symlink: bool) -> str:
    kind = "L" if symlink else ("d" if is_dir else "-")
    bits = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return kind + bits


def render_cst(checks: list[dict]) -> str:
    """The equivalent container-structure-test config (JSON is valid YAML)."""
    cmd_tests, exist_tests, content_tests = [], [], []
    for c in checks:
        if c["kind"] == "cmd":
            want = "^" + go_regex_literal(c["stdout_equals"]) + "$"
            cmd_tests.append(
                {
                    "name": c["name"],
                    "command": c["argv"][0],
                    "args": c["argv"][1:],
                    "exitCode": 0,
                    "expectedOutput": [want],
                }
            )
        elif c["kind"] == "mode":
            exist_tests.append(
                {
                    "name": c["name"],
                    "path": c["path"],
                    "shouldExist": True,
                    "permissions": perm_string(c["mode"], c["is_dir"], c["symlink"]),
                }
            )
        else:
            content_tests.append(
                {"name": c["name"], "path": c["path"], "expectedContents": [go_regex_literal(c["contains"])]}
            )
    cfg = {
        "schemaVersion": "2.0.0",
        "commandTests": cmd_tests,
        "fileExistenceTests": exist_tests,
        "fileContentTests": content_tests,
    }
    return json.dumps(cfg, indent=1) + "\n"


# ---------------------------------------------------------------- pytest-testinfra


def render_testinfra(checks: list[dict]) -> str:
    """A pytest module for testinfra's docker backend; the container comes from $BENCH_CONTAINER."""
    rows = []
    for c in checks:
        if c["kind"] == "cmd":
            rows.append((c["name"], "cmd", " ".join(shell_quote(a) for a in c["argv"]), c["stdout_equals"]))
        elif c["kind"] == "mode":
            # testinfra's File.mode follows symlinks (stat -Lc %a): the target's mode.
            mode = 0o755 if c["symlink"] and c["mode"] == 0o777 else c["mode"]
            rows.append((c["name"], "mode", c["path"], mode))
        else:
            rows.append((c["name"], "content", c["path"], c["contains"]))
    return f'''"""Generated by tests/bench/suites.py: {len(checks)} checks for pytest-testinfra's docker backend."""

import os

import pytest
import testinfra

HOST = testinfra.get_host("docker://" + os.environ["BENCH_CONTAINER"])

CHECKS = {rows!r}


@pytest.mark.parametrize("name,kind,arg,want", CHECKS, ids=[r[0] for r in CHECKS])
def test_check(name, kind, arg, want):
    if kind == "cmd":
        r = HOST.run(arg)
        assert r.rc == 0, r.stderr
        assert r.stdout == want
    elif kind == "mode":
        assert HOST.file(arg).mode == want
    else:
        assert HOST.file(arg).contains(want)
'''


def shell_quote(s: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+-]+", s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------- plain docker run


def docker_run_argv(c: dict) -> tuple[list[str], str]:
    """The argv to run in the image for one check and the exact stdout that means pass (exit 0 too)."""
    if c["kind"] == "cmd":
        return c["argv"], c["stdout_equals"]
    if c["kind"] == "mode":
        return ["stat", "-c", "%a", c["path"]], f"{c['mode']:o}\n"
    return ["grep", "-q", "-F", "-e", c["contains"], c["path"]], ""


# ---------------------------------------------------------------- cargo buildtest


def rust_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Rust string literal for this ASCII text


def buildtest_check_expr(c: dict) -> str:
    """The `buildtest` check expression for one abstract check."""
    if c["kind"] == "cmd":
        args = ", ".join(rust_str(a) for a in c["argv"])
        return f"cmd([{args}]).stdout_equals({rust_str(c['stdout_equals'])})"
    if c["kind"] == "mode":
        # buildtest's mode() follows symlinks (stat), like testinfra: the target's mode.
        mode = 0o755 if c["symlink"] and c["mode"] == 0o777 else c["mode"]
        return f"file({rust_str(c['path'])}).exists().mode(0o{mode:o})"
    return f"file({rust_str(c['path'])}).contains({rust_str(c['contains'])})"


def render_buildtest_tests(checks: list[dict]) -> str:
    """A `harness = false` test target: one `#[buildtest::test]` fn with one check per abstract check."""
    out = [
        f"//! Generated by tests/bench/suites.py: {len(checks)} tests of one check each.",
        "",
        "use buildtest::prelude::*;",
        "",
        "fn main() {",
        "    buildtest::main()",
        "}",
        "",
    ]
    for c in checks:
        out += [
            "#[buildtest::test]",
            f"fn {c['name']}() -> Test {{",
            f"    Test::on(bench_suite::input()).check({buildtest_check_expr(c)})",
            "}",
            "",
        ]
    return "\n".join(out)


def render_buildtest_lib_fn(n: int, checks: list[dict]) -> str:
    """`pub fn checks_nN()`: the same checks as values, for the single-solve bench binary."""
    out = [f"/// The {n} checks of suite n{n}, named.", f"pub fn checks_n{n}() -> Vec<(&'static str, Check)> {{", "    vec!["]
    for c in checks:
        out.append(f"        ({rust_str(c['name'])}, {buildtest_check_expr(c)}.into()),")
    out += ["    ]", "}", ""]
    return "\n".join(out)
