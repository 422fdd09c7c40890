//! Unpacking a layer tar into an empty directory. The tar is hostile: every path is taken apart
//! into components (`..` and absolute paths refused), every parent is opened by fd with
//! RESOLVE_IN_ROOT so a symlink an earlier entry made can only lead inside the layer, the last
//! component is created with O_EXCL/O_NOFOLLOW (an existing entry is unlinked first, never
//! followed), hard links join two entries of this layer only, and whiteouts become overlayfs'
//! own (a 0/0 character device for `.wh.NAME`, `trusted.overlay.opaque=y` for `.wh..wh..opq`).
//! A regular file's capabilities (PAX `SCHILY.xattr.security.capability`) are kept.
//!
//! An ordinary user's layers are unpacked as root of a user namespace mapped as its containers'
//! (husk_runtime::mapped): owners land shifted into the user's /etc/subuid range, the opaque mark
//! is `user.overlay.opaque` (what overlayfs reads with `userxattr`), and 0/0 whiteouts need no
//! privilege (Linux >= 5.8). See `Shift` for what such a map cannot hold.

use husk_runtime::Error;
use husk_sys::fs::{self as sfs, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

const RESOLVE: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// How this process can set owners, from its user namespace's uid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shift {
    /// The initial user namespace (root's store): owners as the tar says.
    Host,
    /// A map with the user's ranges: owners as the tar says, shifted by the map; an owner beyond
    /// the map is an error naming it.
    Ranges,
    /// Only the user's own id (no /etc/subuid range): files of other owners cannot exist, so
    /// they stay the user's (root in the container), as podman's `ignore_chown_errors`; device
    /// nodes, which only the initial namespace may make, are left out as well.
    SingleId,
}

fn shift_of(uid_map: &str) -> Shift {
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    match lines.as_slice() {
        [l] if l[..] == ["0", "0", "4294967295"] => Shift::Host,
        [l] if l.get(2) == Some(&"1") => Shift::SingleId,
        _ => Shift::Ranges,
    }
}

fn shift() -> Shift {
    static SHIFT: std::sync::OnceLock<Shift> = std::sync::OnceLock::new();
    *SHIFT.get_or_init(|| {
        shift_of(&std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default())
    })
}

/// The xattr that marks a directory opaque for the overlayfs that will mount it.
fn opaque_xattr() -> &'static std::ffi::CStr {
    match shift() {
        Shift::Host => c"trusted.overlay.opaque",
        _ => c"user.overlay.opaque",
    }
}

/// What one layer held, for `husk images`' SIZE.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
}

