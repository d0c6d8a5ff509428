//! JUnit XML from check records: one `<testsuite>` per test binary, one `<testcase>` per check.
//!
//! - `classname` = the test fn's path (`images::debian::curl_is_installed`), `name` = the
//!   check's position and label (`1: cmd: curl --version`), stable across runs;
//! - `<failure type="check failed" message="<one line>">` with the probe's full report as
//!   body for a failed check, `<error type="input failed|builder error|timeout|setup error">`
//!   for errors, `<skipped>` for ignored tests;
//! - `time` in seconds: a testcase's is its check's duration; a testsuite's is the wall time of
//!   its checks, from the first one's start to the last one's end ([`suite_time`]) — checks run
//!   concurrently, so the sum of their durations would overstate it — and its
//!   `timestamp` is the first check's start; it also carries a `skipped` count (so readers do
//!   not recompute its counts and time from the testcases);
//! - `<system-out>` / `<system-err>` carry the check exec's logs;
//! - characters XML 1.0 does not allow (control characters, U+FFFE, U+FFFF) and ANSI escape
//!   sequences are removed, and `]]>` inside CDATA is split so any log text is safe;
//! - the file is written to a temporary file beside the target and renamed over it, so a
//!   reader never sees a half-written file.
//!
//! Used by the harness (`BUILDTEST_JUNIT`) and by `cargo buildtest`, which aggregates the
//! records of several binaries: [`write()`] takes records grouped by suite.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use junit_report::{Duration, OffsetDateTime, Report, TestCase, TestSuite};

use crate::report::record::{CheckRecord, Outcome};

