//! `husk run` as an ordinary user: the container gets a user namespace in which the user is
//! root, plus the ranges /etc/subuid and /etc/subgid grant it (written by shadow's setuid
//! newuidmap/newgidmap, see husk-runtime's `idmap`), or only the user's own id when it has none;
//! `--userns keep-id` keeps the user's own id instead, as podman's. Cgroups only where cgroup v2
//! delegates a subtree to the user: otherwise the container has none and resource flags are
//! refused, saying why.

use husk_spec::config::IdMapping;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An ordinary user's ids and what the host grants it.
#[derive(Debug, Clone)]
pub struct Rootless {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    /// (first host id, count) from /etc/subuid and /etc/subgid, in file order.
    pub subuids: Vec<(u32, u32)>,
    pub subgids: Vec<(u32, u32)>,
    /// The cgroup v2 directory delegated to the user, under which a container gets its cgroup;
    /// else why there is none, in words.
    pub cgroup: Result<PathBuf, String>,
}

/// The ranges a subordinate-id file grants the user, named by name or by number (as shadow's
/// newuidmap accepts either).
pub fn subids(text: &str, name: &str, id: u32) -> Vec<(u32, u32)> {
    let id = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != name && who != id {
                return None;
            }
            let (start, count) = (start.parse().ok()?, count.parse().ok()?);
            (count > 0).then_some((start, count))
        })
        .collect()
}

/// The container's map: the user's own id as 0 (or, with `keep_id`, as itself), the granted
/// ranges filling the other container ids from 0 up, in order.
pub fn mapping(own: u32, ranges: &[(u32, u32)], keep_id: bool) -> Vec<IdMapping> {
    let mut out = vec![];
    let skip = if keep_id {
        Some(own)
    } else {
        out.push(IdMapping {
            container_id: 0,
            host_id: own,
            size: 1,
        });
        None
    };
    let mut next: u32 = if keep_id { 0 } else { 1 };
    for &(start, count) in ranges {
        let (mut host, mut left) = (start, count);
        while left > 0 {
            if Some(next) == skip {
                next = next.saturating_add(1);
                continue;
            }
            let room = match skip {
                Some(s) if next < s => s - next,
                _ => u32::MAX - next,
            };
            let n = left.min(room);
            if n == 0 {
                break;
            }
            out.push(IdMapping {
                container_id: next,
                host_id: host,
                size: n,
            });
            next = next.saturating_add(n);
            host = host.saturating_add(n);
            left -= n;
        }
    }
    if keep_id {
        out.push(IdMapping {
            container_id: own,
            host_id: own,
            size: 1,
        });
        out.sort_by_key(|m| m.container_id);
    }
    out
}

/// The user's name in the host's /etc/passwd (newuidmap checks /etc/subuid by it).
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// Where a container's cgroup may go: cgroup v2, and the parent of the caller's own cgroup
/// (which holds the caller itself, so no controller could be enabled below it) belongs to the
/// user, as a delegated subtree does (systemd's `Delegate=yes`, or an administrator's chown).
fn delegated_cgroup(uid: u32, proc_self_cgroup: &str, fs_root: &Path) -> Result<PathBuf, String> {
    if !fs_root.join("cgroup.controllers").exists() {
        return Err(
            "this host's cgroups are v1 (or hybrid), and only cgroup v2 can delegate a subtree to an ordinary user".into(),
        );
    }
    let own = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 line in /proc/self/cgroup")?;
    let own = fs_root.join(own.trim_start_matches('/'));
    let parent = own
        .parent()
        .filter(|p| p.starts_with(fs_root) && *p != fs_root)
        .ok_or_else(|| {
            format!(
                "husk runs in {}, which has no parent it could own",
                own.display()
            )
        })?;
    let owned = std::fs::metadata(parent).is_ok_and(|m| m.uid() == uid)
        && husk_sys::fs::writable(&parent.join("cgroup.subtree_control")).unwrap_or(false)
        && husk_sys::fs::writable(parent).unwrap_or(false);
    if !owned {
        return Err(format!(
            "the cgroup above husk's own, {}, is not delegated to uid {uid}",
            parent.display()
        ));
    }
    Ok(parent.to_path_buf())
}

impl Rootless {
    /// Some for an ordinary user (non-root euid); root, also root of a user namespace, runs as
    /// before.
    pub fn detect() -> Option<Rootless> {
        let who = husk_runtime::caller::Caller::current();
        if !who.unprivileged() {
            return None;
        }
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let name = user_name(&read("/etc/passwd"), who.euid).unwrap_or_default();
        Some(Rootless {
            uid: who.euid,
            gid: who.egid,
            subuids: subids(&read("/etc/subuid"), &name, who.euid),
            subgids: subids(&read("/etc/subgid"), &name, who.egid),
            cgroup: delegated_cgroup(
                who.euid,
                &read("/proc/self/cgroup"),
                Path::new("/sys/fs/cgroup"),
            ),
            name,
        })
    }

    pub fn uid_mappings(&self, keep_id: bool) -> Vec<IdMapping> {
        mapping(self.uid, &self.subuids, keep_id)
    }

    pub fn gid_mappings(&self, keep_id: bool) -> Vec<IdMapping> {
        mapping(self.gid, &self.subgids, keep_id)
    }

