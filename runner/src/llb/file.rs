//! File ops: create, copy and remove files without running anything.
//!
//! A [`FileAction`] is a chain of actions applied in order to the state
//! [`State::file`] is called on; it becomes one `pb.FileOp`. The first action
//! reads that state (input 0, or -1 for scratch); each later action reads the
//! previous action's result (`input = number of op inputs + previous index`);
//! only the last action has an output (0), the others -1 — as in Go.
//!
//! Caps: `file.base`. Go's client also defines per-action caps
//! (`file.symlink.create`, `file.copy.includeexcludepatterns`, …), but its
//! `FileOp.Marshal` collects them before the actions are known, so they never
//! reach the definition; this layer matches the bytes Go actually produces.

use std::ops::Deref;

use bytes::Bytes;
use prost::Message;

use super::encode::BodyTag;
use super::error::LlbError;
use super::marshal::{Body, OpCx};
use super::path::{clean_path, normalize_path};
use super::state::{OpKind, Output, State, Vertex};
use crate::proto::pb;

#[derive(Debug, Clone)]
enum Id {
    Uid(u32),
    Name(String),
}

#[derive(Debug, Clone)]
struct Chown {
    user: Id,
    group: Option<Id>,
}

#[derive(Debug, Clone, Default)]
struct CopyOpts {
    mode: Option<u32>,
    follow_symlinks: bool,
    dir_contents_only: bool,
    create_dest_path: bool,
    allow_wildcard: bool,
    allow_empty_wildcard: bool,
    include_patterns: Vec<String>,
    exclude_patterns: Vec<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Mkfile {
        path: String,
        mode: u32,
        data: Bytes,
    },
    Mkdir {
        path: String,
        mode: u32,
        make_parents: bool,
    },
    Copy {
        source: Option<Output>,
        src: String,
        dest: String,
        opts: CopyOpts,
    },
    Rm {
        path: String,
        allow_not_found: bool,
        allow_wildcard: bool,
    },
    Symlink {
        target: String,
        link: String,
    },
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Mkfile { .. } => "mkfile",
            Kind::Mkdir { .. } => "mkdir",
            Kind::Copy { .. } => "copy",
            Kind::Rm { .. } => "rm",
            Kind::Symlink { .. } => "symlink",
        }
    }
}

#[derive(Debug, Clone)]
struct Action {
    kind: Kind,
    owner: Option<Chown>,
    /// Unix nanoseconds; Go writes -1 when unset.
    timestamp: Option<i64>,
}

/// The actions of a [`FileAction`], in order, and the first option misuse (reported at marshal).
/// It holds the chaining methods, so that `FileAction::mkdir(..)` constructs and
/// `action.mkfile(..)` appends with nothing more than `FileAction` in scope: one type cannot hold
/// an associated fn and a method of the same name, and a trait would have to be imported.
#[derive(Debug, Clone, Default)]
pub struct FileActionChain {
    actions: Vec<Action>,
    error: Option<LlbError>,
}

/// The name this module uses for the chain's contents.
pub(crate) type Actions = FileActionChain;

/// File actions for [`State::file`]: constructors (`FileAction::mkdir(..)`), chaining
/// (`action.mkfile(..)`, through [`FileActionChain`]), and options that apply to the last action
/// added.
///
/// ```
/// use buildtest::llb::{FileAction, Platform, State};
///
/// let action = FileAction::mkdir("/etc/app", 0o755)
///     .make_parents(true)
///     .mkfile("/etc/app/config", 0o644, "key = 1\n")
///     .owner(1000, 1000)
///     .symlink("/etc/app/config", "/etc/app.conf");
/// let def = State::image("alpine:3.20").file(action).marshal(&Platform::linux_amd64())?;
/// assert_eq!(def.len(), 3); // image, file op, terminal
/// # Ok::<(), buildtest::llb::LlbError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct FileAction {
    chain: Actions,
}

impl Deref for FileAction {
    type Target = FileActionChain;

    fn deref(&self) -> &FileActionChain {
        &self.chain
    }
}

impl FileActionChain {
    /// This chain with `kind` appended.
    fn with(&self, kind: Kind) -> FileAction {
        let mut chain = self.clone();
        chain.actions.push(Action {
            kind,
            owner: None,
            timestamp: None,
        });
        FileAction { chain }
    }

    /// Then write `data` to the file `path` with permission bits `mode`.
    pub fn mkfile(
        &self,
        path: impl Into<String>,
        mode: u32,
        data: impl Into<Vec<u8>>,
    ) -> FileAction {
        self.with(Kind::Mkfile {
            path: path.into(),
            mode,
            data: Bytes::from(data.into()),
        })
    }

