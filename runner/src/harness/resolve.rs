//! What the run resolves before it prepares checks: the config of every image and the result of
//! every Dockerfile the selected tests' inputs name, each once per run (de-duplicated across
//! tests), concurrently, in one gateway build on the run's connection.
//!
//! - **Images** ([`State::image`] unless `ImageOptions::apply_config(false)`):
//!   `LLBBridge.ResolveImageConfig`, preferring the builder's local store; on a Docker engine
//!   whose gateway fails, the engine's image-inspect API. A missing image is an input error of
//!   every check on it.
//! - **Dockerfiles** ([`State::dockerfile`]): the context directory (filtered by its
//!   `.dockerignore`, or `<Dockerfile>.dockerignore` beside the Dockerfile) and the Dockerfile's
//!   directory are served by the run's session as local directories and given to the
//!   `dockerfile.v0` frontend as its `context` and `dockerfile` inputs; the result is built
//!   (`Evaluate`), so a failing instruction is an input error of every check on it, with the
//!   instruction and its log tail. Its definition (ops verbatim) and image config replace the node
//!   in the graph. Unchanged Dockerfile and context build from the builder's cache. With
//!   `--cache-from`, the frontend imports the run's cache too; with a `type=local` import (loaded
//!   in one build, [`RunCache::prefetch`]) every Dockerfile is built in one gateway build that
//!   stays open, and the checks are loaded there ([`FrontendCache`] says why).
//!
//! [`Resolution::apply`] then rewrites each test's input with [`State::apply_resolved`], a pure
//! function of `llb`, and the run prints one line per resolved image and Dockerfile on stderr
//! (`buildtest: image config applied: …`).
//!
//! [`RunCache::prefetch`]: crate::harness::cache::RunCache::prefetch

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::client::gateway::{FrontendRequest, GatewayBuild, GatewayError, GatewayOptions};
use crate::client::{BuilderError, Client, one_line_chain};
use crate::harness::cache::FrontendCache;
use crate::harness::errors::ResolveError;
use crate::llb::local::literal_pattern;
use crate::llb::{
    DockerfileSource, ImageConfig, ImageSource, LocalOptions, NetMode, Platform, ResolveMode,
    ResolvedInputs, State,
};

use crate::proto::control::CacheOptionsEntry;
use crate::protocol::events::{DOCKERFILE_BUILT, IMAGE_CONFIG_APPLIED};

/// What the selected tests' inputs need resolved.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    images: Vec<ImageSource>,
    dockerfiles: Vec<Dockerfile>,
}

/// One Dockerfile input, with the local directories that carry it.
#[derive(Debug)]
struct Dockerfile {
    source: DockerfileSource,
    /// The frontend's inputs, or why the Dockerfile cannot be read.
    inputs: Result<DockerfileInputs, ResolveError>,
}

#[derive(Debug)]
struct DockerfileInputs {
    context: State,
    dockerfile: State,
    file_name: String,
    /// Source name → host directory, for the session.
    dirs: BTreeMap<String, PathBuf>,
}

