//! Command-line arguments of `cargo buildtest` (clap, cargo-subcommand style).
//!
//! Cargo runs `cargo-buildtest buildtest ARGS…` for `cargo buildtest ARGS…`, so the parser is
//! `cargo` with one subcommand, `buildtest` (clap's cargo-subcommand pattern, as nextest does).

use std::path::PathBuf;

use buildtest::protocol::exit;
use buildtest::protocol::settings::{
    BUILDKIT_HOST, BUILDX_BUILDER, CACHE_FROM, CACHE_TO, DEFAULT_JOBS, DEFAULT_TIMEOUT, EXPORT,
    JOBS, JUNIT, NO_CACHE, NODES, Origin, PLATFORM, Raw, ReadBy, SETTINGS, SOLVE, STRATEGY,
    Setting, TIMEOUT, TLS_CA_CERT, TLS_CERT, TLS_KEY, TLS_SERVER_NAME,
};
use clap::{Args as ClapArgs, Parser, ValueEnum};

/// `cargo`, as far as this binary is concerned: one subcommand.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::Styles::plain())]
pub enum Cli {
    /// Build the workspace's buildtest suites and run their checks on a BuildKit builder.
    #[command(version, after_help = after_help())]
    Buildtest(Args),
}

/// The text after the options: taken from the protocol's settings and exit-code tables.
pub fn after_help() -> String {
    let vars: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| s.read_by == ReadBy::Both)
        .map(|s| s.var)
        .collect();
    let codes: Vec<String> = exit::CARGO_BUILDTEST
        .iter()
        .map(|c| format!("  {:>3}  {}", c.code, c.meaning))
        .collect();
    format!(
        "Arguments after `--` go to every suite binary: test-name filters, `--exact`, `--skip NAME`.\n\n\
         Settings are taken from flags, then the environment ({}), then `.config/buildtest.toml` \
         and `[workspace.metadata.buildtest]`, then defaults.\n\nExit codes:\n{}",
        vars.join(", "),
        codes.join("\n")
    )
}

/// `--jobs`'s help, with the harness's default (the value is not a clap default: unset, the
/// environment and configuration files still apply).
fn jobs_help() -> String {
    format!("How many checks are solved concurrently per suite [default: {DEFAULT_JOBS}]")
}

/// `--timeout`'s help, with the harness's default.
fn timeout_help() -> String {
    format!(
        "Timeout of one check, in seconds (`90`, or with a unit: `90s`, `5m`) [default: {}s]",
        DEFAULT_TIMEOUT.as_secs()
    )
}