    /// Then create the directory `path` with permission bits `mode`.
    pub fn mkdir(&self, path: impl Into<String>, mode: u32) -> FileAction {
        self.with(Kind::Mkdir {
            path: path.into(),
            mode,
            make_parents: false,
        })
    }

    /// Then copy `src` of `from` to `dest`.
    pub fn copy(
        &self,
        from: &State,
        src: impl Into<String>,
        dest: impl Into<String>,
    ) -> FileAction {
        self.with(Kind::Copy {
            source: from.output.clone(),
            src: src.into(),
            dest: dest.into(),
            opts: CopyOpts::default(),
        })
    }

    /// Then remove `path`.
    pub fn rm(&self, path: impl Into<String>) -> FileAction {
        self.with(Kind::Rm {
            path: path.into(),
            allow_not_found: false,
            allow_wildcard: false,
        })
    }

    /// Then create the symlink `link` pointing at `target` (paths as given).
    pub fn symlink(&self, target: impl Into<String>, link: impl Into<String>) -> FileAction {
        self.with(Kind::Symlink {
            target: target.into(),
            link: link.into(),
        })
    }
}

impl FileAction {
    /// Writes `data` to the file `path` with permission bits `mode` (`& 0o777`).
    pub fn mkfile(path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) -> FileAction {
        FileActionChain::default().mkfile(path, mode, data)
    }

    /// Creates the directory `path` with permission bits `mode` (`& 0o777`). Its parent must
    /// exist in the input unless [`FileAction::make_parents`]`(true)`.
    pub fn mkdir(path: impl Into<String>, mode: u32) -> FileAction {
        FileActionChain::default().mkdir(path, mode)
    }

    /// Copies `src` of `from` to `dest` (mode kept unless [`FileAction::copy_mode`]).
    pub fn copy(from: &State, src: impl Into<String>, dest: impl Into<String>) -> FileAction {
        FileActionChain::default().copy(from, src, dest)
    }

    /// Removes `path`.
    pub fn rm(path: impl Into<String>) -> FileAction {
        FileActionChain::default().rm(path)
    }

    /// Creates the symlink `link` pointing at `target`.
    ///
    /// The symlink action is new in BuildKit v0.19: older builders (Docker 20.10's v0.8.3, Docker
    /// 26's v0.13.2) reject it with `invalid action type <nil>`, which the client reports as
    /// unsupported. On those, create links with an exec (`ln -s`) in the input instead.
    pub fn symlink(target: impl Into<String>, link: impl Into<String>) -> FileAction {
        FileActionChain::default().symlink(target, link)
    }

    fn last(mut self, option: &'static str, f: impl FnOnce(&mut Action) -> bool) -> Self {
        if self.chain.error.is_some() {
            return self;
        }
        match self.chain.actions.last_mut() {
            None => self.chain.error = Some(LlbError::FileOptionWithoutAction { option }),
            Some(action) => {
                if !f(action) {
                    let action = action.kind.name();
                    self.chain.error = Some(LlbError::FileOptionNotApplicable { option, action });
                }
            }
        }
        self
    }

    fn copy_opts(self, option: &'static str, f: impl FnOnce(&mut CopyOpts)) -> Self {
        self.last(option, |a| match &mut a.kind {
            Kind::Copy { opts, .. } => {
                f(opts);
                true
            }
            _ => false,
        })
    }

    /// Owner of what the last action creates, by numeric ids (mkfile, mkdir, copy, symlink).
    pub fn owner(self, uid: u32, gid: u32) -> Self {
        self.chown(
            "owner",
            Chown {
                user: Id::Uid(uid),
                group: Some(Id::Uid(gid)),
            },
        )
    }

    /// Owner by user and group names, looked up in the target's `/etc/passwd` and `/etc/group`.
    pub fn owner_names(self, user: impl Into<String>, group: impl Into<String>) -> Self {
        let owner = Chown {
            user: Id::Name(user.into()),
            group: Some(Id::Name(group.into())),
        };
        self.chown("owner_names", owner)
    }

    fn chown(self, option: &'static str, owner: Chown) -> Self {
        self.last(option, |a| {
            if matches!(a.kind, Kind::Rm { .. }) {
                return false;
            }
            a.owner = Some(owner);
            true
        })
    }

    /// Modification time (Unix nanoseconds) of what the last action creates.
    pub fn timestamp(self, unix_nanos: i64) -> Self {
        self.last("timestamp", |a| {
            if matches!(a.kind, Kind::Rm { .. }) {
                return false;
            }
            a.timestamp = Some(unix_nanos);
            true
        })
    }

