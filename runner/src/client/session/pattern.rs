//! `.dockerignore` pattern syntax, with the semantics of Go's `moby/patternmatcher` (which fsutil,
//! and so every BuildKit daemon, uses for `include-patterns` / `exclude-patterns`).
//!
//! - A pattern is trimmed, cleaned like Go's `path.Clean`, and a leading `/` or `./` is dropped.
//! - `*` matches any run of characters except `/`, `?` one character except `/`, `[…]` a character
//!   class, `\x` the literal `x`, and `**` any number of path segments (including none); `**` at the end
//!   matches everything below.
//! - A leading `!` makes the pattern an exclusion: it re-includes what earlier patterns matched.
//! - Patterns are applied in order, and a pattern that matches a directory covers its whole subtree
//!   (Go's `MatchesOrParentMatches`).

use regex_lite::Regex;
use thiserror::Error;

/// A pattern could not be compiled.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("parse pattern `{pattern}`: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!`.
    cleaned: String,
    exclusion: bool,
    regex: Regex,
}

/// An ordered list of patterns.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

/// Go's `path.Clean` for `/`-separated paths.
pub(crate) fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    re.push(']');
                }
                '\\' => {
                    let Some(&next) = chars.get(i) else {
                        return Err("trailing backslash".to_owned());
                    };
                    i += 1;
                    re.push_str(&regex_lite::escape(&next.to_string()));
                }
                '^' | '-' => re.push(c),
                c => re.push_str(&regex_lite::escape(&c.to_string())),
            }
            continue;
        }
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                in_class = true;
                re.push('[');
                // Go's filepath.Match spells negation `[^…]`; a leading `]` is literal.
                if chars.get(i) == Some(&'^') {
                    re.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    re.push_str("\\]");
                    i += 1;
                }
            }
            '\\' => {
                let Some(&next) = chars.get(i) else {
                    return Err("trailing backslash".to_owned());
                };
                i += 1;
                re.push_str(&regex_lite::escape(&next.to_string()));
            }
            c => re.push_str(&regex_lite::escape(&c.to_string())),
        }
    }
    if in_class {
        return Err("unterminated character class".to_owned());
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

impl PatternMatcher {
    /// Compile `patterns` in order; empty (or all-blank) lists match nothing.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut compiled = Vec::new();
        for raw in patterns {
            let raw = raw.as_ref();
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = &p[1..];
                if p.trim().is_empty() {
                    return Err(PatternError {
                        pattern: raw.to_owned(),
                        reason: "an exclusion needs a pattern after `!`".to_owned(),
                    });
                }
            }
            let mut cleaned = clean_path(p.trim());
            while let Some(rest) = cleaned.strip_prefix('/') {
                cleaned = rest.to_owned();
            }
            if cleaned.is_empty() {
                cleaned = ".".to_owned();
            }
            let regex = compile(&cleaned).map_err(|reason| PatternError {
                pattern: raw.to_owned(),
                reason,
            })?;
            compiled.push(Pattern {
                cleaned,
                exclusion,
                regex,
            });
        }
        Ok(Self { patterns: compiled })
    }

    /// No patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Some pattern starts with `!`.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Does `path` (relative, `/`-separated, clean) or one of its parent directories match, after
    /// every pattern was applied in order?
    pub fn matches(&self, path: &str) -> bool {
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.regex.is_match(path)
                || parents.iter().any(|parent| pattern.regex.is_match(parent));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// The cleaned patterns (inclusions if `exclusions` is false, else the `!` ones) with a trailing
    /// `/**` or `/*` removed: fsutil's test whether a directory can hold a match.
    pub(crate) fn prefixes(&self, exclusions: bool) -> impl Iterator<Item = &str> {
        self.patterns
            .iter()
            .filter(move |p| p.exclusion == exclusions)
            .map(|p| without_trailing_glob(&p.cleaned))
    }

    /// All patterns (of that kind) are plain paths, possibly ending in `/*` or `/**`, so a directory
    /// that is not a prefix of one of them cannot hold a match.
    pub(crate) fn only_prefixes(&self, exclusions: bool) -> bool {
        self.prefixes(exclusions)
            .all(|p| !p.contains(['*', '[', ']', '?', '^', '\\']))
    }
}

fn without_trailing_glob(p: &str) -> &str {
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        PatternMatcher::new(patterns).unwrap().matches(path)
    }

    #[test]
    fn clean_matches_go() {
        assert_eq!(clean_path("./a/../b/"), "b");
        assert_eq!(clean_path("/a//b/./c"), "/a/b/c");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("/.."), "/");
    }

    #[test]
    fn stars_and_classes() {
        assert!(m(&["*.txt"], "a.txt"));
        assert!(!m(&["*.txt"], "d/a.txt"));
        assert!(m(&["*/a.txt"], "d/a.txt"));
        assert!(m(&["a?c"], "abc"));
        assert!(!m(&["a?c"], "a/c"));
        assert!(m(&["[ab].rs"], "b.rs"));
        assert!(!m(&["[ab].rs"], "c.rs"));
        assert!(m(&["[^ab].rs"], "c.rs"));
        assert!(m(&["a\\*b"], "a*b"));
        assert!(!m(&["a\\*b"], "axb"));
        assert!(m(&["a.b"], "a.b"));
        assert!(!m(&["a.b"], "axb"));
    }

    #[test]
    fn double_star() {
        assert!(m(&["**/*.o"], "x.o"));
        assert!(m(&["**/*.o"], "a/b/x.o"));
        assert!(m(&["a/**/z"], "a/z"));
        assert!(m(&["a/**/z"], "a/b/c/z"));
        assert!(m(&["a/**"], "a/b/c"));
        assert!(!m(&["a/**/z"], "b/z"));
        assert!(m(&["**"], "anything/at/all"));
    }

    #[test]
    fn a_matching_directory_covers_its_subtree() {
        assert!(m(&["target"], "target/debug/x"));
        assert!(!m(&["target"], "targets/x"));
        assert!(m(&["a/*"], "a/b/c"));
    }

    #[test]
    fn leading_slash_and_dot_are_cleaned() {
        assert!(m(&["/target"], "target/x"));
        assert!(m(&["./target/"], "target"));
        assert!(m(&["  spaced  "], "spaced"));
    }

    #[test]
    fn exclusions_reinclude_in_order() {
        let pats = ["*.md", "!README.md"];
        assert!(m(&pats, "CHANGES.md"));
        assert!(!m(&pats, "README.md"));
        // A later pattern wins again.
        assert!(m(&["*.md", "!README.md", "README*"], "README.md"));
        // An exclusion for a file inside an excluded directory.
        assert!(!m(&["docs", "!docs/keep"], "docs/keep"));
        assert!(m(&["docs", "!docs/keep"], "docs/other"));
    }

    #[test]
    fn errors_and_blanks() {
        assert!(PatternMatcher::new(&["!"]).is_err());
        assert!(PatternMatcher::new(&["[ab"]).is_err());
        assert!(PatternMatcher::new(&["a\\"]).is_err());
        assert!(PatternMatcher::new(&["", "  "]).unwrap().is_empty());
    }

    #[test]
    fn prefix_analysis() {
        let pm = PatternMatcher::new(&["src/**", "lib/*", "!x/y"]).unwrap();
        assert_eq!(pm.prefixes(false).collect::<Vec<_>>(), ["src", "lib"]);
        assert!(pm.only_prefixes(false));
        assert!(pm.has_exclusions());
        let globby = PatternMatcher::new(&["*.rs"]).unwrap();
        assert!(!globby.only_prefixes(false));
    }
}