    /// The container's process can only be ids its user namespace maps: one outside it is
    /// refused here, naming the id, what the user has in /etc/subuid or /etc/subgid, and what
    /// to do (the kernel would say only EINVAL at setresuid).
    pub fn check_mapped(
        &self,
        uid: u32,
        gid: u32,
        groups: &[u32],
        keep_id: bool,
    ) -> Result<(), String> {
        let within = |maps: &[IdMapping], id: u32| {
            maps.iter()
                .any(|m| id >= m.container_id && id - m.container_id < m.size)
        };
        let (uids, gids) = (self.uid_mappings(keep_id), self.gid_mappings(keep_id));
        let missing = [("uid", uid, &uids, "/etc/subuid", &self.subuids)]
            .into_iter()
            .chain(
                std::iter::once(gid)
                    .chain(groups.iter().copied())
                    .map(|g| ("gid", g, &gids, "/etc/subgid", &self.subgids)),
            )
            .find(|(_, id, maps, _, _)| !within(maps, *id));
        let Some((kind, id, maps, file, ranges)) = missing else {
            return Ok(());
        };
        let last = maps
            .iter()
            .map(|m| m.container_id + m.size)
            .max()
            .unwrap_or(0);
        let name = if self.name.is_empty() {
            self.uid.to_string()
        } else {
            self.name.clone()
        };
        Err(if ranges.is_empty() {
            format!(
                "{kind} {id} is not mapped in the container's user namespace: {name} has no range in {file}, so the container has only its own id; add one (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}) or run as root in the container"
            )
        } else {
            format!(
                "{kind} {id} is not mapped in the container's user namespace: {name}'s ranges in {file} give container {kind}s 0 to {}; use one of those, or a larger range",
                last.saturating_sub(1)
            )
        })
    }

    /// Why a container of this user has no cgroup, and what to do, for an error naming the
    /// flags that would need one.
    pub fn no_cgroup(&self, flags: &str) -> Option<String> {
        let why = self.cgroup.as_ref().err()?;
        Some(format!(
            "{flags}: husk runs as uid {} without a cgroup to set limits in: {why}. Run husk in a cgroup v2 subtree delegated to the user (systemd: `systemd-run --user --scope -p Delegate=yes husk run ...`; or have root chown a cgroup's parent to the user), or drop {flags}",
            self.uid
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> IdMapping {
        IdMapping {
            container_id: c,
            host_id: h,
            size: s,
        }
    }

    #[test]
    fn subid_lines_by_name_or_number() {
        let text = "# comment\nalice:100000:65536\nbob:200000:65536\n1001:300000:10\nalice:x:1\nalice:400000:0\n";
        assert_eq!(subids(text, "alice", 1001), [(100000, 65536), (300000, 10)]);
        assert_eq!(subids(text, "carol", 1002), []);
    }

    #[test]
    fn maps_as_podman_makes_them() {
        assert_eq!(mapping(1001, &[], false), [m(0, 1001, 1)]);
        assert_eq!(
            mapping(1001, &[(100000, 65536)], false),
            [m(0, 1001, 1), m(1, 100000, 65536)]
        );
        assert_eq!(
            mapping(1001, &[(100000, 10), (300000, 5)], false),
            [m(0, 1001, 1), m(1, 100000, 10), m(11, 300000, 5)]
        );
        // keep-id: the user's id is itself; the ranges fill the rest around it
        assert_eq!(mapping(1001, &[], true), [m(1001, 1001, 1)]);
        assert_eq!(
            mapping(1001, &[(100000, 65536)], true),
            [m(0, 100000, 1001), m(1001, 1001, 1), m(1002, 101001, 64535)]
        );
        assert_eq!(
            mapping(5, &[(100, 3), (200, 10)], true),
            [m(0, 100, 3), m(3, 200, 2), m(5, 5, 1), m(6, 202, 8)]
        );
    }

    #[test]
    fn unmapped_ids_are_named_with_what_to_do() {
        let r = |subs: Vec<(u32, u32)>| Rootless {
            uid: 1001,
            gid: 1001,
            name: "alice".into(),
            subuids: subs.clone(),
            subgids: subs,
            cgroup: Err(String::new()),
        };
        let none = r(vec![]);
        assert!(none.check_mapped(0, 0, &[], false).is_ok());
        let e = none.check_mapped(1000, 0, &[], false).unwrap_err();
        assert!(e.starts_with("uid 1000 is not mapped") && e.contains("no range in /etc/subuid"));
        assert!(none.check_mapped(1001, 1001, &[], true).is_ok());
        let some = r(vec![(100000, 65536)]);
        assert!(some.check_mapped(1000, 1000, &[5], false).is_ok());
        let e = some.check_mapped(0, 0, &[70000], false).unwrap_err();
        assert!(
            e.starts_with("gid 70000") && e.contains("gids 0 to 65536"),
            "{e}"
        );
    }

    #[test]
    fn passwd_names() {
        let pw = "root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/a:/bin/sh\n";
        assert_eq!(user_name(pw, 1001).as_deref(), Some("alice"));
        assert_eq!(user_name(pw, 7), None);
    }

    #[test]
    fn delegation_needs_v2_and_an_owned_parent() {
        let dir = std::env::temp_dir().join(format!("husk-deleg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("user/leaf")).unwrap();
        let v1 = delegated_cgroup(0, "0::/user/leaf\n", &dir);
        assert!(v1.unwrap_err().contains("v1"));
        std::fs::write(dir.join("cgroup.controllers"), "memory pids\n").unwrap();
        std::fs::write(dir.join("user/cgroup.subtree_control"), "").unwrap();
        let me = std::fs::metadata(&dir).unwrap().uid();
        let ok = delegated_cgroup(me, "0::/user/leaf\n", &dir);
        let other = delegated_cgroup(me + 1, "0::/user/leaf\n", &dir);
        let top = delegated_cgroup(me, "0::/user\n", &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ok.unwrap(), dir.join("user"));
        assert!(other.unwrap_err().contains("not delegated"));
        assert!(top.is_err());
    }
}
