//! Reading the probe's report block back from a check exec's stderr log, and the probe's exit
//! codes.
//!
//! The block (format in the [module docs](super#the-report-block)) is the last thing the probe
//! writes; [`CheckReport::parse`] takes the last complete block of a log, so output of the
//! command under test that happens to imitate the marker cannot hide the real report.

/// Prefix of every report line.
pub const REPORT_MARKER: &str = "##buildtest-probe ";

/// What the probe's exit code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeExit {
    /// 0: every assertion held.
    Pass,
    /// 1: at least one assertion did not hold.
    Fail,
    /// 2: the spec was malformed, or the probe itself failed.
    SpecError,
    /// 3: the command could not be started (not found, not executable, missing interpreter or
    /// loader, bad working directory or user).
    NotStarted,
    /// Any other code: not the probe's (e.g. killed, 137 on OOM).
    Other(i32),
}

impl ProbeExit {
    /// Interprets the check exec's exit code.
    pub fn from_code(code: i32) -> ProbeExit {
        match code {
            0 => ProbeExit::Pass,
            1 => ProbeExit::Fail,
            2 => ProbeExit::SpecError,
            3 => ProbeExit::NotStarted,
            other => ProbeExit::Other(other),
        }
    }

    /// The numeric code.
    pub fn code(self) -> i32 {
        match self {
            ProbeExit::Pass => 0,
            ProbeExit::Fail => 1,
            ProbeExit::SpecError => 2,
            ProbeExit::NotStarted => 3,
            ProbeExit::Other(c) => c,
        }
    }

    /// A short description for people.
    pub fn describe(self) -> String {
        match self {
            ProbeExit::Pass => "every assertion held".to_owned(),
            ProbeExit::Fail => "an assertion did not hold".to_owned(),
            ProbeExit::SpecError => "the probe rejected the check spec".to_owned(),
            ProbeExit::NotStarted => "the command could not be started".to_owned(),
            ProbeExit::Other(c) => format!("the probe exited with unexpected code {c}"),
        }
    }
}

/// The probe's verdict line (`end pass|fail|error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every assertion held.
    Pass,
    /// At least one assertion did not hold.
    Fail,
    /// The check could not be evaluated (see [`CheckReport::error`]).
    Error,
}

/// One assertion as the probe reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionReport {
    /// Stable name: `exit_code`, `stdout.contains`, `mode`, `content.equals`, ...
    pub name: String,
    /// Whether it held.
    pub held: bool,
    /// What was expected, as the probe showed it (strings quoted and escaped).
    pub expected: String,
    /// What was found (`None` when it held).
    pub actual: Option<String>,
    /// Extra lines, e.g. where two values first differ.
    pub notes: Vec<String>,
}

/// The probe's report on one check, parsed from the exec's stderr log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Spec version of the report (`v1`).
    pub version: String,
    /// What was checked: `cmd "argv0" "argv1"…` or `file "/path"` (`invalid` for a bad spec).
    pub subject: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Every assertion, in order (passing ones included).
    pub assertions: Vec<AssertionReport>,
    /// Why the check could not be evaluated ([`Verdict::Error`] only).
    pub error: Option<String>,
    /// One line: every failure with expected and actual (values shortened), or the error.
    /// Suitable as a JUnit failure message.
    pub summary: String,
    /// How many assertions failed.
    pub failed: usize,
    /// How many assertions were evaluated.
    pub total: usize,
}

