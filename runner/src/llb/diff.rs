//! Diff ops: the changes that turn one state into another (`llb.Diff`).

use prost::Message;

use super::encode::BodyTag;
use super::marshal::{Body, OpCx};
use super::state::{OpKind, Output, State, Vertex};
use crate::proto::pb;

/// A `pb.DiffOp`; `lower` is never scratch (that case is simplified away).
#[derive(Debug, Clone)]
pub(crate) struct DiffOp {
    lower: Output,
    upper: Option<Output>,
}

impl DiffOp {
    /// The same op reading `map(input)` for each input.
    pub(crate) fn rewritten(&self, mut map: impl FnMut(&Output) -> Output) -> DiffOp {
        DiffOp {
            lower: map(&self.lower),
            upper: self.upper.as_ref().map(map),
        }
    }

    pub(crate) fn walk_inputs(&self) -> Vec<&Output> {
        std::iter::once(&self.lower)
            .chain(self.upper.as_ref())
            .collect()
    }

    pub(crate) fn marshal(&self, cx: &OpCx<'_>) -> Body {
        let mut inputs = vec![cx.input(&self.lower)];
        let upper = match &self.upper {
            Some(upper) => {
                inputs.push(cx.input(upper));
                1
            }
            None => -1,
        };
        let op = pb::DiffOp {
            lower: Some(pb::LowerDiffInput { input: 0 }),
            upper: Some(pb::UpperDiffInput { input: upper }),
        };
        Body {
            inputs,
            platform: None,
            tag: BodyTag::Diff,
            bytes: op.encode_to_vec(),
            caps: vec!["diffop"],
        }
    }
}

/// The changes from `lower` to `upper` (cap `diffop`, BuildKit v0.10+); merge
/// it onto another state to apply them there.
///
/// A diff from scratch is `upper` itself (scratch if both are scratch).
pub fn diff(lower: &State, upper: &State) -> State {
    let Some(lower_out) = &lower.output else {
        return upper.clone();
    };
    let op = DiffOp {
        lower: lower_out.clone(),
        upper: upper.output.clone(),
    };
    State::from_vertex(Vertex::new(OpKind::Diff(op)), 0, lower.platform.clone())
}