/// Unpacks the tar stream `r` into the directory `dir` (which must exist and be empty).
pub fn unpack(r: impl Read, dir: &Path) -> Result<Stats, Error> {
    let root = sfs::openat(None, dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(Error::io("open layer directory", dir))?;
    let mut stats = Stats::default();
    // The last entry's parent, reused while entries share it (a layer lists a directory's files
    // in a row): each entry changes only children of its parent, never a directory on the
    // parent's path, so the fd still names what resolving the path again would. An entry with
    // another parent replaces it, resolved afresh.
    let mut last: Option<(PathBuf, OwnedFd)> = None;
    let mut ar = tar::Archive::new(r);
    let entries = ar
        .entries()
        .map_err(|e| Error::Msg(format!("read layer tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Msg(format!("read layer tar entry: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel =
            clean(&raw).map_err(|why| Error::Msg(format!("layer entry \"{shown}\": {why}")))?;
        let at = EntryAt {
            dir,
            rel: &rel,
            shown: &shown,
        };
        stats.entries += 1;
        let Some(name) = rel.file_name().map(PathBuf::from) else {
            continue; // "./": the layer's root itself keeps the store's mode.
        };
        let prel = rel.parent().unwrap_or(Path::new(""));
        if last.as_ref().is_none_or(|(p, _)| p != prel) {
            let fd =
                open_parent(root.as_fd(), prel).map_err(at.io_err("open parent of layer entry"))?;
            last = Some((prel.to_path_buf(), fd));
        }
        let parent = last.as_ref().map(|(_, fd)| fd).expect("set above");
        if mark_whiteout(parent.as_fd(), &name, &at)? {
            continue;
        }
        stats.bytes += create_entry(&mut entry, root.as_fd(), parent.as_fd(), &name, &at)?;
    }
    Ok(stats)
}

/// The file capabilities (`setcap`'s) a PAX record carries, as docker and GNU tar write them.
/// No other xattr is taken from a layer: `trusted.overlay.*` ones would forge overlayfs'
/// whiteouts and redirects, and the rest are not the image's to set on the host's files.
fn file_capabilities<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<Vec<u8>> {
    let pax = entry.pax_extensions().ok()??;
    pax.filter_map(Result::ok)
        .find(|e| e.key_bytes() == b"SCHILY.xattr.security.capability")
        .map(|e| e.value_bytes().to_vec())
}

/// Where one tar entry goes, for its error messages.
struct EntryAt<'a> {
    dir: &'a Path,
    rel: &'a Path,
    shown: &'a str,
}

impl EntryAt<'_> {
    fn io_err(&self, step: &'static str) -> impl FnOnce(io::Error) -> Error + use<> {
        let p = self.dir.join(self.rel);
        move |e: io::Error| Error::Io {
            step,
            path: p,
            source: e,
        }
    }
}

/// Whether the entry `name` was one of overlayfs' markers (an opaque directory or a whiteout),
/// which is then made in `parent` instead of an entry of its own.
fn mark_whiteout(parent: BorrowedFd<'_>, name: &Path, at: &EntryAt<'_>) -> Result<bool, Error> {
    let shown = at.shown;
    let io_err = |step| at.io_err(step);
    let name_str = name.to_string_lossy();
    if name_str == OPAQUE {
        sfs::fsetxattr(parent.as_fd(), opaque_xattr(), b"y")
            .map_err(io_err("mark opaque directory"))?;
        return Ok(true);
    }
    if let Some(hidden) = name_str.strip_prefix(WHITEOUT) {
        let hidden = Path::new(hidden);
        if hidden.as_os_str().is_empty() || hidden == Path::new("..") || hidden == Path::new(".") {
            return Err(Error::Msg(format!(
                "layer entry \"{shown}\": whiteout of nothing"
            )));
        }
        remove_existing(parent.as_fd(), hidden).map_err(io_err("replace whiteout target"))?;
        sfs::mknodat(parent.as_fd(), hidden, libc::S_IFCHR, 0, 0)
            .map_err(io_err("create whiteout"))?;
        return Ok(true);
    }
    Ok(false)
}

/// Creates the entry `name` in `parent` as its tar header says (an existing entry of that name
/// is replaced, a directory kept); returns the bytes of file contents written.
fn create_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    name: &Path,
    at: &EntryAt<'_>,
) -> Result<u64, Error> {
    let shown = at.shown;
    let io_err = |step| at.io_err(step);
    let mut bytes = 0;
    let caps = file_capabilities(entry);
    let h = entry.header();
    let mode = h.mode().unwrap_or(0o644) & 0o7777;
    let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
    let mtime = h.mtime().unwrap_or(0) as i64;
    let kind = h.entry_type();
    use tar::EntryType as T;
    match kind {
        T::Regular | T::Continuous | T::GNUSparse => {
            let f = fresh(parent, name, || {
                sfs::openat(
                    Some(parent),
                    name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )
            })
            .map_err(io_err("create file"))?;
            let mut file = std::fs::File::from(f);
            bytes = copy(entry, &mut file).map_err(io_err("write file"))?;
            owner_mode(file.as_fd(), uid, gid, Some(mode)).map_err(io_err("set owner and mode"))?;
            // After the chown, which would clear them.
            if let Some(c) = &caps {
                sfs::fsetxattr(file.as_fd(), c"security.capability", c)
                    .map_err(io_err("set file capabilities"))?;
            }
            sfs::futimens(file.as_fd(), mtime, 0).map_err(io_err("set mtime"))?;
        }
        T::Directory => {
            // A directory already there stays (its entries with it); anything else is replaced.
            match sfs::mkdirat(parent, name, 0o700) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !is_dir_at(parent, name) => {
                    remove_existing(parent, name).map_err(io_err("replace layer entry"))?;
                    sfs::mkdirat(parent, name, 0o700).map_err(io_err("create directory"))?;
                }
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                    return Err(io_err("create directory")(e));
                }
                _ => {}
            }
            let d = sfs::openat(
                Some(parent.as_fd()),
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(io_err("open directory"))?;
            owner_mode(d.as_fd(), uid, gid, Some(mode)).map_err(io_err("set owner and mode"))?;
        }
        T::Symlink => {
            let target = entry.link_name_bytes().ok_or_else(|| {
                Error::Msg(format!("layer entry \"{shown}\": symlink without a target"))
            })?;
            use std::os::unix::ffi::OsStrExt;
            // The target is only text: nothing here ever follows it.
            let target = std::ffi::OsStr::from_bytes(&target).to_owned();
            fresh(parent, name, || {
                sfs::symlinkat(Path::new(&target), parent, name)
            })
            .map_err(io_err("create symlink"))?;
            let l = sfs::openat(
                Some(parent.as_fd()),
                name,
                libc::O_PATH | libc::O_NOFOLLOW,
                0,
            )
            .map_err(io_err("open symlink"))?;
            owner_mode(l.as_fd(), uid, gid, None).map_err(io_err("set symlink owner"))?;
        }
        T::Link => {
            let target = entry.link_name_bytes();
            link_within_layer(target.as_deref(), root, parent, name, at)?;
        }
        T::Char | T::Block if shift() != Shift::Host => {
            // mknod of a device needs CAP_MKNOD in the initial user namespace; the runtime
            // gives a container its /dev, so the image's nodes are not needed there.
        }
        T::Char | T::Block | T::Fifo => {
            let t = match kind {
                T::Char => libc::S_IFCHR,
                T::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            let (major, minor) = (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            fresh(parent, name, || {
                sfs::mknodat(parent, name, t | (mode & 0o777), major, minor)
            })
            .map_err(io_err("create device node"))?;
            let n = sfs::openat(
                Some(parent.as_fd()),
                name,
                libc::O_PATH | libc::O_NOFOLLOW,
                0,
            )
            .map_err(io_err("open device node"))?;
            owner_mode(n.as_fd(), uid, gid, None).map_err(io_err("set device node owner"))?;
        }
        other => {
            return Err(Error::Msg(format!(
                "layer entry \"{shown}\": unsupported tar entry type {:?}",
                other.as_byte() as char
            )));
        }
    }
    Ok(bytes)
}

/// Makes `name` in `parent` a hard link to the entry `target` names, which must be one of this
/// layer's own.
fn link_within_layer(
    target: Option<&[u8]>,
    root: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    name: &Path,
    at: &EntryAt<'_>,
) -> Result<(), Error> {
    let shown = at.shown;
    let io_err = |step| at.io_err(step);
    let target = target.ok_or_else(|| {
        Error::Msg(format!(
            "layer entry \"{shown}\": hard link without a target"
        ))
    })?;
    let trel = clean(target).map_err(|why| {
        Error::Msg(format!(
            "layer entry \"{shown}\": hard link target \"{}\": {why}",
            String::from_utf8_lossy(target)
        ))
    })?;
    let Some(tname) = trel.file_name() else {
        return Err(Error::Msg(format!(
            "layer entry \"{shown}\": hard link to the layer's root"
        )));
    };
    // Resolved inside this layer: a link can only join two of its own entries.
    let tparent = open_parent_existing(root.as_fd(), trel.parent().unwrap_or(Path::new("")))
        .map_err(io_err("open hard link target's directory"))?;
    fresh(parent, name, || {
        sfs::linkat(tparent.as_fd(), Path::new(tname), parent, name)
    })
    .map_err(io_err("create hard link"))?;
    Ok(())
}

/// A path the image names (a layer entry, an archive member, a VOLUME) as components inside its
/// root: a leading `/` and `.` components dropped, `..` refused (the image names its own files;
/// docker would clamp it, husk will not guess). The error is the reason, for the caller to frame.
pub(crate) fn clean(raw: &[u8]) -> Result<PathBuf, &'static str> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = PathBuf::new();
    for c in Path::new(std::ffi::OsStr::from_bytes(raw)).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err("\"..\" leads out of the root"),
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return Err("not a Unix path"),
        }
    }
    if raw.contains(&0) {
        return Err("NUL in the path");
    }
    Ok(out)
}

