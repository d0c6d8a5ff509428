//! Command checks: run argv directly (never through a shell), capture its output, echo it,
//! evaluate every assertion.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::assert;
use crate::report::Outcome;
use crate::spec::{CmdSpec, Stream};
use crate::user;

/// What a finished command produced.
#[derive(Debug)]
pub(crate) struct Captured {
    /// How it ended.
    pub(crate) status: ExitStatus,
    /// Everything it wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub(crate) stderr: Vec<u8>,
}

/// `PATH` BuildKit gives an exec without one; used for lookup when none is set.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the command of `spec`; `root` is where `/etc/passwd` and `/etc/group` are read from.
/// `Err` says (for people) why it could not be started.
pub(crate) fn run(spec: &CmdSpec, root: &Path) -> Result<Captured, String> {
    let program = &spec.argv[0];
    let identity = match &spec.user {
        Some(u) => Some(user::resolve(u, root)?),
        None => None,
    };
    if let Some(dir) = &spec.cwd {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("working directory {dir:?} is not a directory")),
            Err(e) => return Err(format!("working directory {dir:?}: {e}")),
        }
    }
    // Resolve PATH ourselves, to tell "not found" from "found but not runnable".
    let resolved = if program.contains('/') {
        PathBuf::from(program)
    } else {
        let path = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| OsString::from(v))
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_else(|| DEFAULT_PATH.into());
        search_path(program, &path, spec.cwd.as_deref().map(Path::new))
            .ok_or_else(|| format!("{program:?} not found in PATH ({})", path.to_string_lossy()))?
    };
    let mut command = Command::new(&resolved);
    command.arg0(program).args(&spec.argv[1..]);
    if let Some(ident) = identity {
        command.uid(ident.uid).gid(ident.gid);
        if let Some(home) = ident.home {
            command.env("HOME", home);
        }
    }
    if std::env::var_os("PATH").is_none() {
        // As BuildKit and Docker do: a command always gets a PATH.
        command.env("PATH", DEFAULT_PATH);
    }
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(program, &resolved, spec.cwd.as_deref(), &e))?;
    let writer = match (child.stdin.take(), &spec.stdin) {
        (Some(mut pipe), Some(data)) => {
            let data = data.clone().into_bytes();
            // A command that exits without reading all of stdin is not an error: ignore EPIPE.
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let output = child
        .wait_with_output()
        .map_err(|e| format!("wait for {program:?}: {e}"))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Captured {
        status: output.status,
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// Looks `program` up in `path` like `execvp`: the first entry holding an executable regular
/// file (or else the first non-executable one, so that spawning reports EACCES like execvp).
fn search_path(program: &str, path: &std::ffi::OsStr, cwd: Option<&Path>) -> Option<PathBuf> {
    let mut non_executable = None;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        let on_disk = match cwd {
            Some(cwd) if candidate.is_relative() => cwd.join(&candidate),
            _ => candidate.clone(),
        };
        if let Ok(m) = std::fs::metadata(&on_disk) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Some(candidate);
            }
            if m.is_file() && non_executable.is_none() {
                non_executable = Some(candidate);
            }
        }
    }
    non_executable
}

fn spawn_error(program: &str, resolved: &Path, cwd: Option<&str>, e: &std::io::Error) -> String {
    let shown = resolved.display();
    // A relative program is resolved in the command's working directory.
    let on_disk = match cwd {
        Some(cwd) if resolved.is_relative() => Path::new(cwd).join(resolved),
        _ => resolved.to_path_buf(),
    };
    match e.kind() {
        std::io::ErrorKind::NotFound if std::fs::symlink_metadata(&on_disk).is_ok() => format!(
            "{shown} exists but could not be executed: its interpreter or dynamic loader is missing ({e})"
        ),
        std::io::ErrorKind::NotFound => format!("{program:?} not found ({shown}: {e})"),
        std::io::ErrorKind::PermissionDenied => format!("{shown} is not executable ({e})"),
        _ => format!("could not start {shown}: {e}"),
    }
}

/// Describes an exit status like a person would: `0`, `1`, `killed by signal 9`.
pub(crate) fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("{status}"),
    }
}

/// Evaluates the exit code and every output assertion of `spec` on `captured`.
pub(crate) fn evaluate(spec: &CmdSpec, captured: &Captured) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(spec.assertions.len() + 1);
    let expected = spec.exit_code.to_string();
    outcomes.push(if captured.status.code() == Some(spec.exit_code) {
        Outcome::pass("exit_code", expected)
    } else {
        Outcome::fail("exit_code", expected, describe_status(&captured.status))
    });
    for (stream, assertion) in &spec.assertions {
        let data = match stream {
            Stream::Stdout => &captured.stdout,
            Stream::Stderr => &captured.stderr,
        };
        outcomes.push(assert::text(stream.name(), assertion, data));
    }
    outcomes
}

/// How much of each stream is echoed: the first and the last `ECHO_HALF` bytes. BuildKit clips
/// an exec's log (2 MiB by default, rate-limited), and the report must survive.
pub(crate) const ECHO_HALF: usize = 32 * 1024;

/// Writes `data` (the captured `name` stream) to `out`, eliding its middle if it is long, and
/// ending with a newline so what follows starts on its own line.
pub(crate) fn echo(out: &mut dyn Write, name: &str, data: &[u8]) -> std::io::Result<()> {
    if data.len() <= 2 * ECHO_HALF {
        out.write_all(data)?;
    } else {
        out.write_all(&data[..ECHO_HALF])?;
        let omitted = data.len() - 2 * ECHO_HALF;
        write!(
            out,
            "\n[buildtest-probe: {omitted} bytes of {name} omitted ({} captured, all evaluated)]\n",
            data.len()
        )?;
        out.write_all(&data[data.len() - ECHO_HALF..])?;
    }
    if !data.is_empty() && !data.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()
}