    /// mkdir: also create missing parent directories.
    pub fn make_parents(self, yes: bool) -> Self {
        self.last("make_parents", |a| match &mut a.kind {
            Kind::Mkdir { make_parents, .. } => {
                *make_parents = yes;
                true
            }
            _ => false,
        })
    }

    /// rm: succeed when the path does not exist.
    pub fn allow_not_found(self, yes: bool) -> Self {
        self.last("allow_not_found", |a| match &mut a.kind {
            Kind::Rm {
                allow_not_found, ..
            } => {
                *allow_not_found = yes;
                true
            }
            _ => false,
        })
    }

    /// rm and copy: treat the path as a wildcard pattern.
    pub fn allow_wildcard(self, yes: bool) -> Self {
        self.last("allow_wildcard", |a| match &mut a.kind {
            Kind::Rm { allow_wildcard, .. } => {
                *allow_wildcard = yes;
                true
            }
            Kind::Copy { opts, .. } => {
                opts.allow_wildcard = yes;
                true
            }
            _ => false,
        })
    }

    /// copy: a wildcard matching nothing is not an error.
    pub fn allow_empty_wildcard(self, yes: bool) -> Self {
        self.copy_opts("allow_empty_wildcard", |o| o.allow_empty_wildcard = yes)
    }

    /// copy: create missing parents of the destination.
    pub fn create_dest_path(self, yes: bool) -> Self {
        self.copy_opts("create_dest_path", |o| o.create_dest_path = yes)
    }

    /// copy: follow a symlink at the source path.
    pub fn follow_symlinks(self, yes: bool) -> Self {
        self.copy_opts("follow_symlinks", |o| o.follow_symlinks = yes)
    }

    /// copy: copy a directory's contents rather than the directory.
    pub fn copy_dir_contents(self, yes: bool) -> Self {
        self.copy_opts("copy_dir_contents", |o| o.dir_contents_only = yes)
    }

    /// copy: set this mode on the copied files instead of keeping theirs.
    pub fn copy_mode(self, mode: u32) -> Self {
        self.copy_opts("copy_mode", |o| o.mode = Some(mode))
    }

    /// copy: only copy paths matching these patterns.
    pub fn include_patterns(self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        self.copy_opts("include_patterns", |o| o.include_patterns = patterns)
    }

    /// copy: skip paths matching these patterns.
    pub fn exclude_patterns(self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        self.copy_opts("exclude_patterns", |o| o.exclude_patterns = patterns)
    }
}

/// A `pb.FileOp`: the action chain bound to the state it applies to.
#[derive(Debug, Clone)]
pub(crate) struct FileOp {
    base: Option<Output>,
    chain: Actions,
}

impl FileOp {
    /// The state the actions apply to (`None` for scratch).
    pub(crate) fn base(&self) -> Option<&Output> {
        self.base.as_ref()
    }

    /// The same op reading `map(input)` for its base and every copy source.
    pub(crate) fn rewritten(&self, mut map: impl FnMut(&Output) -> Output) -> FileOp {
        let mut op = self.clone();
        op.base = op.base.as_ref().map(&mut map);
        for action in &mut op.chain.actions {
            if let Kind::Copy {
                source: Some(source),
                ..
            } = &mut action.kind
            {
                *source = map(source);
            }
        }
        op
    }

    /// Go's walk order: the base, then copy sources from the last action back.
    pub(crate) fn walk_inputs(&self) -> Vec<&Output> {
        let mut out: Vec<&Output> = Vec::new();
        let sources = self
            .chain
            .actions
            .iter()
            .rev()
            .filter_map(|a| match &a.kind {
                Kind::Copy { source, .. } => source.as_ref(),
                _ => None,
            });
        for o in self.base.iter().chain(sources) {
            if !out.iter().any(|seen| seen.same(o)) {
                out.push(o);
            }
        }
        out
    }

