//! Applying what the runner resolved to a built graph: image configs and Dockerfile results
//! ([`State::apply_resolved`]).
//!
//! A test fn builds its whole graph before anything is resolved, so resolution cannot happen
//! while the graph is built. Instead the runner lists what a graph needs
//! ([`State::image_sources`], [`State::dockerfile_sources`]), resolves each once per run (the
//! images' configs, the Dockerfiles' results), and rewrites the built graph with this pure
//! function. The rule, per exec:
//!
//! - An exec keeps everything it set itself ([`Exec::env`](super::Exec::env),
//!   [`Exec::cwd`](super::Exec::cwd), [`Exec::user`](super::Exec::user)).
//! - An exec on a state with a config attached ([`State::with_image_config`]) or removed
//!   ([`State::without_image_config`]) keeps that choice.
//! - Any other exec takes its defaults from the config of the state its root filesystem comes
//!   from: the image's resolved config for [`State::image`] (unless
//!   [`ImageOptions::apply_config(false)`](super::ImageOptions::apply_config)), the result's
//!   config for a Dockerfile, and through `run(..).root()`, [`State::file`] and
//!   [`State::requires`] the config of the state they build on — as a Dockerfile's `RUN` keeps
//!   the base image's config. Merges, diffs, scratch, local directories and definitions made
//!   elsewhere have none.
//!
//! Execs whose defaults do not change keep their exact bytes and digests, so a graph with no
//! resolved image marshals byte for byte as before (the golden vectors). The rewritten state
//! reports the config of its head through [`State::image_config`], for checks on the image
//! config.
//!
//! Unlike Go's `llb.Image` with a meta resolver, which applies only `Env` and `WorkingDir`, the
//! config's `User` applies too, as `docker run` does.
//!
//! ```
//! use buildtest::llb::{ImageConfig, ImageSource, Platform, ResolvedInputs, State};
//!
//! let image = State::image("alpine:3.20");
//! let step = image.run(["make"]).cwd("/src").root(); // built before anything is resolved
//! let sources = step.image_sources();
//! assert_eq!(sources[0].reference, "docker.io/library/alpine:3.20");
//!
//! let config = ImageConfig::from_image_json(br#"{"config":{"Env":["PATH=/bin"],"WorkingDir":"/srv","User":"app"}}"#)?;
//! let mut resolved = ResolvedInputs::new();
//! resolved.add_image(sources[0].clone(), config.clone());
//! let applied = step.apply_resolved(&resolved);
//! assert_eq!(applied.image_config(), Some(&config));
//!
//! let ops = applied.marshal(&Platform::linux_amd64())?.ops()?;
//! let Some(buildtest::proto::pb::op::Op::Exec(exec)) = &ops[1].op.op else { panic!() };
//! let meta = exec.meta.as_ref().expect("meta");
//! // The image's Env and User; the step's own cwd wins over WorkingDir.
//! assert_eq!((meta.env.as_slice(), meta.cwd.as_str(), meta.user.as_str()), (&["PATH=/bin".to_owned()][..], "/src", "app"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use super::dockerfile::DockerfileSource;
use super::error::LlbError;
use super::image_config::{ConfigState, ImageConfig};
use super::source::ImageSource;
use super::state::{OpKind, Output, State, Vertex};

/// What the runner resolved for a run: image configs and Dockerfile results, for
/// [`State::apply_resolved`].
#[derive(Debug, Clone, Default)]
pub struct ResolvedInputs {
    images: Vec<(ImageSource, Arc<ImageConfig>)>,
    dockerfiles: Vec<(DockerfileSource, State)>,
}

impl ResolvedInputs {
    /// Nothing resolved.
    pub fn new() -> Self {
        Self::default()
    }

    /// The config of `image` (replacing one added before).
    pub fn add_image(&mut self, image: ImageSource, config: ImageConfig) {
        self.images.retain(|(i, _)| *i != image);
        self.images.push((image, Arc::new(config)));
    }

    /// What `dockerfile` built: typically [`State::from_pb_definition`] of the frontend's result
    /// with the result's config attached ([`State::with_image_config`]); that config applies to
    /// the execs on it unless the source says otherwise.
    pub fn add_dockerfile(&mut self, dockerfile: DockerfileSource, result: State) {
        self.dockerfiles.retain(|(d, _)| *d != dockerfile);
        self.dockerfiles.push((dockerfile, result));
    }

    /// The config resolved for `image`.
    pub fn image(&self, image: &ImageSource) -> Option<&ImageConfig> {
        self.images
            .iter()
            .find(|(i, _)| i == image)
            .map(|(_, c)| &**c)
    }

