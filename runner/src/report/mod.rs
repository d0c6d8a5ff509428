//! Layer `report`: per-check result records, the JSON-lines results file, and JUnit XML.
//!
//! # Results file (`BUILDTEST_RESULTS`)
//!
//! When the environment variable `BUILDTEST_RESULTS` names a file, the harness appends one JSON
//! object per line to it for every check of every selected test, as soon as the check's outcome
//! is known. The file is opened with `O_APPEND` and each record is written with a single
//! `write`, so several test binaries (as run by `cargo buildtest`) can share one file. Read it
//! back with [`read_records`] (a whole file) or [`parse_record`] (one line).
//!
//! Schema version 1 ([`CheckRecord`]); fields marked *optional* are omitted when empty:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema` | number | always `1`; readers refuse other versions |
//! | `suite` | string | the test binary: `<package>::<target>` when run by cargo (`CARGO_PKG_NAME`), else the crate name; overridden by `BUILDTEST_SUITE` |
//! | `test` | string | the test's name: the fn's module path without the crate name (`images::debian::curl_is_installed`) |
//! | `check` | number | the check's 1-based position in the test |
//! | `label` | string | the check's label (`cmd: curl --version`) |
//! | `outcome` | string | `pass`, `fail`, `error` or `ignored` |
//! | `error_kind` | string, optional | for `error`: `input` (a step of the input failed), `builder` (unreachable, refused, lost), `timeout`, `setup` (the test fn panicked or its graph is invalid) |
//! | `cached` | bool | the check's exec vertex was reported cached by BuildKit |
//! | `duration_ms` | number | wall time of the check's solve |
//! | `started_at_ms` | number, optional | when the check's solve started (ms since the Unix epoch) |
//! | `exit_code` | number, optional | the check exec's exit code when it failed: the probe's (1 an assertion did not hold, 2 the spec was refused, 3 the command could not be started) |
//! | `command_exit_code` | number, optional | the command's own exit code, as the probe reported it (`cmd` checks whose command ran) |
//! | `report` | string, optional | full text: the probe's expected-vs-actual report for `fail`; the failing step and its log tail for `error` |
//! | `message` | string, optional | one line: what failed (`fail`/`error`) or the ignore reason |
//! | `stdout`, `stderr` | string | tails of the check exec's logs |
//! | `vertex` | string, optional | digest of the check's exec vertex (`sha256:…`) |
//! | `strategy` | string, optional | how the check was attached to its input (`passthrough`, `direct`, …) |
//! | `builder` | string, optional | the builder it ran on |
//! | `file`, `line` | string, number, optional | where the test fn is defined |
//! | `export` | object, optional | present on a gated export's record (`Test::export`; its `check` follows the test's checks, its `label` is `export: image NAME`): `kind` (`image`, `docker-tar`, `oci-tar`, `local-dir`), `target`, `gate` (`passthrough` or `legacy`), and `digest`, `path`, `size` (what was written) or `blocked_by` (the checks that did not pass); `pass` = written, `fail` = blocked, `error` = the export itself failed, `ignored` = not asked for (no `--export`) |
//!
//! Text fields are bounded: logs and reports keep their last [`TAIL_LIMIT`] bytes.
//! New optional fields may be added without changing the version; readers ignore unknown
//! fields.
//!
//! # JUnit
//!
//! [`junit`] renders records as JUnit XML, one `<testsuite>` per binary and one `<testcase>`
//! per check; `BUILDTEST_JUNIT=<path>` makes the harness write it itself.

pub mod junit;
mod record;

pub use record::{
    CheckRecord, ErrorKind, ExportRecord, LineError, Outcome, RESULTS_ENV, RecordError,
    ResultsFile, SCHEMA_VERSION, TAIL_LIMIT, parse_record, read_records, tail,
};
