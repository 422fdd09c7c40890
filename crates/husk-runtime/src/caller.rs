//! Who runs husk, as runc tells a rootless caller from the real root: the effective uid and
//! whether the user namespace is the initial one.

fn initial(uid_map: &str) -> bool {
    uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

pub struct Caller {
    pub euid: u32,
    /// The initial user namespace maps every id onto itself.
    pub initial_userns: bool,
}

impl Caller {
    /// From /proc/self/status and /proc/self/uid_map.
    pub fn parse(status: &str, uid_map: &str) -> Caller {
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        Caller {
            euid,
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
        let st = |e: u32| format!("Name:\thusk\nUid:\t{e}\t{e}\t{e}\t{e}\n");
        let initial = "         0          0 4294967295\n";
        let podman = "         0       1001          1\n         1     200000      65536\n";
        let c = Caller::parse(&st(0), initial);
        assert!(c.initial_userns && c.euid == 0 && !c.rootless());
        assert!(Caller::parse(&st(1001), initial).rootless());
        let c = Caller::parse(&st(0), podman);
        assert!(!c.initial_userns && c.rootless());
    }
}
