//! Snapshots of what `cargo buildtest` prints for the fixture workspace: the console lines (human
//! format) and the JSON events (`--message-format json`, read back with the protocol's one
//! reader). Timings, cache hits, digests and temporary paths are normalized and the check lines
//! (which arrive in completion order) sorted, so the snapshots are stable across runs.
//! `BUILDTEST_BLESS=1` rewrites them.

use std::path::Path;

use buildtest::protocol::events::Event;

use crate::support::{builder_addr, cargo_buildtest, repo_root, workspace};

/// Compares `actual` with the snapshot `name` (or writes it under `BUILDTEST_BLESS`).
fn assert_snapshot(name: &str, actual: &str) {
    let path = repo_root().join("tests/tests/e2e/snapshots").join(name);
    if std::env::var_os("BUILDTEST_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read snapshot {}: {e}", path.display()));
    assert!(
        expected == actual,
        "{} differs (BUILDTEST_BLESS=1 rewrites it)\n--- expected ---\n{expected}\n--- actual ---\n{actual}",
        path.display()
    );
}

/// `[   0.123s]` → `[ TIME ]`, ` (cached)` dropped, `(N cached)` → `(C cached)`, paths replaced.
fn normalize(line: &str, replace: &[(&str, &str)]) -> String {
    let mut out = line.to_owned();
    for (from, to) in replace {
        out = out.replace(from, to);
    }
    if let (Some(open), Some(close)) = (out.find('['), out.find("s]"))
        && open < close
        && out[open + 1..close].trim().parse::<f64>().is_ok()
    {
        out.replace_range(open..close + 2, "[ TIME ]");
    }
    out = out.replace(" (cached)", "");
    if let Some(at) = out.find(" cached)") {
        let start = out[..at].rfind('(').map_or(at, |p| p + 1);
        out.replace_range(start..at, "C");
    }
    let mut words: Vec<String> = Vec::new();
    for word in out.split(' ') {
        if let Some(rest) = word.strip_prefix("sha256:") {
            let tail: String = rest.chars().skip_while(char::is_ascii_hexdigit).collect();
            words.push(format!("sha256:DIGEST{tail}"));
        } else {
            words.push(word.to_owned());
        }
    }
    words.join(" ")
}

/// `docker engine 20.10.24+dfsg1` → `docker engine VERSION`: the engine's own version depends on
/// the Debian package the machine installed, not on what the runner does.
fn engine_version(caps: &str) -> String {
    const KEY: &str = "docker engine ";
    let Some(at) = caps.find(KEY) else {
        return caps.to_owned();
    };
    let start = at + KEY.len();
    let end = caps[start..]
        .find([',', ')'])
        .map_or(caps.len(), |p| start + p);
    format!("{}VERSION{}", &caps[..start], &caps[end..])
}

const STATUS: &[&str] = &[
    "Skipping",
    "Building ",
    "Builder ",
    "BuildKit ",
    "Strategy ",
    "Jobs ",
    "Solved ",
    "Starting ",
];
const CHECK: &[&str] = &["PASS [", "FAIL [", "ERROR [", "IGNORED "];

#[test]
fn console_lines_and_json_events_of_a_fixture_run() {
    let addr = builder_addr();
    let ws = workspace();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml").display().to_string();
    let ws_text = ws.display().to_string();
    let replace = [
        (junit.as_str(), "<junit>"),
        (ws_text.as_str(), "<workspace>"),
        (addr.as_str(), "<builder>"),
    ];

    // Human lines: the status lines, the check lines (sorted), and everything from the failure
    // details on (their order is the records' order: suite, test, check).
    let args = [
        "--no-fail-fast",
        "--addr",
        &addr,
        "--junit",
        &junit,
        "--progress",
        "plain",
    ];
    let out = cargo_buildtest(&ws, &args);
    out.assert_code(100);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let mut console = Vec::new();
    let mut checks = Vec::new();
    let details = lines
        .iter()
        .position(|l| l.starts_with("--- ") || l.starts_with("------------"))
        .unwrap_or(lines.len());
    for line in &lines[..details] {
        let trimmed = line.trim_start();
        if STATUS.iter().any(|s| trimmed.starts_with(s)) {
            console.push(normalize(line, &replace));
        } else if CHECK.iter().any(|s| trimmed.starts_with(s)) {
            checks.push(normalize(line, &replace));
        }
    }
    checks.sort();
    console.extend(checks);
    console.extend(lines[details..].iter().map(|l| normalize(l, &replace)));
    assert_snapshot("console.txt", &(console.join("\n") + "\n"));

    // JSON events: read with the protocol's reader; volatile fields cleared; check events sorted
    // within each suite.
    let mut args = args.to_vec();
    args.extend(["--message-format", "json"]);
    let out = cargo_buildtest(&ws, &args);
    out.assert_code(100);
    let mut events: Vec<Event> = out
        .stdout
        .lines()
        .map(|l| Event::from_line(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    for event in &mut events {
        match event {
            Event::Check(r) => {
                r.duration_ms = 0;
                r.started_at_ms = None;
                r.cached = false;
                r.vertex = r.vertex.as_ref().map(|_| "sha256:DIGEST".to_owned());
                for text in [&mut r.report, &mut r.message].into_iter().flatten() {
                    *text = normalize(text, &replace);
                }
            }
            Event::Header(h) => {
                h.builder = normalize(&h.builder, &replace);
                h.strategy_reason = normalize(&h.strategy_reason, &replace);
                h.caps = engine_version(&h.caps);
                // linux/arm64 is embedded only where the build had a cross toolchain.
                assert!(h.probes.starts_with("linux/amd64"), "{h:?}");
                h.probes = "<probes>".to_owned();
            }
            Event::Summary(s) => {
                s.duration_ms = 0;
                s.cached = 0;
            }
            _ => {}
        }
    }
    let mut start = 0;
    while start < events.len() {
        let end = events[start..]
            .iter()
            .position(|e| !matches!(e, Event::Check(_)))
            .map_or(events.len(), |p| start + p);
        events[start..end].sort_by_key(|e| match e {
            Event::Check(r) => (r.suite.clone(), r.test.clone(), r.check),
            _ => Default::default(),
        });
        start = end + 1;
    }
    let text: String = events.iter().map(|e| e.to_line() + "\n").collect();
    assert_snapshot("events.jsonl", &text);
    assert!(Path::new(&junit).exists());
}