/// Everything `cargo buildtest` accepts.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct Args {
    /// Package selection and build options (passed on to cargo).
    #[command(flatten)]
    pub cargo: CargoOpts,

    /// List the tests of every selected suite instead of running them (never contacts a builder).
    #[arg(long, help_heading = "Run")]
    pub list: bool,
    /// Run only ignored tests.
    #[arg(long, conflicts_with = "include_ignored", help_heading = "Run")]
    pub ignored: bool,
    /// Run ignored tests as well as the others.
    #[arg(long, help_heading = "Run")]
    pub include_ignored: bool,
    /// Keep running the remaining suites after one has failing checks.
    #[arg(long, help_heading = "Run")]
    pub no_fail_fast: bool,
    /// How checks are attached to their input: auto (probe the builder), passthrough, or a
    /// fallback the builder client offers.
    #[arg(long, value_name = "STRATEGY", help_heading = "Run")]
    pub strategy: Option<String>,
    /// Re-run every check instead of reusing cached results (inputs are still cached).
    #[arg(long, help_heading = "Run")]
    pub no_cache: bool,
    /// How each check is solved: auto (default: inside one gateway build where the builder
    /// can, else one Control.Solve each), gateway, or control.
    #[arg(long, value_name = "PATH", help_heading = "Run")]
    pub solve: Option<String>,
    /// Perform the selected tests' gated exports (`Test::export`): each only when every check of
    /// its test passed. Without it nothing is exported.
    #[arg(long, help_heading = "Run")]
    pub export: bool,
    /// How many checks are solved concurrently per suite [default: `DEFAULT_JOBS`].
    #[arg(long, short = 'j', value_name = "N", help_heading = "Run", help = jobs_help())]
    pub jobs: Option<String>,
    /// Timeout of one check, in seconds (`90`, or with a unit: `90s`, `5m`)
    /// [default: `DEFAULT_TIMEOUT`].
    #[arg(long, value_name = "DURATION", help_heading = "Run", help = timeout_help())]
    pub timeout: Option<String>,
    /// The platform inputs are solved for unless they pin their own: linux/amd64 (default) or
    /// linux/arm64; each check runs the probe for its input's platform.
    #[arg(long, value_name = "PLATFORM", help_heading = "Run")]
    pub platform: Option<String>,
    /// Export the checks' cache after the run, in buildx's syntax: type=local,dest=DIR,
    /// type=registry,ref=NAME[,mode=max], type=inline (repeatable).
    #[arg(long, value_name = "ENTRY", help_heading = "Cache")]
    pub cache_to: Vec<String>,
    /// Import cache on every solve: type=local,src=DIR, type=registry,ref=NAME (repeatable).
    #[arg(long, value_name = "ENTRY", help_heading = "Cache")]
    pub cache_from: Vec<String>,

    /// The builder's address: docker+unix://PATH (a Docker engine), unix://PATH (a buildkitd),
    /// tcp://HOST:PORT, docker-container://NAME … Repeat it (or mix it with --builder) to run on
    /// several builders (BUILDTEST_NODES).
    #[arg(long, value_name = "ADDRESS", help_heading = "Builder")]
    pub addr: Vec<String>,
    /// A buildx builder name (from the buildx store). Repeat it (or mix it with --addr) to run on
    /// several builders (BUILDTEST_NODES).
    #[arg(long, value_name = "NAME", help_heading = "Builder")]
    pub builder: Vec<String>,
    /// CA certificate for tcp:// builders.
    #[arg(long, value_name = "PATH", help_heading = "Builder")]
    pub tlscacert: Option<PathBuf>,
    /// Client certificate for tcp:// builders.
    #[arg(long, value_name = "PATH", help_heading = "Builder")]
    pub tlscert: Option<PathBuf>,
    /// Client key for tcp:// builders.
    #[arg(long, value_name = "PATH", help_heading = "Builder")]
    pub tlskey: Option<PathBuf>,
    /// Server name to verify the builder's certificate against.
    #[arg(long, value_name = "NAME", help_heading = "Builder")]
    pub tlsservername: Option<String>,

    /// Where to write the JUnit report [default: <target-dir>/buildtest/junit.xml].
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub junit: Option<PathBuf>,
    /// Console output format.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, help_heading = "Output")]
    pub message_format: MessageFormat,
    /// Progress display: a live bar on a terminal, plain lines, or only failures and the summary.
    #[arg(long, value_enum, default_value_t = Progress::Auto, help_heading = "Output")]
    pub progress: Progress,
    /// Coloring of the console output.
    #[arg(long, value_enum, default_value_t = Color::Auto, value_name = "WHEN", help_heading = "Output")]
    pub color: Color,

    /// Arguments for the suite binaries: test-name filters, `--exact`, `--skip NAME`.
    #[arg(last = true, value_name = "TEST ARGS")]
    pub test_args: Vec<String>,
}

impl Args {
    /// The one `--addr` (or `--builder`) value when the run names one builder.
    fn single_node(&self, values: &[String]) -> Option<String> {
        (self.addr.len() + self.builder.len() == 1)
            .then(|| values.first().cloned())
            .flatten()
    }

    /// `BUILDTEST_NODES` from repeated `--addr`/`--builder` (addresses first, then builder
    /// names): `None` unless they name two builders or more.
    fn nodes(&self) -> Option<String> {
        let all: Vec<String> = self.addr.iter().chain(&self.builder).cloned().collect();
        (all.len() > 1).then(|| all.join(","))
    }

