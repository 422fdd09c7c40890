//! Name tables the kernel ABI fixes: capabilities, signals, rlimits, namespaces. Pure data, so
//! husk-spec stays free of libc; the numbers are the kernel's and never change.

/// Capability names in kernel order: the index is the capability number.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `CAP_SYS_ADMIN` or `sys_admin` → 21. Unknown names are `None`.
pub fn capability(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITIES
        .iter()
        .position(|c| *c == full)
        .map(|i| i as u8)
}

/// The names of the capabilities in `mask`, comma-separated, in kernel order.
pub fn capability_list(mask: u64) -> String {
    (0..64)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| {
            CAPABILITIES
                .get(bit)
                .map_or(format!("cap {bit}"), |n| n.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Parses a signal as runc does: `KILL`, `SIGKILL`, `kill`, `9`, `RTMIN+3`.
pub fn signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(n) = SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v) {
        return Some(n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().ok()?
        };
        let n = base + sign * off;
        (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(SIGRTMIN, rest.trim_start_matches('+'), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(SIGRTMAX, rest.trim_start_matches('-'), -1);
    }
    None
}

/// `SIGKILL`, `SIGRTMIN+3`, or `signal 99` for a number without a name.
pub fn signal_name(n: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, v)| *v == n) {
        return format!("SIG{name}");
    }
    if (SIGRTMIN..=SIGRTMAX).contains(&n) {
        return format!("SIGRTMIN+{}", n - SIGRTMIN);
    }
    format!("signal {n}")
}

const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

pub fn rlimit_name(resource: u32) -> &'static str {
    RLIMITS
        .get(resource as usize)
        .copied()
        .unwrap_or("RLIMIT_?")
}

/// `RLIMIT_NOFILE` → 7.
pub fn rlimit(name: &str) -> Option<u32> {
    RLIMITS.iter().position(|r| *r == name).map(|i| i as u32)
}

/// Namespace kinds, their `CLONE_NEW*` flag and their /proc/PID/ns file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsKind {
    User,
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Mount,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The OCI `type` string.
    pub fn parse(s: &str) -> Option<NsKind> {
        Some(match s {
            "user" => NsKind::User,
            "mount" => NsKind::Mount,
            "pid" => NsKind::Pid,
            "network" => NsKind::Net,
            "ipc" => NsKind::Ipc,
            "uts" => NsKind::Uts,
            "cgroup" => NsKind::Cgroup,
            "time" => NsKind::Time,
            _ => return None,
        })
    }

    pub fn oci_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mount",
            NsKind::Pid => "pid",
            NsKind::Net => "network",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// File name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::Mount => "mnt",
            NsKind::Net => "net",
            other => other.oci_name(),
        }
    }

    /// The CLONE_NEW* flag (kernel ABI values).
    pub fn clone_flag(self) -> u64 {
        match self {
            NsKind::Time => 0x0000_0080,
            NsKind::Mount => 0x0002_0000,
            NsKind::Cgroup => 0x0200_0000,
            NsKind::Uts => 0x0400_0000,
            NsKind::Ipc => 0x0800_0000,
            NsKind::User => 0x1000_0000,
            NsKind::Pid => 0x2000_0000,
            NsKind::Net => 0x4000_0000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(capability("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(capability("sys_admin"), Some(21));
        assert_eq!(capability("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(capability("CAP_NOPE"), None);
        assert_eq!(
            capability_list(1 << 5 | 1 << 10 | 1 << 29),
            "CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE"
        );
        assert_eq!(capability_list(1 << 63), "cap 63");
    }

    #[test]
    fn signal_forms() {
        assert_eq!(signal("KILL"), Some(9));
        assert_eq!(signal("SIGKILL"), Some(9));
        assert_eq!(signal("9"), Some(9));
        assert_eq!(signal("term"), Some(15));
        assert_eq!(signal("RTMIN+2"), Some(36));
        assert_eq!(signal("SIGRTMAX-1"), Some(63));
        assert_eq!(signal("0"), None);
        assert_eq!(signal("65"), None);
        assert_eq!(signal("BOGUS"), None);
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(99), "signal 99");
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit("RLIMIT_NOFILE"), Some(7));
        assert_eq!(rlimit("RLIMIT_RTTIME"), Some(15));
        assert_eq!(rlimit("NOFILE"), None);
    }
}
