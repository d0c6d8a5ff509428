//! `BUILDTEST_SOLVE`: the same fixture solved inside one gateway build (`gateway`) and by one
//! `Control.Solve` per check (`control`) gives every check the same record — passes, a failing
//! check among passing ones, an input that fails to build (every check of a shared broken input),
//! a missing image, a timeout, and the cached rerun — and the run says which path it took.

use super::*;

/// What must not depend on the solve path: everything but timings and the order of records.
#[derive(Debug, PartialEq, Eq)]
struct Same {
    test: String,
    check: u32,
    label: String,
    outcome: Outcome,
    error_kind: Option<ErrorKind>,
    cached: bool,
    exit_code: Option<i32>,
    command_exit_code: Option<i32>,
    message: Option<String>,
    report: Option<String>,
    stdout: String,
    stderr: String,
    vertex: Option<String>,
}

fn same(records: &[CheckRecord]) -> Vec<Same> {
    let mut out: Vec<Same> = records
        .iter()
        .map(|r| Same {
            test: r.test.clone(),
            check: r.check,
            label: r.label.clone(),
            outcome: r.outcome,
            error_kind: r.error_kind,
            cached: r.cached,
            exit_code: r.exit_code,
            command_exit_code: r.command_exit_code,
            message: r.message.as_deref().map(daemon_noise),
            report: r.report.as_deref().map(daemon_noise),
            stdout: r.stdout.clone(),
            stderr: r.stderr.clone(),
            vertex: r.vertex.clone(),
        })
        .collect();
    out.sort_by(|a, b| (&a.test, a.check).cmp(&(&b.test, b.check)));
    out
}

/// `text` without what the daemon words differently on every request whatever the path: its
/// snapshot directories (`overlay2/<random id>/`) and a refused request's size (`larger than max
/// (<size> vs. …)`, which counts the request's random ids).
fn daemon_noise(text: &str) -> String {
    mask(&mask(text, "overlay2/", '/'), "larger than max (", ' ')
}

/// `text` with what follows each `marker` up to `end` replaced by `…`.
fn mask(text: &str, marker: &str, end: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let start = at + marker.len();
        let stop = rest[start..].find(end).map_or(rest.len(), |i| start + i);
        out.push_str(&rest[..start]);
        out.push('…');
        rest = &rest[stop..];
    }
    out.push_str(rest);
    out
}

/// The fixture's runnable tests, less the one whose check is unique to each process (its vertex
/// differs between runs; its timeout is compared on its own).
const SKIP: &[&str] = &["--skip", "errors::times_out"];

fn run_with(engine: Engine, exe: &Path, args: &[&str], path: &str) -> (Run, Vec<CheckRecord>) {
    let outputs = Outputs::new();
    let run = Run::of(engine_command(
        exe,
        engine,
        &outputs,
        args,
        &[("BUILDTEST_SOLVE", path)],
    ));
    assert!(
        !run.stderr.contains("failed to connect"),
        "engine {engine:?} is not reachable; start it with `bash scripts/builders.sh up`\n{run:?}"
    );
    (run, outputs.records())
}

fn solved_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix(buildtest::protocol::events::SOLVE_LINE))
        .unwrap_or_else(|| panic!("no `checks solved` line: {run:?}"))
}