    /// The value a flag gives `setting`, as the protocol's reader takes it (`None`: the flag was
    /// not given, or the setting has none).
    pub fn flag_value(&self, setting: &Setting) -> Option<Raw> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let text = match setting.var {
            v if v == BUILDKIT_HOST.var => self.single_node(&self.addr),
            v if v == BUILDX_BUILDER.var => self.single_node(&self.builder),
            v if v == NODES.var => self.nodes(),
            v if v == STRATEGY.var => self.strategy.clone(),
            v if v == JOBS.var => self.jobs.clone(),
            v if v == TIMEOUT.var => self.timeout.clone(),
            v if v == PLATFORM.var => self.platform.clone(),
            v if v == NO_CACHE.var => self.no_cache.then(|| "true".to_owned()),
            v if v == SOLVE.var => self.solve.clone(),
            v if v == EXPORT.var => self.export.then(|| "true".to_owned()),
            v if v == JUNIT.var => path(&self.junit),
            v if v == TLS_CA_CERT.var => path(&self.tlscacert),
            v if v == TLS_CERT.var => path(&self.tlscert),
            v if v == TLS_KEY.var => path(&self.tlskey),
            v if v == TLS_SERVER_NAME.var => self.tlsservername.clone(),
            v if v == CACHE_TO.var => (!self.cache_to.is_empty()).then(|| self.cache_to.join(";")),
            v if v == CACHE_FROM.var => {
                (!self.cache_from.is_empty()).then(|| self.cache_from.join(";"))
            }
            _ => None,
        }?;
        Some(Raw {
            text,
            origin: Origin::Flag(setting.flag?),
        })
    }
}

/// Options cargo itself understands, forwarded to `cargo metadata` and `cargo test --no-run`.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct CargoOpts {
    /// Package(s) to test (default: the workspace's default members).
    #[arg(
        long,
        short = 'p',
        value_name = "SPEC",
        help_heading = "Package selection"
    )]
    pub package: Vec<String>,
    /// Test every package in the workspace.
    #[arg(long, help_heading = "Package selection")]
    pub workspace: bool,
    /// Exclude packages from --workspace.
    #[arg(
        long,
        value_name = "SPEC",
        requires = "workspace",
        help_heading = "Package selection"
    )]
    pub exclude: Vec<String>,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH", help_heading = "Package selection")]
    pub manifest_path: Option<PathBuf>,
    /// Space- or comma-separated features to activate.
    #[arg(
        long,
        short = 'F',
        value_name = "FEATURES",
        help_heading = "Feature selection"
    )]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long, help_heading = "Feature selection")]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long, help_heading = "Feature selection")]
    pub no_default_features: bool,
    /// Build the suites in release mode.
    #[arg(long, short = 'r', help_heading = "Compilation")]
    pub release: bool,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIR", help_heading = "Compilation")]
    pub target_dir: Option<PathBuf>,
    /// Require Cargo.lock to be up to date.
    #[arg(long, help_heading = "Manifest")]
    pub locked: bool,
    /// Run without accessing the network.
    #[arg(long, help_heading = "Manifest")]
    pub offline: bool,
}

impl CargoOpts {
    /// Flags shared by `cargo metadata` and `cargo test`.
    pub fn manifest_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(path) = &self.manifest_path {
            out.push("--manifest-path".to_owned());
            out.push(path.display().to_string());
        }
        if self.locked {
            out.push("--locked".to_owned());
        }
        if self.offline {
            out.push("--offline".to_owned());
        }
        out
    }

    /// Feature flags, for `cargo metadata` and `cargo test`.
    pub fn feature_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for features in &self.features {
            out.push("--features".to_owned());
            out.push(features.clone());
        }
        if self.all_features {
            out.push("--all-features".to_owned());
        }
        if self.no_default_features {
            out.push("--no-default-features".to_owned());
        }
        out
    }
}

