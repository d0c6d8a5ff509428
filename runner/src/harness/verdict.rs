//! A test's verdict and the suite's summary line, from the checks' records (no builder: pure).

use std::fmt::Write as _;

use crate::harness::metadata;
use crate::protocol::Counts;
use crate::report::{CheckRecord, ErrorKind, Outcome};

/// The libtest verdict of a test from its checks' records: `Ok` iff every check passed;
/// otherwise a text listing every check, with each failing check's report.
pub(crate) fn verdict(all: &[CheckRecord]) -> Result<(), String> {
    let (exports, checks): (Vec<&CheckRecord>, Vec<&CheckRecord>) =
        all.iter().partition(|r| r.export.is_some());
    let bad = checks.iter().filter(|r| r.outcome != Outcome::Pass).count();
    let bad_exports = exports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error))
        .count();
    if bad == 0 && bad_exports == 0 && !checks.is_empty() {
        return Ok(());
    }
    let records = checks;
    let total = records.len();
    let mut text = String::new();
    let failed = records
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .count();
    let errored = records
        .iter()
        .filter(|r| r.outcome == Outcome::Error)
        .count();
    let head = match (failed, errored) {
        (0, 0) => format!(
            "{bad_exports} of {} not written",
            crate::protocol::count(exports.len(), "export")
        ),
        (_, 0) => format!("{failed} of {total} checks failed"),
        (0, _) => format!("{errored} of {total} checks could not be run"),
        _ => format!(
            "{bad} of {total} checks did not pass: {failed} failed, {errored} could not be run"
        ),
    };
    text.push_str(&head);
    text.push('\n');
    let mut shown_errors: Vec<(u32, &str)> = Vec::new();
    for r in records.iter().copied() {
        let head = match r.outcome {
            Outcome::Pass if r.cached => "passed (cached)".to_owned(),
            Outcome::Pass => "passed".to_owned(),
            Outcome::Ignored => "ignored".to_owned(),
            Outcome::Fail => format!("FAILED ({})", r.failure_detail()),
            Outcome::Error => {
                let kind = r.error_kind.map_or("error", ErrorKind::describe);
                format!("ERROR ({kind})")
            }
        };
        let _ = write!(text, "\ncheck {}/{total} `{}`: {head}\n", r.check, r.label);
        if matches!(r.outcome, Outcome::Fail | Outcome::Error) {
            let body = r
                .report
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .or(r.message.as_deref())
                .unwrap_or("(no report)");
            // An error several checks share (one broken input) is shown once.
            if r.outcome == Outcome::Error
                && let Some(first) = shown_errors.iter().find(|(_, b)| *b == body)
            {
                let _ = writeln!(text, "    (the same error as check {})", first.0);
                continue;
            }
            if r.outcome == Outcome::Error {
                shown_errors.push((r.check, body));
            }
            for line in body.trim_end().lines() {
                text.push_str("    ");
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    for r in exports {
        let Some(info) = &r.export else { continue };
        if r.outcome == Outcome::Ignored {
            continue;
        }
        let head = match r.outcome {
            Outcome::Pass => format!("written: {}", info.written()),
            Outcome::Fail => "NOT WRITTEN (blocked by failing checks)".to_owned(),
            Outcome::Ignored => "ignored".to_owned(),
            Outcome::Error => format!(
                "NOT WRITTEN ({})",
                r.error_kind.map_or("error", ErrorKind::describe)
            ),
        };
        let _ = write!(text, "\n`{}`: {head}\n", r.label);
        if r.outcome != Outcome::Pass {
            let body = r
                .message
                .as_deref()
                .or(r.report.as_deref())
                .unwrap_or("(no report)");
            for line in body.trim_end().lines() {
                text.push_str("    ");
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    Err(text)
}

/// One line counting checks by outcome (the counts `cargo buildtest`'s summary uses).
///
/// When metadata checks ran, a second line says how many of the checks they were: they are
/// evaluated from image configs, with no exec, so they are never counted as cached.
pub(crate) fn summary(records: &[CheckRecord]) -> String {
    let line = format!("buildtest: {}", Counts::of(records).line());
    match metadata::count(records) {
        0 => line,
        n => format!(
            "{line}\nbuildtest: {n} of them read image configs (metadata checks: no exec, never cached)"
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(check: u32, label: &str, outcome: Outcome) -> CheckRecord {
        CheckRecord::new("s", "t", check, label, outcome)
    }

    #[test]
    fn a_test_passes_iff_every_check_passes() {
        assert!(verdict(&[rec(1, "a", Outcome::Pass), rec(2, "b", Outcome::Pass)]).is_ok());
        assert!(verdict(&[]).is_err());
        let mut fail = rec(2, "cmd: false", Outcome::Fail);
        fail.exit_code = Some(1);
        fail.command_exit_code = Some(1);
        fail.report = Some("exit code: expected 0, got 1".into());
        let mut cached = rec(3, "file: /x", Outcome::Pass);
        cached.cached = true;
        let text = verdict(&[rec(1, "cmd: true", Outcome::Pass), fail, cached]).unwrap_err();
        assert_eq!(
            text,
            "1 of 3 checks failed\n\
             \ncheck 1/3 `cmd: true`: passed\n\
             \ncheck 2/3 `cmd: false`: FAILED (the command exited 1; probe: an assertion did not hold)\n    exit code: expected 0, got 1\n\
             \ncheck 3/3 `file: /x`: passed (cached)\n"
        );
    }

    #[test]
    fn an_error_shared_by_several_checks_is_shown_once() {
        let mut a = rec(1, "cmd: ls", Outcome::Error);
        a.error_kind = Some(ErrorKind::Input);
        a.report = Some("failed to pull image `x`".into());
        let mut b = a.clone();
        b.check = 2;
        b.label = "cmd: true".into();
        let text = verdict(&[a, b]).unwrap_err();
        assert_eq!(text.matches("failed to pull image").count(), 1, "{text}");
        assert!(
            text.contains(
                "check 2/2 `cmd: true`: ERROR (input failed)\n    (the same error as check 1)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn errors_name_their_kind() {
        let mut err = rec(1, "cmd: ls", Outcome::Error);
        err.error_kind = Some(ErrorKind::Input);
        err.message = Some("step `RUN false` failed".into());
        let text = verdict(&[err]).unwrap_err();
        assert!(
            text.contains("ERROR (input failed)\n    step `RUN false` failed"),
            "{text}"
        );
    }
}
