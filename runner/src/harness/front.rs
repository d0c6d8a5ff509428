//! `buildtest::main()`: the libtest-mimic front of a `harness = false` test target.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::client::one_line_chain;
use crate::harness::backend::Backend;
use crate::harness::cache::RunCache;
use crate::harness::errors::SetupError;
use crate::harness::nodes::Nodes;
use crate::harness::registry::{self, TestDef, registered};
use crate::harness::run::{RecordContext, Session, Sink, record_ignored};
use crate::harness::solve_path::CheckSolver;
use crate::harness::verdict::{summary, verdict};
use crate::protocol::{SuiteSettings, exit};
use crate::report::{ResultsFile, junit};

/// The exit code when the harness cannot start (a setting's value it does not accept, see
/// [`crate::harness::errors`]); test failures exit 101.
pub const EXIT_SETUP: i32 = exit::SETUP;

/// The exit code after Ctrl-C (SIGINT) during a run: 128 + 2, as shells report it. The JUnit
/// file (`BUILDTEST_JUNIT`) is written first, with the checks that had finished.
pub const EXIT_INTERRUPTED: i32 = exit::INTERRUPTED;

/// The whole `main` of a `harness = false` test target: `fn main() { buildtest::main() }`.
///
/// Parses libtest's command line (filters, `--exact`, `--skip`, `--ignored`,
/// `--include-ignored`, `--list`, `--format pretty|terse|json`, `--test-threads`, …), lists
/// the registered tests without contacting a builder, or connects to the builder and runs
/// every check of the selected tests; then exits with libtest's code (0, or 101 when a test
/// failed). See [`crate::harness`] for the environment variables it reads.
pub fn main() -> ! {
    let code = run(Arguments::from_args());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// Runs the harness with parsed arguments and returns the process exit code.
pub fn run(args: Arguments) -> i32 {
    let tests = registered();
    if args.list {
        // Registry only: names and ignore flags. Never touches a builder or the environment.
        let trials = tests
            .iter()
            .map(|(name, def)| Trial::test(name.clone(), || Ok(())).with_ignored_flag(def.ignored))
            .collect();
        let _ = libtest_mimic::run(&args, trials);
        return 0;
    }

    // Which tests run and which are reported ignored, exactly as libtest-mimic decides, except
    // that an exact filter naming a test with instances (an IDE's "Run Test" on the fn) selects
    // every instance of it.
    let mut args = args;
    let mut tests = tests;
    let by_fn = selected_by_fn_name(&args, &tests);
    if !by_fn.is_empty() {
        tests.retain(|(name, def)| {
            by_fn.contains(name)
                || !args.is_filtered_out(
                    &Trial::test(name.clone(), || Ok(())).with_ignored_flag(def.ignored),
                )
        });
        args.filter = None;
        args.exact = false;
    }
    let mut to_run = Vec::new();
    let mut ignored = Vec::new();
    for (name, def) in &tests {
        let probe = Trial::test(name.clone(), || Ok(())).with_ignored_flag(def.ignored);
        if args.is_filtered_out(&probe) {
            continue;
        }
        if args.is_ignored(&probe) {
            ignored.push((name.clone(), *def));
        } else {
            to_run.push((name.clone(), *def));
        }
    }

    let (config, results) = match setup() {
        Ok(setup) => setup,
        Err(err) => {
            eprintln!("error: failed to {}", one_line_chain(&err));
            return EXIT_SETUP;
        }
    };
    let sink = Sink::new(results);
    let mut ctx = RecordContext {
        suite: suite_name(&config, &tests),
        ..RecordContext::default()
    };

    let mut session = None;
    if !to_run.is_empty() {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("buildtest")
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                let err = SetupError::Runtime(err);
                eprintln!("error: failed to {}", one_line_chain(&err));
                return EXIT_SETUP;
            }
        };
        runtime.spawn(on_interrupt(
            sink.clone(),
            ctx.suite.clone(),
            config.junit.clone(),
        ));
        let mut cache = RunCache::default();
        let mut solver = CheckSolver::control();
        let backend = if crate::harness::nodes::node_choices(&config).is_empty() {
            match runtime.block_on(Backend::connect(&config)) {
                Ok(backend) => {
                    eprintln!("buildtest: {}", backend.describe());
                    ctx.builder = Some(backend.builder_name());
                    ctx.strategy = Some(backend.strategy_name());
                    Ok(Arc::new(Nodes::single(Arc::new(backend))))
                }
                Err(err) => {
                    eprintln!("error: failed to {}", one_line_chain(&err));
                    Err(err)
                }
            }
        } else {
            // Several nodes: each record names the node its check ran on (set per test).
            runtime
                .block_on(Nodes::connect(&config))
                .map(Arc::new)
                .inspect(|nodes| {
                    // One node left: its records name it (with several, each test's node does).
                    ctx.builder = Some(nodes.primary().name.clone());
                    ctx.strategy = Some(nodes.primary().backend.strategy_name());
                })
                .inspect_err(|err| eprintln!("error: failed to {}", one_line_chain(err)))
        };
        if let Ok(nodes) = &backend {
            // Cache entries the builder cannot use are refused before anything runs.
            match runtime.block_on(RunCache::plan(&config, nodes, &ctx.suite)) {
                Ok(plan) => cache = plan,
                Err(err) => {
                    eprintln!("error: failed to {}", one_line_chain(&err));
                    return EXIT_SETUP;
                }
            }
            for note in &cache.notes {
                eprintln!("{}{note}", crate::protocol::events::CACHE_LINE);
            }
            // A solve path the builder cannot take is refused before anything runs.
            match runtime.block_on(CheckSolver::plan(&config, nodes)) {
                Ok(planned) => solver = planned,
                Err(err) => {
                    eprintln!("error: failed to {}", one_line_chain(&err));
                    return EXIT_SETUP;
                }
            }
            for line in solver.lines() {
                eprintln!("{}{line}", crate::protocol::events::SOLVE_LINE);
            }
        }
        session = Some(Session::start(
            runtime,
            backend,
            &config,
            &ctx,
            &sink,
            &to_run,
            cache,
            Arc::new(solver),
        ));
    }
    for (name, def) in &ignored {
        record_ignored(&ctx, &sink, name, def);
    }

    let show_output = args.nocapture || args.show_output;
    let mut handles = session
        .as_mut()
        .map(|s| std::mem::take(&mut s.handles))
        .unwrap_or_default();
    let trials = tests
        .iter()
        .map(|(name, def)| trial(name, def, handles.remove(name), show_output))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);

    // The run's gateway builds end once every check has its record.
    if let Some(session) = session.as_ref() {
        session.runtime.block_on(session.solver.finish());
    }
    // The cache export: once, after every check, before the session closes.
    let exported = session.as_mut().is_none_or(Session::export_cache);
    if let Some(session) = session.as_mut() {
        session.close_inputs();
    }
    let records = sink.records();
    if let Some(path) = &config.junit {
        let suite = ctx.suite.as_str();
        if let Err(err) = junit::write([(suite, records.as_slice())], path) {
            eprintln!("error: failed to {}", one_line_chain(&err));
        }
    }
    if !records.is_empty() {
        eprintln!("{}", summary(&records));
        if let Some(lines) = crate::harness::nodes::per_node(&records) {
            eprintln!("{lines}");
        }
    }
    if let Some(session) = session {
        session.runtime.shutdown_background();
    }
    if conclusion.has_failed() {
        exit::TESTS_FAILED
    } else if !exported {
        exit::INTERNAL
    } else {
        exit::SUCCESS
    }
}

