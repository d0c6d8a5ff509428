//! Shared helpers: the two real Docker engines, graphs, and assertions.

use std::time::Duration;

use buildtest::client::{Client, Resolved, SolveOptions, SolveReport};
use buildtest::llb::{NetMode, Platform, State};

/// The offline base image both engines have.
pub(crate) const BUSYBOX: &str = "buildtest/busybox:latest";

/// One of the project's real engines.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    /// `docker20` or `docker26`.
    pub(crate) name: &'static str,
    /// Its Docker API socket (`unix://…`).
    pub(crate) host: String,
}

impl Engine {
    /// Docker 20.10 (BuildKit v0.8.3).
    pub(crate) fn docker20() -> Self {
        Self {
            name: "docker20",
            host: engine_host("BUILDTEST_DOCKER20_HOST"),
        }
    }

    /// Docker 26.1.5 (BuildKit v0.13.2).
    pub(crate) fn docker26() -> Self {
        Self {
            name: "docker26",
            host: engine_host("BUILDTEST_DOCKER26_HOST"),
        }
    }

    /// Both engines.
    pub(crate) fn both() -> [Self; 2] {
        [Self::docker20(), Self::docker26()]
    }

    /// The `--addr` naming this engine explicitly.
    pub(crate) fn addr(&self) -> String {
        format!("docker+{}", self.host)
    }

    /// Connect, or fail the test saying how to start the engines.
    pub(crate) async fn connect(&self) -> Client {
        let resolved = Resolved::addr(&self.addr()).unwrap();
        match Client::connect(&resolved).await {
            Ok(client) => client,
            Err(e) => panic!(
                "engine {} is not reachable at {}; start the project's builders with \
                 `bash scripts/builders.sh up`.\n{e}",
                self.name, self.host
            ),
        }
    }
}

/// The engine's host from the environment, else from `bash scripts/builders.sh env`.
fn engine_host(var: &str) -> String {
    if let Ok(host) = std::env::var(var)
        && !host.is_empty()
    {
        return host;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/builders.sh");
    let out = std::process::Command::new("bash")
        .args([script, "env"])
        .output()
        .unwrap_or_else(|e| {
            panic!("run {script} env: {e}; set {var} or run `bash scripts/builders.sh up`")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("export {var}=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim_matches(['"', '\'']).to_owned())
        .unwrap_or_else(|| panic!("{var} is not set and `bash scripts/builders.sh env` does not print it; run `bash scripts/builders.sh up`"))
}

/// A unique string, so graphs are not answered from an earlier run's cache.
pub(crate) fn nonce() -> String {
    buildtest::client::new_ref()
}

/// The busybox image.
pub(crate) fn busybox() -> State {
    State::image(BUSYBOX)
}

/// An exec on busybox without network.
pub(crate) fn sh(script: &str) -> State {
    busybox()
        .run(["sh", "-c", script])
        .network(NetMode::None)
        .root()
}

/// Marshal for linux/amd64 and return the proto plus the root (head) digest.
pub(crate) fn marshal(state: &State) -> (buildtest::proto::pb::Definition, String) {
    let def = state.marshal(&Platform::linux_amd64()).unwrap();
    let head = def.head().unwrap().to_owned();
    (def.into_proto(), head)
}

/// Solve with a generous timeout and return the report.
pub(crate) async fn solve(client: &Client, state: &State) -> SolveReport {
    let (def, _) = marshal(state);
    let options = SolveOptions {
        timeout: Some(Duration::from_secs(120)),
        ..SolveOptions::default()
    };
    client.solve_and_wait(def, options).await
}

/// Assert the report succeeded, printing the error otherwise.
#[track_caller]
pub(crate) fn assert_ok(engine: &Engine, report: &SolveReport) {
    if let Err(e) = &report.result {
        panic!("{}: solve failed: {e}\n{e:?}", engine.name);
    }
}