/// Errors writing a JUnit file.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// Rendering the XML failed.
    #[error("render junit xml")]
    Render(#[source] junit_report::Error),
    /// Writing the file (or renaming it into place) failed.
    #[error("write junit file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Groups records by their `suite` field, keeping each suite's records in the given order
/// and the suites in order of first appearance.
pub fn group_by_suite(
    records: impl IntoIterator<Item = CheckRecord>,
) -> Vec<(String, Vec<CheckRecord>)> {
    let mut order: Vec<(String, Vec<CheckRecord>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for record in records {
        let at = *index.entry(record.suite.clone()).or_insert_with(|| {
            order.push((record.suite.clone(), Vec::new()));
            order.len() - 1
        });
        order[at].1.push(record);
    }
    order
}

/// Renders suites of records (`(suite name, records)`) to JUnit XML.
pub fn render<'a>(
    suites: impl IntoIterator<Item = (&'a str, &'a [CheckRecord])>,
) -> Result<Vec<u8>, JunitError> {
    let mut report = Report::new();
    let mut attributes = Vec::new();
    let mut nodes: Vec<Option<String>> = Vec::new();
    for (name, records) in suites {
        nodes.extend(records.iter().map(|r| r.builder.clone()));
        let mut suite = TestSuite::new(&clean(name));
        if let Some(start) = first_start(records) {
            suite.set_timestamp(start);
        }
        suite.add_testcases(records.iter().map(testcase));
        attributes.push((suite_time(records), suite.skipped()));
        report.add_testsuite(suite);
    }
    let mut out = Vec::new();
    report.write_xml(&mut out).map_err(JunitError::Render)?;
    let out = set_suite_attributes(&out, &attributes);
    let mut distinct: Vec<&String> = nodes.iter().flatten().collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < 2 {
        return Ok(out);
    }
    Ok(add_node_properties(&out, &nodes))
}

/// A run on several nodes: every testcase (in record order) gets
/// `<properties><property name="buildtest.node" value="NODE"/></properties>`.
fn add_node_properties(xml: &[u8], nodes: &[Option<String>]) -> Vec<u8> {
    let text = String::from_utf8_lossy(xml);
    let mut out = String::with_capacity(text.len() + nodes.len() * 80);
    let mut rest: &str = &text;
    let mut i = 0;
    while let Some(at) = rest.find("<testcase ") {
        let Some(close) = rest[at..].find('>') else {
            break;
        };
        let end = at + close;
        let node = nodes.get(i).cloned().flatten();
        i += 1;
        let Some(node) = node else {
            out.push_str(&rest[..=end]);
            rest = &rest[end + 1..];
            continue;
        };
        let value = clean(&node)
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let props = format!(
            "<properties><property name=\"buildtest.node\" value=\"{value}\"/></properties>"
        );
        if rest[..end].ends_with('/') {
            out.push_str(&rest[..end - 1]);
            out.push('>');
            out.push_str(&props);
            out.push_str("</testcase>");
        } else {
            out.push_str(&rest[..=end]);
            out.push_str(&props);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// The wall time of a suite's checks: from the earliest start to the latest end among the
/// records that have a start time (`started_at_ms`, set when a check's solve starts), or the
/// longest duration of a record without one when that is longer (checks settled without a
/// solve, records made up for a binary that died). Not the sum of the durations: a suite solves
/// its checks concurrently.
pub fn suite_time(records: &[CheckRecord]) -> std::time::Duration {
    let span = records
        .iter()
        .filter_map(|r| {
            r.started_at_ms
                .map(|start| (start, start.saturating_add(r.duration_ms)))
        })
        .fold(None, |acc: Option<(u64, u64)>, (start, end)| {
            Some(acc.map_or((start, end), |(s, e)| (s.min(start), e.max(end))))
        })
        .map_or(0, |(start, end)| end - start);
    let untimed = records
        .iter()
        .filter(|r| r.started_at_ms.is_none())
        .map(|r| r.duration_ms)
        .max()
        .unwrap_or(0);
    std::time::Duration::from_millis(span.max(untimed))
}

/// When the suite's first check started, if any record knows.
fn first_start(records: &[CheckRecord]) -> Option<OffsetDateTime> {
    let ms = records.iter().filter_map(|r| r.started_at_ms).min()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Gives the n-th `<testsuite>` start tag the `time` `attributes[n].0` (in place of the one
/// junit-report wrote) and a `skipped` count `attributes[n].1`.
///
/// junit-report always writes a testsuite's `time` as the sum of its testcases' times and has
/// no setting for it; it writes no `skipped` attribute, and readers such as Python's
/// junitparser then recompute every count *and the time* (as that sum again) from the
/// testcases. Its output is regular enough to edit safely: attribute values are escaped (no
/// `<`, `>` or `"` inside them) and all free text is in CDATA sections, which are skipped, so a
/// log line that looks like a testsuite tag is never touched.
fn set_suite_attributes(xml: &[u8], attributes: &[(std::time::Duration, usize)]) -> Vec<u8> {
    const CDATA_OPEN: &[u8] = b"<![CDATA[";
    const CDATA_CLOSE: &[u8] = b"]]>";
    const SUITE_TAG: &[u8] = b"<testsuite ";
    const TIME_ATTR: &[u8] = b" time=\"";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut out = Vec::with_capacity(xml.len());
    let mut attributes = attributes.iter();
    let mut at = 0;
    while at < xml.len() {
        let rest = &xml[at..];
        let Some(lt) = rest.iter().position(|&b| b == b'<') else {
            out.extend_from_slice(rest);
            break;
        };
        out.extend_from_slice(&rest[..lt]);
        let rest = &rest[lt..];
        let taken = if rest.starts_with(CDATA_OPEN) {
            let end = find(rest, CDATA_CLOSE).map_or(rest.len(), |e| e + CDATA_CLOSE.len());
            out.extend_from_slice(&rest[..end]);
            end
        } else if rest.starts_with(SUITE_TAG) {
            let end = rest
                .iter()
                .position(|&b| b == b'>')
                .map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            let value = find(tag, TIME_ATTR).map(|a| a + TIME_ATTR.len());
            let value_end =
                value.and_then(|v| tag[v..].iter().position(|&b| b == b'"').map(|e| v + e));
            match (value, value_end, attributes.next()) {
                (Some(start), Some(stop), Some((time, skipped))) => {
                    let attr = start - TIME_ATTR.len();
                    out.extend_from_slice(&tag[..attr]);
                    out.extend_from_slice(format!(" skipped=\"{skipped}\"").as_bytes());
                    out.extend_from_slice(&tag[attr..start]);
                    out.extend_from_slice(time.as_secs_f64().to_string().as_bytes());
                    out.extend_from_slice(&tag[stop..]);
                }
                _ => out.extend_from_slice(tag),
            }
            end
        } else {
            out.push(b'<');
            1
        };
        at += lt + taken;
    }
    out
}

/// Writes suites of records to `path` atomically (temporary file in the same directory, then
/// rename). Creates the parent directory if needed.
pub fn write<'a>(
    suites: impl IntoIterator<Item = (&'a str, &'a [CheckRecord])>,
    path: &Path,
) -> Result<(), JunitError> {
    let xml = render(suites)?;
    let write_err = |source| JunitError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(write_err)?;
    let file_name = path
        .file_name()
        .map_or_else(|| "junit.xml".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&xml)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

/// The testcase name of a record: `<n>: <label>` for a check, the label alone for an export
/// (`export: image myapp:tested`).
pub fn testcase_name(record: &CheckRecord) -> String {
    if record.export.is_some() {
        return record.label.clone();
    }
    format!("{}: {}", record.check, record.label)
}

fn testcase(record: &CheckRecord) -> TestCase {
    let name = clean(&testcase_name(record));
    let time = Duration::milliseconds(i64::try_from(record.duration_ms).unwrap_or(i64::MAX));
    let message = clean(record.message.as_deref().unwrap_or_default());
    let body = record.report.as_deref().map(cdata);
    let mut case = match record.outcome {
        Outcome::Pass => TestCase::success(&name, time),
        Outcome::Fail if record.export.is_some() => {
            let mut case = TestCase::failure(&name, time, "export blocked", &message);
            if let junit_report::TestResult::Failure { cause, .. } = &mut case.result {
                *cause = body;
            }
            case
        }
        Outcome::Fail => {
            let kind = format!("check failed: {}", record.failure_detail());
            let mut case = TestCase::failure(&name, time, &kind, &message);
            if let junit_report::TestResult::Failure { cause, .. } = &mut case.result {
                *cause = body;
            }
            case
        }
        Outcome::Error => {
            let kind = record.error_kind.map_or("error", |k| k.describe());
            let mut case = TestCase::error(&name, time, kind, &message);
            if let junit_report::TestResult::Error { cause, .. } = &mut case.result {
                *cause = body;
            }
            case
        }
        Outcome::Ignored => TestCase::skipped_with_cause(&name, "ignored", &message),
    };
    case.set_classname(&clean(&record.test));
    if let Some(file) = &record.file {
        case.set_filepath(&clean(file));
    }
    if !record.stdout.is_empty() {
        case.system_out = Some(cdata(&record.stdout));
    }
    match (&record.moved, record.stderr.is_empty()) {
        (Some(moved), true) => case.system_err = Some(cdata(&format!("buildtest: {moved}\n"))),
        (Some(moved), false) => {
            case.system_err = Some(cdata(&format!("buildtest: {moved}\n{}", record.stderr)));
        }
        (None, false) => case.system_err = Some(cdata(&record.stderr)),
        (None, true) => {}
    }
    case
}

/// Text for a CDATA section: cleaned, with `]]>` split across two sections.
fn cdata(text: &str) -> String {
    clean(text).replace("]]>", "]]]]><![CDATA[>")
}

/// Removes ANSI escape sequences and every character XML 1.0 does not allow
/// (`#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`).
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params… final byte in 0x40..=0x7E; other escapes: drop ESC + 1 char.
            match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    // OSC: until BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let allowed = matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{d7ff}').contains(&c)
            || ('\u{e000}'..='\u{fffd}').contains(&c)
            || c >= '\u{10000}';
        if allowed {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::record::ErrorKind;

    fn records() -> Vec<CheckRecord> {
        let mut pass = CheckRecord::new("pkg::suite", "a::t", 1, "cmd: true", Outcome::Pass);
        pass.duration_ms = 1500;
        pass.stdout = "out\u{1b}[31mred\u{1b}[0m\u{0}\u{7}".into();
        let mut fail = CheckRecord::new("pkg::suite", "a::t", 2, "file: /x", Outcome::Fail);
        fail.exit_code = Some(1);
        fail.message = Some("file /x: expected exists, found absent".into());
        fail.report = Some("a ]]> b <&>".into());
        let mut error = CheckRecord::new("other", "b::u", 1, "cmd: ls", Outcome::Error);
        error.error_kind = Some(ErrorKind::Input);
        error.message = Some("input step \"RUN false\" failed".into());
        let ignored = CheckRecord::new("other", "b::v", 1, "cmd: ls", Outcome::Ignored);
        vec![pass, fail, error, ignored]
    }

    #[test]
    fn clean_strips_what_xml_cannot_carry() {
        assert_eq!(clean("a\u{1b}[1;31mb\u{1b}[0mc"), "abc");
        assert_eq!(
            clean("t\tn\nr\r\u{0}\u{8}\u{b}\u{fffe}\u{ffff}é😀"),
            "t\tn\nr\ré😀"
        );
        assert_eq!(clean("x\u{1b}]0;title\u{7}y"), "xy");
    }

    #[test]
    fn a_run_on_several_nodes_names_each_checks_node_and_moved_checks_say_so() {
        let mut a = CheckRecord::new("s", "t", 1, "cmd: true", Outcome::Pass);
        a.builder = Some("unix:///a.sock".into());
        let mut b = CheckRecord::new("s", "t", 2, "cmd: false", Outcome::Fail);
        b.builder = Some("unix:///b.sock".into());
        b.moved = Some(
            "re-run on node unix:///b.sock because node unix:///a.sock was lost mid-run".into(),
        );
        let xml =
            String::from_utf8(render([("s", vec![a.clone(), b].as_slice())]).unwrap()).unwrap();
        assert_eq!(
            xml.matches("<property name=\"buildtest.node\"").count(),
            2,
            "{xml}"
        );
        assert!(xml.contains(r#"<testcase name="1: cmd: true" time="0" classname="t"><properties><property name="buildtest.node" value="unix:///a.sock"/></properties></testcase>"#), "{xml}");
        assert!(xml.contains("<system-err><![CDATA[buildtest: re-run on node unix:///b.sock because node unix:///a.sock was lost mid-run\n]]></system-err>"), "{xml}");
        // One node: no properties (the single-builder report is unchanged).
        let one = String::from_utf8(render([("s", vec![a].as_slice())]).unwrap()).unwrap();
        assert!(!one.contains("<properties>"), "{one}");
    }

    #[test]
    fn renders_one_suite_per_binary_and_one_case_per_check() {
        let groups = group_by_suite(records());
        assert_eq!(groups.len(), 2);
        let xml = render(groups.iter().map(|(n, r)| (n.as_str(), r.as_slice()))).unwrap();
        let xml = String::from_utf8(xml).unwrap();
        assert!(xml.contains(r#"name="pkg::suite""#), "{xml}");
        assert!(
            xml.contains(r#"tests="2" errors="0" failures="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="1: cmd: true" time="1.5" classname="a::t">"#),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out><![CDATA[outred]]></system-out>"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure type="check failed: probe: an assertion did not hold" message="file /x: expected exists, found absent"><![CDATA[a ]]]]><![CDATA[> b <&>]]></failure>"#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<error type="input failed" message="input step &quot;RUN false&quot; failed"/>"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped type="ignored" message=""/>"#),
            "{xml}"
        );
    }

    #[test]
    fn a_suites_time_is_its_wall_time_not_the_sum_of_its_checks() {
        // Three checks of one second each, started 100 ms apart: they overlap.
        let t0 = 1_700_000_000_000;
        let mut recs: Vec<CheckRecord> = (0..3u32)
            .map(|i| {
                let mut r = CheckRecord::new("s", "t", i + 1, "cmd: sleep 1", Outcome::Pass);
                r.started_at_ms = Some(t0 + 100 * u64::from(i));
                r.duration_ms = 1000;
                r
            })
            .collect();
        // A log that looks like a testsuite tag must survive untouched.
        recs[0].stdout = r#"<testsuite id="0" time="99">"#.into();
        assert_eq!(suite_time(&recs), std::time::Duration::from_millis(1200));
        let other = [CheckRecord::new("o", "u", 1, "cmd: ls", Outcome::Ignored)];
        let xml = render([("s", recs.as_slice()), ("o", other.as_slice())]).unwrap();
        let xml = String::from_utf8(xml).unwrap();
        // The sum of the check durations (3 s) appears nowhere.
        assert!(
            xml.contains(
                r#"<testsuite id="0" name="s" package="testsuite/s" tests="3" errors="0" failures="0" hostname="localhost" timestamp="2023-11-14T22:13:20Z" skipped="0" time="1.2">"#
            ),
            "{xml}"
        );
        assert!(!xml.contains(r#"time="3""#), "{xml}");
        assert!(
            xml.contains(
                r#"skipped="1" time="0"><testcase name="1: cmd: ls" time="0" classname="u">"#
            ),
            "{xml}"
        );
        // Each testcase keeps its own check's duration.
        assert_eq!(xml.matches(r#"<testcase name="#).count(), 4, "{xml}");
        assert_eq!(xml.matches(r#"time="1" classname="t""#).count(), 3, "{xml}");
        assert!(
            xml.contains(r#"<system-out><![CDATA[<testsuite id="0" time="99">]]></system-out>"#),
            "{xml}"
        );
    }

    #[test]
    fn suite_time_without_start_times_is_the_longest_check() {
        let mut a = CheckRecord::new("s", "t", 1, "x", Outcome::Error);
        a.duration_ms = 300;
        let mut b = CheckRecord::new("s", "t", 2, "y", Outcome::Pass);
        b.started_at_ms = Some(5_000);
        b.duration_ms = 200;
        assert_eq!(
            suite_time(&[a.clone(), b.clone()]),
            std::time::Duration::from_millis(300)
        );
        b.duration_ms = 400;
        assert_eq!(suite_time(&[a, b]), std::time::Duration::from_millis(400));
        assert_eq!(suite_time(&[]), std::time::Duration::ZERO);
    }

    #[test]
    fn write_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/junit.xml");
        let recs = records();
        write([("s", recs.as_slice())], &path).unwrap();
        write([("s", &recs[..1])], &path).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(xml.contains(r#"tests="1""#), "{xml}");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
    }
}
