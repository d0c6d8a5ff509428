//! Metadata checks in a run: evaluated by the runner from the input's image config, never solved.
//!
//! A [`Metadata`] check gets a record like any check (the results file, the JSON events, the
//! libtest line, a JUnit testcase) but no exec: [`input_config`] finds the config its input
//! carries, [`Metadata::evaluate`] compares it, and the record is a pass, a failure with the
//! expected-vs-actual report, or an error saying why there is no config. Each image is resolved
//! at most once per run ([`ConfigCache`]), however many tests read it.
//!
//! Which config an input carries is documented on [`Metadata`]: the one attached to it
//! ([`State::image_config`]), else, for a plain [`State::image`], the image's own config resolved
//! on the builder ([`Client::resolve_image_config`]; on a Docker engine its image-inspect API is
//! asked first, since the engine's store is where its BuildKit finds local images); scratch, local
//! directories, merges, diffs and steps on a state without a config carry none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::check::Metadata;
use crate::client::Client;
use crate::client::gateway::GatewayError;
use crate::llb::{ImageConfig, Origin, Platform, State};
use crate::report::{CheckRecord, ErrorKind, Outcome, TAIL_LIMIT, tail};

/// Why a metadata check has no config to read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataInputError {
    /// The input carries no image config (see [`Metadata`]).
    #[error(
        "read the input's image config: {why}; metadata() reads the config of a `State::image` \
         input, or of a state with one attached (`State::with_image_config`) and the run/file \
         steps built on it"
    )]
    NoConfig {
        /// What the input is, and why that has no config.
        why: String,
    },
    /// The image's config could not be resolved on the builder.
    #[error(transparent)]
    Resolve(#[from] GatewayError),
}

impl MetadataInputError {
    /// The record's error kind: a missing image is the input's fault, a gateway or connection
    /// failure the builder's, an input without a config the test's setup.
    fn kind(&self) -> ErrorKind {
        match self {
            MetadataInputError::NoConfig { .. } => ErrorKind::Setup,
            MetadataInputError::Resolve(
                GatewayError::ImageNotFound { .. } | GatewayError::InvalidImageConfig { .. },
            ) => ErrorKind::Input,
            MetadataInputError::Resolve(_) => ErrorKind::Builder,
        }
    }
}

/// The image configs resolved in this run, by normalized reference and platform: each resolved
/// once, concurrent checks on the same image waiting for the same answer.
#[derive(Debug, Default)]
pub(crate) struct ConfigCache {
    entries: Mutex<HashMap<String, Arc<Resolution>>>,
}

/// One image's config, resolved by the first check that asks.
type Resolution = OnceCell<Result<ImageConfig, GatewayError>>;

impl ConfigCache {
    async fn resolve(
        &self,
        client: &Client,
        reference: &str,
        platform: &Platform,
    ) -> Result<ImageConfig, GatewayError> {
        let key = format!("{reference}@{platform}");
        let cell = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(entries.entry(key).or_default())
        };
        cell.get_or_init(|| async {
            // A Docker engine's BuildKit resolves local images from the engine's own store: its
            // image-inspect API answers the same config in one HTTP call, where a gateway build
            // costs a Control.Solve and three LLBBridge calls. An image it does not have (or an
            // engine that fails to answer) goes through the gateway as everywhere else.
            if client.is_docker_engine()
                && let Ok(Some(resolved)) = client.docker_image_config(reference).await
            {
                return Ok(resolved.config);
            }
            client
                .resolve_image_config(reference, platform)
                .await
                .map(|resolved| resolved.config)
        })
        .await
        .clone()
    }
}

/// The config a metadata check on `input` reads, and a name for it in reports — the one place
/// that decides where a config comes from: the config attached to `input`, else, for a plain
/// image source, the image's config resolved on the builder (once per run, through `cache`).
/// Everything else has none.
pub(crate) async fn input_config(
    client: &Client,
    cache: &ConfigCache,
    input: &State,
    platform: &Platform,
) -> Result<(String, ImageConfig), MetadataInputError> {
    let origin = input.origin();
    if let Some(config) = input.image_config() {
        let subject = match &origin {
            Origin::Image { reference, .. } => reference.clone(),
            _ => "the input".to_owned(),
        };
        return Ok((subject, config.clone()));
    }
    let why = match origin {
        Origin::Image {
            reference,
            platform: pinned,
        } => {
            let platform = pinned.as_ref().unwrap_or(platform);
            let config = cache.resolve(client, &reference, platform).await?;
            return Ok((reference, config));
        }
        Origin::Scratch => "the input is scratch, which has no image config".to_owned(),
        Origin::Local { name } => format!(
            "the input is the local directory `{name}`, which is files only, with no image config"
        ),
        Origin::Op { kind: "merge" } => {
            "the input is a merge, which starts with no image config".to_owned()
        }
        Origin::Op { kind: "diff" } => {
            "the input is a diff, which starts with no image config".to_owned()
        }
        Origin::Op { kind } => format!(
            "the input is a `{kind}` step on a state that carries no image config (attach the \
             image's config with `State::with_image_config` before the steps, or check the image \
             itself)"
        ),
    };
    Err(MetadataInputError::NoConfig { why })
}