pub(super) fn gateway_and_control_give_the_same_records(engine: Engine) {
    let _passes = passes_lock(engine);
    // Warm: every passing check is in the builder's cache before the compared runs.
    let (warm, _) = run_with(engine, fixture(), SKIP, "control");
    assert_eq!(warm.code(), Some(101), "{warm:?}");

    let (gateway, by_gateway) = run_with(engine, fixture(), SKIP, "gateway");
    let (control, by_control) = run_with(engine, fixture(), SKIP, "control");
    assert!(
        solved_line(&gateway).starts_with("gateway: one gateway build for the run")
            && solved_line(&gateway).contains("(BUILDTEST_SOLVE=gateway)"),
        "{gateway:?}"
    );
    assert!(
        solved_line(&control).starts_with("control: one Control.Solve per check"),
        "{control:?}"
    );
    assert_eq!(gateway.code(), Some(101), "{gateway:?}");
    assert_eq!(control.code(), Some(101), "{control:?}");
    let (g, c) = (same(&by_gateway), same(&by_control));
    assert_eq!(g.len(), c.len(), "{engine:?}");
    for (g, c) in g.iter().zip(&c) {
        assert_eq!(g, c, "{engine:?}: the record depends on the solve path");
    }

    // What the comparison covers, on the gateway path.
    let cached = |test: &str, check| find(&by_gateway, test, check).cached;
    assert!(
        by_gateway
            .iter()
            .filter(|r| r.test.starts_with("passes::"))
            .all(|r| r.outcome == Outcome::Pass && r.cached),
        "a rerun is cached inside a gateway build too: {by_gateway:#?}"
    );
    let middle = find(&by_gateway, "fails::middle_check", 2);
    assert_eq!(middle.outcome, Outcome::Fail, "{middle:#?}");
    assert!(
        !middle.cached
            && middle
                .report
                .as_deref()
                .unwrap_or_default()
                .contains("actual output"),
        "{middle:#?}"
    );
    // The failure evaluated at the same time in the same build is not its siblings'.
    for sibling in [1, 3] {
        assert_eq!(
            find(&by_gateway, "fails::middle_check", sibling).outcome,
            Outcome::Pass
        );
        assert!(cached("fails::middle_check", sibling));
    }
    let input = find(&by_gateway, "errors::input_fails_to_build", 1);
    assert_eq!(input.error_kind, Some(ErrorKind::Input), "{input:#?}");
    let text = format!("{:?} {:?}", input.message, input.report);
    assert!(
        text.contains("exit 3") && text.contains("building-the-input"),
        "the failing step and its log: {input:#?}"
    );
    let image = find(&by_gateway, "errors::missing_image", 1);
    assert_eq!(image.error_kind, Some(ErrorKind::Input), "{image:#?}");

    // A timeout: the check is cancelled inside the build, an error of kind timeout.
    for path in ["gateway", "control"] {
        let (run, records) = run_with(engine, fixture(), &["errors::times_out"], path);
        assert_eq!(run.code(), Some(101), "{run:?}");
        let slow = find(&records, "errors::times_out", 1);
        assert_eq!(
            slow.error_kind,
            Some(ErrorKind::Timeout),
            "{path}: {slow:#?}"
        );
        assert!(
            slow.duration_ms >= 2000 && slow.duration_ms < 60_000,
            "{path}: {slow:#?}"
        );
    }
}

/// The broken input shared by three checks errors every one of them with the step named, and
/// the other traps read the same on both paths.
pub(super) fn a_shared_broken_input_errors_every_check_on_both_paths(engine: Engine) {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| build_target("harness_trouble"));
    let (gateway, by_gateway) = run_with(engine, exe, &[], "gateway");
    let (control, by_control) = run_with(engine, exe, &[], "control");
    assert_eq!(gateway.code(), Some(101), "{gateway:?}");
    assert_eq!(control.code(), Some(101), "{control:?}");
    assert_eq!(same(&by_gateway), same(&by_control), "{engine:?}");
    for check in 1..=3 {
        let r = find(&by_gateway, "shared_broken_input", check);
        assert_eq!(
            (r.outcome, r.error_kind),
            (Outcome::Error, Some(ErrorKind::Input)),
            "{r:#?}"
        );
        assert!(
            r.message
                .as_deref()
                .unwrap_or_default()
                .contains("buildtest/no-such-image:never"),
            "{r:#?}"
        );
    }
}

/// `auto` takes the gateway on both engines (both have `gateway.solve.evaluate`), and
/// `Control.Solve` when the checks must re-run (`BUILDTEST_NO_CACHE`).
pub(super) fn auto_takes_the_gateway_unless_no_cache(engine: Engine) {
    let outputs = Outputs::new();
    let args = ["passes::nested::deep", "--exact"];
    let run = Run::of(engine_command(fixture(), engine, &outputs, &args, &[]));
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(
        solved_line(&run),
        "gateway: one gateway build for the run, each check an LLBBridge.Solve (evaluate) inside \
         it (auto: the builder's gateway has gateway.solve.evaluate)",
        "{run:?}"
    );
    let _passes = passes_lock(engine);
    let outputs = Outputs::new();
    let run = Run::of(engine_command(
        fixture(),
        engine,
        &outputs,
        &args,
        &[("BUILDTEST_NO_CACHE", "1")],
    ));
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(
        solved_line(&run),
        "control: one Control.Solve per check (auto: BUILDTEST_NO_CACHE is set)",
        "{run:?}"
    );
    assert!(outputs.records().iter().all(|r| !r.cached));
}
