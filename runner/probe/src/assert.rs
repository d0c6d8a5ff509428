//! Evaluating text assertions (stdout, stderr, file content) against captured bytes.

use std::borrow::Cow;

use crate::report::Outcome;
use crate::spec::TextAssertion;
use crate::text::{self, DETAIL_LIMIT, SUMMARY_LIMIT};

/// Evaluates `assertion` on `data`; the outcome is named `<subject>.<assertion>`.
pub(crate) fn text(subject: &str, assertion: &TextAssertion, data: &[u8]) -> Outcome {
    let name = format!("{subject}.{}", assertion.name());
    let (held, expected) = match assertion {
        TextAssertion::Equals(s) => (
            data == s.as_bytes(),
            text::show_head(s.as_bytes(), DETAIL_LIMIT),
        ),
        TextAssertion::Contains(s) => (
            text::contains(data, s.as_bytes()),
            text::show_head(s.as_bytes(), DETAIL_LIMIT),
        ),
        TextAssertion::Matches(re) => {
            let haystack: Cow<'_, str> = String::from_utf8_lossy(data);
            (
                re.is_match(&haystack),
                format!("regex {}", text::quote(re.as_str().as_bytes())),
            )
        }
        TextAssertion::StartsWith(s) => (
            data.starts_with(s.as_bytes()),
            text::show_head(s.as_bytes(), DETAIL_LIMIT),
        ),
        TextAssertion::EndsWith(s) => (
            data.ends_with(s.as_bytes()),
            text::show_head(s.as_bytes(), DETAIL_LIMIT),
        ),
        TextAssertion::Empty => (data.is_empty(), "empty".to_owned()),
    };
    if held {
        return Outcome::pass(name, expected);
    }
    let mut outcome = if matches!(assertion, TextAssertion::EndsWith(_)) {
        // The end is what matters here: show the tail.
        Outcome {
            actual_short: Some(text::show_tail(data, SUMMARY_LIMIT)),
            ..Outcome::fail(name, expected, text::show_tail(data, DETAIL_LIMIT))
        }
    } else {
        Outcome {
            actual_short: Some(text::show_head(data, SUMMARY_LIMIT)),
            ..Outcome::fail(name, expected, text::show_head(data, DETAIL_LIMIT))
        }
    };
    match assertion {
        TextAssertion::Equals(s) => {
            let at = text::first_difference(data, s.as_bytes());
            outcome.notes.push(format!(
                "first difference at byte {at} (expected {} bytes, got {})",
                s.len(),
                data.len()
            ));
        }
        TextAssertion::Matches(_) if std::str::from_utf8(data).is_err() => {
            outcome
                .notes
                .push("not valid UTF-8: matched against a lossy conversion".to_owned());
        }
        _ => {}
    }
    outcome
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use regex_lite::Regex;

    fn t(a: TextAssertion, data: &[u8]) -> Outcome {
        text("stdout", &a, data)
    }

    #[test]
    fn each_assertion_passes_and_fails() {
        let s = |v: &str| v.to_owned();
        let cases: Vec<(TextAssertion, &[u8], bool)> = vec![
            (TextAssertion::Equals(s("abc")), b"abc", true),
            (TextAssertion::Equals(s("abc")), b"abc\n", false),
            (TextAssertion::Contains(s("b c")), b"a b c d", true),
            (TextAssertion::Contains(s("x")), b"abc", false),
            (
                TextAssertion::Matches(Regex::new(r"^v\d+\.\d+").unwrap()),
                b"v1.25 ok",
                true,
            ),
            (
                TextAssertion::Matches(Regex::new(r"(?m)^ok$").unwrap()),
                b"v1\nok\n",
                true,
            ),
            (
                TextAssertion::Matches(Regex::new(r"^ok$").unwrap()),
                b"v1\nok\n",
                false,
            ),
            (TextAssertion::StartsWith(s("curl 7")), b"curl 7.88", true),
            (TextAssertion::StartsWith(s("curl 7")), b"curl 8.5", false),
            (TextAssertion::EndsWith(s("done\n")), b"all done\n", true),
            (TextAssertion::EndsWith(s("done")), b"all done\n", false),
            (TextAssertion::Empty, b"", true),
            (TextAssertion::Empty, b"\n", false),
        ];
        for (a, data, want) in cases {
            let desc = format!("{a:?} on {data:?}");
            let o = t(a, data);
            assert_eq!(o.held(), want, "{desc}: {o:?}");
        }
    }

    #[test]
    fn failures_show_expected_and_actual() {
        let o = t(TextAssertion::Equals("abc".to_owned()), b"abd\xff");
        assert_eq!(o.name, "stdout.equals");
        assert_eq!(o.expected, "\"abc\"");
        assert_eq!(o.actual.as_deref(), Some("\"abd\\xff\""));
        assert_eq!(
            o.notes,
            ["first difference at byte 2 (expected 3 bytes, got 4)"]
        );

        let o = text("content", &TextAssertion::Empty, b"x");
        assert_eq!(
            (o.name.as_str(), o.expected.as_str(), o.actual.as_deref()),
            ("content.empty", "empty", Some("\"x\""))
        );

        let o = t(TextAssertion::Matches(Regex::new("z").unwrap()), b"\xffa");
        assert_eq!(o.expected, "regex \"z\"");
        assert_eq!(
            o.notes,
            ["not valid UTF-8: matched against a lossy conversion"]
        );
    }

    #[test]
    fn long_actual_values_are_truncated_with_their_size() {
        let big = vec![b'a'; 10_000];
        let o = t(TextAssertion::Contains("b".to_owned()), &big);
        let actual = o.actual.unwrap();
        assert!(actual.ends_with("… (10000 bytes)"), "{actual}");
        assert!(actual.len() < DETAIL_LIMIT + 40, "{}", actual.len());
        assert!(o.actual_short.unwrap().len() < SUMMARY_LIMIT + 40);

        let mut tail = big.clone();
        tail.extend_from_slice(b"END");
        let o = t(TextAssertion::EndsWith("end".to_owned()), &tail);
        let actual = o.actual.unwrap();
        assert!(
            actual.starts_with('…') && actual.ends_with("END\" (10003 bytes)"),
            "{actual}"
        );
    }
}
