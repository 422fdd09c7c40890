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

/// Finds the entry named `name` in a passwd or group file, or for a number the entry with that id
/// (never a user whose name is that number: CVE-2016-3697): its name, its id, and for passwd the
/// primary gid and home.
fn lookup<'a>(text: &'a str, name: &str) -> Option<Entry<'a>> {
    let by_id = name.parse::<u32>().ok();
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .find_map(|f| {
            let id = f[2].parse::<u32>().ok()?;
            by_id.map_or(f[0] == name, |n| n == id).then(|| Entry {
                name: f[0],
                id,
                gid: f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
                home: f.get(5).copied().filter(|h| h.starts_with('/')),
            })
        })
}

struct Entry<'a> {
    name: &'a str,
    id: u32,
    gid: u32,
    home: Option<&'a str>,
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

/// What `-u` resolves to.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From passwd; `/` when the user has no entry (docker's rule).
    pub home: String,
}

/// Resolves `-u` (None: root) as docker does: a name must be in the root's passwd; a number is a
/// uid even when a user of that name exists (CVE-2016-3697), and when passwd has an entry for that
/// uid, its primary group, its supplementary groups and its home come from there. `--group-add`
/// entries (numbers or group names) are added to the supplementary groups.
pub fn resolve(root: &Path, spec: Option<&str>, group_add: &[String]) -> Result<Resolved, Error> {
    let spec = spec.unwrap_or("0");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(root, "etc/passwd").unwrap_or_default();
    let group = read_in_root(root, "etc/group").unwrap_or_default();
    let entry = lookup(&passwd, u);
    let uid = match (u.parse::<u32>(), &entry) {
        (Ok(n), _) => n,
        (Err(_), Some(e)) => e.id,
        (Err(_), None) => {
            return Err(Error::Msg(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )));
        }
    };
    let group_id = |g: &str| -> Result<u32, Error> {
        match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => lookup(&group, g).map(|e| e.id).ok_or_else(|| {
                Error::Msg(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            }),
        }
    };
    let gid = match g {
        Some(g) => group_id(g)?,
        None => entry.as_ref().map_or(0, |e| e.gid),
    };
    let mut additional_gids = entry
        .as_ref()
        .map(|e| groups_of(&group, e.name))
        .unwrap_or_default();
    for g in group_add {
        let id = group_id(g)?;
        if !additional_gids.contains(&id) {
            additional_gids.push(id);
        }
    }
    // A number past runc's range, typed or in the image's files, is refused: 4294967295 would
    // reach setresuid as -1, "unchanged", and leave the process root.
    let ids = [("uid", uid), ("gid", gid)].into_iter();
    for (what, id) in ids.chain(additional_gids.iter().map(|&g| ("supplementary gid", g))) {
        husk_spec::plan::check_id(&format!("--user {spec}: {what}"), id)?;
    }
    Ok(Resolved {
        uid,
        gid,
        additional_gids,
        home: entry.and_then(|e| e.home).unwrap_or("/").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n# c\nwww:x:33:34::/var/www:/bin/false\n";
        let www = lookup(passwd, "www").unwrap();
        assert_eq!((www.id, www.gid, www.home), (33, 34, Some("/var/www")));
        assert_eq!(
            lookup(passwd, "33").unwrap().name,
            "www",
            "a number finds its uid"
        );
        assert!(lookup(passwd, "nobody").is_none());
        let tricky = "500:x:500:500::/h:/bin/sh\nreal:x:33:7::/r:/bin/sh\n";
        assert_eq!(lookup(tricky, "33").unwrap().name, "real");
        assert_eq!(lookup(tricky, "500").unwrap().id, 500);
        let group = "www:x:34:\nadm:x:4:www,root\nstaff:x:50:root\n";
        assert_eq!(groups_of(group, "www"), vec![4]);
        assert_eq!(groups_of(group, "root"), vec![4, 50]);
    }

    #[test]
    fn ids_past_runcs_range_are_refused() {
        let nowhere = Path::new("/nonexistent-root");
        for u in ["4294967295", "0:4294967295", "2147483648"] {
            let e = resolve(nowhere, Some(u), &[]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--user {u}: ")), "{e}");
            assert!(e.contains("is outside 0..=2147483647"), "{e}");
        }
        let r = resolve(nowhere, Some("2147483647:7"), &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (2147483647, 7, vec![]));
    }
}
