//! `-u name[:group]`: names are looked up in the root's /etc/passwd and /etc/group, read by fd
//! inside the root (a static binary must not use NSS, and the image's files are hostile).

use husk_runtime::Error;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

/// The root's `rel` (`etc/passwd`), or "" when the root or the file does not exist. Opened
/// without blocking and read only when it is a regular file: the image is hostile, and a FIFO
/// or a device there must neither hang husk nor feed it.
fn read_in_root(root: &Path, rel: &str, spec: &str) -> Result<String, Error> {
    let Ok(dir) = husk_sys::fs::openat(None, root, libc::O_PATH | libc::O_DIRECTORY, 0) else {
        return Ok(String::new());
    };
    let shown = root.join(rel);
    let fd = match husk_sys::fs::openat2(
        dir.as_fd(),
        Path::new(rel),
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
        husk_sys::fs::RESOLVE_IN_ROOT | husk_sys::fs::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(String::new()),
        Err(e) => return Err(Error::io("open", shown)(e)),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(Error::io("stat", &shown))?;
    if !meta.is_file() {
        return Err(Error::Msg(format!(
            "--user {spec}: {}: not a regular file",
            shown.display()
        )));
    }
    let mut s = String::new();
    file.take(4 << 20)
        .read_to_string(&mut s)
        .map_err(Error::io("read", &shown))?;
    Ok(s)
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
    // A name must be found in its file, so a file that cannot be read is then the error; a
    // number only takes what a readable file says (as with no entry: docker's rule).
    let needed = |r: Result<String, Error>, needed: bool| match r {
        Err(e) if needed => Err(e),
        r => Ok(r.unwrap_or_default()),
    };
    let passwd = needed(
        read_in_root(root, "etc/passwd", spec),
        u.parse::<u32>().is_err(),
    )?;
    let group = needed(
        read_in_root(root, "etc/group", spec),
        g.into_iter()
            .chain(group_add.iter().map(String::as_str))
            .any(|g| g.parse::<u32>().is_err()),
    )?;
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

    /// A FIFO (or device) as /etc/passwd or /etc/group is opened without blocking and never
    /// read: a name to look up in it is an error, a number goes on as with no entry.
    #[test]
    fn a_fifo_as_passwd_or_group_is_refused_without_hanging() {
        let root = std::env::temp_dir().join(format!("husk-user-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        husk_sys::fs::mkfifo(&root.join("etc/passwd"), 0o644).unwrap();
        std::fs::write(root.join("etc/group"), "staff:x:50:\n").unwrap();
        let in_thread = |spec: &'static str| {
            let (tx, rx) = std::sync::mpsc::channel();
            let r = root.clone();
            std::thread::spawn(move || {
                let got = resolve(&r, Some(spec), &[]).map_err(|e| e.to_string());
                tx.send(got.map(|r| (r.uid, r.gid, r.additional_gids, r.home)))
            });
            rx.recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("-u {spec} hung on a FIFO"))
        };
        let e = in_thread("nobody").unwrap_err();
        assert!(e.contains("etc/passwd: not a regular file"), "{e}");
        assert!(e.starts_with("--user nobody: "), "{e}");
        assert_eq!(
            in_thread("1000:staff").unwrap(),
            (1000, 50, vec![], "/".into())
        );
        std::fs::remove_file(root.join("etc/group")).unwrap();
        husk_sys::fs::mkfifo(&root.join("etc/group"), 0o644).unwrap();
        let e = in_thread("7:staff").unwrap_err();
        assert!(e.contains("etc/group: not a regular file"), "{e}");
        assert_eq!(in_thread("7:8").unwrap(), (7, 8, vec![], "/".into()));
        std::fs::remove_dir_all(&root).unwrap();
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