/// The directory `rel` inside the layer, created (0755, like tar) where missing; each step
/// resolved from the layer's root with RESOLVE_IN_ROOT.
fn open_parent(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    match open_parent_existing(root, rel) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        r => return r,
    }
    let mut prefix = PathBuf::new();
    let mut cur = sfs::openat2(
        root,
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        RESOLVE,
    )?;
    for c in rel.components() {
        prefix.push(c);
        cur = match sfs::openat2(
            root,
            &prefix,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            RESOLVE,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match sfs::mkdirat(cur.as_fd(), Path::new(c.as_os_str()), 0o755) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                    _ => {}
                }
                sfs::openat2(
                    root,
                    &prefix,
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    0,
                    RESOLVE,
                )?
            }
            r => r?,
        };
    }
    Ok(cur)
}

fn open_parent_existing(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    sfs::openat2(root, rel, libc::O_RDONLY | libc::O_DIRECTORY, 0, RESOLVE)
}

fn is_dir_at(parent: BorrowedFd<'_>, name: &Path) -> bool {
    sfs::openat(Some(parent), name, libc::O_PATH | libc::O_NOFOLLOW, 0)
        .and_then(|fd| sfs::fstat(fd.as_fd()))
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// A file's contents in writes of up to 256 KiB (io::copy's 8 KiB make a layer of large files
/// tens of thousands of write calls), from one buffer per thread.
fn copy(r: &mut impl Read, w: &mut std::fs::File) -> io::Result<u64> {
    use std::io::Write;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.resize(256 << 10, 0);
        let mut n = 0;
        loop {
            match r.read(buf) {
                Ok(0) => return Ok(n),
                Ok(k) => {
                    w.write_all(&buf[..k])?;
                    n += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// `make` creates `name` in `parent` exclusively; where an entry of that name exists (a later
/// tar entry replacing an earlier one) it is removed and `make` runs again. Trying first spares
/// the usual, fresh name a syscall.
fn fresh<T>(
    parent: BorrowedFd<'_>,
    name: &Path,
    make: impl Fn() -> io::Result<T>,
) -> io::Result<T> {
    match make() {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            remove_existing(parent, name)?;
            make()
        }
        r => r,
    }
}

/// Removes `name` in `parent` if present (a later layer entry replaces an earlier one); a
/// directory only when empty, since a tar replacing a populated directory is not a layer.
fn remove_existing(parent: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    match sfs::unlinkat(parent, name, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
            sfs::unlinkat(parent, name, libc::AT_REMOVEDIR)
        }
        Err(e) => Err(e),
    }
}

/// chown first: it clears setuid/setgid bits, which the image may legitimately carry.
fn owner_mode(fd: BorrowedFd<'_>, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
    match sfs::fchown(fd, uid, gid) {
        // An id the namespace does not map (see `Shift`).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && shift() != Shift::Host => {
            if shift() == Shift::Ranges {
                return Err(io::Error::other(format!(
                    "owner {uid}:{gid} is beyond the ids /etc/subuid and /etc/subgid grant this user (EINVAL): grant a larger range (65536 ids from 1 are what images use)"
                )));
            }
        }
        r => r?,
    }
    if let Some(m) = mode {
        sfs::fchmod(fd, m)?;
    }
    Ok(())
}

/// Creates the absolute directory `path` inside `root` (by fd, RESOLVE_IN_ROOT) if missing:
/// docker creates an image's WorkingDir that no layer holds.
pub fn ensure_dir(root: &Path, path: &str) -> Result<(), Error> {
    let rel = clean(path.as_bytes())
        .map_err(|why| Error::Msg(format!("WorkingDir \"{path}\": {why}")))?;
    let r = sfs::openat(None, root, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(Error::io("open container root", root))?;
    open_parent(r.as_fd(), &rel).map_err(Error::io("create working directory", root.join(&rel)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Shift, shift_of};

    #[test]
    fn the_uid_map_says_how_owners_are_set() {
        assert_eq!(shift_of("         0          0 4294967295\n"), Shift::Host);
        assert_eq!(
            shift_of("         0       1000          1\n"),
            Shift::SingleId
        );
        assert_eq!(shift_of("0 1000 1\n1 300000 65536\n"), Shift::Ranges);
        // An unreadable map is not taken for the host's.
        assert_eq!(shift_of(""), Shift::Ranges);
    }
}
