//! Several builders in one run (`--addr`/`--builder` repeated, `nodes =`, `BUILDTEST_NODES`):
//! `cargo buildtest` connects to and probes every node once for the header (each node with its
//! own BuildKit version and strategy) and hands the node list to the suites unchanged, with the
//! strategy as asked (each suite resolves `auto` per node: nodes may differ).

use buildtest::client::{ConnectOptions, Env, ProbeRequest, connect_and_probe, one_line_chain};
use buildtest::protocol::events::Header;
use buildtest::protocol::settings::{BuilderChoice, NODES, STRATEGY};

use crate::builder::{Connected, resolve_options};
use crate::config::Settings;
use crate::errors::ExpectedError;

/// Connects to every node: the header's builder line names each node with its BuildKit version
/// and strategy (or why it is left out). An error only when no node answers.
pub async fn connect(settings: &Settings) -> Result<Connected, ExpectedError> {
    let mut lines = Vec::new();
    let mut first: Option<Header> = None;
    let mut last_err = None;
    let nodes = buildtest::harness::nodes::expand(&buildtest::harness::nodes::node_choices(
        &settings.suite,
    ));
    for node in &nodes {
        let name = match node {
            BuilderChoice::Addr(a) | BuilderChoice::Named(a) => a.clone(),
        };
        let mut one = settings.clone();
        one.suite.builder = Some(node.clone());
        one.suite.nodes.clear();
        let request = ProbeRequest {
            resolve: resolve_options(&one, Env::from_process()),
            connect: ConnectOptions::default(),
            strategy: settings.suite.strategy,
            strategy_from: settings.shown_origin(&STRATEGY),
        };
        match connect_and_probe(&request).await {
            Ok(probed) => {
                let header = Header::new(&probed, NODES.var.to_owned(), &settings.suite);
                lines.push(format!(
                    "{name} (BuildKit {}, strategy {})",
                    header.buildkit.as_deref().unwrap_or("unknown"),
                    header.strategy
                ));
                first.get_or_insert(header);
            }
            Err(err) => {
                lines.push(format!(
                    "{name} (left out: failed to {})",
                    one_line_chain(&err)
                ));
                last_err = Some(err);
            }
        }
    }
    let Some(mut header) = first else {
        return Err(match last_err {
            Some(err) => ExpectedError::NoBuilder(err),
            None => ExpectedError::Config {
                path: std::path::PathBuf::from(NODES.var),
                message: "names no node".to_owned(),
            },
        });
    };
    header.builder = format!(
        "{} nodes, inputs placed by rendezvous hashing: {}",
        nodes.len(),
        lines.join("; ")
    );
    header.reason = match settings.shown_origin(&NODES) {
        Some(origin) if origin.contains(NODES.var) => origin,
        Some(origin) => format!("{origin}, as {}", NODES.var),
        None => NODES.var.to_owned(),
    };
    header.strategy = format!("per node ({})", settings.suite.strategy.name());
    header.strategy_reason = "each node's own, shown with it on the builder line".to_owned();
    header.buildkit = None;
    let mut suite = settings.suite.clone();
    suite.builder = None;
    suite.nodes = nodes;
    suite.junit = None;
    Ok(Connected { header, suite })
}
