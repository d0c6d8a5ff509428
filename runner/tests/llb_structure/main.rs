//! Structure of marshalled LLB for what the golden vectors do not cover:
//! decode the Definition and check ops, inputs, actions, metadata and caps,
//! and that every invalid graph fails with its typed error.

mod errors;
mod exec;
mod file_ops;
mod graph;
mod inputs;
mod resolve;
mod sources;

use buildtest::llb::{
    CacheSharing, DecodedOp, Definition, FileAction, ImageOptions, LlbError, LocalOptions, NetMode,
    Platform, ResolveMode, State, diff, merge,
};
use buildtest::proto::pb;

fn marshal(state: &State) -> Definition {
    state.marshal(&Platform::linux_amd64()).expect("marshal")
}

fn ops(state: &State) -> Vec<DecodedOp> {
    Definition::decode(&marshal(state).to_bytes()).expect("decode")
}

fn err(state: &State) -> LlbError {
    state
        .marshal(&Platform::linux_amd64())
        .expect_err("marshal should fail")
}

fn kinds(ops: &[DecodedOp]) -> Vec<&'static str> {
    ops.iter().map(DecodedOp::kind).collect()
}

fn op<'a>(ops: &'a [DecodedOp], kind: &str) -> &'a DecodedOp {
    ops.iter()
        .find(|o| o.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} op in {:?}", kinds(ops)))
}

fn exec_of(op: &DecodedOp) -> &pb::ExecOp {
    match &op.op.op {
        Some(pb::op::Op::Exec(exec)) => exec,
        other => panic!("not an exec: {other:?}"),
    }
}

fn file_of(op: &DecodedOp) -> &pb::FileOp {
    match &op.op.op {
        Some(pb::op::Op::File(file)) => file,
        other => panic!("not a file op: {other:?}"),
    }
}

fn terminal(ops: &[DecodedOp]) -> &DecodedOp {
    ops.last().expect("terminal op")
}

fn alpine() -> State {
    State::image("alpine:3.20")
}

fn by_id(id: u32) -> Option<pb::UserOpt> {
    Some(pb::UserOpt {
        user: Some(pb::user_opt::User::ById(id)),
    })
}