    fn image_config(&self, image: &ImageSource) -> Option<Arc<ImageConfig>> {
        self.images
            .iter()
            .find(|(i, _)| i == image)
            .map(|(_, c)| Arc::clone(c))
    }

    /// What was resolved for `dockerfile`.
    pub fn dockerfile(&self, dockerfile: &DockerfileSource) -> Option<&State> {
        self.dockerfiles
            .iter()
            .find(|(d, _)| d == dockerfile)
            .map(|(_, s)| s)
    }

    /// Whether nothing was resolved.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.dockerfiles.is_empty()
    }
}

/// Every vertex reachable from `head`, each once, inputs before the vertices that read them.
fn post_order(head: &Output) -> Vec<Arc<Vertex>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut stack = vec![(Arc::clone(&head.vertex), false)];
    while let Some((vertex, expanded)) = stack.pop() {
        let key = Arc::as_ptr(&vertex) as usize;
        if seen.contains(&key) {
            continue;
        }
        if !expanded {
            stack.push((Arc::clone(&vertex), true));
            for input in vertex.inputs().into_iter().rev() {
                if !seen.contains(&input.vertex_key()) {
                    stack.push((Arc::clone(&input.vertex), false));
                }
            }
            continue;
        }
        seen.insert(key);
        out.push(vertex);
    }
    out
}

/// What one vertex of the old graph became.
struct Mapped {
    /// The vertex replacing it, and which of its outputs replaces output 0 (a Dockerfile node is
    /// replaced by its result's head output); other outputs keep their index.
    vertex: Arc<Vertex>,
    head_index: Option<i64>,
    /// The config of its output 0 (the root of an exec).
    config: Option<Arc<ImageConfig>>,
}

impl State {
    /// The images of this graph whose config the runner resolves and applies
    /// ([`ImageOptions::apply_config`](super::ImageOptions::apply_config)), each once, in walk
    /// order.
    pub fn image_sources(&self) -> Vec<ImageSource> {
        let Some(head) = &self.output else {
            return Vec::new();
        };
        let mut out: Vec<ImageSource> = Vec::new();
        for vertex in post_order(head) {
            if let OpKind::Source(op) = &vertex.op
                && let Some(image) = op.image_source()
                && !out.contains(&image)
            {
                out.push(image);
            }
        }
        out
    }

    /// The Dockerfile inputs of this graph ([`State::dockerfile`]), each once, in walk order.
    pub fn dockerfile_sources(&self) -> Vec<DockerfileSource> {
        let Some(head) = &self.output else {
            return Vec::new();
        };
        let mut out: Vec<DockerfileSource> = Vec::new();
        for vertex in post_order(head) {
            if let OpKind::Dockerfile(op) = &vertex.op
                && !out.contains(&op.source)
            {
                out.push(op.source.clone());
            }
        }
        out
    }

    /// This graph with what the runner resolved applied: every Dockerfile input in `resolved`
    /// replaced by its result, and every exec that set no config of its own given the defaults
    /// of the image (or Dockerfile result) its root comes from — see the
    /// [module docs](self) for the rule. Pure: nothing is resolved here, and what `resolved`
    /// lacks stays as it was (an unresolved Dockerfile still fails to marshal). The result's
    /// [`State::image_config`] is the config of its head, unless this state had one attached or
    /// removed.
    #[must_use]
    pub fn apply_resolved(&self, resolved: &ResolvedInputs) -> State {
        let Some(head) = &self.output else {
            return self.clone();
        };
        if resolved.is_empty() {
            return self.clone();
        }
        let mut mapped: HashMap<usize, Mapped> = HashMap::new();
        for vertex in post_order(head) {
            let key = Arc::as_ptr(&vertex) as usize;
            let result = map_vertex(&vertex, resolved, &mapped);
            mapped.insert(key, result);
        }
        let new_head = map_output(head, &mapped);
        let head_mapped = mapped.get(&head.vertex_key());
        let platform = match (&head.vertex.op, head_mapped) {
            (OpKind::Dockerfile(_), Some(m)) if m.head_index.is_some() => {
                let result = resolved_dockerfile(&head.vertex, resolved);
                result
                    .and_then(|r| r.platform.clone())
                    .or_else(|| self.platform.clone())
            }
            _ => self.platform.clone(),
        };
        let config = match &self.config {
            ConfigState::Unset => match head_mapped.and_then(|m| config_of(m, head.index)) {
                Some(config) => ConfigState::Attached(config),
                None => ConfigState::Unset,
            },
            other => other.clone(),
        };
        State {
            output: Some(new_head),
            platform,
            config,
        }
    }
}

