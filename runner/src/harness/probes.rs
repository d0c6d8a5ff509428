//! The run's probes, one per platform this build embeds one for, each delivered to the builder
//! as `BUILDTEST_PROBE` says; a check mounts the one for the platform its input is solved for.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::check::{self, CheckError, ProbePlatform};
use crate::client::{Client, one_line_chain};
use crate::harness::errors::{BackendError, ProbeImageError};
use crate::llb::{Platform, State};
use crate::protocol::settings::ProbeDelivery;

/// The delivered probes of a run.
pub(crate) struct Probes {
    /// The probe state per platform (only platforms whose probe is embedded).
    states: BTreeMap<ProbePlatform, State>,
    /// How each reached the builder, for the header.
    notes: Vec<String>,
}

impl Probes {
    /// Delivers every embedded probe (see [`ProbeDelivery`]). A build that embeds none delivers
    /// none: every check then fails with [`CheckError::ProbeMissing`].
    pub(crate) async fn deliver(
        client: &Client,
        delivery: ProbeDelivery,
    ) -> Result<Probes, BackendError> {
        let mut states = BTreeMap::new();
        let mut notes = Vec::new();
        for platform in check::embedded_probe_platforms() {
            let (state, note) = deliver_one(client, delivery, platform).await?;
            states.insert(platform, state);
            notes.push(format!("{platform}: {note}"));
        }
        if notes.is_empty() {
            notes.push("none embedded in this build".to_owned());
        }
        Ok(Probes { states, notes })
    }

    /// The probe state for checks on inputs solved for `platform`.
    pub(crate) fn for_platform(&self, platform: &Platform) -> Result<&State, CheckError> {
        let probe = ProbePlatform::for_platform(platform)?;
        match self.states.get(&probe) {
            Some(state) => Ok(state),
            None => Err(probe
                .embedded()
                .err()
                .unwrap_or_else(|| CheckError::ProbeMissing {
                    platform: probe.name().to_owned(),
                    reason: "it was not delivered to the builder".to_owned(),
                    embedded: check::embedded_probe_platforms()
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                })),
        }
    }

    /// `linux/amd64: image buildtest/probe:… (present); linux/arm64: …`.
    pub(crate) fn note(&self) -> String {
        self.notes.join("; ")
    }

    /// The local directories the probes are read from (their `session` delivery): name → path.
    pub(crate) fn dirs(&self) -> BTreeMap<String, PathBuf> {
        self.states
            .values()
            .flat_map(|state| state.local_sources().unwrap_or_default())
            .filter_map(|s| Some((s.name, s.path?)))
            .collect()
    }
}

/// The state checks on `platform` mount the probe from, and a note saying how it got there.
async fn deliver_one(
    client: &Client,
    delivery: ProbeDelivery,
    platform: ProbePlatform,
) -> Result<(State, String), BackendError> {
    let inline = || platform.inline_state().map_err(BackendError::ProbeDir);
    let session = |why: &str| {
        let dir = platform
            .local_dir(&std::env::temp_dir())
            .map_err(BackendError::ProbeDir)?;
        Ok((
            check::probe_local_state(&dir),
            format!(
                "session ({}; sent at most once per run{why})",
                dir.display()
            ),
        ))
    };
    match delivery {
        ProbeDelivery::Inline => return Ok((inline()?, "inline (BUILDTEST_PROBE)".to_owned())),
        ProbeDelivery::Session => return session("; BUILDTEST_PROBE"),
        ProbeDelivery::Auto if !client.is_docker_engine() => return session(""),
        ProbeDelivery::Image if !client.is_docker_engine() => {
            return Err(BackendError::ProbeNeedsEngine {
                builder: client.builder().to_string(),
            });
        }
        ProbeDelivery::Auto | ProbeDelivery::Image => {}
    }
    match load_image(client, platform).await {
        Ok((reference, loaded)) => {
            let how = if loaded { "loaded now" } else { "present" };
            Ok((
                platform.image_state(&reference),
                format!("image {reference} ({how})"),
            ))
        }
        Err(e) if delivery == ProbeDelivery::Auto => Ok((
            inline()?,
            format!(
                "inline (the probe image could not be loaded: failed to {})",
                one_line_chain(&e)
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Loads `platform`'s probe image into the Docker engine unless it is there; its reference and
/// whether it was loaded now.
async fn load_image(
    client: &Client,
    platform: ProbePlatform,
) -> Result<(String, bool), ProbeImageError> {
    let reference = platform.image_reference()?;
    if client
        .docker_image_exists(&reference)
        .await
        .map_err(ProbeImageError::Engine)?
    {
        return Ok((reference, false));
    }
    let image = platform.image()?;
    client
        .docker_load_image(image.archive)
        .await
        .map_err(ProbeImageError::Engine)?;
    Ok((reference, true))
}
