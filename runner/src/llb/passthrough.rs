//! Passthrough ops: make a state depend on other states without changing it
//! (`State.Requires`, BuildKit v0.31+, cap `passthroughop`).

use prost::Message;

use super::encode::BodyTag;
use super::error::LlbError;
use super::marshal::{Body, OpCx};
use super::state::{OpKind, Output, State, Vertex};
use crate::proto::pb;

/// A `pb.PassthroughOp` forwarding its first input.
#[derive(Debug, Clone)]
pub(crate) struct PassthroughOp {
    id: String,
    pub(crate) inputs: Vec<Output>,
    /// Whether the required state (the forwarded input) is scratch.
    scratch_self: bool,
}

impl PassthroughOp {
    /// The same op reading `map(input)` for each input.
    pub(crate) fn rewritten(&self, map: impl FnMut(&Output) -> Output) -> PassthroughOp {
        PassthroughOp {
            id: self.id.clone(),
            inputs: self.inputs.iter().map(map).collect(),
            scratch_self: self.scratch_self,
        }
    }

    /// The input it forwards (`None` when that is scratch).
    pub(crate) fn forwarded(&self) -> Option<&Output> {
        if self.scratch_self {
            None
        } else {
            self.inputs.first()
        }
    }

    pub(crate) fn marshal(&self, cx: &OpCx<'_>) -> Result<Body, LlbError> {
        if self.id.is_empty() {
            return Err(LlbError::EmptyPassthroughId);
        }
        if self.scratch_self {
            return Err(LlbError::PassthroughWithoutOutput {
                id: self.id.clone(),
            });
        }
        let op = pb::PassthroughOp {
            id: self.id.clone(),
            outputs: vec![0],
        };
        Ok(Body {
            inputs: self.inputs.iter().map(|o| cx.input(o)).collect(),
            platform: None,
            tag: BodyTag::Passthrough,
            bytes: op.encode_to_vec(),
            caps: vec!["passthroughop"],
        })
    }
}

impl State {
    /// This state, built only once every state of `deps` has been built.
    ///
    /// A passthrough op with inputs `[self, deps…]` (scratch dependencies are
    /// dropped) and outputs `[0]`: BuildKit builds all inputs and forwards
    /// `self` unchanged, so a dependency's failure fails this state while its
    /// filesystem changes are discarded. With no dependencies this returns
    /// `self` as it is. An empty `id`, or `self` being scratch, is an error
    /// at marshal time. Needs BuildKit v0.31 or later (cap `passthroughop`).
    pub fn requires(&self, id: &str, deps: impl IntoIterator<Item = State>) -> State {
        let mut deps = deps.into_iter().peekable();
        if deps.peek().is_none() {
            return self.clone();
        }
        let inputs: Vec<Output> = self
            .output
            .iter()
            .cloned()
            .chain(deps.filter_map(|d| d.output))
            .collect();
        let op = PassthroughOp {
            id: id.to_owned(),
            inputs,
            scratch_self: self.is_scratch(),
        };
        let mut state = State::from_vertex(Vertex::new(OpKind::Passthrough(op)), 0, None);
        state.config = self.config.clone();
        state
    }
}
