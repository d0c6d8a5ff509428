//! # cargo-buildtest
//!
//! The `cargo buildtest` subcommand: finds every buildtest suite (a `harness = false` test
//! target of a package that depends on `buildtest`) in the selected packages, builds them with
//! `cargo test --no-run`, resolves and probes one builder, runs every suite against it, shows
//! each check's outcome and writes one JUnit file for the whole run.
//!
//! The binary's `main` only calls [`main_impl`]. Exit codes are documented in [`errors`].
//! Everything the suites do (building LLB, solving, judging checks, the record format, JUnit
//! rendering) lives in the `buildtest` library; this crate only drives it and presents results.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod args;
pub mod builder;
pub mod config;
pub mod console;
pub mod discover;
pub mod errors;
pub mod nodes;
pub mod run;
pub mod summary;

use std::time::Instant;

use clap::Parser;

use crate::args::{Args, Cli};
use crate::config::{Settings, load_layers, process_env};
use crate::console::Console;
use crate::discover::Workspace;
use crate::errors::{ExpectedError, exit_codes, render_chain};
use crate::run::{Planned, RunOptions};
use crate::summary::Summary;
use buildtest::protocol::{count, plural};

/// Parses the command line, runs, and returns the process exit code (see [`errors`]).
pub fn main_impl() -> i32 {
    main_with(std::env::args_os())
}

/// [`main_impl`] with explicit arguments (`argv[0]` first, then `buildtest`, then the options).
pub fn main_with<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Cli::try_parse_from(argv) {
        Ok(Cli::Buildtest(args)) => args,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                exit_codes::USAGE
            } else {
                exit_codes::SUCCESS
            };
        }
    };
    let console = Console::new(args.message_format, args.progress, args.color);
    match execute(&args, &console) {
        Ok(()) => exit_codes::SUCCESS,
        Err(err) => {
            console.finish_bar();
            if !err.already_reported() {
                console.error(&render_chain(&err));
            }
            err.process_exit_code()
        }
    }
}