    pub(crate) fn marshal(&self, cx: &OpCx<'_>) -> Result<Body, LlbError> {
        if let Some(err) = &self.chain.error {
            return Err(err.clone());
        }
        let mut inputs: Vec<pb::Input> = Vec::new();
        let mut add = |o: &Output| {
            let input = cx.input(o);
            match inputs.iter().position(|i| *i == input) {
                Some(i) => i as i64,
                None => {
                    inputs.push(input);
                    (inputs.len() - 1) as i64
                }
            }
        };
        // Inputs are registered action by action: the base, then a copy's source.
        let mut bases = Vec::with_capacity(self.chain.actions.len());
        let mut secondaries = Vec::with_capacity(self.chain.actions.len());
        for action in &self.chain.actions {
            bases.push(self.base.as_ref().map_or(-1, &mut add));
            secondaries.push(match &action.kind {
                Kind::Copy {
                    source: Some(source),
                    ..
                } => add(source),
                _ => -1,
            });
        }
        let n_inputs = inputs.len() as i64;
        let last = self.chain.actions.len().saturating_sub(1);
        let mut actions = Vec::with_capacity(self.chain.actions.len());
        for (i, action) in self.chain.actions.iter().enumerate() {
            let base = bases[i];
            actions.push(pb::FileAction {
                input: if i == 0 {
                    base
                } else {
                    n_inputs + i as i64 - 1
                },
                secondary_input: secondaries[i],
                output: if i == last { 0 } else { -1 },
                action: Some(proto_action(action, base)?),
            });
        }
        Ok(Body {
            inputs,
            platform: None,
            tag: BodyTag::File,
            bytes: pb::FileOp { actions }.encode_to_vec(),
            caps: vec!["file.base"],
        })
    }
}

fn proto_user(id: &Id, base: i64) -> pb::UserOpt {
    let user = match id {
        Id::Uid(uid) => pb::user_opt::User::ById(*uid),
        Id::Name(name) => pb::user_opt::User::ByName(pb::NamedUserOpt {
            name: name.clone(),
            input: base,
        }),
    };
    pb::UserOpt { user: Some(user) }
}

fn proto_action(action: &Action, base: i64) -> Result<pb::file_action::Action, LlbError> {
    use pb::file_action::Action as A;
    let owner = action.owner.as_ref().map(|o| pb::ChownOpt {
        user: Some(proto_user(&o.user, base)),
        group: o.group.as_ref().map(|g| proto_user(g, base)),
    });
    let timestamp = action.timestamp.unwrap_or(-1);
    let check = |p: &str| {
        if p.is_empty() {
            Err(LlbError::EmptyFilePath {
                action: action.kind.name(),
            })
        } else {
            Ok(())
        }
    };
    Ok(match &action.kind {
        Kind::Mkfile { path, mode, data } => {
            check(path)?;
            A::Mkfile(pb::FileActionMkFile {
                path: normalize_path(path, false),
                mode: (mode & 0o777) as i32,
                data: data.to_vec(),
                owner,
                timestamp,
            })
        }
        Kind::Mkdir {
            path,
            mode,
            make_parents,
        } => {
            check(path)?;
            A::Mkdir(pb::FileActionMkDir {
                path: normalize_path(path, false),
                mode: (mode & 0o777) as i32,
                make_parents: *make_parents,
                owner,
                timestamp,
            })
        }
        Kind::Copy {
            src, dest, opts, ..
        } => {
            check(src)?;
            check(dest)?;
            A::Copy(pb::FileActionCopy {
                src: clean_path(&format!("/{}", clean_path(src))),
                dest: normalize_path(dest, true),
                owner,
                mode: opts.mode.map_or(-1, |m| m as i32),
                follow_symlink: opts.follow_symlinks,
                dir_copy_contents: opts.dir_contents_only,
                create_dest_path: opts.create_dest_path,
                allow_wildcard: opts.allow_wildcard,
                allow_empty_wildcard: opts.allow_empty_wildcard,
                timestamp,
                include_patterns: opts.include_patterns.clone(),
                exclude_patterns: opts.exclude_patterns.clone(),
                ..Default::default()
            })
        }
        Kind::Rm {
            path,
            allow_not_found,
            allow_wildcard,
        } => {
            check(path)?;
            A::Rm(pb::FileActionRm {
                path: normalize_path(path, false),
                allow_not_found: *allow_not_found,
                allow_wildcard: *allow_wildcard,
            })
        }
        Kind::Symlink { target, link } => {
            check(target)?;
            check(link)?;
            A::Symlink(pb::FileActionSymlink {
                oldpath: target.clone(),
                newpath: link.clone(),
                owner,
                timestamp,
            })
        }
    })
}

impl State {
    /// Applies the file actions to this state (one `pb.FileOp`, cap `file.base`).
    /// An empty action returns this state unchanged.
    pub fn file(&self, action: FileAction) -> State {
        if action.chain.actions.is_empty() && action.chain.error.is_none() {
            return self.clone();
        }
        let op = FileOp {
            base: self.output.clone(),
            chain: action.chain,
        };
        let mut state = State::from_vertex(Vertex::new(OpKind::File(op)), 0, self.platform.clone());
        state.config = self.config.clone();
        state
    }
}