impl Plan {
    /// Lists the images and Dockerfiles of `inputs`, each once, and checks that each Dockerfile
    /// and its context can be read.
    pub(crate) fn of<'a>(inputs: impl IntoIterator<Item = &'a State>) -> Plan {
        let mut plan = Plan::default();
        for input in inputs {
            for image in input.image_sources() {
                if !plan.images.contains(&image) {
                    plan.images.push(image);
                }
            }
            for source in input.dockerfile_sources() {
                if !plan.dockerfiles.iter().any(|d| d.source == source) {
                    let inputs = dockerfile_inputs(&source);
                    plan.dockerfiles.push(Dockerfile { source, inputs });
                }
            }
        }
        plan
    }

    /// Whether nothing needs resolving.
    pub(crate) fn is_empty(&self) -> bool {
        self.images.is_empty() && self.dockerfiles.is_empty()
    }

    /// The local directories the Dockerfiles' builds read (name → host directory): the run's
    /// session must serve them before [`Plan::resolve`].
    pub(crate) fn dirs(&self) -> BTreeMap<String, PathBuf> {
        self.dockerfiles
            .iter()
            .filter_map(|d| d.inputs.as_ref().ok())
            .flat_map(|i| i.dirs.clone())
            .collect()
    }

    /// Resolves every image (in one gateway build) and builds every Dockerfile (each in a gateway
    /// build of its own, so a failure's Status stream names its own step), all concurrently, the
    /// builds linked to `session` (which serves [`Plan::dirs`]). Each image and each Dockerfile
    /// gets at most `limit` (the per-check timeout): a builder that stops answering makes them
    /// errors instead of holding the run. The Dockerfiles' builds import `cache.imports` (the
    /// run's `--cache-from`; a `type=local` one served by `session` too); with
    /// `cache.shared_build` they are all built in one gateway build that stays open
    /// ([`Resolution::take_build`]; see [`FrontendCache`] for why).
    pub(crate) async fn resolve(
        self,
        client: &Client,
        platform: &Platform,
        session: Option<String>,
        limit: Duration,
        cache: FrontendCache,
    ) -> Resolution {
        let mut resolution = Resolution::default();
        if self.is_empty() {
            return resolution;
        }
        let started = std::time::Instant::now();
        let counts = (self.images.len(), self.dockerfiles.len());
        let options = GatewayOptions {
            session,
            ..GatewayOptions::default()
        };
        // A Docker engine's BuildKit resolves local images from the engine's own store, and its
        // image-inspect API answers the same config in one HTTP call where a gateway build costs a
        // Control.Solve and three LLBBridge calls (31-61 ms on Docker 20.10): ask the store first,
        // and open a gateway build only for what it does not have.
        let mut remaining = Vec::with_capacity(self.images.len());
        for image in self.images {
            let from_store = client.is_docker_engine()
                && image.resolve_mode != ResolveMode::ForcePull
                && image.platform.as_ref().is_none_or(|p| p == platform);
            if from_store
                && let Ok(Ok(Some(resolved))) =
                    tokio::time::timeout(limit, client.docker_image_config(&image.reference)).await
            {
                resolution.lines.push(format!(
                    "{IMAGE_CONFIG_APPLIED}{} ({})",
                    image.reference,
                    describe_config(&resolved.config)
                ));
                resolution.resolved.add_image(image, resolved.config);
                continue;
            }
            remaining.push(image);
        }
        let build = if remaining.is_empty() {
            Err(GatewayError::Rpc {
                rpc: "Solve",
                code: tonic::Code::Cancelled,
                message: "no image to resolve".to_owned(),
            })
        } else {
            match tokio::time::timeout(limit, client.gateway_build_with(options.clone())).await {
                Ok(build) => build.map(Arc::new),
                Err(_) => Err(GatewayError::Builder(BuilderError::Timeout(limit))),
            }
        };
        let mut images = tokio::task::JoinSet::new();
        for image in remaining {
            let (client, build, platform) = (client.clone(), build.clone(), platform.clone());
            images.spawn(async move {
                let resolving = resolve_image(&client, build.as_ref(), &image, &platform);
                let timed_out =
                    ResolveError::Image(GatewayError::Builder(BuilderError::Timeout(limit)));
                let resolved = tokio::time::timeout(limit, resolving)
                    .await
                    .unwrap_or(Err(timed_out));
                (image, resolved)
            });
        }
        let shared = if cache.shared_build && !self.dockerfiles.is_empty() {
            let opening = client.gateway_build_with(options.clone());
            Some(match tokio::time::timeout(limit, opening).await {
                Ok(build) => build.map(Arc::new),
                Err(_) => Err(GatewayError::Builder(BuilderError::Timeout(limit))),
            })
        } else {
            None
        };
        let mut dockerfiles = tokio::task::JoinSet::new();
        let imports = Arc::new(cache.imports);
        for dockerfile in self.dockerfiles {
            let (client, options) = (client.clone(), options.clone());
            let (imports, shared) = (Arc::clone(&imports), shared.clone());
            dockerfiles.spawn(async move {
                let result = match dockerfile.inputs {
                    Err(e) => Err(e),
                    Ok(inputs) => {
                        let building = build_dockerfile(
                            &client,
                            options,
                            shared,
                            &dockerfile.source,
                            inputs,
                            &imports,
                        );
                        tokio::time::timeout(limit, building)
                            .await
                            .unwrap_or_else(|_| {
                                Err(ResolveError::Dockerfile {
                                    dockerfile: dockerfile.source.describe(),
                                    source: GatewayError::Builder(BuilderError::Timeout(limit)),
                                })
                            })
                    }
                };
                (dockerfile.source, result)
            });
        }
        while let Some(done) = images.join_next().await {
            let Ok((image, result)) = done else { continue };
            match result {
                Ok(config) => {
                    resolution.lines.push(format!(
                        "{IMAGE_CONFIG_APPLIED}{} ({})",
                        image.reference,
                        describe_config(&config)
                    ));
                    resolution.resolved.add_image(image, config);
                }
                Err(e) => resolution.image_errors.push((image, e)),
            }
        }
        while let Some(done) = dockerfiles.join_next().await {
            let Ok((source, result)) = done else { continue };
            match result {
                Ok(state) => {
                    let config = match (state.image_config(), source.apply_config) {
                        (Some(config), true) => {
                            format!("config applied: {}", describe_config(config))
                        }
                        (Some(_), false) => "config not applied (apply_config(false))".to_owned(),
                        (None, _) => "no image config".to_owned(),
                    };
                    resolution.lines.push(format!(
                        "{DOCKERFILE_BUILT}{} ({config})",
                        source.describe()
                    ));
                    resolution.resolved.add_dockerfile(source, state);
                }
                Err(e) => resolution.dockerfile_errors.push((source, e)),
            }
        }
        resolution.lines.sort();
        resolution.build = shared.and_then(Result::ok).and_then(Arc::into_inner);
        if let Ok(build) = build
            && let Some(build) = Arc::into_inner(build)
            && let Err(e) = build.finish().await
        {
            resolution.lines.push(format!(
                "buildtest: warning: failed to end the gateway build: {}",
                one_line_chain(&e)
            ));
        }
        resolution.lines.push(format!(
            "buildtest: resolved {} and {} in {:.3} s",
            crate::protocol::count(counts.0, "image config"),
            crate::protocol::count(counts.1, "Dockerfile"),
            started.elapsed().as_secs_f64()
        ));
        resolution
    }
}

