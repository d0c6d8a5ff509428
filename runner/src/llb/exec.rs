//! Exec ops: run a command on a state, with extra mounts.
//!
//! [`State::run`] starts an [`Exec`] builder; [`Exec::root`] is the state of
//! its writable root filesystem after the command ran. Mounts are sorted by
//! destination, inputs are de-duplicated, and outputs are numbered over the
//! writable bind mounts in that order, as the Go client does.

use prost::Message;

use super::encode::BodyTag;
use super::error::LlbError;
use super::image_config::ConfigState;
use super::marshal::{Body, OpCx};
use super::state::{CUSTOM_NAME_KEY, OpKind, Output, State, Vertex, VertexMeta};
use crate::proto::pb;

/// Network mode of an exec (`ExecOp.network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum NetMode {
    /// The daemon's default sandboxed network (`UNSET`).
    #[default]
    Sandbox,
    /// The host's network (`HOST`; needs the daemon's entitlement).
    Host,
    /// No network at all (`NONE`), the right mode for tests.
    None,
}

impl NetMode {
    fn to_proto(self) -> pb::NetMode {
        match self {
            NetMode::Sandbox => pb::NetMode::Unset,
            NetMode::Host => pb::NetMode::Host,
            NetMode::None => pb::NetMode::None,
        }
    }
}

/// How concurrent builds share a cache mount (`CacheOpt.sharing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheSharing {
    /// Concurrent users share one directory.
    #[default]
    Shared,
    /// Each concurrent user gets its own directory.
    Private,
    /// Concurrent users wait for each other.
    Locked,
}

impl CacheSharing {
    fn to_proto(self) -> pb::CacheSharingOpt {
        match self {
            CacheSharing::Shared => pb::CacheSharingOpt::Shared,
            CacheSharing::Private => pb::CacheSharingOpt::Private,
            CacheSharing::Locked => pb::CacheSharingOpt::Locked,
        }
    }
}

#[derive(Debug, Clone)]
enum MountKind {
    Bind { readonly: bool },
    Tmpfs { size: i64 },
    Cache { id: String, sharing: CacheSharing },
    Secret { id: String },
}

#[derive(Debug, Clone)]
struct MountSpec {
    dest: String,
    source: Option<Output>,
    selector: String,
    kind: MountKind,
    /// A read-only bind that is also an output of the exec (BuildKit hands back the mounted
    /// state itself as that output: no new snapshot). See [`Exec::mount_readonly_output`].
    keep_output: bool,
    /// A writable bind whose contents after the command are thrown away (`output = -1`).
    discard_output: bool,
}

impl MountSpec {
    /// Whether the mount is one of the exec's outputs: a writable bind, or a read-only bind
    /// kept as an output.
    fn has_output(&self) -> bool {
        match self.kind {
            MountKind::Bind { readonly: false } => !self.discard_output,
            MountKind::Bind { readonly: true } => self.keep_output && self.source.is_some(),
            _ => false,
        }
    }
}

/// A `pb.ExecOp`, frozen: mounts sorted by destination, root included.
///
/// Its environment, working directory and user are what the exec set itself ([`Exec::env`],
/// [`Exec::cwd`], [`Exec::user`]) on top of the defaults of `config`, the image config of the
/// state it runs on; [`State::apply_resolved`] fills an unset `config` from the image the root
/// comes from.
#[derive(Debug, Clone)]
pub(crate) struct ExecOp {
    pub(crate) args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    user: Option<String>,
    pub(crate) config: ConfigState,
    network: NetMode,
    mounts: Vec<MountSpec>,
    /// Inputs the exec depends on without mounting them ([`Exec::depend_on`]).
    deps: Vec<Output>,
    platform: Option<super::state::Platform>,
}

