//! Mount option strings → what the kernel is asked for. The kernel ABI values are spelled out
//! here so this crate needs no libc.

pub mod ms {
    pub const RDONLY: u64 = 1;
    pub const NOSUID: u64 = 2;
    pub const NODEV: u64 = 4;
    pub const NOEXEC: u64 = 8;
    pub const SYNCHRONOUS: u64 = 16;
    pub const REMOUNT: u64 = 32;
    pub const MANDLOCK: u64 = 64;
    pub const DIRSYNC: u64 = 128;
    pub const NOSYMFOLLOW: u64 = 256;
    pub const NOATIME: u64 = 1024;
    pub const NODIRATIME: u64 = 2048;
    pub const BIND: u64 = 4096;
    pub const REC: u64 = 16384;
    pub const SILENT: u64 = 32768;
    pub const UNBINDABLE: u64 = 1 << 17;
    pub const PRIVATE: u64 = 1 << 18;
    pub const SLAVE: u64 = 1 << 19;
    pub const SHARED: u64 = 1 << 20;
    pub const RELATIME: u64 = 1 << 21;
    pub const I_VERSION: u64 = 1 << 23;
    pub const STRICTATIME: u64 = 1 << 24;
    pub const LAZYTIME: u64 = 1 << 25;
}

pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// Set/clear masks for mount_setattr(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttrChange {
    pub set: u64,
    pub clear: u64,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    fn apply(&mut self, set: u64, clear: u64) {
        self.set = (self.set & !clear) | set;
        self.clear = (self.clear & !set) | clear;
    }
}

/// A mount's options, sorted by how they reach the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for mount(2) (for a bind: MS_BIND, MS_REC).
    pub flags: u64,
    /// Per-mount attributes, applied after a bind (binds ignore flags at mount time).
    pub attrs: AttrChange,
    /// Recursive attributes (`rro`, `rnosuid`, ...), applied with AT_RECURSIVE.
    pub rec_attrs: AttrChange,
    /// Propagation changes, each one mount(2) call with MS_REC as given.
    pub propagation: Vec<u64>,
    /// Filesystem-specific options, comma separated.
    pub data: String,
    /// `idmap`/`ridmap`: the mount is id-mapped with the mount's uid/gid mappings.
    pub idmap: Option<bool>,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags & ms::BIND != 0
    }
}

/// Maps a flag option to (ms flag to set, ms flag to clear, attr set, attr clear).
fn flag_option(opt: &str) -> Option<(u64, u64, u64, u64)> {
    use {attr as a, ms as m};
    Some(match opt {
        "defaults" => (0, 0, 0, 0),
        "ro" => (m::RDONLY, 0, a::RDONLY, 0),
        "rw" => (0, m::RDONLY, 0, a::RDONLY),
        "nosuid" => (m::NOSUID, 0, a::NOSUID, 0),
        "suid" => (0, m::NOSUID, 0, a::NOSUID),
        "nodev" => (m::NODEV, 0, a::NODEV, 0),
        "dev" => (0, m::NODEV, 0, a::NODEV),
        "noexec" => (m::NOEXEC, 0, a::NOEXEC, 0),
        "exec" => (0, m::NOEXEC, 0, a::NOEXEC),
        "sync" => (m::SYNCHRONOUS, 0, 0, 0),
        "async" => (0, m::SYNCHRONOUS, 0, 0),
        "dirsync" => (m::DIRSYNC, 0, 0, 0),
        "mand" => (m::MANDLOCK, 0, 0, 0),
        "nomand" => (0, m::MANDLOCK, 0, 0),
        "noatime" => (m::NOATIME, 0, a::NOATIME, a::ATIME_MASK),
        "atime" => (0, m::NOATIME, 0, 0),
        "nodiratime" => (m::NODIRATIME, 0, a::NODIRATIME, 0),
        "diratime" => (0, m::NODIRATIME, 0, a::NODIRATIME),
        "relatime" => (m::RELATIME, 0, a::RELATIME, a::ATIME_MASK),
        "norelatime" => (0, m::RELATIME, 0, 0),
        "strictatime" => (m::STRICTATIME, 0, a::STRICTATIME, a::ATIME_MASK),
        "nostrictatime" => (0, m::STRICTATIME, 0, 0),
        "lazytime" => (m::LAZYTIME, 0, 0, 0),
        "nolazytime" => (0, m::LAZYTIME, 0, 0),
        "iversion" => (m::I_VERSION, 0, 0, 0),
        "noiversion" => (0, m::I_VERSION, 0, 0),
        "silent" => (m::SILENT, 0, 0, 0),
        "loud" => (0, m::SILENT, 0, 0),
        "nosymfollow" => (m::NOSYMFOLLOW, 0, a::NOSYMFOLLOW, 0),
        "symfollow" => (0, m::NOSYMFOLLOW, 0, a::NOSYMFOLLOW),
        "bind" => (m::BIND, 0, 0, 0),
        "rbind" => (m::BIND | m::REC, 0, 0, 0),
        "remount" => (m::REMOUNT, 0, 0, 0),
        _ => return None,
    })
}

