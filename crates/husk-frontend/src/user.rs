//! `-u name[:group]`: names are looked up in the root's /etc/passwd and /etc/group, read by fd
//! inside the root (a static binary must not use NSS, and the image's files are hostile).

use husk_runtime::Error;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    let dir = husk_sys::fs::openat(None, root, libc::O_PATH | libc::O_DIRECTORY, 0).ok()?;
    let fd = husk_sys::fs::openat2(
        dir.as_fd(),
        Path::new(rel),
        0,
        0,
        husk_sys::fs::RESOLVE_IN_ROOT | husk_sys::fs::RESOLVE_NO_MAGICLINKS,
    )
    .ok()?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Finds `name` in a passwd or group file: (its id, and for passwd the primary gid).
fn lookup(text: &str, name: &str) -> Option<(u32, u32)> {
    let fields = text
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)?;
    let id = fields[2].parse().ok()?;
    let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(0);
    Some((id, gid))
}

/// Supplementary groups of `user` from /etc/group.
fn groups_of(text: &str, user: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == user)).then(|| f[2].parse().ok())?
        })
        .collect()
}

/// Resolves `-u` into (uid, gid, additional gids). Numeric users are uids even when a user of
/// that name exists (CVE-2016-3697).
pub fn resolve(root: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>), Error> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(root, "etc/passwd").unwrap_or_default();
    let group = read_in_root(root, "etc/group").unwrap_or_default();
    let (uid, mut gid, name) = match u.parse::<u32>() {
        Ok(n) => (n, 0, None),
        Err(_) => {
            let (uid, gid) = lookup(&passwd, u).ok_or_else(|| {
                Error::Msg(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
            (uid, gid, Some(u))
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup(&group, g)
                    .ok_or_else(|| {
                        Error::Msg(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?
                    .0
            }
        };
    }
    let extra = name.map(|n| groups_of(&group, n)).unwrap_or_default();
    // A number past runc's range, typed or in the image's files, is refused: 4294967295 would
    // reach setresuid as -1, "unchanged", and leave the process root.
    let ids = [("uid", uid), ("gid", gid)].into_iter();
    for (what, id) in ids.chain(extra.iter().map(|&g| ("supplementary gid", g))) {
        husk_spec::plan::check_id(&format!("--user {spec}: {what}"), id)?;
    }
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n# c\nwww:x:33:34::/var/www:/bin/false\n";
        assert_eq!(lookup(passwd, "www"), Some((33, 34)));
        assert_eq!(lookup(passwd, "nobody"), None);
        let group = "www:x:34:\nadm:x:4:www,root\nstaff:x:50:root\n";
        assert_eq!(groups_of(group, "www"), vec![4]);
        assert_eq!(groups_of(group, "root"), vec![4, 50]);
    }

    #[test]
    fn ids_past_runcs_range_are_refused() {
        let nowhere = Path::new("/nonexistent-root");
        for u in ["4294967295", "0:4294967295", "2147483648"] {
            let e = resolve(nowhere, u).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--user {u}: ")), "{e}");
            assert!(e.contains("is outside 0..=2147483647"), "{e}");
        }
        assert_eq!(
            resolve(nowhere, "2147483647:7").unwrap(),
            (2147483647, 7, vec![])
        );
    }
}