impl CheckReport {
    /// The last complete report block in `log` (a check exec's stderr, i.e. the concatenated
    /// stream-2 `VertexLog` messages); `None` if there is none (e.g. the log was clipped or the
    /// probe never ran).
    pub fn parse(log: &[u8]) -> Option<CheckReport> {
        let text = String::from_utf8_lossy(log);
        let mut current: Option<CheckReport> = None;
        let mut last = None;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some(rest) = line.strip_prefix(REPORT_MARKER) else {
                continue;
            };
            let (keyword, value) = rest.split_once(' ').unwrap_or((rest, ""));
            if keyword == "begin" {
                let (version, subject) = value.split_once(' ').unwrap_or((value, ""));
                current = Some(CheckReport {
                    version: version.to_owned(),
                    subject: subject.to_owned(),
                    verdict: Verdict::Error,
                    assertions: Vec::new(),
                    error: None,
                    summary: String::new(),
                    failed: 0,
                    total: 0,
                });
                continue;
            }
            let Some(report) = current.as_mut() else {
                continue;
            };
            match keyword {
                "pass" => {
                    let (name, expected) = value.split_once(' ').unwrap_or((value, ""));
                    report.assertions.push(AssertionReport {
                        name: name.to_owned(),
                        held: true,
                        expected: expected.to_owned(),
                        actual: None,
                        notes: Vec::new(),
                    });
                }
                "fail" => report.assertions.push(AssertionReport {
                    name: value.to_owned(),
                    held: false,
                    expected: String::new(),
                    actual: Some(String::new()),
                    notes: Vec::new(),
                }),
                "expected" | "actual" | "note" => {
                    if let Some(a) = report.assertions.last_mut().filter(|a| !a.held) {
                        match keyword {
                            "expected" => a.expected = value.to_owned(),
                            "actual" => a.actual = Some(value.to_owned()),
                            _ => a.notes.push(value.to_owned()),
                        }
                    }
                }
                "error" => report.error = Some(value.to_owned()),
                "summary" => report.summary = value.to_owned(),
                "end" => {
                    let (verdict, counts) = value.split_once(' ').unwrap_or((value, ""));
                    report.verdict = match verdict {
                        "pass" => Verdict::Pass,
                        "fail" => Verdict::Fail,
                        _ => Verdict::Error,
                    };
                    if let Some((failed, total)) = counts.split_once('/') {
                        report.failed = failed.parse().unwrap_or(0);
                        report.total = total.parse().unwrap_or(0);
                    }
                    last = current.take();
                }
                _ => {} // Unknown keywords from a newer probe: ignored.
            }
        }
        last
    }

    /// The assertions that did not hold.
    pub fn failures(&self) -> impl Iterator<Item = &AssertionReport> {
        self.assertions.iter().filter(|a| !a.held)
    }

    /// A multi-line text for people: each failure with expected, actual and notes, or the
    /// error (for libtest failure output and JUnit bodies).
    pub fn details(&self) -> String {
        if let Some(error) = &self.error {
            return error.clone();
        }
        let mut out = Vec::new();
        for a in self.failures() {
            out.push(format!("{}: expected {}", a.name, a.expected));
            out.push(format!("    actual: {}", a.actual.as_deref().unwrap_or("")));
            out.extend(a.notes.iter().map(|n| format!("    note: {n}")));
        }
        if out.is_empty() {
            out.push(self.summary.clone());
        }
        out.join("\n")
    }

    /// `log` without any report lines: what the command under test wrote (for system-err).
    pub fn strip(log: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(log.len());
        for line in log.split_inclusive(|b| *b == b'\n') {
            if !line.starts_with(REPORT_MARKER.as_bytes()) {
                out.extend_from_slice(line);
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FAILED: &str = "curl: warning\n\
        ##buildtest-probe begin v1 cmd \"curl\" \"--version\"\n\
        ##buildtest-probe pass exit_code 0\n\
        ##buildtest-probe fail stdout.starts_with\n\
        ##buildtest-probe expected \"curl 7\"\n\
        ##buildtest-probe actual \"curl 8.5.0\\n\"… (812 bytes)\n\
        ##buildtest-probe note something\n\
        ##buildtest-probe summary 1 of 2 assertions failed: stdout.starts_with: expected \"curl 7\", got \"curl 8.5.0\\n\"… (812 bytes)\n\
        ##buildtest-probe end fail 1/2\n";

    #[test]
    fn parses_a_failed_report() {
        let r = CheckReport::parse(FAILED.as_bytes()).unwrap();
        assert_eq!(r.version, "v1");
        assert_eq!(r.subject, "cmd \"curl\" \"--version\"");
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!((r.failed, r.total), (1, 2));
        assert_eq!(
            r.assertions[0],
            AssertionReport {
                name: "exit_code".into(),
                held: true,
                expected: "0".into(),
                actual: None,
                notes: vec![]
            }
        );
        let f: Vec<_> = r.failures().collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expected, "\"curl 7\"");
        assert_eq!(
            f[0].actual.as_deref(),
            Some("\"curl 8.5.0\\n\"… (812 bytes)")
        );
        assert_eq!(f[0].notes, ["something"]);
        assert!(
            r.summary
                .starts_with("1 of 2 assertions failed: stdout.starts_with")
        );
        assert_eq!(
            r.details(),
            "stdout.starts_with: expected \"curl 7\"\n    actual: \"curl 8.5.0\\n\"… (812 bytes)\n    note: something"
        );
        assert_eq!(CheckReport::strip(FAILED.as_bytes()), b"curl: warning\n");
    }

    #[test]
    fn takes_the_last_complete_block_and_survives_noise() {
        let fake = "##buildtest-probe begin v1 cmd \"x\"\n##buildtest-probe end pass 0/1\n";
        let log = format!(
            "{fake}\r\nnoise \u{fffd}\n{}##buildtest-probe begin v1 file \"/x\"\n",
            FAILED.replace('\n', "\r\n")
        );
        // The trailing block is incomplete (a clipped log): the last complete one wins.
        let r = CheckReport::parse(log.as_bytes()).unwrap();
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.failures().next().unwrap().name, "stdout.starts_with");
        let mut bytes = b"\xff\xfe garbage\n".to_vec();
        bytes.extend_from_slice(fake.as_bytes());
        assert_eq!(CheckReport::parse(&bytes).unwrap().verdict, Verdict::Pass);
        assert_eq!(CheckReport::parse(b"no report here\n"), None);
        assert_eq!(
            CheckReport::parse(b"##buildtest-probe begin v1 cmd \"x\"\n"),
            None
        );
    }

    #[test]
    fn parses_errors() {
        let log = "##buildtest-probe begin v1 cmd \"nope\"\n\
            ##buildtest-probe error command could not be started: \"nope\" not found in PATH (/bin)\n\
            ##buildtest-probe summary command could not be started: \"nope\" not found in PATH (/bin)\n\
            ##buildtest-probe end error 0/0\n";
        let r = CheckReport::parse(log.as_bytes()).unwrap();
        assert_eq!(r.verdict, Verdict::Error);
        assert_eq!(
            r.details(),
            "command could not be started: \"nope\" not found in PATH (/bin)"
        );
        assert_eq!(r.failures().count(), 0);
    }

    #[test]
    fn exit_codes() {
        for (code, exit) in [
            (0, ProbeExit::Pass),
            (1, ProbeExit::Fail),
            (2, ProbeExit::SpecError),
            (3, ProbeExit::NotStarted),
            (137, ProbeExit::Other(137)),
        ] {
            assert_eq!(ProbeExit::from_code(code), exit);
            assert_eq!(exit.code(), code);
        }
        assert_eq!(
            ProbeExit::NotStarted.describe(),
            "the command could not be started"
        );
    }
}