/// Reads the settings and opens the results file: everything that must be right before anything
/// connects (a setup error otherwise).
fn setup() -> Result<(SuiteSettings, Option<ResultsFile>), SetupError> {
    let settings = SuiteSettings::from_env()?;
    let results = settings
        .results
        .as_ref()
        .map(ResultsFile::open)
        .transpose()?;
    Ok((settings, results))
}

/// The instances selected because an `--exact` filter names their fn (`path::fn` selects
/// `path::fn::debian`, `path::fn::busybox`, …) while not naming them; `--skip` still applies.
fn selected_by_fn_name(args: &Arguments, tests: &[(String, &'static TestDef)]) -> Vec<String> {
    if !args.exact || args.filter.is_none() {
        return Vec::new();
    }
    tests
        .iter()
        .filter(|(name, def)| {
            let Some(label) = registry::instance_label(def, name) else {
                return false;
            };
            let instance = Trial::test(name.clone(), || Ok(()));
            let fn_name = &name[..name.len() - label.len() - 2];
            let by_fn = Trial::test(fn_name.to_owned(), || Ok(()));
            args.is_filtered_out(&instance) && !args.is_filtered_out(&by_fn)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// On Ctrl-C (SIGINT): write the JUnit file with the checks that had finished, say so, and exit
/// [`EXIT_INTERRUPTED`]. Exiting closes the connection, so the builder cancels the open solves.
async fn on_interrupt(sink: Sink, suite: String, junit_path: Option<std::path::PathBuf>) {
    if tokio::signal::ctrl_c().await.is_err() {
        // No handler could be installed: SIGINT keeps its default action.
        return;
    }
    sink.exit_with(EXIT_INTERRUPTED, |records| {
        // An export writing a file leaves no partial file behind.
        crate::client::export::remove_all_temps();
        let finished = crate::protocol::count(records.len(), "check");
        eprintln!("\nbuildtest: interrupted; {finished} had finished");
        if let Some(path) = &junit_path {
            match junit::write([(suite.as_str(), records.as_slice())], path) {
                Ok(()) => eprintln!(
                    "buildtest: JUnit with the finished checks: {}",
                    path.display()
                ),
                Err(err) => eprintln!("error: failed to {}", one_line_chain(&err)),
            }
        }
        if !records.is_empty() {
            eprintln!("{}", summary(&records));
        }
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    })
}

fn trial(
    name: &str,
    def: &'static TestDef,
    handle: Option<crate::harness::run::TestHandle>,
    show_output: bool,
) -> Trial {
    let test_name = name.to_owned();
    Trial::test(name, move || {
        let Some(handle) = handle else {
            return Err(Failed::from("internal error: the test was not started"));
        };
        let records = handle.wait();
        if show_output {
            let mut text = String::new();
            for r in &records {
                let cached = if r.cached { ", cached" } else { "" };
                let _ = writeln!(
                    text,
                    "buildtest: {test_name} check {} `{}`: {}{cached}",
                    r.check,
                    r.label,
                    r.outcome.as_str()
                );
                for (stream, log) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                    if !log.is_empty() {
                        let _ = write!(text, "--- {stream} ---\n{log}");
                        if !log.ends_with('\n') {
                            text.push('\n');
                        }
                    }
                }
            }
            eprint!("{text}");
        }
        verdict(&records).map_err(Failed::from)
    })
    .with_ignored_flag(def.ignored)
}

/// The suite name: `BUILDTEST_SUITE`, else `<CARGO_PKG_NAME>::<crate>` when cargo runs the
/// binary, else the crate name (from the registry, or the executable's name).
fn suite_name(config: &SuiteSettings, tests: &[(String, &'static TestDef)]) -> String {
    if let Some(suite) = &config.suite {
        return suite.clone();
    }
    let krate = tests
        .first()
        .map(|(_, def)| def.crate_name().to_owned())
        .or_else(exe_stem)
        .unwrap_or_else(|| "buildtest".to_owned());
    match std::env::var("CARGO_PKG_NAME") {
        Ok(pkg) if !pkg.is_empty() => format!("{pkg}::{krate}"),
        _ => krate,
    }
}

/// The executable's name without cargo's `-<16 hex>` suffix.
fn exe_stem() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let stem = exe.file_stem()?.to_string_lossy().into_owned();
    Some(match stem.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            base.to_owned()
        }
        _ => stem,
    })
}