/// What the run resolved, and what it could not.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    resolved: ResolvedInputs,
    image_errors: Vec<(ImageSource, ResolveError)>,
    dockerfile_errors: Vec<(DockerfileSource, ResolveError)>,
    /// The gateway build the Dockerfiles were built in, kept open for loading the imported cache.
    build: Option<GatewayBuild>,
    /// One line per resolved image and Dockerfile, for stderr.
    pub(crate) lines: Vec<String>,
}

impl Resolution {
    /// The gateway build every Dockerfile was built in, kept open ([`FrontendCache::shared_build`])
    /// for [`RunCache::prefetch`](crate::harness::cache::RunCache::prefetch), which ends it.
    pub(crate) fn take_build(&mut self) -> Option<GatewayBuild> {
        self.build.take()
    }

    /// `input` with what was resolved applied, or the first thing it needs that could not be
    /// resolved.
    pub(crate) fn apply(&self, input: &State) -> Result<State, ResolveError> {
        if !self.dockerfile_errors.is_empty() {
            for source in input.dockerfile_sources() {
                if let Some((_, e)) = self.dockerfile_errors.iter().find(|(s, _)| *s == source) {
                    return Err(e.clone());
                }
            }
        }
        if !self.image_errors.is_empty() {
            for image in input.image_sources() {
                if let Some((_, e)) = self.image_errors.iter().find(|(i, _)| *i == image) {
                    return Err(e.clone());
                }
            }
        }
        Ok(input.apply_resolved(&self.resolved))
    }
}

/// `(env N, workdir /srv, user app)` for the stderr line.
fn describe_config(config: &ImageConfig) -> String {
    let user = if config.user.is_empty() {
        "root"
    } else {
        config.user.as_str()
    };
    format!(
        "env {}, workdir {}, user {user}",
        config.env_pairs().len(),
        config.exec_cwd()
    )
}

async fn resolve_image(
    client: &Client,
    build: Result<&Arc<GatewayBuild>, &GatewayError>,
    image: &ImageSource,
    run_platform: &Platform,
) -> Result<ImageConfig, ResolveError> {
    let platform = image.platform.as_ref().unwrap_or(run_platform);
    let mode = match image.resolve_mode {
        ResolveMode::ForcePull => ResolveMode::ForcePull,
        _ => ResolveMode::PreferLocal,
    };
    let gateway_error = match build {
        Ok(build) => match build
            .resolve_image_config(&image.reference, platform, mode)
            .await
        {
            Ok(resolved) => return Ok(resolved.config),
            Err(e) => e,
        },
        Err(e) => e.clone(),
    };
    if !client.is_docker_engine() {
        return Err(missing_or(gateway_error));
    }
    // A Docker engine whose gateway could not answer: its image store, through the API.
    match client.docker_image_config(&image.reference).await {
        Ok(Some(resolved)) => Ok(resolved.config),
        Ok(None) => Err(missing_or(match gateway_error {
            e @ GatewayError::ImageNotFound { .. } => e,
            other => GatewayError::ImageNotFound {
                image: image.reference.clone(),
                message: format!("the Docker engine has no such image; the gateway said: {other}"),
            },
        })),
        Err(e) => Err(ResolveError::Image(GatewayError::DockerApi(format!(
            "{e} (after the gateway failed: {gateway_error})"
        )))),
    }
}

