//! The buildx store: builder instances and the current builder.
//!
//! Store directory: `$BUILDX_CONFIG`, else `$DOCKER_CONFIG/buildx`, else `~/.docker/buildx`.
//! `instances/<name>` holds a JSON node group `{Name, Driver, Nodes: [{Name, Endpoint, DriverOpts…}]}`;
//! `current` holds `{Key, Name, Global}` (Key = the docker context name or docker host it applies to).
//!
//! Drivers mapped to transports (first node):
//! - `docker`: the Docker engine named by the node's endpoint (a context name or a docker host);
//! - `docker-container`: `docker [--host H | --context C] exec -i buildx_buildkit_<node> buildctl dial-stdio`;
//! - `remote`: the node's endpoint as a buildctl address, TLS from driver opts `cacert`, `cert`, `key`,
//!   `servername`.
//!
//! A builder name that is not in the store but names a docker context (or `default`) is that context's
//! Docker engine, as in buildx.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::addr::{self, BuilderSpec, CommandSpec, Reason, TransportSpec};
use super::docker_context;
use super::env::Env;
use super::errors::ResolveError;
use super::tls::TlsOptions;

#[derive(Debug, Deserialize)]
struct NodeGroup {
    #[serde(rename = "Driver", default)]
    driver: String,
    #[serde(rename = "Nodes", default)]
    nodes: Option<Vec<Node>>,
}

#[derive(Debug, Deserialize)]
struct Node {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Endpoint", default)]
    endpoint: String,
    #[serde(rename = "DriverOpts", default)]
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct Current {
    #[serde(rename = "Key", default)]
    key: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Global", default)]
    global: bool,
}

/// The builder selected by the store's `current` file for the current docker endpoint, if any.
pub fn current_builder(env: &Env) -> Result<Option<String>, ResolveError> {
    let Some(store) = env.buildx_config_dir() else {
        return Ok(None);
    };
    let path = store.join("current");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ResolveError::Read {
                what: "buildx current builder",
                path,
                source,
            });
        }
    };
    let current: Current = serde_json::from_str(&text).map_err(|source| ResolveError::Json {
        what: "buildx current builder",
        path,
        source,
    })?;
    if current.name.is_empty() {
        return Ok(None);
    }
    let applies = current.global || {
        let context = docker_context::current_context(env)?;
        let host = env
            .get("DOCKER_HOST")
            .unwrap_or("unix:///var/run/docker.sock");
        match context {
            Some(ctx) => current.key == ctx,
            None => current.key == host || current.key == "default",
        }
    };
    Ok(applies.then_some(current.name))
}

/// The node names of buildx builder `name` in the store, in the store's order (empty when the
/// store has no such instance: an implicit docker-context builder). A builder with several
/// nodes is run on every one of them as `NAME/NODE` (see [`builder`]).
pub fn node_names(env: &Env, name: &str) -> Result<Vec<String>, ResolveError> {
    let store = env
        .buildx_config_dir()
        .unwrap_or_else(|| PathBuf::from("~/.docker/buildx"));
    let path = store.join("instances").join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ResolveError::Read {
                what: "buildx builder",
                path,
                source,
            });
        }
    };
    let group: NodeGroup = serde_json::from_str(&text).map_err(|source| ResolveError::Json {
        what: "buildx builder",
        path,
        source,
    })?;
    Ok(group
        .nodes
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.name)
        .collect())
}