/// Evaluates `check` on `input`'s config and fills `record`: pass, fail (the report and a one-line
/// summary with expected and actual values) or error (why there is no config).
pub(crate) async fn evaluate(
    client: &Client,
    cache: &ConfigCache,
    input: &State,
    check: &Metadata,
    timeout: Duration,
    mut record: CheckRecord,
) -> CheckRecord {
    let started = Instant::now();
    record.started_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    let platform = Platform::linux_amd64();
    let config = tokio::time::timeout(timeout, input_config(client, cache, input, &platform)).await;
    match config {
        Err(_) => {
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Timeout);
            record.message = Some(format!(
                "the input's image config was not resolved within {timeout:.0?} \
                 (BUILDTEST_TIMEOUT or Test::timeout)"
            ));
        }
        Ok(Err(err)) => {
            let text = format!("failed to {}", crate::client::one_line_chain(&err));
            record.outcome = Outcome::Error;
            record.error_kind = Some(err.kind());
            record.message = Some(text.clone());
            record.report = Some(text);
        }
        Ok(Ok((subject, config))) => fill(&mut record, check, &subject, &config),
    }
    record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    record
}

/// The record of `check` evaluated on `config`.
fn fill(record: &mut CheckRecord, check: &Metadata, subject: &str, config: &ImageConfig) {
    match check.evaluate(subject, config) {
        Ok(report) if report.failed == 0 => {
            record.outcome = Outcome::Pass;
            record.error_kind = None;
        }
        Ok(report) => {
            record.outcome = Outcome::Fail;
            record.error_kind = None;
            record.message = Some(report.summary.clone());
            record.report = Some(tail(
                &format!("image config of {subject}:\n{}", report.details()),
                TAIL_LIMIT,
            ));
        }
        Err(err) => {
            // `validate` ran before the check was scheduled; kept for completeness.
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Setup);
            record.message = Some(format!("failed to {err}"));
        }
    }
}

/// How many of `records` are metadata checks that ran (not ignored).
pub(crate) fn count(records: &[CheckRecord]) -> usize {
    let prefix = format!("{}: ", crate::check::METADATA_LABEL);
    records
        .iter()
        .filter(|r| r.outcome != Outcome::Ignored)
        .filter(|r| r.label == crate::check::METADATA_LABEL || r.label.starts_with(&prefix))
        .count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check::metadata;

    #[test]
    fn a_failing_check_reports_every_mismatch_with_the_image_named() {
        let config = ImageConfig::from_image_json(
            br#"{"config":{"User":"app","WorkingDir":"/srv","Env":["A=1"]}}"#,
        )
        .unwrap();
        let mut r = CheckRecord::new("s", "t", 1, "metadata: user", Outcome::Error);
        fill(
            &mut r,
            &metadata().user("root").workdir("/srv").env("A", "2"),
            "docker.io/x/y:1",
            &config,
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.message.as_deref(),
            Some(
                "2 of 3 assertions failed: user: expected \"root\", got \"app\"; env A: expected \"2\", got \"1\""
            )
        );
        assert_eq!(
            r.report.as_deref(),
            Some(
                "image config of docker.io/x/y:1:\nuser: expected \"root\"\n    actual: \"app\"\nenv A: expected \"2\"\n    actual: \"1\""
            )
        );
        assert_eq!(
            r.failure_detail(),
            "the image config did not match; no exec ran"
        );

        let mut r = CheckRecord::new("s", "t", 1, "metadata: user", Outcome::Error);
        fill(&mut r, &metadata().user("app"), "x", &config);
        assert_eq!((r.outcome, r.error_kind), (Outcome::Pass, None));
    }

    #[test]
    fn inputs_without_a_config_say_why() {
        let kinds = [
            MetadataInputError::NoConfig { why: "x".into() }.kind(),
            MetadataInputError::Resolve(GatewayError::ImageNotFound {
                image: "i".into(),
                message: "m".into(),
            })
            .kind(),
            MetadataInputError::Resolve(GatewayError::DockerApi("d".into())).kind(),
        ];
        assert_eq!(
            kinds,
            [ErrorKind::Setup, ErrorKind::Input, ErrorKind::Builder]
        );
    }
}
