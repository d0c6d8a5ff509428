//! Developer tasks. `cargo run -p xtask -- codegen [--check]` regenerates the
//! committed protobuf code in `runner/src/proto/` from the project's own
//! `.proto` files in `runner/proto/`, without a system `protoc`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const PROTOS: &[&str] = &[
    "ops.proto",
    "worker.proto",
    "control.proto",
    "errdefs.proto",
    "gateway.proto",
    "status.proto",
    "fsutil_types.proto",
    "filesync.proto",
    "health.proto",
    "content.proto",
    "secrets.proto",
];

/// Packages whose server side is generated only with the runner's `test-server` feature (the
/// runner serves them in-process only in tests). Every other package's server side (the session
/// services the client serves to the daemon) is always generated.
const TEST_ONLY_SERVER_PACKAGES: &[&str] = &["moby.buildkit.v1", "moby.buildkit.v1.frontend"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("codegen") => codegen(args.iter().any(|a| a == "--check")),
        _ => Err("usage: cargo run -p xtask -- codegen [--check]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn generate(out: &Path) -> Result<(), String> {
    let root = workspace_root();
    let include = root.join("runner/proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| include.join(p)).collect();
    let fds = protox::compile(&files, [&include])
        .map_err(|e| format!("failed to compile protos: {e}"))?;
    let mut builder = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false);
    for package in TEST_ONLY_SERVER_PACKAGES {
        // tonic matches a pattern without a leading dot against the end of the package name.
        builder = builder.server_mod_attribute(package, "#[cfg(feature = \"test-server\")]");
    }
    builder
        .btree_map(".")
        .bytes(".pb.Definition.def")
        .bytes(".moby.buildkit.v1.BytesMessage.data")
        .bytes(".moby.filesync.v1.BytesMessage.data")
        .bytes(".fsutil.types.Packet.data")
        .bytes(".containerd.services.content.v1.ReadContentResponse.data")
        .bytes(".containerd.services.content.v1.WriteContentRequest.data")
        .out_dir(out)
        .compile_fds(fds)
        .map_err(|e| format!("failed to generate code: {e}"))
}

fn codegen(check: bool) -> Result<(), String> {
    let dest = workspace_root().join("runner/src/proto/gen");
    if !check {
        std::fs::create_dir_all(&dest)
            .map_err(|e| format!("failed to create {}: {e}", dest.display()))?;
        return generate(&dest);
    }
    let tmp = tempfile::tempdir().map_err(|e| format!("failed to create a temp dir: {e}"))?;
    generate(tmp.path())?;
    let mut stale = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let fresh = std::fs::read(tmp.path().join(&name)).map_err(|e| e.to_string())?;
        let committed = std::fs::read(dest.join(&name)).unwrap_or_default();
        if fresh != committed {
            stale.push(name.to_string_lossy().into_owned());
        }
    }
    if stale.is_empty() {
        println!("xtask: generated protobuf code is fresh");
        Ok(())
    } else {
        Err(format!(
            "generated protobuf code is stale ({}): run `cargo run -p xtask -- codegen` and commit",
            stale.join(", ")
        ))
    }
}
