//! Who runs husk, as runc tells a rootless caller from the real root: the effective uid and
//! whether the user namespace is the initial one.

fn initial(uid_map: &str) -> bool {
    uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

/// runc's global `--rootless auto|true|false`: whether cgroup hierarchies the caller may not
/// write in are left out (`Cgroup::drop_unwritable`) rather than failing the container. Auto
/// (None) is `Caller::rootless`.
static ROOTLESS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

pub fn set_rootless(v: Option<bool>) {
    let n = match v {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    };
    ROOTLESS.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// `--rootless` as given, else `Caller::rootless` of this process.
pub fn rootless_cgroups() -> bool {
    match ROOTLESS.load(std::sync::atomic::Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => Caller::current().rootless(),
    }
}

pub struct Caller {
    pub euid: u32,
    pub egid: u32,
    /// The initial user namespace maps every id onto itself.
    pub initial_userns: bool,
}

impl Caller {
    /// From /proc/self/status and /proc/self/uid_map.
    pub fn parse(status: &str, uid_map: &str) -> Caller {
        let effective = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|e| e.parse().ok())
                .unwrap_or(0)
        };
        Caller {
            euid: effective("Uid:"),
            egid: effective("Gid:"),
            initial_userns: initial(uid_map),
        }
    }

    /// Only the user namespace half (one read of /proc/self/uid_map).
    pub fn in_initial_userns() -> bool {
        initial(&std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default())
    }

    pub fn current() -> Caller {
        Caller::parse(
            &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
            &std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default(),
        )
    }

    /// An ordinary user, in whatever user namespace: what it may do is what its uid may (its own
    /// files, its own single id in a new user namespace, the setuid newuidmap/newgidmap for the
    /// ranges /etc/subuid and /etc/subgid grant it). Root of a user namespace (rootless podman
    /// running husk) is not: it holds capabilities over that namespace's ids and mounts.
    pub fn unprivileged(&self) -> bool {
        self.euid != 0
    }

    /// runc's shouldUseRootlessCgroupManager: not root, or root of a user namespace (whose
    /// cgroup rights nobody can tell without a cgroupsPath).
    pub fn rootless(&self) -> bool {
        self.euid != 0 || !self.initial_userns
    }
}

#[cfg(test)]
mod tests {
    use super::Caller;

    #[test]
    fn real_root_ordinary_user_and_userns_root() {
        let st =
            |e: u32| format!("Name:\thusk\nUid:\t{e}\t{e}\t{e}\t{e}\nGid:\t7\t{e}\t{e}\t{e}\n");
        let initial = "         0          0 4294967295\n";
        let podman = "         0       1001          1\n         1     200000      65536\n";
        let c = Caller::parse(&st(0), initial);
        assert!(c.initial_userns && c.euid == 0 && !c.rootless() && !c.unprivileged());
        let user = Caller::parse(&st(1001), initial);
        assert!(user.rootless() && user.unprivileged() && user.egid == 1001);
        let c = Caller::parse(&st(0), podman);
        assert!(!c.initial_userns && c.rootless() && !c.unprivileged());
    }
}