/// `--message-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Lines for people (on stderr).
    #[default]
    Human,
    /// One JSON object per line on stdout, by `type`: header, suite-started, check,
    /// suite-finished, summary (suite-list with --list); other lines stay on stderr.
    Json,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// A live bar on a terminal; plain lines when `CI` is set or stderr is not a terminal.
    #[default]
    Auto,
    /// Always the live bar.
    Tty,
    /// One line per check.
    Plain,
    /// Only failures, errors and the summary.
    Quiet,
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Color on a terminal unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Args {
        let mut argv = vec!["cargo", "buildtest"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli::Buildtest(args)) => args,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn filters_after_double_dash_go_to_the_suites() {
        let a = parse(&["-p", "a", "-p", "b", "--list", "--", "images::", "--exact"]);
        assert_eq!(a.cargo.package, ["a", "b"]);
        assert!(a.list);
        assert_eq!(a.test_args, ["images::", "--exact"]);
    }

    #[test]
    fn builder_flags_and_formats_parse() {
        let a = parse(&[
            "--addr",
            "tcp://127.0.0.1:1234",
            "--tlscacert",
            "ca.pem",
            "--message-format",
            "json",
            "--progress",
            "quiet",
            "--color",
            "never",
            "-j",
            "3",
            "--timeout",
            "5m",
        ]);
        assert_eq!(a.addr, ["tcp://127.0.0.1:1234"]);
        assert_eq!(a.message_format, MessageFormat::Json);
        assert_eq!(a.progress, Progress::Quiet);
        assert_eq!(a.color, Color::Never);
        assert_eq!(a.jobs.as_deref(), Some("3"));
        assert_eq!(a.timeout.as_deref(), Some("5m"));
    }

    /// `cargo buildtest --help` (`long`: the long form).
    fn help(long: bool) -> String {
        let mut cli = Cli::command();
        let sub = cli.find_subcommand_mut("buildtest").unwrap();
        let help = if long {
            sub.render_long_help()
        } else {
            sub.render_help()
        };
        help.to_string()
    }

    #[test]
    fn the_help_states_the_real_defaults() {
        let help = help(false);
        let jobs = format!("[default: {DEFAULT_JOBS}]");
        let timeout = format!("[default: {}s]", DEFAULT_TIMEOUT.as_secs());
        assert!(help.contains(&jobs), "{jobs} missing from:\n{help}");
        assert!(help.contains(&timeout), "{timeout} missing from:\n{help}");
        // The values themselves, as README and the header state them.
        assert!(help.contains("[default: 16]"), "{help}");
        assert!(help.contains("[default: 300s]"), "{help}");
        assert!(!help.contains("CPUs"), "{help}");
    }

    #[test]
    fn every_setting_with_a_flag_has_that_flag_and_reads_it() {
        let cli = Cli::command();
        let sub = cli.find_subcommand("buildtest").unwrap();
        let longs: Vec<String> = sub
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        let all = parse(&[
            "--addr",
            "a://x",
            "--strategy",
            "direct",
            "-j",
            "2",
            "--timeout",
            "5m",
            "--no-cache",
            "--solve",
            "gateway",
            "--export",
            "--junit",
            "j.xml",
            "--tlscacert",
            "ca",
            "--tlscert",
            "c",
            "--tlskey",
            "k",
            "--tlsservername",
            "n",
            "--cache-to",
            "type=inline",
            "--cache-from",
            "type=local,src=/c",
            "--platform",
            "linux/arm64",
        ]);
        let named = parse(&["--builder", "bx"]);
        let several = parse(&["--addr", "unix:///a", "--addr", "unix:///b"]);
        for setting in SETTINGS {
            let Some(flag) = setting.flag else { continue };
            assert!(longs.iter().any(|l| l == flag), "{flag} is not a flag");
            let raw = all
                .flag_value(setting)
                .or_else(|| named.flag_value(setting))
                .or_else(|| several.flag_value(setting));
            assert_eq!(
                raw.map(|r| r.origin),
                Some(Origin::Flag(flag)),
                "{flag} is not read for {}",
                setting.var
            );
        }
    }

    #[test]
    fn the_help_lists_the_settings_and_the_exit_codes_of_the_one_definition() {
        let help = help(true);
        for s in SETTINGS.iter().filter(|s| s.read_by == ReadBy::Both) {
            assert!(help.contains(s.var), "{} missing from:\n{help}", s.var);
        }
        for code in exit::CARGO_BUILDTEST {
            let line = format!("{:>3}  {}", code.code, code.meaning);
            let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
            let want = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&want), "{want} missing from:\n{help}");
        }
    }

    #[test]
    fn repeated_builder_flags_name_several_nodes() {
        let one = parse(&["--addr", "unix:///x"]);
        assert_eq!(one.flag_value(&BUILDKIT_HOST).unwrap().text, "unix:///x");
        assert!(one.flag_value(&NODES).is_none());
        let two = parse(&[
            "--addr",
            "unix:///x",
            "--builder",
            "b",
            "--addr",
            "tcp://h:1",
        ]);
        assert!(two.flag_value(&BUILDKIT_HOST).is_none());
        assert!(two.flag_value(&BUILDX_BUILDER).is_none());
        assert_eq!(
            two.flag_value(&NODES).unwrap().text,
            "unix:///x,tcp://h:1,b"
        );
    }

    #[test]
    fn conflicting_flags_are_usage_errors() {
        let argv = ["cargo", "buildtest", "--ignored", "--include-ignored"];
        assert!(Cli::try_parse_from(argv).is_err());
        let argv = ["cargo", "buildtest", "--exclude", "a"];
        assert!(Cli::try_parse_from(argv).is_err());
    }
}