/// A missing image as the solve words it; any other failure as it is.
fn missing_or(error: GatewayError) -> ResolveError {
    match error {
        GatewayError::ImageNotFound { image, message } => {
            ResolveError::MissingImage { image, message }
        }
        other => ResolveError::Image(other),
    }
}

/// The local directories and names of a Dockerfile's build, checked to exist.
fn dockerfile_inputs(source: &DockerfileSource) -> Result<DockerfileInputs, ResolveError> {
    let problem = |reason: String| ResolveError::DockerfileInput {
        dockerfile: source.describe(),
        reason,
    };
    match std::fs::metadata(&source.context) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(problem("the context is not a directory".to_owned())),
        Err(e) => {
            return Err(problem(format!(
                "the context directory cannot be read: {e} (a relative path is relative to the \
                 current directory, which cargo sets to the package root)"
            )));
        }
    }
    match std::fs::metadata(&source.file) {
        Ok(md) if md.is_file() => {}
        Ok(_) => return Err(problem("the Dockerfile is not a file".to_owned())),
        Err(e) => {
            return Err(problem(format!(
                "the Dockerfile cannot be read: {e} (give another with \
                 `DockerfileOptions::file(path)`)"
            )));
        }
    }
    let (Some(dir), Some(name)) = (
        source.file.parent(),
        source.file.file_name().and_then(|n| n.to_str()),
    ) else {
        return Err(problem(
            "the Dockerfile's name is not valid UTF-8".to_owned(),
        ));
    };
    let excludes = dockerignore(&source.context, dir, name).map_err(problem)?;
    let context = State::local_dir_with(
        &source.context,
        LocalOptions::new().exclude_patterns(excludes),
    )
    .custom_name(format!("context {}", source.context.display()));
    let dockerfile = State::local_dir_with(
        dir,
        LocalOptions::new().include_patterns([literal_pattern(name)]),
    )
    .custom_name(format!("Dockerfile {}", source.file.display()));
    let mut dirs = BTreeMap::new();
    for state in [&context, &dockerfile] {
        for local in state.local_sources().map_err(|e| problem(e.to_string()))? {
            if let Some(path) = local.path {
                dirs.insert(local.name, path);
            }
        }
    }
    Ok(DockerfileInputs {
        context,
        dockerfile,
        file_name: name.to_owned(),
        dirs,
    })
}

/// The exclude patterns of a Dockerfile's context: `<Dockerfile>.dockerignore` beside the
/// Dockerfile if there is one, else the context's `.dockerignore` (as BuildKit's Dockerfile
/// frontend chooses), read like Docker reads them: one pattern a line, `#` comments and blank
/// lines skipped, a leading `/` dropped, `!` kept.
fn dockerignore(context: &Path, dir: &Path, name: &str) -> Result<Vec<String>, String> {
    let candidates = [
        dir.join(format!("{name}.dockerignore")),
        context.join(".dockerignore"),
    ];
    for path in candidates {
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(parse_dockerignore(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{} cannot be read: {e}", path.display())),
        }
    }
    Ok(Vec::new())
}

fn parse_dockerignore(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(rest) => ("!", rest.trim()),
                None => ("", line),
            };
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            (!pattern.is_empty()).then(|| format!("{negate}{pattern}"))
        })
        .collect()
}

/// Builds one Dockerfile, importing `cache_imports`: in `shared` (the build all Dockerfiles share
/// when the run keeps it open), or else in a gateway build of its own.
async fn build_dockerfile(
    client: &Client,
    options: GatewayOptions,
    shared: Option<Result<Arc<GatewayBuild>, GatewayError>>,
    source: &DockerfileSource,
    inputs: DockerfileInputs,
    cache_imports: &[CacheOptionsEntry],
) -> Result<State, ResolveError> {
    let dockerfile = source.describe();
    let failed = |e: GatewayError| ResolveError::Dockerfile {
        dockerfile: dockerfile.clone(),
        source: e,
    };
    match shared {
        Some(Ok(build)) => return solve_dockerfile(&build, source, inputs, cache_imports).await,
        Some(Err(e)) => return Err(failed(e)),
        None => {}
    }
    let build = client.gateway_build_with(options).await.map_err(failed)?;
    let result = solve_dockerfile(&build, source, inputs, cache_imports).await;
    match build.finish().await {
        Ok(()) => result,
        Err(e) => result.and(Err(failed(e))),
    }
}

