//! What produces a state ([`State::origin`]): scratch, an image, a local directory or a step,
//! without marshalling it. Runners use it to decide what they can resolve for a state (an image's
//! config) and to say why they cannot.

use super::state::{OpKind, Platform, State};

/// The op a state is the output of, as far as resolving its image config goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// [`State::scratch`].
    Scratch,
    /// A `docker-image://` source ([`State::image`]).
    Image {
        /// The normalized reference (`docker.io/library/alpine:3.20`).
        reference: String,
        /// The platform the image was pinned to, if any.
        platform: Option<Platform>,
    },
    /// A `local://` source ([`State::local_dir`], [`State::local`]).
    Local {
        /// The source's name.
        name: String,
    },
    /// Any other op: `exec` (a `run` step), `file`, `merge`, `diff`, `passthrough`, an op taken
    /// from a definition, a state that failed to build (`invalid`), or a [`State::dockerfile`]
    /// the runner has not built yet (`dockerfile`; once built it carries its result's config).
    Op {
        /// The op's kind, as above.
        kind: &'static str,
    },
}

impl State {
    /// What produces this state (its head op), e.g. to tell a plain [`State::image`] from a step
    /// built on one.
    pub fn origin(&self) -> Origin {
        let Some(head) = &self.output else {
            return Origin::Scratch;
        };
        match &head.vertex.op {
            OpKind::Source(op) => {
                if let Some(reference) = op.identifier.strip_prefix("docker-image://") {
                    return Origin::Image {
                        reference: reference.to_owned(),
                        platform: self.platform.clone(),
                    };
                }
                match op.local_source() {
                    Ok(Some(local)) => Origin::Local { name: local.name },
                    _ => Origin::Op { kind: "source" },
                }
            }
            OpKind::Exec(_) => Origin::Op { kind: "exec" },
            OpKind::File(_) => Origin::Op { kind: "file" },
            OpKind::Merge(_) => Origin::Op { kind: "merge" },
            OpKind::Diff(_) => Origin::Op { kind: "diff" },
            OpKind::Passthrough(_) => Origin::Op {
                kind: "passthrough",
            },
            OpKind::Raw(op) => Origin::Op { kind: op.kind },
            OpKind::Invalid(_) => Origin::Op { kind: "invalid" },
            OpKind::Dockerfile(_) => Origin::Op { kind: "dockerfile" },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llb::{FileAction, ImageOptions};

    #[test]
    fn origins() {
        assert_eq!(State::scratch().origin(), Origin::Scratch);
        assert_eq!(
            State::image("alpine:3.20").origin(),
            Origin::Image {
                reference: "docker.io/library/alpine:3.20".to_owned(),
                platform: None
            }
        );
        let pinned = State::image_with(
            "busybox",
            ImageOptions::new().platform(Platform::linux_arm64()),
        );
        assert!(matches!(
            pinned.origin(),
            Origin::Image { platform: Some(p), .. } if p == Platform::linux_arm64()
        ));
        assert_eq!(
            State::local("ctx").origin(),
            Origin::Local {
                name: "ctx".to_owned()
            }
        );
        let image = State::image("alpine:3.20");
        assert_eq!(
            image.run(["true"]).root().origin(),
            Origin::Op { kind: "exec" }
        );
        assert_eq!(
            image.file(FileAction::mkdir("/x", 0o755)).origin(),
            Origin::Op { kind: "file" }
        );
        assert_eq!(
            crate::llb::merge([image.clone(), State::local("a")]).origin(),
            Origin::Op { kind: "merge" }
        );
        assert_eq!(
            crate::llb::diff(&image, &image.run(["true"]).root()).origin(),
            Origin::Op { kind: "diff" }
        );
        assert_eq!(
            State::image("not a reference").origin(),
            Origin::Op { kind: "invalid" }
        );
    }
}
