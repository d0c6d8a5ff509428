//! Resolving `--user` (`uid[:gid]`, `name[:group]`, or a mix) against the image's
//! `/etc/passwd` and `/etc/group`, without libc's NSS (the probe is static and the image may
//! have no libc at all).
//!
//! Rules (those of `docker run --user`): a numeric user need not exist in `/etc/passwd`; without
//! a group, the gid is the user's primary group from `/etc/passwd`, or 0 if the uid has no entry.
//! A named user or group must exist. `HOME` is the entry's home directory when there is one.
//! Supplementary groups are dropped.

use std::path::Path;

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// User id.
    pub(crate) uid: u32,
    /// Group id.
    pub(crate) gid: u32,
    /// Home directory from `/etc/passwd`, if the user has an entry.
    pub(crate) home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a colon-separated database under `root` (`etc/passwd`, `etc/group`): its records.
fn records(root: &Path, file: &str) -> Result<Vec<Vec<String>>, String> {
    let path = root.join(file);
    let text = std::fs::read(&path).map_err(|e| format!("cannot read /{file}: {e}"))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect())
}

fn passwd(root: &Path) -> Result<Vec<PasswdEntry>, String> {
    Ok(records(root, "etc/passwd")?
        .into_iter()
        .filter_map(|f| {
            Some(PasswdEntry {
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).cloned().unwrap_or_default(),
                name: f.into_iter().next()?,
            })
        })
        .collect())
}

/// Resolves a `--user` value against the databases under `root` (`/` inside the image).
pub(crate) fn resolve(spec: &str, root: &Path) -> Result<Identity, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(format!("user {spec:?} is not uid[:gid] or name[:group]"));
    }
    let entry = if is_numeric(user) {
        let uid: u32 = user
            .parse()
            .map_err(|_| format!("uid {user:?} is out of range"))?;
        // A numeric user may be absent from (or have no) /etc/passwd.
        let entries = passwd(root).unwrap_or_default();
        match entries.into_iter().find(|e| e.uid == uid) {
            Some(e) => e,
            None => PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: String::new(),
            },
        }
    } else {
        passwd(root)
            .map_err(|e| format!("look up user {user:?}: {e}"))?
            .into_iter()
            .find(|e| e.name == user)
            .ok_or_else(|| format!("user {user:?} not found in /etc/passwd"))?
    };
    let gid = match group {
        None => entry.gid,
        Some(g) if is_numeric(g) => g
            .parse()
            .map_err(|_| format!("gid {g:?} is out of range"))?,
        Some(g) => records(root, "etc/group")
            .map_err(|e| format!("look up group {g:?}: {e}"))?
            .into_iter()
            .find(|f| f.first().is_some_and(|n| n == g))
            .and_then(|f| f.get(2)?.parse().ok())
            .ok_or_else(|| format!("group {g:?} not found in /etc/group"))?,
    };
    let home = (!entry.name.is_empty() && !entry.home.is_empty()).then_some(entry.home);
    Ok(Identity {
        uid: entry.uid,
        gid,
        home,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\n\nbroken line\n\
             app:x:1000:1001:App:/home/app:/sbin/nologin\nnobody:x:65534:65534::/nonexistent:\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:app\napp:x:1001:\n",
        )
        .unwrap();
        dir
    }

    fn id(uid: u32, gid: u32, home: Option<&str>) -> Identity {
        Identity {
            uid,
            gid,
            home: home.map(str::to_owned),
        }
    }

    #[test]
    fn resolves_names_numbers_and_mixes() {
        let r = root();
        let p = r.path();
        assert_eq!(
            resolve("app", p).unwrap(),
            id(1000, 1001, Some("/home/app"))
        );
        assert_eq!(
            resolve("1000", p).unwrap(),
            id(1000, 1001, Some("/home/app"))
        );
        assert_eq!(
            resolve("app:staff", p).unwrap(),
            id(1000, 50, Some("/home/app"))
        );
        assert_eq!(resolve("app:7", p).unwrap(), id(1000, 7, Some("/home/app")));
        assert_eq!(resolve("4242", p).unwrap(), id(4242, 0, None));
        assert_eq!(resolve("4242:staff", p).unwrap(), id(4242, 50, None));
        assert_eq!(resolve("0:0", p).unwrap(), id(0, 0, Some("/root")));
        assert_eq!(
            resolve("nobody", p).unwrap(),
            id(65534, 65534, Some("/nonexistent"))
        );
    }

    #[test]
    fn numeric_users_need_no_passwd_file() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve("123:456", empty.path()).unwrap(),
            id(123, 456, None)
        );
        let err = resolve("app", empty.path()).unwrap_err();
        assert!(
            err.starts_with("look up user \"app\": cannot read /etc/passwd"),
            "{err}"
        );
    }

    #[test]
    fn unknown_or_malformed_users_are_errors() {
        let r = root();
        let p = r.path();
        assert_eq!(
            resolve("ghost", p).unwrap_err(),
            "user \"ghost\" not found in /etc/passwd"
        );
        assert_eq!(
            resolve("app:ghosts", p).unwrap_err(),
            "group \"ghosts\" not found in /etc/group"
        );
        assert!(resolve("", p).unwrap_err().contains("is not uid[:gid]"));
        assert!(resolve("app:", p).unwrap_err().contains("is not uid[:gid]"));
        assert!(
            resolve("99999999999", p)
                .unwrap_err()
                .contains("out of range")
        );
    }
}
