//! Source ops: container images (`docker-image://`) and client-local
//! directories (`local://`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::encode::{BodyTag, encode_source_op};
use super::error::LlbError;
use super::marshal::{Body, OpCx};
use super::reference;
use super::state::{OpKind, Platform, State, Vertex};

/// A `pb.SourceOp`.
#[derive(Debug, Clone)]
pub(crate) struct SourceOp {
    pub(crate) identifier: String,
    pub(crate) attrs: BTreeMap<String, String>,
    caps: Vec<&'static str>,
    /// `Some` for platform-specific sources (images): the explicit platform, if any.
    platform: Option<Option<Platform>>,
    /// For images: whether the runner resolves and applies the image's config
    /// ([`ImageOptions::apply_config`]). Not part of the op's bytes.
    apply_config: bool,
}

impl SourceOp {
    /// The image this source names, when it is an image whose config the runner applies.
    pub(crate) fn image_source(&self) -> Option<ImageSource> {
        let reference = self.identifier.strip_prefix("docker-image://")?;
        if !self.apply_config {
            return None;
        }
        let resolve_mode = match self.attrs.get("image.resolvemode").map(String::as_str) {
            Some("pull") => ResolveMode::ForcePull,
            Some("local") => ResolveMode::PreferLocal,
            _ => ResolveMode::Default,
        };
        Some(ImageSource {
            reference: reference.to_owned(),
            platform: self.platform.clone().flatten(),
            resolve_mode,
        })
    }

    pub(crate) fn marshal(&self, cx: &OpCx<'_>) -> Body {
        Body {
            inputs: Vec::new(),
            platform: self.platform.as_ref().map(|own| cx.platform(own.as_ref())),
            tag: BodyTag::Source,
            bytes: encode_source_op(&self.identifier, &self.attrs),
            caps: self.caps.clone(),
        }
    }
}

/// How BuildKit resolves an image (attr `image.resolvemode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ResolveMode {
    /// The daemon's default: the registry first, the local store as fallback.
    /// Writes no attribute (as Go does).
    #[default]
    Default,
    /// Always pull (`pull`; adds cap `source.image.resolvemode`).
    ForcePull,
    /// Prefer an image already in the daemon's store (`local`).
    PreferLocal,
}

/// Options of [`State::image_with`].
#[derive(Debug, Clone)]
pub struct ImageOptions {
    resolve_mode: ResolveMode,
    platform: Option<Platform>,
    apply_config: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            resolve_mode: ResolveMode::Default,
            platform: None,
            apply_config: true,
        }
    }
}

/// An image whose config the runner resolves before it runs checks (listed by
/// [`State::image_sources`]; see [`State::apply_resolved`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ImageSource {
    /// The normalized reference (`docker.io/library/alpine:3.20`).
    pub reference: String,
    /// The platform the image was pinned to ([`ImageOptions::platform`]), if any.
    pub platform: Option<Platform>,
    /// How the image is resolved.
    pub resolve_mode: ResolveMode,
}

impl ImageSource {
    /// The image `reference` (normalized like [`State::image`]) with default options.
    pub fn new(reference: &str) -> Result<Self, LlbError> {
        Ok(Self {
            reference: super::image_config::normalize_reference(reference)?,
            platform: None,
            resolve_mode: ResolveMode::Default,
        })
    }
}

impl ImageOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the runner applies the image's own config (`Env`, `WorkingDir`, `User`) to the
    /// checks and `run` steps on it, as `docker run` would (default `true`). With `false` they
    /// start with no environment, in `/`, as root, as in plain LLB; an exec's own settings and a
    /// config attached with [`State::with_image_config`] apply either way.
    #[must_use]
    pub fn apply_config(mut self, apply: bool) -> Self {
        self.apply_config = apply;
        self
    }

    /// How the image is resolved.
    #[must_use]
    pub fn resolve_mode(mut self, mode: ResolveMode) -> Self {
        self.resolve_mode = mode;
        self
    }

    /// Pins the image's platform (and that of execs run on it), instead of the
    /// platform given to `marshal`.
    #[must_use]
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }
}

/// Options of [`State::local_with`] and [`State::local_dir_with`].
///
/// Patterns use `.dockerignore` syntax (`*`, `?`, `[…]`, `**`, `\` escapes,
/// a leading `!` negates), matched against paths relative to the
/// directory's root.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    session_id: Option<String>,
    unique_id: Option<String>,
    include_patterns: Vec<String>,
    exclude_patterns: Vec<String>,
    follow_paths: Vec<String>,
    shared_key_hint: Option<String>,
}

