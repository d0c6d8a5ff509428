//! Merge ops: layer several states on top of each other (`llb.Merge`).

use prost::Message;

use super::encode::BodyTag;
use super::marshal::{Body, OpCx};
use super::state::{OpKind, Output, State, Vertex};
use crate::proto::pb;

/// A `pb.MergeOp` over at least two non-scratch inputs.
#[derive(Debug, Clone)]
pub(crate) struct MergeOp {
    pub(crate) inputs: Vec<Output>,
}

impl MergeOp {
    /// The same op reading `map(input)` for each input.
    pub(crate) fn rewritten(&self, map: impl FnMut(&Output) -> Output) -> MergeOp {
        MergeOp {
            inputs: self.inputs.iter().map(map).collect(),
        }
    }

    pub(crate) fn marshal(&self, cx: &OpCx<'_>) -> Body {
        // Go appends every input, duplicates included, in order.
        let inputs: Vec<pb::Input> = self.inputs.iter().map(|o| cx.input(o)).collect();
        let op = pb::MergeOp {
            inputs: (0..inputs.len())
                .map(|i| pb::MergeInput { input: i as i64 })
                .collect(),
        };
        Body {
            inputs,
            platform: None,
            tag: BodyTag::Merge,
            bytes: op.encode_to_vec(),
            caps: vec!["mergeop"],
        }
    }
}

/// Merges `states`, later ones on top (cap `mergeop`, BuildKit v0.10+).
///
/// Scratch inputs are dropped, as they change nothing: with no other input
/// the result is scratch, and with one it is that state itself.
pub fn merge(states: impl IntoIterator<Item = State>) -> State {
    let mut inputs: Vec<State> = states.into_iter().filter(|s| !s.is_scratch()).collect();
    match inputs.len() {
        0 => State::scratch(),
        1 => inputs.remove(0),
        _ => {
            let outputs = inputs.into_iter().filter_map(|s| s.output).collect();
            State::from_vertex(
                Vertex::new(OpKind::Merge(MergeOp { inputs: outputs })),
                0,
                None,
            )
        }
    }
}
