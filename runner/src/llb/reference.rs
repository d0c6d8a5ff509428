//! Docker image reference normalization, as BuildKit's Go client does it.
//!
//! Go's `llb.Image` runs `reference.ParseNormalizedNamed` and then
//! `reference.TagNameOnly` (from `github.com/distribution/reference`), so
//! `alpine` becomes `docker.io/library/alpine:latest`. The grammar below is
//! written from that package's documented rules:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component { "/" path-component }
//! domain     := host [ ":" port ]            host := domain-name | "[" ipv6 "]"
//! path-comp  := [a-z0-9]+ { separator [a-z0-9]+ }   separator := "." | "_" | "__" | "-"+
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex            (sha256: 64, sha384: 96, sha512: 128 lowercase hex)
//! ```

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Normalizes `reference` to its full form (`docker.io/library/alpine:latest`),
/// or says why it is invalid.
pub(crate) fn normalize(reference: &str) -> Result<String, String> {
    if is_hex_identifier(reference) {
        return Err("a repository name cannot be a 64-character hexadecimal string".to_owned());
    }
    let (domain, remainder) = split_docker_domain(reference);
    let remote = remainder
        .split_once(':')
        .map_or(remainder.as_str(), |(r, _)| r);
    if remote.to_lowercase() != remote {
        return Err(format!("repository name `{remote}` must be lowercase"));
    }
    let full = format!("{domain}/{remainder}");
    let parsed = parse(&full)?;
    let mut out = parsed.name.to_owned();
    match (parsed.tag, parsed.digest) {
        (None, None) => out.push_str(":latest"),
        (tag, digest) => {
            if let Some(tag) = tag {
                out.push(':');
                out.push_str(tag);
            }
            if let Some(digest) = digest {
                out.push('@');
                out.push_str(digest);
            }
        }
    }
    Ok(out)
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, mut remainder) = match name.split_once('/') {
        None => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
        Some((maybe_domain, rest)) => {
            if maybe_domain == "localhost"
                || maybe_domain.contains(['.', ':'])
                || maybe_domain.to_lowercase() != maybe_domain
            {
                let domain = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
                    DEFAULT_DOMAIN
                } else {
                    maybe_domain
                };
                (domain.to_owned(), rest.to_owned())
            } else {
                (DEFAULT_DOMAIN.to_owned(), name.to_owned())
            }
        }
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

struct Parsed<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

fn parse(s: &str) -> Result<Parsed<'_>, String> {
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    let last_slash = name_tag.rfind('/').unwrap_or(0);
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if colon > last_slash => (&name_tag[..colon], Some(&name_tag[colon + 1..])),
        _ => (name_tag, None),
    };
    check_name(name)?;
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "repository name must not be longer than {NAME_TOTAL_LENGTH_MAX} characters"
        ));
    }
    Ok(Parsed { name, tag, digest })
}

fn check_name(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('/').collect();
    let (first, rest) = parts.split_first().ok_or_else(|| "empty name".to_owned())?;
    // The leading component may be a domain (when more components follow) or a path component.
    let first_ok = is_path_component(first) || (!rest.is_empty() && is_domain(first));
    if !first_ok || !rest.iter().all(|p| is_path_component(p)) {
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("repository name must be lowercase".to_owned());
        }
        return Err("invalid reference format".to_owned());
    }
    Ok(())
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_path_component(s: &str) -> bool {
    // [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    let b = s.as_bytes();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && is_alnum_lower(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match b {
        [] => false,
        [one] => one.is_ascii_alphanumeric(),
        [first, middle @ .., last] => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && middle
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let ok = !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|c| word(*c) || *c == b'.' || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag `{tag}`"))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("invalid digest `{digest}`"));
    };
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm `{algorithm}`")),
    };
    let hex_ok = hex.len() == want
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex_ok {
        Ok(())
    } else {
        Err(format!("invalid {algorithm} digest `{hex}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn familiar_names_are_expanded() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            (
                "docker.io/library/alpine:3.20",
                "docker.io/library/alpine:3.20",
            ),
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            ("index.docker.io/alpine:1", "docker.io/library/alpine:1"),
            ("user/repo", "docker.io/user/repo:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
            ("Example.com/x", "Example.com/x:latest"),
            ("a__b/c-d---e.f_g", "docker.io/a__b/c-d---e.f_g:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn digests_are_kept_without_latest() {
        assert_eq!(
            normalize(&format!("alpine@{D}")),
            Ok(format!("docker.io/library/alpine@{D}"))
        );
        assert_eq!(
            normalize(&format!("alpine:3.20@{D}")),
            Ok(format!("docker.io/library/alpine:3.20@{D}"))
        );
        assert_eq!(
            normalize(&format!("localhost:5000/x@{D}")),
            Ok(format!("localhost:5000/x@{D}"))
        );
    }

    #[test]
    fn invalid_references_are_rejected() {
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "alpine@sha256:abc",
            "alpine@md5:0123456789abcdef0123456789abcdef",
            "a//b",
            "a/b/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "example.com:x/y",
            "a b",
        ] {
            assert!(
                normalize(bad).is_err(),
                "{bad:?} accepted as {:?}",
                normalize(bad)
            );
        }
        let long = format!("docker.io/{}", "a".repeat(250));
        assert!(normalize(&long).is_err());
    }
}