impl LocalOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client session that serves the directory (`local.session`).
    #[must_use]
    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// A stable id for the transfer cache (`local.unique`), used when no
    /// session id is set. Go sets a random one per marshal; this layer is
    /// deterministic, so it is only written when given.
    #[must_use]
    pub fn unique_id(mut self, id: impl Into<String>) -> Self {
        self.unique_id = Some(id.into());
        self
    }

    /// Only transfer paths matching these patterns (`local.includepattern`).
    #[must_use]
    pub fn include_patterns(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.include_patterns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Skip paths matching these patterns (`local.excludepatterns`).
    #[must_use]
    pub fn exclude_patterns(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.exclude_patterns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Only transfer these paths, following symlinks among them
    /// (`local.followpaths`).
    #[must_use]
    pub fn follow_paths(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.follow_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// A key shared by transfers of the same directory (`local.sharedkeyhint`):
    /// the daemon keeps one incremental-transfer snapshot per name and hint.
    #[must_use]
    pub fn shared_key_hint(mut self, hint: impl Into<String>) -> Self {
        self.shared_key_hint = Some(hint.into());
        self
    }

    /// Include patterns, exclude patterns and follow paths.
    pub(crate) fn filters(&self) -> (&[String], &[String], &[String]) {
        (
            &self.include_patterns,
            &self.exclude_patterns,
            &self.follow_paths,
        )
    }

    pub(crate) fn has_shared_key_hint(&self) -> bool {
        self.shared_key_hint.is_some()
    }
}

/// A JSON array of strings, escaped as Go's `encoding/json` does.
fn json_string_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

fn source_state(op: SourceOp, platform: Option<Platform>) -> State {
    State::from_vertex(Vertex::new(OpKind::Source(op)), 0, platform)
}

impl State {
    /// A container image, normalized as BuildKit's Go client does
    /// (`alpine:3.20` → `docker.io/library/alpine:3.20`, `alpine` →
    /// `docker.io/library/alpine:latest`, digests kept). An invalid reference
    /// is reported by [`State::marshal`]; see [`State::try_image`] to get it
    /// now.
    pub fn image(reference: &str) -> State {
        Self::image_with(reference, ImageOptions::default())
    }

    /// [`State::image`], failing at once on an invalid reference.
    pub fn try_image(reference: &str) -> Result<State, LlbError> {
        let normalized =
            reference::normalize(reference).map_err(|reason| LlbError::InvalidImageReference {
                reference: reference.to_owned(),
                reason,
            })?;
        Ok(image_state(&normalized, ImageOptions::default()))
    }

    /// [`State::image`] with a resolve mode or a pinned platform.
    pub fn image_with(reference: &str, options: ImageOptions) -> State {
        match reference::normalize(reference) {
            Ok(normalized) => image_state(&normalized, options),
            Err(reason) => State::invalid(LlbError::InvalidImageReference {
                reference: reference.to_owned(),
                reason,
            }),
        }
    }

    /// A directory the client sends to the builder (`local://name`), served by
    /// the client's session under that name. The runner serves names made by
    /// [`State::local_dir`]; use that for a host directory.
    pub fn local(name: &str) -> State {
        Self::local_with(name, LocalOptions::default())
    }

    /// [`State::local`] with options.
    pub fn local_with(name: &str, options: LocalOptions) -> State {
        if name.is_empty() {
            return State::invalid(LlbError::EmptyLocalName);
        }
        let mut attrs = BTreeMap::new();
        let mut caps = vec!["source.local"];
        if let Some(session) = options.session_id {
            attrs.insert("local.session".to_owned(), session);
            caps.push("source.local.sessionid");
        } else if let Some(unique) = options.unique_id {
            attrs.insert("local.unique".to_owned(), unique);
            caps.push("source.local.unique");
        }
        if !options.include_patterns.is_empty() {
            attrs.insert(
                "local.includepattern".to_owned(),
                json_string_array(&options.include_patterns),
            );
            caps.push("source.local.includepatterns");
        }
        if !options.exclude_patterns.is_empty() {
            attrs.insert(
                "local.excludepatterns".to_owned(),
                json_string_array(&options.exclude_patterns),
            );
            caps.push("source.local.excludepatterns");
        }
        if !options.follow_paths.is_empty() {
            attrs.insert(
                "local.followpaths".to_owned(),
                json_string_array(&options.follow_paths),
            );
            caps.push("source.local.followpaths");
        }
        if let Some(hint) = options.shared_key_hint {
            attrs.insert("local.sharedkeyhint".to_owned(), hint);
            caps.push("source.local.sharedkeyhint");
        }
        let op = SourceOp {
            identifier: format!("local://{name}"),
            attrs,
            caps,
            platform: None,
            apply_config: false,
        };
        source_state(op, None)
    }
}

fn image_state(normalized: &str, options: ImageOptions) -> State {
    let mut attrs = BTreeMap::new();
    let mut caps = vec!["source.image"];
    match options.resolve_mode {
        ResolveMode::Default => {}
        ResolveMode::ForcePull => {
            attrs.insert("image.resolvemode".to_owned(), "pull".to_owned());
            caps.push("source.image.resolvemode");
        }
        ResolveMode::PreferLocal => {
            attrs.insert("image.resolvemode".to_owned(), "local".to_owned());
        }
    }
    let op = SourceOp {
        identifier: format!("docker-image://{normalized}"),
        attrs,
        caps,
        platform: Some(options.platform.clone()),
        apply_config: options.apply_config,
    };
    source_state(op, options.platform)
}

#[cfg(test)]
mod tests {
    use super::json_string_array;

    #[test]
    fn json_arrays_escape_like_go() {
        let items = ["a\"b".to_owned(), "<&>".to_owned(), "\u{1}\n".to_owned()];
        assert_eq!(
            json_string_array(&items),
            r#"["a\"b","\u003c\u0026\u003e","\u0001\n"]"#
        );
    }
}