/// The builder `name` from the buildx store; `via` says how the name was chosen. `NAME/NODE`
/// (when the store has no instance named so) is node `NODE` of builder `NAME`; otherwise the
/// builder's first node.
pub fn builder(
    env: &Env,
    name: &str,
    via: &str,
    docker_cli: &Path,
) -> Result<BuilderSpec, ResolveError> {
    let store = env
        .buildx_config_dir()
        .unwrap_or_else(|| PathBuf::from("~/.docker/buildx"));
    let (name, wanted_node) = match name.rsplit_once('/') {
        Some((group, node)) if !store.join("instances").join(name).exists() => (group, Some(node)),
        _ => (name, None),
    };
    let reason = Reason::BuildxBuilder {
        name: name.to_owned(),
        store: store.clone(),
        via: via.to_owned(),
    };
    let path = store.join("instances").join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // buildx's implicit builders: one per docker context, using its engine.
            return match docker_context::context_engine(env, name) {
                Ok(spec) => Ok(BuilderSpec {
                    transport: spec.transport,
                    reason,
                }),
                Err(ResolveError::NoSuchContext { .. }) => Err(ResolveError::NoSuchBuilder {
                    name: name.to_owned(),
                    store,
                }),
                Err(e) => Err(e),
            };
        }
        Err(source) => {
            return Err(ResolveError::Read {
                what: "buildx builder",
                path,
                source,
            });
        }
    };
    let group: NodeGroup = serde_json::from_str(&text).map_err(|source| ResolveError::Json {
        what: "buildx builder",
        path: path.clone(),
        source,
    })?;
    let node = match wanted_node {
        None => group.nodes.as_ref().and_then(|n| n.first()),
        Some(wanted) => group
            .nodes
            .as_ref()
            .and_then(|n| n.iter().find(|node| node.name == wanted)),
    }
    .ok_or_else(|| ResolveError::BadBuilder {
        name: name.to_owned(),
        reason: match wanted_node {
            None => "it has no nodes".to_owned(),
            Some(wanted) => format!("it has no node `{wanted}`"),
        },
    })?;
    let transport = match group.driver.as_str() {
        "docker" => docker_endpoint(env, &node.endpoint)?,
        "docker-container" => {
            let mut args = Vec::new();
            match node.endpoint.as_str() {
                "" | "default" => {}
                ep if ep.contains("://") => args.extend(["--host".to_owned(), ep.to_owned()]),
                ctx => args.extend(["--context".to_owned(), ctx.to_owned()]),
            }
            let container = format!("buildx_buildkit_{}", node.name);
            args.extend(["exec", "-i", &container, "buildctl", "dial-stdio"].map(str::to_owned));
            TransportSpec::Command(CommandSpec {
                program: docker_cli.to_path_buf(),
                args,
            })
        }
        "remote" => {
            let opts = node.driver_opts.clone().unwrap_or_default();
            let path_opt = |k: &str| opts.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
            let tls = TlsOptions {
                ca_cert: path_opt("cacert"),
                cert: path_opt("cert"),
                key: path_opt("key"),
                server_name: opts.get("servername").filter(|v| !v.is_empty()).cloned(),
            };
            addr::parse_addr(&node.endpoint, &tls, docker_cli)?
        }
        other => {
            return Err(ResolveError::BadBuilder {
                name: name.to_owned(),
                reason: format!(
                    "driver `{other}` is not supported (supported: docker, docker-container, remote)"
                ),
            });
        }
    };
    Ok(BuilderSpec { transport, reason })
}