/// The whole command: discover, build, list, then (unless `--list`) connect and run.
pub fn execute(args: &Args, console: &Console) -> Result<(), ExpectedError> {
    let workspace = Workspace::load(&args.cargo)?;
    let layers = load_layers(workspace.root(), &workspace.metadata.workspace_metadata)?;
    let default_junit = workspace
        .target_dir(&args.cargo)
        .join("buildtest")
        .join("junit.xml");
    let settings = Settings::resolve(args, &process_env, &layers, workspace.root(), default_junit)?;

    let (targets, skipped) = workspace.test_targets(&args.cargo)?;
    if !skipped.is_empty() {
        console.status(
            "Skipping",
            &format!(
                "{} with libtest's harness (not buildtest suites; `cargo test` runs them): {}",
                plural(skipped.len(), "test target"),
                skipped.join(", ")
            ),
        );
    }
    if targets.is_empty() {
        console.warn(
            "no buildtest suites in the selected packages (a suite is a `harness = false` [[test]] \
             of a package that depends on `buildtest`)",
        );
        return Ok(());
    }
    if !args.list {
        // A stale report must never be mistaken for this run's.
        let _ = std::fs::remove_file(&settings.junit);
    }
    let packages: std::collections::BTreeSet<&str> =
        targets.iter().map(|t| t.package.as_str()).collect();
    console.status(
        "Building",
        &format!(
            "{} in {}: {}",
            count(targets.len(), "suite"),
            count(packages.len(), "package"),
            targets
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let color = match args.color {
        args::Color::Auto => None,
        args::Color::Always => Some("always"),
        args::Color::Never => Some("never"),
    };
    let suites = discover::build(&args.cargo, &targets, color)?;

    let selection = discover::selection_args(args.ignored, args.include_ignored, &args.test_args);
    let mut plan = Vec::new();
    for suite in suites {
        let tests = discover::list(&suite, &selection)?;
        plan.push(Planned { suite, tests });
    }
    if args.list {
        for p in &plan {
            console.list(&p.suite.target.name(), &p.tests);
        }
        return Ok(());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ExpectedError::Io {
            action: "start the async runtime",
            path: std::path::PathBuf::new(),
            source,
        })?;
    runtime.block_on(run_phase(args, &settings, &plan, console))
}

async fn run_phase(
    args: &Args,
    settings: &Settings,
    plan: &[Planned],
    console: &Console,
) -> Result<(), ExpectedError> {
    // The summary's time is the run's: connecting, probing and the suites (not compiling).
    let started = Instant::now();
    let interrupt = run::interrupt_signal();
    let connected = if buildtest::harness::nodes::node_choices(&settings.suite).is_empty() {
        builder::connect(settings).await?
    } else {
        nodes::connect(settings).await?
    };
    let mut header = connected.header.clone();
    header.suites = plan.len();
    header.tests = plan.iter().map(|p| p.tests.len()).sum();
    console.header(&header);

    let opts = RunOptions {
        selection: discover::selection_args(args.ignored, args.include_ignored, &args.test_args),
        suite: connected.suite.clone(),
        no_fail_fast: args.no_fail_fast,
    };
    let mut summary = Summary::default();
    let ran = run::run_suites(plan, &opts, console, &mut summary, interrupt).await;

    // JUnit first: it must exist whatever happens next (failures, interrupts, crashes).
    let junit = &settings.junit;
    let written = buildtest::report::junit::write(summary.by_suite(), junit);
    console.finish_bar();
    let problems = summary.problems();
    console.failure_details(&problems);
    let mut extra = Vec::new();
    let all = summary.by_suite();
    for load in buildtest::harness::nodes::loads(all.iter().flat_map(|(_, r)| r.iter())) {
        extra.push(format!("{:>12} {}: {}", "Node", load.node, load.describe()));
    }
    match &written {
        Ok(()) => extra.push(format!("{:>12} {}", "JUnit", junit.display())),
        Err(err) => console.error(&render_chain(err)),
    }
    console.summary(&summary, started.elapsed(), &extra);
    ran?;
    if let Err(err) = written {
        return Err(ExpectedError::Junit(err));
    }
    if summary.interrupted {
        return Err(ExpectedError::Interrupted);
    }
    if !summary.ok() {
        return Err(ExpectedError::TestsFailed {
            failed: summary.failed(),
            errored: summary.errored(),
        });
    }
    Ok(())
}

/// README's copies of the protocol's tables (settings, exit codes): a test fails when they drift;
/// `BUILDTEST_BLESS=1 cargo test -p cargo-buildtest readme` rewrites them.
#[cfg(test)]
mod readme {
    use buildtest::protocol::{exit, settings};

    fn blocks() -> [(&'static str, String); 3] {
        [
            ("settings table", settings::markdown()),
            (
                "cargo buildtest exit codes",
                exit::markdown(exit::CARGO_BUILDTEST),
            ),
            (
                "suite binary exit codes",
                exit::markdown(exit::SUITE_BINARY),
            ),
        ]
    }

    #[test]
    fn readme_holds_the_protocol_tables() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let mut text = std::fs::read_to_string(path).unwrap();
        let bless = std::env::var_os("BUILDTEST_BLESS").is_some();
        let mut drifted = Vec::new();
        for (name, want) in blocks() {
            let begin = format!("<!-- {name}: begin -->\n");
            let end = format!("<!-- {name}: end -->");
            let start = text
                .find(&begin)
                .unwrap_or_else(|| panic!("no `{begin}` in README"))
                + begin.len();
            let stop = start
                + text[start..]
                    .find(&end)
                    .unwrap_or_else(|| panic!("no `{end}` in README"));
            if text[start..stop] != want {
                drifted.push(format!(
                    "--- {name}: README has\n{}--- the protocol says\n{want}",
                    &text[start..stop]
                ));
                text.replace_range(start..stop, &want);
            }
        }
        if bless {
            std::fs::write(path, text).unwrap();
            return;
        }
        assert!(
            drifted.is_empty(),
            "README drifted from buildtest::protocol (BUILDTEST_BLESS=1 rewrites it):\n{}",
            drifted.join("\n")
        );
    }
}