async fn solve_dockerfile(
    build: &GatewayBuild,
    source: &DockerfileSource,
    inputs: DockerfileInputs,
    cache_imports: &[CacheOptionsEntry],
) -> Result<State, ResolveError> {
    let dockerfile = source.describe();
    let marshal = |state: &State| {
        state
            .marshal(&Platform::linux_amd64())
            .map(crate::llb::Definition::into_proto)
            .map_err(|e| ResolveError::DockerfileResult {
                dockerfile: dockerfile.clone(),
                source: e,
            })
    };
    let mut request = FrontendRequest::dockerfile()
        .filename(inputs.file_name.clone())
        .input("context", marshal(&inputs.context)?)
        .input("dockerfile", marshal(&inputs.dockerfile)?)
        .cache_imports(cache_imports);
    if let Some(target) = &source.target {
        request = request.target(target.clone());
    }
    for (key, value) in &source.build_args {
        request = request.build_arg(key, value.clone());
    }
    if let Some(platform) = &source.platform {
        request = request.platform(platform);
    }
    request = match source.network {
        NetMode::None => request.without_network(),
        NetMode::Host => request.opt("force-network-mode", "host"),
        _ => request,
    };
    let result = build
        .frontend_solve(request)
        .await
        .map_err(|e| ResolveError::Dockerfile {
            dockerfile: dockerfile.clone(),
            source: e,
        })?;
    let state = State::from_pb_definition(&result.definition).map_err(|e| {
        ResolveError::DockerfileResult {
            dockerfile: dockerfile.clone(),
            source: e,
        }
    })?;
    Ok(match &result.config {
        Some(config) => state.with_image_config(config),
        None => state,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::llb::DockerfileOptions;

    #[test]
    fn dockerignore_lines_become_exclude_patterns() {
        let text = "# comment\n\n/target/\n*.tmp\n  !keep.tmp \n! /also\n/\n";
        assert_eq!(
            parse_dockerignore(text),
            ["target", "*.tmp", "!keep.tmp", "!also"]
        );
    }

    #[test]
    fn a_dockerfile_next_to_its_own_ignore_file_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join(".dockerignore"), "from-context\n").unwrap();
        std::fs::write(dir.path().join("x.Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("x.Dockerfile.dockerignore"), "own\n").unwrap();
        assert_eq!(
            dockerignore(&ctx, dir.path(), "x.Dockerfile").unwrap(),
            ["own"]
        );
        assert_eq!(
            dockerignore(&ctx, &ctx, "Dockerfile").unwrap(),
            ["from-context"]
        );

        let source = DockerfileSource::new(
            &ctx,
            DockerfileOptions::new().file(dir.path().join("x.Dockerfile")),
        );
        let inputs = dockerfile_inputs(&source).unwrap();
        assert_eq!(inputs.file_name, "x.Dockerfile");
        let paths: Vec<_> = inputs.dirs.values().cloned().collect();
        assert!(paths.contains(&ctx), "{paths:?}");
        assert!(paths.contains(&dir.path().to_path_buf()), "{paths:?}");
        let ctx_sources = inputs.context.local_sources().unwrap();
        assert_eq!(ctx_sources[0].exclude_patterns, ["own"]);
        let df_sources = inputs.dockerfile.local_sources().unwrap();
        assert_eq!(df_sources[0].include_patterns, ["x.Dockerfile"]);
    }

    #[test]
    fn a_missing_context_or_dockerfile_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = DockerfileSource::new(dir.path().join("nope"), DockerfileOptions::new());
        let e = dockerfile_inputs(&missing).unwrap_err().to_string();
        assert!(e.contains("the context directory cannot be read"), "{e}");
        let no_file = DockerfileSource::new(dir.path(), DockerfileOptions::new());
        let e = dockerfile_inputs(&no_file).unwrap_err().to_string();
        assert!(e.contains("the Dockerfile cannot be read"), "{e}");
        assert!(e.contains("Dockerfile"), "{e}");
    }
}