fn recursive_option(opt: &str) -> Option<(u64, u64)> {
    use attr as a;
    Some(match opt {
        "rro" => (a::RDONLY, 0),
        "rrw" => (0, a::RDONLY),
        "rnosuid" => (a::NOSUID, 0),
        "rsuid" => (0, a::NOSUID),
        "rnodev" => (a::NODEV, 0),
        "rdev" => (0, a::NODEV),
        "rnoexec" => (a::NOEXEC, 0),
        "rexec" => (0, a::NOEXEC),
        "rnodiratime" => (a::NODIRATIME, 0),
        "rdiratime" => (0, a::NODIRATIME),
        "rrelatime" => (a::RELATIME, a::ATIME_MASK),
        "rnorelatime" => (0, 0),
        "rnoatime" => (a::NOATIME, a::ATIME_MASK),
        "ratime" => (a::RELATIME, a::ATIME_MASK),
        "rstrictatime" => (a::STRICTATIME, a::ATIME_MASK),
        "rnostrictatime" => (a::RELATIME, a::ATIME_MASK),
        "rnosymfollow" => (a::NOSYMFOLLOW, 0),
        "rsymfollow" => (0, a::NOSYMFOLLOW),
        _ => return None,
    })
}

fn propagation_option(opt: &str) -> Option<u64> {
    use ms as m;
    Some(match opt {
        "private" => m::PRIVATE,
        "rprivate" => m::PRIVATE | m::REC,
        "shared" => m::SHARED,
        "rshared" => m::SHARED | m::REC,
        "slave" => m::SLAVE,
        "rslave" => m::SLAVE | m::REC,
        "unbindable" => m::UNBINDABLE,
        "runbindable" => m::UNBINDABLE | m::REC,
        _ => return None,
    })
}

/// Every option name `parse` gives a meaning to (not filesystem data), for `husk features`.
/// A unit test checks each one against the tables above, so the list cannot claim more.
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// Parses a mount's `options` (and its `type`: `bind` implies MS_BIND as runc does).
pub fn parse(kind: Option<&str>, options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    if kind == Some("bind") {
        out.flags |= ms::BIND;
    }
    for opt in options {
        let opt = opt.as_str();
        if let Some((set, clear, aset, aclear)) = flag_option(opt) {
            out.flags = (out.flags & !clear) | set;
            out.attrs.apply(aset, aclear);
        } else if let Some((set, clear)) = recursive_option(opt) {
            out.rec_attrs.apply(set, clear);
        } else if let Some(p) = propagation_option(opt) {
            out.propagation.push(p);
        } else if opt == "idmap" {
            out.idmap = Some(false);
        } else if opt == "ridmap" {
            out.idmap = Some(true);
        } else if opt == "tmpcopyup" || opt.is_empty() {
            // crun's tmpcopyup is an extension husk does not implement; ignoring it leaves an
            // empty tmpfs, which is what runc does with it too.
        } else {
            data.push(opt);
        }
    }
    out.data = data.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn proc_like() {
        let o = parse(Some("proc"), &opts(&["nosuid", "noexec", "nodev"]));
        assert_eq!(o.flags, ms::NOSUID | ms::NOEXEC | ms::NODEV);
        assert!(o.data.is_empty());
        assert!(!o.is_bind());
    }

    #[test]
    fn tmpfs_data_kept_in_order() {
        let o = parse(
            Some("tmpfs"),
            &opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
        );
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.flags, ms::NOSUID | ms::STRICTATIME);
    }

    #[test]
    fn bind_ro_becomes_attr() {
        let o = parse(None, &opts(&["rbind", "ro", "nosuid"]));
        assert!(o.is_bind());
        assert_eq!(o.flags & ms::REC, ms::REC);
        assert_eq!(o.attrs.set, attr::RDONLY | attr::NOSUID);
        assert!(o.rec_attrs.is_empty());
    }

    #[test]
    fn type_bind_implies_bind() {
        assert!(parse(Some("bind"), &[]).is_bind());
    }

    #[test]
    fn later_option_wins() {
        let o = parse(None, &opts(&["bind", "ro", "rw"]));
        assert_eq!(o.attrs.set & attr::RDONLY, 0);
        assert_eq!(o.attrs.clear & attr::RDONLY, attr::RDONLY);
        assert_eq!(o.flags & ms::RDONLY, 0);
    }

    #[test]
    fn recursive_and_propagation() {
        let o = parse(
            None,
            &opts(&["rbind", "rro", "rnosuid", "rprivate", "shared"]),
        );
        assert_eq!(o.rec_attrs.set, attr::RDONLY | attr::NOSUID);
        assert_eq!(o.propagation, vec![ms::PRIVATE | ms::REC, ms::SHARED]);
    }

    #[test]
    fn atime_modes_clear_the_mask() {
        let o = parse(None, &opts(&["bind", "noatime"]));
        assert_eq!(o.attrs.set, attr::NOATIME);
        assert_eq!(o.attrs.clear, attr::ATIME_MASK);
    }

    #[test]
    fn known_options_are_all_understood() {
        for o in KNOWN_OPTIONS {
            assert!(
                flag_option(o).is_some()
                    || recursive_option(o).is_some()
                    || propagation_option(o).is_some(),
                "{o}"
            );
            assert!(parse(None, &opts(&[o])).data.is_empty(), "{o}");
        }
    }

    #[test]
    fn idmap() {
        assert_eq!(parse(None, &opts(&["bind", "ridmap"])).idmap, Some(true));
    }
}
