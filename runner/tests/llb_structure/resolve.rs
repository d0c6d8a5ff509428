//! `State::apply_resolved`: image configs and Dockerfile results applied to a graph built before
//! they were known.

use super::*;
use buildtest::llb::{DockerfileOptions, ImageConfig, ImageSource, ResolvedInputs};

fn config(json: &str) -> ImageConfig {
    ImageConfig::from_image_json(json.as_bytes()).expect("config")
}

fn app_config() -> ImageConfig {
    config(
        r#"{"config":{"Env":["PATH=/app/bin:/bin","MODE=prod"],"WorkingDir":"/srv","User":"app"}}"#,
    )
}

/// `(env, cwd, user)` of every exec, in walk order.
fn metas(state: &State) -> Vec<(Vec<String>, String, String)> {
    ops(state)
        .iter()
        .filter_map(|o| match &o.op.op {
            Some(pb::op::Op::Exec(e)) => {
                let m = e.meta.clone().expect("meta");
                Some((m.env, m.cwd, m.user))
            }
            _ => None,
        })
        .collect()
}

fn resolved_for(image: &str, config: ImageConfig) -> ResolvedInputs {
    let mut resolved = ResolvedInputs::new();
    resolved.add_image(ImageSource::new(image).expect("reference"), config);
    resolved
}

#[test]
fn unresolved_graphs_keep_their_bytes() {
    let graph = State::image("alpine:3.20")
        .run(["make"])
        .root()
        .file(FileAction::mkdir("/x", 0o755));
    let before = marshal(&graph).to_bytes();
    assert_eq!(
        marshal(&graph.apply_resolved(&ResolvedInputs::new())).to_bytes(),
        before
    );
    // A config for another image changes nothing either.
    let other = resolved_for("debian:bookworm", app_config());
    assert_eq!(marshal(&graph.apply_resolved(&other)).to_bytes(), before);
    assert_eq!(graph.apply_resolved(&other).image_config(), None);
}

#[test]
fn execs_take_the_config_of_the_image_their_root_comes_from() {
    let image = State::image("alpine:3.20");
    let graph = image
        .run(["first"])
        .env("MODE", "test")
        .root()
        .file(FileAction::mkdir("/x", 0o755))
        .run(["second"])
        .cwd("/tmp")
        .user("root")
        .root()
        .requires(
            "dep",
            [State::image("debian:bookworm").run(["other"]).root()],
        );
    assert_eq!(graph.image_sources().len(), 2);
    let applied = graph.apply_resolved(&resolved_for("alpine:3.20", app_config()));
    let metas = metas(&applied);
    assert_eq!(metas.len(), 3, "{metas:?}");
    assert!(metas.contains(&(
        vec!["PATH=/app/bin:/bin".to_owned(), "MODE=test".to_owned()],
        "/srv".to_owned(),
        "app".to_owned()
    )));
    assert!(metas.contains(&(
        vec!["PATH=/app/bin:/bin".to_owned(), "MODE=prod".to_owned()],
        "/tmp".to_owned(),
        "root".to_owned()
    )));
    // The debian exec's image was not resolved: it runs as in plain LLB.
    assert!(metas.contains(&(Vec::new(), "/".to_owned(), String::new())));
    // The rewritten state reports its head's config, and derived states keep it.
    assert_eq!(applied.image_config(), Some(&app_config()));
    let derived = applied
        .file(FileAction::mkdir("/y", 0o755))
        .run(["id"])
        .root();
    assert_eq!(derived.image_config(), Some(&app_config()));
    assert_eq!(metas_last_user(&derived), "app");
    // Merges and diffs have none.
    assert_eq!(
        merge([applied.clone(), State::image("busybox")]).image_config(),
        None
    );
}

fn metas_last_user(state: &State) -> String {
    metas(state).last().expect("an exec").2.clone()
}

#[test]
fn attached_configs_and_opt_outs_are_kept() {
    let other = config(r#"{"config":{"User":"other"}}"#);
    let resolved = resolved_for("alpine:3.20", app_config());
    let attached = State::image("alpine:3.20")
        .with_image_config(&other)
        .run(["id"])
        .root();
    assert_eq!(metas(&attached.apply_resolved(&resolved))[0].2, "other");
    let cleared = State::image("alpine:3.20")
        .without_image_config()
        .run(["id"])
        .root();
    let before = marshal(&cleared).to_bytes();
    assert_eq!(
        marshal(&cleared.apply_resolved(&resolved)).to_bytes(),
        before
    );
    assert_eq!(cleared.apply_resolved(&resolved).image_config(), None);
    let opted_out = State::image_with("alpine:3.20", ImageOptions::new().apply_config(false));
    assert!(opted_out.image_sources().is_empty());
    let step = opted_out.run(["id"]).root();
    assert_eq!(
        marshal(&step.apply_resolved(&resolved)).to_bytes(),
        marshal(&step).to_bytes()
    );
}

#[test]
fn shared_vertices_stay_shared() {
    let base = State::image("alpine:3.20").run(["build"]).root();
    let graph = merge([base.run(["a"]).root(), base.run(["b"]).root()]);
    let applied = graph.apply_resolved(&resolved_for("alpine:3.20", app_config()));
    let kinds = kinds(&ops(&applied));
    assert_eq!(
        kinds.iter().filter(|k| **k == "exec").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "source").count(),
        1,
        "{kinds:?}"
    );
}

#[test]
fn dockerfile_nodes_are_replaced_by_their_result() {
    let node = State::dockerfile_with(
        "/srv/ctx",
        DockerfileOptions::new()
            .target("runtime")
            .build_arg("A", "1"),
    );
    let step = node.run(["make"]).root();
    let e = err(&step);
    assert!(
        matches!(&e, LlbError::UnresolvedDockerfile { dockerfile } if dockerfile.contains("/srv/ctx/Dockerfile")),
        "{e:?}"
    );
    let sources = step.dockerfile_sources();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].context, std::path::Path::new("/srv/ctx"));
    assert_eq!(sources[0].target.as_deref(), Some("runtime"));
    assert!(step.image_sources().is_empty());

    // What a frontend returns: a definition made elsewhere, and the result's config.
    let made = State::image("alpine:3.20")
        .run(["built"])
        .root()
        .marshal(&Platform::linux_amd64())
        .expect("marshal")
        .into_proto();
    let result = State::from_pb_definition(&made)
        .expect("definition")
        .with_image_config(&app_config());
    let mut resolved = ResolvedInputs::new();
    resolved.add_dockerfile(sources[0].clone(), result);
    let applied = step.apply_resolved(&resolved);
    let ops = ops(&applied);
    assert_eq!(kinds(&ops), ["source", "exec", "exec", "terminal"]);
    // The result's ops keep their bytes; the step on it runs with the result's config.
    assert_eq!(
        ops[1].digest,
        Definition::decode(&{
            use prost::Message as _;
            made.encode_to_vec()
        })
        .expect("decode")[1]
            .digest
    );
    let exec_metas = metas(&applied);
    assert_eq!(exec_metas[1].2, "app");
    assert_eq!(applied.image_config(), Some(&app_config()));

    // Opted out: the result, without its config.
    let plain = State::dockerfile_with("/srv/ctx", DockerfileOptions::new().apply_config(false));
    let mut resolved = ResolvedInputs::new();
    let source = plain.dockerfile_sources()[0].clone();
    resolved.add_dockerfile(
        source,
        State::from_pb_definition(&made)
            .expect("definition")
            .with_image_config(&app_config()),
    );
    let applied = plain.run(["id"]).root().apply_resolved(&resolved);
    assert_eq!(metas(&applied)[1].2, "");
}