impl ExecOp {
    /// The environment, working directory and user the exec runs with: the config's defaults
    /// (none, `/`, root without one), then what the exec set itself; an env key it set replaces
    /// the config's value in place.
    fn effective_meta(&self) -> (Vec<(String, String)>, String, String) {
        let config = self.config.get();
        let mut env = config.map(|c| c.env_pairs()).unwrap_or_default();
        for (key, value) in &self.env {
            match env.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1.clone_from(value),
                None => env.push((key.clone(), value.clone())),
            }
        }
        let cwd = match (&self.cwd, config) {
            (Some(cwd), _) => cwd.clone(),
            (None, Some(config)) => config.exec_cwd(),
            (None, None) => "/".to_owned(),
        };
        let user = match (&self.user, config) {
            (Some(user), _) => user.clone(),
            (None, Some(config)) => config.user.clone(),
            (None, None) => String::new(),
        };
        (env, cwd, user)
    }

    /// The input the root filesystem comes from (`None` for scratch).
    pub(crate) fn root_input(&self) -> Option<&Output> {
        self.mounts
            .iter()
            .find(|m| m.dest == "/")
            .and_then(|m| m.source.as_ref())
    }

    /// The same exec reading `map(input)` for every mount source, and starting from `config`.
    pub(crate) fn rewritten(
        &self,
        mut map: impl FnMut(&Output) -> Output,
        config: ConfigState,
    ) -> ExecOp {
        let mut op = self.clone();
        for mount in &mut op.mounts {
            if let Some(source) = &mount.source {
                mount.source = Some(map(source));
            }
        }
        for dep in &mut op.deps {
            *dep = map(dep);
        }
        op.config = config;
        op
    }

    pub(crate) fn walk_inputs(&self) -> Vec<&Output> {
        let mut out: Vec<&Output> = Vec::new();
        let sources = self.mounts.iter().filter_map(|m| m.source.as_ref());
        for source in sources.chain(&self.deps) {
            if !out.iter().any(|o| o.same(source)) {
                out.push(source);
            }
        }
        out
    }

    fn validate(&self, cwd: &str) -> Result<(), LlbError> {
        if self.args.is_empty() {
            return Err(LlbError::EmptyExecArgs);
        }
        let args = || self.args.join(" ");
        if !cwd.starts_with('/') {
            return Err(LlbError::RelativeCwd {
                args: args(),
                cwd: cwd.to_owned(),
            });
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if !m.dest.starts_with('/') {
                return Err(LlbError::RelativeMountDest {
                    args: args(),
                    dest: m.dest.clone(),
                });
            }
            if i > 0 && self.mounts[i - 1].dest == m.dest {
                return Err(LlbError::DuplicateMountDest {
                    args: args(),
                    dest: m.dest.clone(),
                });
            }
            if let MountKind::Cache { id, .. } = &m.kind
                && id.is_empty()
            {
                return Err(LlbError::EmptyCacheId {
                    args: args(),
                    dest: m.dest.clone(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn marshal(&self, cx: &OpCx<'_>) -> Result<Body, LlbError> {
        let (env, cwd, user) = self.effective_meta();
        self.validate(&cwd)?;
        let mut caps = vec!["exec.meta.base"];
        if self.network != NetMode::Sandbox {
            caps.push("exec.meta.network");
        }
        let mut inputs: Vec<pb::Input> = Vec::new();
        let mut mounts = Vec::with_capacity(self.mounts.len());
        let mut next_output = 0;
        for m in &self.mounts {
            if !m.selector.is_empty() {
                caps.push("exec.mount.selector");
            }
            match &m.kind {
                MountKind::Cache { .. } => {
                    caps.extend(["exec.mount.cache", "exec.mount.cache.sharing"])
                }
                MountKind::Tmpfs { size } => {
                    caps.push("exec.mount.tmpfs");
                    if *size > 0 {
                        caps.push("exec.mount.tmpfs.size");
                    }
                }
                MountKind::Secret { .. } => caps.push("exec.mount.secret"),
                MountKind::Bind { .. } if m.source.is_some() => caps.push("exec.mount.bind"),
                MountKind::Bind { .. } => {}
            }
            let input = match &m.source {
                None => -1,
                Some(source) => {
                    let input = cx.input(source);
                    match inputs.iter().position(|i| *i == input) {
                        Some(i) => i as i64,
                        None => {
                            inputs.push(input);
                            (inputs.len() - 1) as i64
                        }
                    }
                }
            };
            let output = if m.has_output() {
                next_output += 1;
                next_output - 1
            } else {
                -1
            };
            let mut pm = pb::Mount {
                input,
                selector: m.selector.clone(),
                dest: m.dest.clone(),
                output,
                ..Default::default()
            };
            match &m.kind {
                MountKind::Bind { readonly } => pm.readonly = *readonly,
                MountKind::Tmpfs { size } => {
                    pm.set_mount_type(pb::MountType::Tmpfs);
                    pm.tmpfs_opt = Some(pb::TmpfsOpt { size: *size });
                }
                MountKind::Cache { id, sharing } => {
                    pm.set_mount_type(pb::MountType::Cache);
                    let mut opt = pb::CacheOpt {
                        id: id.clone(),
                        ..Default::default()
                    };
                    opt.set_sharing(sharing.to_proto());
                    pm.cache_opt = Some(opt);
                }
                MountKind::Secret { id } => {
                    pm.set_mount_type(pb::MountType::Secret);
                    pm.input = -1;
                    pm.secret_opt = Some(pb::SecretOpt {
                        id: id.clone(),
                        mode: 0o400,
                        ..Default::default()
                    });
                }
            }
            mounts.push(pm);
        }
        for dep in &self.deps {
            let input = cx.input(dep);
            if !inputs.contains(&input) {
                inputs.push(input);
            }
        }
        caps.sort_unstable();
        caps.dedup();
        let mut exec = pb::ExecOp {
            meta: Some(pb::Meta {
                args: self.args.clone(),
                env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cwd,
                user,
                remove_mount_stubs_recursive: true,
                ..Default::default()
            }),
            mounts,
            ..Default::default()
        };
        exec.set_network(self.network.to_proto());
        Ok(Body {
            inputs,
            platform: Some(cx.platform(self.platform.as_ref())),
            tag: BodyTag::Exec,
            bytes: exec.encode_to_vec(),
            caps,
        })
    }
}

/// Builder of an exec op; see [`State::run`].
///
/// Every method returns a new builder; [`Exec::root`] and [`Exec::get_mount`]
/// give states of its outputs. Errors (no arguments, relative paths,
/// duplicate mounts) are reported by [`State::marshal`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Exec {
    base: State,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    user: Option<String>,
    network: NetMode,
    mounts: Vec<MountSpec>,
    readonly_root: bool,
    deps: Vec<Output>,
    meta: VertexMeta,
}

impl State {
    /// Runs `args` (argv, no shell) with this state as the writable root
    /// filesystem, in `/`, with no environment (as `llb.Args` does) — or, when
    /// the state has an image config ([`State::with_image_config`], or the
    /// image's own config that the runner applies: [`State::apply_resolved`]),
    /// with its `Env`, `WorkingDir` and `User`. What the exec sets itself
    /// ([`Exec::env`], [`Exec::cwd`], [`Exec::user`]) wins over the config.
    pub fn run(&self, args: impl IntoIterator<Item = impl Into<String>>) -> Exec {
        Exec {
            base: self.clone(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            user: None,
            network: NetMode::Sandbox,
            mounts: Vec::new(),
            readonly_root: false,
            deps: Vec::new(),
            meta: VertexMeta::default(),
        }
    }
}

impl Exec {
    /// Sets environment variable `key` (replacing an earlier value in place).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.env.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.env.push((key, value)),
        }
        self
    }

    /// Sets the working directory (absolute; default `/`, or the image config's `WorkingDir`).
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Runs as `user` (`name`, `uid`, `uid:gid` or `name:group`; `""` is root). Default: root,
    /// or the image config's `User`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the network mode (adds cap `exec.meta.network` unless sandbox).
    pub fn network(mut self, mode: NetMode) -> Self {
        self.network = mode;
        self
    }

    fn add_mount(
        mut self,
        dest: impl Into<String>,
        source: &State,
        selector: String,
        kind: MountKind,
    ) -> Self {
        self.mounts.push(MountSpec {
            dest: dest.into(),
            source: source.output.clone(),
            selector,
            kind,
            keep_output: false,
            discard_output: false,
        });
        self
    }

    /// Mounts `state` writable at `dest`, its changes thrown away after the command (no output).
    pub fn mount_discarded(self, dest: impl Into<String>, state: State) -> Self {
        let mut exec = self.mount(dest, state);
        if let Some(last) = exec.mounts.last_mut() {
            last.discard_output = true;
        }
        exec
    }

    /// Mounts the session's secret `id` at `dest` (read-only, mode `0400`; cap
    /// `exec.mount.secret`). The secret is required: the exec fails when the session linked to
    /// the solve does not serve it. Its bytes are not part of the cache key.
    pub fn secret(self, dest: impl Into<String>, id: impl Into<String>) -> Self {
        self.add_mount(
            dest,
            &State::scratch(),
            String::new(),
            MountKind::Secret { id: id.into() },
        )
    }

    /// Mounts `state` read-only at `dest` **and** makes the mount an output of the exec:
    /// [`Exec::get_mount`] then gives a state that depends on the exec having succeeded, whose
    /// contents are `state`'s (BuildKit hands back the mounted snapshot itself, so the exec's
    /// result costs no new snapshot). The Go client has no such mount; BuildKit has always
    /// accepted it ("if it is readonly and not root then output is the input").
    pub fn mount_readonly_output(self, dest: impl Into<String>, state: State) -> Self {
        let mut exec = self.mount_readonly(dest, state);
        if let Some(last) = exec.mounts.last_mut() {
            last.keep_output = true;
        }
        exec
    }

    /// Mounts the root filesystem read-only, with no output: the exec writes nothing back, and
    /// [`Exec::root`] has nothing to give (use a mount's output, [`Exec::mount_readonly_output`]).
    pub fn readonly_root(mut self) -> Self {
        self.readonly_root = true;
        self
    }

    /// Makes the exec depend on `state` without mounting it: the exec runs only once `state`
    /// was built, and its cache key covers `state`'s. BuildKit loads such an input before the
    /// exec runs and leaves it unused.
    pub fn depend_on(mut self, state: &State) -> Self {
        if let Some(output) = &state.output {
            self.deps.push(output.clone());
        }
        self
    }

    /// Mounts `state` read-only at `dest`. The mount has no output
    /// (`output = -1`); [`Exec::get_mount`] returns `state` itself.
    pub fn mount_readonly(self, dest: impl Into<String>, state: State) -> Self {
        self.add_mount(
            dest,
            &state,
            String::new(),
            MountKind::Bind { readonly: true },
        )
    }

    /// Mounts the subdirectory `path` of `state` read-only at `dest`
    /// (`Mount.selector`; adds cap `exec.mount.selector`).
    pub fn mount_readonly_path(
        self,
        dest: impl Into<String>,
        state: State,
        path: impl Into<String>,
    ) -> Self {
        self.add_mount(
            dest,
            &state,
            path.into(),
            MountKind::Bind { readonly: true },
        )
    }

    /// Mounts `state` writable at `dest`; [`Exec::get_mount`] gives the
    /// mount's contents after the command ran.
    pub fn mount(self, dest: impl Into<String>, state: State) -> Self {
        self.add_mount(
            dest,
            &state,
            String::new(),
            MountKind::Bind { readonly: false },
        )
    }

    /// Mounts an empty tmpfs at `dest` (cap `exec.mount.tmpfs`).
    pub fn tmpfs(self, dest: impl Into<String>) -> Self {
        self.add_mount(
            dest,
            &State::scratch(),
            String::new(),
            MountKind::Tmpfs { size: 0 },
        )
    }

    /// Mounts a tmpfs of at most `bytes` at `dest` (adds cap `exec.mount.tmpfs.size`).
    pub fn tmpfs_sized(self, dest: impl Into<String>, bytes: i64) -> Self {
        self.add_mount(
            dest,
            &State::scratch(),
            String::new(),
            MountKind::Tmpfs { size: bytes },
        )
    }

    /// Mounts the persistent cache directory `id` at `dest` (caps
    /// `exec.mount.cache`, `exec.mount.cache.sharing`).
    pub fn cache(
        self,
        dest: impl Into<String>,
        id: impl Into<String>,
        sharing: CacheSharing,
    ) -> Self {
        let kind = MountKind::Cache {
            id: id.into(),
            sharing,
        };
        self.add_mount(dest, &State::scratch(), String::new(), kind)
    }

    /// Names the vertex in BuildKit's progress (`llb.customname`).
    pub fn custom_name(mut self, name: impl Into<String>) -> Self {
        self.meta
            .description
            .insert(CUSTOM_NAME_KEY.to_owned(), name.into());
        self
    }

    /// Never take this exec from the cache (`OpMetadata.ignore_cache`).
    pub fn ignore_cache(mut self) -> Self {
        self.meta.ignore_cache = true;
        self
    }

    fn freeze(&self) -> (std::sync::Arc<Vertex>, Vec<MountSpec>) {
        let mut mounts = Vec::with_capacity(self.mounts.len() + 1);
        mounts.push(MountSpec {
            dest: "/".to_owned(),
            source: self.base.output.clone(),
            selector: String::new(),
            kind: MountKind::Bind {
                readonly: self.readonly_root,
            },
            keep_output: false,
            discard_output: false,
        });
        mounts.extend(self.mounts.iter().cloned());
        mounts.sort_by(|a, b| a.dest.cmp(&b.dest));
        let op = ExecOp {
            args: self.args.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            config: self.base.config.clone(),
            network: self.network,
            mounts: mounts.clone(),
            deps: self.deps.clone(),
            platform: self.base.platform.clone(),
        };
        let vertex = std::sync::Arc::new(Vertex {
            op: OpKind::Exec(op),
            meta: self.meta.clone(),
            encoded: super::state::EncodedCache::default(),
        });
        (vertex, mounts)
    }

    fn output_of(&self, dest: &str) -> State {
        let (vertex, mounts) = self.freeze();
        let Some(mount) = mounts.iter().find(|m| m.dest == dest) else {
            return State::invalid(LlbError::NoSuchMount {
                dest: dest.to_owned(),
            });
        };
        match mount.kind {
            MountKind::Bind { readonly: true } if mount.keep_output && mount.source.is_none() => {
                State::invalid(LlbError::MountWithoutOutput {
                    dest: dest.to_owned(),
                    kind: "read-only scratch",
                })
            }
            MountKind::Bind { readonly: true } if mount.has_output() && dest != "/" => {
                let index = mounts
                    .iter()
                    .filter(|m| m.has_output())
                    .position(|m| m.dest == dest);
                State::from_vertex(vertex, index.unwrap_or(0) as i64, None)
            }
            MountKind::Bind { readonly: true } if dest == "/" => {
                State::invalid(LlbError::MountWithoutOutput {
                    dest: dest.to_owned(),
                    kind: "read-only root",
                })
            }
            // Go hands back the mounted state itself (the root is never read-only).
            MountKind::Bind { readonly: true } => State {
                output: mount.source.clone(),
                platform: None,
                config: ConfigState::Unset,
            },
            MountKind::Bind { readonly: false } if mount.discard_output => {
                State::invalid(LlbError::MountWithoutOutput {
                    dest: dest.to_owned(),
                    kind: "discarded",
                })
            }
            MountKind::Bind { readonly: false } => {
                let index = mounts
                    .iter()
                    .filter(|m| m.has_output())
                    .position(|m| m.dest == dest);
                let platform = if dest == "/" {
                    self.base.platform.clone()
                } else {
                    None
                };
                let mut state = State::from_vertex(vertex, index.unwrap_or(0) as i64, platform);
                if dest == "/" {
                    // The root keeps the base's config, as a Dockerfile's RUN keeps the image's.
                    state.config = self.base.config.clone();
                }
                state
            }
            MountKind::Tmpfs { .. } => State::invalid(LlbError::MountWithoutOutput {
                dest: dest.to_owned(),
                kind: "tmpfs",
            }),
            MountKind::Cache { .. } => State::invalid(LlbError::MountWithoutOutput {
                dest: dest.to_owned(),
                kind: "cache",
            }),
            MountKind::Secret { .. } => State::invalid(LlbError::MountWithoutOutput {
                dest: dest.to_owned(),
                kind: "secret",
            }),
        }
    }

    /// The root filesystem after the command ran.
    pub fn root(&self) -> State {
        self.output_of("/")
    }

    /// The state of the mount at `dest` after the command ran: for a writable
    /// mount its contents, for a read-only mount the mounted state itself.
    /// Tmpfs and cache mounts have no output; the returned state then fails
    /// to marshal, as does a destination that is not mounted.
    pub fn get_mount(&self, dest: &str) -> State {
        self.output_of(dest)
    }
}

impl From<Exec> for State {
    /// The exec's root filesystem after the command ran ([`Exec::root`]).
    fn from(exec: Exec) -> State {
        exec.root()
    }
}
