//! Image configs: the OCI image config's `config` object ([`ImageConfig`]) and how a known config
//! applies to a state ([`State::with_image_config`]).
//!
//! LLB itself knows nothing about an image's config: `docker-image://` only names a filesystem.
//! `docker run` starts a container with the config's `Env`, `WorkingDir` and `User`; to run
//! commands the same way, a resolved config is attached to the state. Every exec built on the
//! state ([`State::run`]), or on a state derived from it by `run(..).root()`, [`State::file`] or
//! [`State::requires`], then starts with that environment, working directory and user, and its own
//! [`Exec::env`](super::Exec::env), [`Exec::cwd`](super::Exec::cwd) and
//! [`Exec::user`](super::Exec::user) win (an env key replaces the image's value in place).
//!
//! Go's `llb.Image` with a meta resolver applies only `Env` and `WorkingDir` (and the platform), and
//! ignores `User`; this applies `User` too, as `docker run` does. Merges and diffs start with no
//! config. Resolving a config is I/O and belongs to the client (`Client::resolve_image_config`);
//! this module only parses and applies one. A state without a config marshals exactly as before.
//!
//! The runner applies every image's own config without the test attaching it: execs remember
//! what they set themselves, and [`State::apply_resolved`] gives the others the config of the image
//! their root comes from (see `resolve.rs`). A config attached here, or removed with
//! [`State::without_image_config`], is the test's choice and is kept.
//!
//! ```
//! use buildtest::llb::{ImageConfig, Platform, State};
//!
//! let config = ImageConfig::from_image_json(br#"{"config":{
//!     "Env":["PATH=/opt/app/bin:/usr/bin:/bin","MODE=prod"],"WorkingDir":"/srv","User":"app"}}"#)?;
//! let image = State::image("alpine:3.20").with_image_config(&config);
//! let def = image.run(["app", "--version"]).env("MODE", "test").root()
//!     .marshal(&Platform::linux_amd64())?;
//! let ops = def.ops()?;
//! let Some(buildtest::proto::pb::op::Op::Exec(exec)) = &ops[1].op.op else { panic!("not an exec") };
//! let meta = exec.meta.as_ref().expect("exec meta");
//! assert_eq!(meta.env, ["PATH=/opt/app/bin:/usr/bin:/bin", "MODE=test"]);
//! assert_eq!((meta.cwd.as_str(), meta.user.as_str()), ("/srv", "app"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::LlbError;
use super::state::State;

/// The runtime part of an image's config (the OCI image config's `config` object; the same field
/// names as the `Config` of Docker's `GET /images/{name}/json`). Absent and `null` fields read as
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ImageConfig {
    /// `USER`: `name`, `uid`, `name:group` or `uid:gid`; empty means root.
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    /// `ENV`: `KEY=value` entries in order.
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<String>,
    /// `ENTRYPOINT` (exec form).
    #[serde(default, deserialize_with = "nullable")]
    pub entrypoint: Vec<String>,
    /// `CMD` (exec form).
    #[serde(default, deserialize_with = "nullable")]
    pub cmd: Vec<String>,
    /// `WORKDIR`; empty means `/`.
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    /// `EXPOSE`: `port/proto` entries, e.g. `8080/tcp`.
    #[serde(default, with = "set_of_empty_objects")]
    pub exposed_ports: BTreeSet<String>,
    /// `VOLUME`: paths.
    #[serde(default, with = "set_of_empty_objects")]
    pub volumes: BTreeSet<String>,
    /// `LABEL`s.
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    #[serde(default, deserialize_with = "nullable")]
    pub stop_signal: String,
    /// `SHELL`.
    #[serde(default, deserialize_with = "nullable")]
    pub shell: Vec<String>,
    /// `ONBUILD` triggers.
    #[serde(default, deserialize_with = "nullable", rename = "OnBuild")]
    pub on_build: Vec<String>,
}

/// An OCI image config document, as far as the runtime config goes.
#[derive(Deserialize)]
struct ImageDocument {
    #[serde(default, deserialize_with = "nullable")]
    config: ImageConfig,
}

