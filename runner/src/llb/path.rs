//! Path normalization as Go's `path` package and `client/llb` do it.

/// Go's `path.Clean`: lexical, `/`-separated, `.` for empty.
pub(crate) fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Go's `normalizePath` with parent `/` (states here always work in `/`).
pub(crate) fn normalize_path(p: &str, keep_slash: bool) -> String {
    let mut out = clean_path(&format!("/{p}"));
    if keep_slash {
        if p.ends_with('/') && !out.ends_with('/') {
            out.push('/');
        } else if p.ends_with("/.") {
            if out != "/" {
                out.push('/');
            }
            out.push('.');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clean_path, normalize_path};

    #[test]
    fn paths_are_cleaned_like_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a/b/../c", "a/c"),
            ("/../a//b/./", "/a/b"),
            ("../../x", "../../x"),
            ("a/..", "."),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
        assert_eq!(normalize_path("etc/x", false), "/etc/x");
        assert_eq!(normalize_path("/dir/", true), "/dir/");
        assert_eq!(normalize_path("/dir/.", true), "/dir/.");
        assert_eq!(normalize_path("/.", true), "/.");
    }
}
