//! Ending a gateway build with a definition and result metadata, so the exporter of the build's
//! `Control.Solve` writes it with that metadata — the only way to give a Docker engine's `moby`
//! exporter an image config (`containerimage.config`): it reads the config from the result's
//! metadata, not from the exporter's attributes (observed on Docker 20.10 and 26.1: the attribute
//! is ignored and the image gets an empty config).

use std::collections::BTreeMap;

use super::build::GatewayBuild;
use super::errors::GatewayError;
use crate::client::VertexReport;
use crate::proto::frontend::{ReturnRequest, SolveRequest, result};
use crate::proto::{frontend, pb};

/// What a build ended with [`GatewayBuild::finish_with`] produced.
#[derive(Debug, Clone, Default)]
pub struct FinishedBuild {
    /// The exporter's answer (`containerimage.digest`, …); empty without an exporter.
    pub exporter_response: BTreeMap<String, String>,
    /// Every vertex the build's Status reported (cached or not).
    pub vertices: Vec<VertexReport>,
}

impl GatewayBuild {
    /// Solves `definition` in this build, returns it (`LLBBridge.Return`) as the build's result
    /// with `metadata`, waits for the build's `Control.Solve` and gives back its exporter's answer
    /// (empty without [`super::GatewayOptions::exporter`]). Needs the capability
    /// `proto.refarray`.
    pub async fn finish_with(
        mut self,
        definition: pb::Definition,
        metadata: BTreeMap<String, Vec<u8>>,
    ) -> Result<FinishedBuild, GatewayError> {
        self.require("return a result with metadata", "proto.refarray")?;
        let mut definition = definition;
        crate::client::sanitize(&mut definition);
        let call = self.request(SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..SolveRequest::default()
        })?;
        let answer = self
            .bridge
            .clone()
            .solve(call)
            .await
            .map_err(|status| self.call_error("Solve", &status))?
            .into_inner();
        let reference = match answer.result.and_then(|r| r.result) {
            Some(result::Result::Ref(r)) => r,
            other => {
                return Err(GatewayError::Rpc {
                    rpc: "Solve",
                    code: tonic::Code::Internal,
                    message: format!(
                        "the definition's solve returned no single ref ({})",
                        if other.is_some() {
                            "another form"
                        } else {
                            "nothing"
                        }
                    ),
                });
            }
        };
        let request = self.request(ReturnRequest {
            result: Some(frontend::Result {
                metadata,
                result: Some(result::Result::Ref(reference)),
            }),
            error: None,
        })?;
        self.bridge
            .clone()
            .r#return(request)
            .await
            .map_err(|status| self.call_error("Return", &status))?;
        self.wait_end().await?;
        let exporter_response = self
            .shared
            .exporter_response
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(FinishedBuild {
            exporter_response,
            vertices: self.vertices(),
        })
    }
}