impl ImageConfig {
    /// Reads the `config` object of an OCI image config document (what BuildKit's
    /// `ResolveImageConfig` and a frontend result's `containerimage.config` hold). A document
    /// without `config` gives the empty config.
    pub fn from_image_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        Ok(serde_json::from_slice::<ImageDocument>(json)?.config)
    }

    /// The environment as `(key, value)` pairs, split at the first `=` (an entry without `=` has
    /// an empty value). A later entry for the same key replaces the earlier one in place.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.env.len());
        for entry in &self.env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            match out.iter_mut().find(|(k, _)| k == key) {
                Some(existing) => existing.1 = value.to_owned(),
                None => out.push((key.to_owned(), value.to_owned())),
            }
        }
        out
    }

    /// The value of environment variable `key`, if set.
    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The working directory an exec starts in: `WorkingDir` made absolute, `/` when empty.
    pub fn exec_cwd(&self) -> String {
        if self.working_dir.is_empty() {
            "/".to_owned()
        } else if self.working_dir.starts_with('/') {
            self.working_dir.clone()
        } else {
            format!("/{}", self.working_dir)
        }
    }
}

/// `reference` normalized as [`State::image`] does (`alpine:3.20` →
/// `docker.io/library/alpine:3.20`), e.g. to key resolved configs by image.
pub fn normalize_reference(reference: &str) -> Result<String, LlbError> {
    super::reference::normalize(reference).map_err(|reason| LlbError::InvalidImageReference {
        reference: reference.to_owned(),
        reason,
    })
}

/// What a state says about the config its execs start from.
#[derive(Debug, Clone, Default)]
pub(crate) enum ConfigState {
    /// Nothing said: execs start with no environment, in `/`, as root — until the runner applies
    /// the resolved config of the image the state comes from ([`State::apply_resolved`]).
    #[default]
    Unset,
    /// [`State::with_image_config`], or a config applied by [`State::apply_resolved`].
    Attached(Arc<ImageConfig>),
    /// [`State::without_image_config`]: no config, and none is applied later.
    Cleared,
}

impl ConfigState {
    /// The attached config.
    pub(crate) fn get(&self) -> Option<&Arc<ImageConfig>> {
        match self {
            ConfigState::Attached(config) => Some(config),
            ConfigState::Unset | ConfigState::Cleared => None,
        }
    }
}

impl State {
    /// This state with `config` attached: execs built on it (and on states derived from it) start
    /// with the config's `Env`, `WorkingDir` and `User`, as `docker run` would run them. Replaces a
    /// config attached before, and the runner does not replace it with the image's own config.
    /// Only the execs change; the state's own op and digest do not.
    #[must_use]
    pub fn with_image_config(&self, config: &ImageConfig) -> State {
        let mut state = self.clone();
        state.config = ConfigState::Attached(Arc::new(config.clone()));
        state
    }

    /// This state with no config attached: execs built on it start with no environment, in `/`,
    /// as root, and the runner does not apply the image's config to them either (like
    /// [`ImageOptions::apply_config(false)`](super::ImageOptions::apply_config), for one state).
    #[must_use]
    pub fn without_image_config(&self) -> State {
        let mut state = self.clone();
        state.config = ConfigState::Cleared;
        state
    }

    /// The config execs on this state start from: the one attached by
    /// [`State::with_image_config`] or applied by [`State::apply_resolved`] (the runner applies
    /// every image's and every Dockerfile's own config before it runs checks), carried through
    /// `run(..).root()`, `file` and `requires`. `None` on scratch, local directories, merges,
    /// diffs, definitions made elsewhere, and images whose config is not resolved (yet).
    pub fn image_config(&self) -> Option<&ImageConfig> {
        self.config.get().map(|c| &**c)
    }
}

/// `null` reads as the type's default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `{"8080/tcp": {}, …}` ⇄ a set of keys (`null` reads as empty).
mod set_of_empty_objects {
    use std::collections::{BTreeMap, BTreeSet};