fn resolved_dockerfile<'a>(vertex: &Vertex, resolved: &'a ResolvedInputs) -> Option<&'a State> {
    match &vertex.op {
        OpKind::Dockerfile(op) => resolved.dockerfile(&op.source),
        _ => None,
    }
}

/// The config of output `index` of a mapped vertex: only output 0 carries one.
fn config_of(mapped: &Mapped, index: i64) -> Option<Arc<ImageConfig>> {
    if index == 0 {
        mapped.config.clone()
    } else {
        None
    }
}

/// The output of the new graph standing for `old`.
fn map_output(old: &Output, mapped: &HashMap<usize, Mapped>) -> Output {
    match mapped.get(&old.vertex_key()) {
        None => old.clone(),
        Some(m) => {
            let index = match m.head_index {
                Some(head) if old.index == 0 => head,
                _ => old.index,
            };
            Output::new(Arc::clone(&m.vertex), index)
        }
    }
}

fn config_at(old: Option<&Output>, mapped: &HashMap<usize, Mapped>) -> Option<Arc<ImageConfig>> {
    let old = old?;
    mapped
        .get(&old.vertex_key())
        .and_then(|m| config_of(m, old.index))
}

/// Whether every input of `vertex` maps to itself.
fn inputs_unchanged(vertex: &Vertex, mapped: &HashMap<usize, Mapped>) -> bool {
    vertex.inputs().into_iter().all(|input| {
        mapped
            .get(&input.vertex_key())
            .is_none_or(|m| Arc::ptr_eq(&m.vertex, &input.vertex))
    })
}

fn map_vertex(
    vertex: &Arc<Vertex>,
    resolved: &ResolvedInputs,
    mapped: &HashMap<usize, Mapped>,
) -> Mapped {
    let keep = |config: Option<Arc<ImageConfig>>| Mapped {
        vertex: Arc::clone(vertex),
        head_index: None,
        config,
    };
    let with_op = |op: OpKind, config: Option<Arc<ImageConfig>>| Mapped {
        vertex: Arc::new(Vertex {
            op,
            meta: vertex.meta.clone(),
            encoded: super::state::EncodedCache::default(),
        }),
        head_index: None,
        config,
    };
    let map = |o: &Output| map_output(o, mapped);
    let unchanged = inputs_unchanged(vertex, mapped);
    match &vertex.op {
        OpKind::Source(op) => keep(
            op.image_source()
                .and_then(|image| resolved.image_config(&image)),
        ),
        OpKind::Dockerfile(op) => match resolved.dockerfile(&op.source) {
            None => keep(None),
            Some(result) => {
                let config = if op.source.apply_config {
                    result.config.get().cloned()
                } else {
                    None
                };
                match &result.output {
                    Some(out) => Mapped {
                        vertex: Arc::clone(&out.vertex),
                        head_index: Some(out.index),
                        config,
                    },
                    None => with_op(
                        OpKind::Invalid(LlbError::EmptyDockerfileResult {
                            dockerfile: op.source.describe(),
                        }),
                        None,
                    ),
                }
            }
        },
        OpKind::Exec(op) => {
            let root_config = || config_at(op.root_input(), mapped);
            let (config, new_state) = match &op.config {
                ConfigState::Attached(c) => (Some(Arc::clone(c)), None),
                ConfigState::Cleared => (None, None),
                ConfigState::Unset => match root_config() {
                    Some(c) => (Some(Arc::clone(&c)), Some(ConfigState::Attached(c))),
                    None => (None, None),
                },
            };
            if unchanged && new_state.is_none() {
                return keep(config);
            }
            let state = new_state.unwrap_or_else(|| op.config.clone());
            with_op(OpKind::Exec(op.rewritten(map, state)), config)
        }
        OpKind::File(op) => {
            let config = config_at(op.base(), mapped);
            if unchanged {
                return keep(config);
            }
            with_op(OpKind::File(op.rewritten(map)), config)
        }
        OpKind::Passthrough(op) => {
            let config = config_at(op.forwarded(), mapped);
            if unchanged {
                return keep(config);
            }
            with_op(OpKind::Passthrough(op.rewritten(map)), config)
        }
        OpKind::Merge(op) if !unchanged => with_op(OpKind::Merge(op.rewritten(map)), None),
        OpKind::Diff(op) if !unchanged => with_op(OpKind::Diff(op.rewritten(map)), None),
        // Raw ops only read raw ops, which never change; invalid ops read nothing.
        OpKind::Merge(_) | OpKind::Diff(_) | OpKind::Raw(_) | OpKind::Invalid(_) => keep(None),
    }
}
