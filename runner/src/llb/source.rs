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
}

impl SourceOp {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    resolve_mode: ResolveMode,
    platform: Option<Platform>,
}

impl ImageOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
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