    use super::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        set: &BTreeSet<String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(set.iter().map(|k| (k, serde_json::Map::new())))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeSet<String>, D::Error> {
        let map = Option::<BTreeMap<String, serde::de::IgnoredAny>>::deserialize(deserializer)?;
        Ok(map.unwrap_or_default().into_keys().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::llb::Platform;

    const DOC: &[u8] = br#"{"architecture":"amd64","os":"linux","config":{
        "User":"app:staff","Env":["PATH=/opt/bin:/bin","A=1=2","B","A=3"],
        "Entrypoint":["/bin/app"],"Cmd":["--serve"],"WorkingDir":"/srv",
        "ExposedPorts":{"8080/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},
        "Labels":{"org.example":"yes"},"StopSignal":"SIGTERM","Hostname":"ignored"},
        "rootfs":{"type":"layers","diff_ids":[]}}"#;

    #[test]
    fn parses_oci_and_docker_shapes_and_nulls() {
        let c = ImageConfig::from_image_json(DOC).unwrap();
        assert_eq!(c.user, "app:staff");
        assert_eq!(c.entrypoint, ["/bin/app"]);
        assert_eq!(c.cmd, ["--serve"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(
            c.exposed_ports.iter().collect::<Vec<_>>(),
            ["53/udp", "8080/tcp"]
        );
        assert_eq!(c.volumes.iter().collect::<Vec<_>>(), ["/data"]);
        assert_eq!(c.labels["org.example"], "yes");
        assert_eq!(c.stop_signal, "SIGTERM");
        assert_eq!(
            c.env_pairs(),
            [
                ("PATH".to_owned(), "/opt/bin:/bin".to_owned()),
                ("A".to_owned(), "3".to_owned()),
                ("B".to_owned(), String::new()),
            ]
        );
        assert_eq!(c.env_var("A").as_deref(), Some("3"));

        let nulls = br#"{"config":{"Env":null,"Entrypoint":null,"Cmd":null,"Labels":null,
            "ExposedPorts":null,"Volumes":null,"User":"","WorkingDir":""}}"#;
        let c = ImageConfig::from_image_json(nulls).unwrap();
        assert_eq!(c, ImageConfig::default());
        assert_eq!(c.exec_cwd(), "/");
        assert_eq!(
            ImageConfig::from_image_json(b"{}").unwrap(),
            ImageConfig::default()
        );
        assert!(ImageConfig::from_image_json(b"[1]").is_err());

        // Round trip through JSON keeps every field (the maps of empty objects included).
        let c = ImageConfig::from_image_json(DOC).unwrap();
        let json = serde_json::to_vec(&serde_json::json!({ "config": c })).unwrap();
        assert_eq!(ImageConfig::from_image_json(&json).unwrap(), c);
        assert!(
            String::from_utf8(json)
                .unwrap()
                .contains(r#""8080/tcp":{}"#)
        );
    }

    fn exec_meta(state: &State) -> crate::proto::pb::Meta {
        let def = state.marshal(&Platform::linux_amd64()).unwrap();
        let ops = def.ops().unwrap();
        let exec = ops
            .iter()
            .rev()
            .find_map(|op| match &op.op.op {
                Some(crate::proto::pb::op::Op::Exec(e)) => Some(e.clone()),
                _ => None,
            })
            .unwrap();
        exec.meta.unwrap()
    }

    #[test]
    fn execs_inherit_the_config_and_their_own_settings_win() {
        let config = ImageConfig::from_image_json(DOC).unwrap();
        let image = State::image("alpine:3.20");
        let configured = image.with_image_config(&config);

        let meta = exec_meta(&configured.run(["id"]).root());
        assert_eq!(meta.env, ["PATH=/opt/bin:/bin", "A=3", "B="]);
        assert_eq!(
            (meta.cwd.as_str(), meta.user.as_str()),
            ("/srv", "app:staff")
        );

        let own = configured
            .run(["id"])
            .env("A", "mine")
            .env("C", "new")
            .cwd("/tmp")
            .user("root")
            .root();
        let meta = exec_meta(&own);
        assert_eq!(meta.env, ["PATH=/opt/bin:/bin", "A=mine", "B=", "C=new"]);
        assert_eq!((meta.cwd.as_str(), meta.user.as_str()), ("/tmp", "root"));

        // Carried through run steps, file ops and requires; not through merges.
        let built = configured
            .run(["true"])
            .root()
            .file(crate::llb::FileAction::mkdir("/x", 0o755))
            .requires(
                "dep",
                [State::scratch().file(crate::llb::FileAction::mkdir("/y", 0o755))],
            );
        assert_eq!(built.image_config(), Some(&config));
        assert_eq!(exec_meta(&built.run(["id"]).root()).user, "app:staff");
        assert_eq!(
            crate::llb::merge([built.clone(), image.clone()]).image_config(),
            None
        );

        // Attaching a config changes no digest of the state itself, and without one nothing changes.
        let p = Platform::linux_amd64();
        assert_eq!(
            configured.marshal(&p).unwrap().to_bytes(),
            image.marshal(&p).unwrap().to_bytes()
        );
        assert_eq!(
            configured
                .without_image_config()
                .run(["id"])
                .root()
                .marshal(&p)
                .unwrap()
                .to_bytes(),
            image.run(["id"]).root().marshal(&p).unwrap().to_bytes()
        );
        let meta = exec_meta(&image.run(["id"]).root());
        assert!(meta.env.is_empty());
        assert_eq!((meta.cwd.as_str(), meta.user.as_str()), ("/", ""));
    }
}
