//! A file out of a plain definition's result: `LLBBridge.Solve{Definition}` for the result's ref,
//! then `LLBBridge.ReadFile`. The harness takes back a check probe the builder compiled this way
//! (the solve is cached by BuildKit like any other, so later runs only read the file).

use super::build::GatewayBuild;
use super::errors::GatewayError;
use crate::proto::frontend::{ReadFileRequest, SolveRequest, result};
use crate::proto::pb;

impl GatewayBuild {
    /// Solves `definition` inside this build and returns the contents of `path` in its result.
    /// Needs the capabilities `proto.refarray` and `readfile`. When the solve fails, the failing
    /// vertex and its log are in [`GatewayBuild::vertices`].
    pub async fn solve_and_read_file(
        &self,
        definition: pb::Definition,
        path: &str,
    ) -> Result<Vec<u8>, GatewayError> {
        const WHAT: &str = "read a file of a solved definition";
        self.require(WHAT, "proto.refarray")?;
        self.require(WHAT, "readfile")?;
        let mut definition = definition;
        crate::client::sanitize(&mut definition);
        let call = self.request(SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..SolveRequest::default()
        })?;
        let answer = match self.bridge.clone().solve(call).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => return Err(self.call_error("Solve", &status)),
        };
        let ref_id = match answer.result.and_then(|r| r.result) {
            Some(result::Result::Ref(r)) if !r.id.is_empty() => r.id,
            _ => {
                return Err(GatewayError::Rpc {
                    rpc: "Solve",
                    code: tonic::Code::Internal,
                    message: "the solve returned no result ref to read a file from".to_owned(),
                });
            }
        };
        let call = self.request(ReadFileRequest {
            r#ref: ref_id,
            file_path: path.to_owned(),
            range: None,
        })?;
        match self.bridge.clone().read_file(call).await {
            Ok(answer) => Ok(answer.into_inner().data),
            Err(status) => Err(self.call_error("ReadFile", &status)),
        }
    }
}