/// A `docker` driver node's endpoint: a docker host URL or a context name.
fn docker_endpoint(env: &Env, endpoint: &str) -> Result<TransportSpec, ResolveError> {
    if endpoint.contains("://") {
        addr::parse_docker_host(endpoint, None)
    } else if endpoint.is_empty() {
        Ok(docker_context::docker_engine(env)?.transport)
    } else {
        Ok(docker_context::context_engine(env, endpoint)?.transport)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::addr::Socket;

    fn store_with(instances: &[(&str, &str)], current: Option<&str>) -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("buildx");
        std::fs::create_dir_all(store.join("instances")).unwrap();
        for (name, json) in instances {
            std::fs::write(store.join("instances").join(name), json).unwrap();
        }
        if let Some(current) = current {
            std::fs::write(store.join("current"), current).unwrap();
        }
        let env = Env::empty().var("DOCKER_CONFIG", dir.path().to_str().unwrap());
        (dir, env)
    }

    const CONTAINER: &str = r#"{"Name":"ctr","Driver":"docker-container","Nodes":[{"Name":"ctr0","Endpoint":"unix:///var/run/docker.sock","Platforms":null,"Flags":null,"DriverOpts":null,"Files":null}],"Dynamic":false}"#;
    const REMOTE: &str = r#"{"Name":"rem","Driver":"remote","Nodes":[{"Name":"rem0","Endpoint":"tcp://127.0.0.1:1234","DriverOpts":{"cacert":"/c/ca.pem","cert":"/c/cert.pem","key":"/c/key.pem","servername":"bk"}}]}"#;
    const DOCKER: &str = r#"{"Name":"dk","Driver":"docker","Nodes":[{"Name":"dk0","Endpoint":"unix:///run/other.sock"}]}"#;

    #[test]
    fn docker_container_driver_execs_into_the_node_container() {
        let (_dir, env) = store_with(&[("ctr", CONTAINER)], None);
        let spec = builder(&env, "ctr", "--builder", Path::new("/usr/bin/docker")).unwrap();
        let TransportSpec::Command(cmd) = &spec.transport else {
            panic!("{spec}")
        };
        assert_eq!(
            cmd.args,
            [
                "--host",
                "unix:///var/run/docker.sock",
                "exec",
                "-i",
                "buildx_buildkit_ctr0",
                "buildctl",
                "dial-stdio"
            ]
        );
        assert!(
            spec.reason
                .to_string()
                .starts_with("buildx builder ctr from "),
            "{}",
            spec.reason
        );
        assert!(
            spec.reason.to_string().ends_with("buildx (--builder)"),
            "{}",
            spec.reason
        );
    }

    #[test]
    fn a_builder_with_several_nodes_lists_them_and_each_is_reachable_by_name() {
        let two = r#"{"Name":"pool","Driver":"remote","Nodes":[{"Name":"a","Endpoint":"tcp://127.0.0.1:1001"},{"Name":"b","Endpoint":"tcp://127.0.0.1:1002"}]}"#;
        let (_dir, env) = store_with(&[("pool", two)], None);
        assert_eq!(node_names(&env, "pool").unwrap(), ["a", "b"]);
        assert!(node_names(&env, "absent").unwrap().is_empty());
        let docker = Path::new("docker");
        let first = builder(&env, "pool", "--builder", docker).unwrap();
        let b = builder(&env, "pool/b", "BUILDTEST_NODES", docker).unwrap();
        assert!(
            first.transport.to_string().contains("127.0.0.1:1001"),
            "{first}"
        );
        assert!(b.transport.to_string().contains("127.0.0.1:1002"), "{b}");
        let err = builder(&env, "pool/c", "BUILDTEST_NODES", docker).unwrap_err();
        assert!(err.to_string().contains("it has no node `c`"), "{err}");
    }

    #[test]
    fn remote_driver_uses_driver_opts_for_tls() {
        let (_dir, env) = store_with(&[("rem", REMOTE)], None);
        let spec = builder(&env, "rem", "BUILDX_BUILDER", Path::new("docker")).unwrap();
        let TransportSpec::Buildkitd {
            socket,
            tls: Some(tls),
        } = spec.transport
        else {
            panic!()
        };
        assert_eq!(
            socket,
            Socket::Tcp {
                host: "127.0.0.1".into(),
                port: 1234
            }
        );
        assert_eq!(tls.server_name.as_deref(), Some("bk"));
        assert_eq!(tls.key, Some(PathBuf::from("/c/key.pem")));
    }

    #[test]
    fn docker_driver_and_implicit_context_builders() {
        let (_dir, env) = store_with(&[("dk", DOCKER)], None);
        let spec = builder(&env, "dk", "current", Path::new("docker")).unwrap();
        assert_eq!(
            spec.transport.to_string(),
            "docker engine at unix:///run/other.sock"
        );
        let spec = builder(&env, "default", "--builder", Path::new("docker")).unwrap();
        assert_eq!(
            spec.transport.to_string(),
            "docker engine at unix:///var/run/docker.sock"
        );
        let err = builder(&env, "missing", "--builder", Path::new("docker"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("find buildx builder `missing`: no such builder in "),
            "{err}"
        );
    }

    #[test]
    fn unsupported_driver_and_broken_json_are_clear() {
        let kube = r#"{"Name":"k","Driver":"kubernetes","Nodes":[{"Name":"k0","Endpoint":"kubernetes:///k"}]}"#;
        let (_dir, env) = store_with(&[("k", kube), ("bad", "{")], None);
        let err = builder(&env, "k", "--builder", Path::new("docker"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "use buildx builder `k`: driver `kubernetes` is not supported (supported: docker, docker-container, remote)"
        );
        let err = builder(&env, "bad", "--builder", Path::new("docker"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("parse buildx builder ") && err.contains("instances/bad"),
            "{err}"
        );
    }

    #[test]
    fn current_applies_to_its_docker_endpoint() {
        let cur = r#"{"Key":"unix:///var/run/docker.sock","Name":"ctr","Global":false}"#;
        let (_dir, env) = store_with(&[("ctr", CONTAINER)], Some(cur));
        assert_eq!(current_builder(&env).unwrap().as_deref(), Some("ctr"));
        let other = env.clone().var("DOCKER_HOST", "unix:///elsewhere.sock");
        assert_eq!(current_builder(&other).unwrap(), None);
        let global = r#"{"Key":"x","Name":"ctr","Global":true}"#;
        let (_dir2, env) = store_with(&[], Some(global));
        assert_eq!(
            current_builder(&env.var("DOCKER_HOST", "tcp://1.2.3.4:1"))
                .unwrap()
                .as_deref(),
            Some("ctr")
        );
    }
}
