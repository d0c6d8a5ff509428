//! The run's probes, one per platform this build embeds one for, each delivered to the builder
//! as `BUILDTEST_PROBE` says; a check mounts the one for the platform its input is solved for.
//!
//! When this build embeds no probe for the run's platform (`BUILDTEST_PLATFORM`), the builder
//! compiles one from the embedded source ([`check::probe_build_state`], in
//! `BUILDTEST_PROBE_TOOLCHAIN_IMAGE`), the harness reads it back through the gateway, and it is
//! delivered like an embedded one. BuildKit caches the compile, so only the first run on a builder
//! pays for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use std::time::{Duration, Instant};

use crate::check::{self, CheckError, ProbeBinary, ProbePlatform};
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
    /// The run's platform (the only one the builder compiles a missing probe for).
    run_platform: Platform,
}

impl Probes {
    /// Delivers every embedded probe (see [`ProbeDelivery`]), and for `run_platform`, when none
    /// is embedded for it, the probe the builder compiles in `toolchain_image`. Checks on another
    /// platform without an embedded probe fail with [`CheckError::ProbeMissing`].
    pub(crate) async fn deliver(
        client: &Client,
        delivery: ProbeDelivery,
        run_platform: &Platform,
        toolchain_image: &str,
        timeout: Duration,
    ) -> Result<Probes, BackendError> {
        let mut states = BTreeMap::new();
        let mut notes = Vec::new();
        for platform in ProbePlatform::ALL {
            let (binary, how) = match platform.binary() {
                Ok(binary) => (binary, "embedded".to_owned()),
                Err(missing) => {
                    if ProbePlatform::for_platform(run_platform).ok() != Some(platform) {
                        continue;
                    }
                    build_in_builder(client, platform, toolchain_image, &missing, timeout).await?
                }
            };
            let (state, note) = deliver_one(client, delivery, &binary).await?;
            states.insert(platform, state);
            notes.push(format!("{platform}: {how}, {note}"));
        }
        if notes.is_empty() {
            notes.push("none".to_owned());
        }
        Ok(Probes {
            states,
            notes,
            run_platform: run_platform.clone(),
        })
    }

    /// The probe state for checks on inputs solved for `platform`.
    pub(crate) fn for_platform(&self, platform: &Platform) -> Result<&State, CheckError> {
        let probe = ProbePlatform::for_platform(platform)?;
        match self.states.get(&probe) {
            Some(state) => Ok(state),
            None => {
                let hint = format!(
                    "the builder compiles a missing probe only for the run's platform {}: run \
                     these tests with BUILDTEST_PLATFORM={probe} (or --platform {probe}) to have it \
                     compile this one",
                    self.run_platform
                );
                Err(match probe.embedded() {
                    Err(CheckError::ProbeMissing {
                        platform,
                        reason,
                        embedded,
                    }) => CheckError::ProbeMissing {
                        platform,
                        reason: format!("{reason}; {hint}"),
                        embedded,
                    },
                    Err(other) => other,
                    Ok(_) => CheckError::ProbeMissing {
                        platform: probe.name().to_owned(),
                        reason: format!("it was not delivered to the builder; {hint}"),
                        embedded: crate::protocol::events::embedded_probes(),
                    },
                })
            }
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

/// Compiles `platform`'s probe in the builder from the embedded source and reads it back, giving
/// up after `timeout` (the run's per-check timeout, `BUILDTEST_TIMEOUT`); the note says where and
/// how long it took (a cached compile takes well under a second).
async fn build_in_builder(
    client: &Client,
    platform: ProbePlatform,
    image: &str,
    missing: &CheckError,
    timeout: Duration,
) -> Result<(ProbeBinary, String), BackendError> {
    let reason = match missing {
        CheckError::ProbeMissing { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    let fail = |cause: String| BackendError::ProbeBuild {
        platform: platform.name().to_owned(),
        reason: reason.clone(),
        image: image.to_owned(),
        cause,
    };
    let started = Instant::now();
    let definition = check::probe_build_state(platform, image)
        .marshal(&platform.platform())
        .map_err(|e| fail(format!("failed to marshal the build: {e}")))?
        .into_proto();
    let build = client
        .gateway_build()
        .await
        .map_err(|e| fail(format!("failed to {}", one_line_chain(&e))))?;
    let read = tokio::time::timeout(
        timeout,
        build.solve_and_read_file(definition, check::PROBE_FILE),
    )
    .await;
    let vertices = build.vertices();
    let Ok(read) = read else {
        // Dropping the build cancels the compile.
        drop(build);
        return Err(fail(format!(
            "the compile did not finish within {} s (BUILDTEST_TIMEOUT; an emulated compile takes \
             minutes: 187 s for linux/arm64 under qemu-aarch64 here)",
            timeout.as_secs()
        )));
    };
    let bytes = match read {
        Ok(bytes) => {
            build
                .finish()
                .await
                .map_err(|e| fail(format!("failed to {}", one_line_chain(&e))))?;
            bytes
        }
        Err(e) => {
            let _ = build.fail("the check probe could not be built").await;
            let mut cause = format!("failed to {}", one_line_chain(&e));
            if let Some(v) = vertices.iter().find(|v| v.error.is_some()) {
                let mut log = String::from_utf8_lossy(&v.stdout).into_owned();
                log.push_str(&String::from_utf8_lossy(&v.stderr));
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n  | ");
                let _ = write!(cause, "\n  step `{}` failed", v.name);
                if !tail.is_empty() {
                    let _ = write!(cause, ":\n  | {tail}");
                }
            }
            return Err(fail(cause));
        }
    };
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(fail(format!(
            "the compile left {} bytes at {} that are not an executable",
            bytes.len(),
            check::PROBE_FILE
        )));
    }
    let cached = vertices
        .iter()
        .filter(|v| v.name.starts_with("build the check probe"))
        .all(|v| v.cached);
    let how = format!(
        "built by the builder in {image} ({}, {:.1} s)",
        if cached { "cached" } else { "compiled now" },
        started.elapsed().as_secs_f64()
    );
    Ok((ProbeBinary::from_built(platform, bytes), how))
}

/// The state checks on the probe's platform mount it from, and a note saying how it got there.
async fn deliver_one(
    client: &Client,
    delivery: ProbeDelivery,
    binary: &ProbeBinary,
) -> Result<(State, String), BackendError> {
    let platform = binary.platform;
    let inline = || Ok::<_, BackendError>(binary.inline_state());
    let session = |why: &str| {
        let dir = binary
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
    match load_image(client, binary).await {
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

/// Loads the probe's image into the Docker engine unless it is there; its reference and whether
/// it was loaded now.
async fn load_image(
    client: &Client,
    binary: &ProbeBinary,
) -> Result<(String, bool), ProbeImageError> {
    let reference = binary.image_reference();
    if client
        .docker_image_exists(&reference)
        .await
        .map_err(ProbeImageError::Engine)?
    {
        return Ok((reference, false));
    }
    let image = binary.image();
    client
        .docker_load_image(image.archive)
        .await
        .map_err(ProbeImageError::Engine)?;
    Ok((reference, true))
}
