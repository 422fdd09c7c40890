//! What create and exec share, on both sides of the clone: the child's error type (`Step`:
//! text already worded "STEP PATH: ERRNO", sent to the parent as data), opening a path inside
//! the hostile root, writing the container's procfs, and the parent's console socket and pid
//! file. Here so `launch`, `init`, `exec` and the modules they use depend on it, not on each other.

use crate::Error;
use husk_sys::fs as sfs;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// A failed step, already worded for the user: "STEP PATH: ERRNO".
pub(crate) type Step<T> = Result<T, String>;

pub(crate) fn fail(step: &str, path: impl AsRef<Path>, e: io::Error) -> String {
    format!(
        "{step} {}: {}",
        path.as_ref().display(),
        crate::errno_text(&e)
    )
}

/// How every path inside the container's root is resolved: as if the root were `/`, no magic
/// links (/proc/self/fd/N) followed.
pub(crate) const IN_ROOT: u64 = sfs::RESOLVE_IN_ROOT | sfs::RESOLVE_NO_MAGICLINKS;

/// An O_PATH fd (plus `flags`) of `rel` inside `root`; the empty path is the root itself.
pub(crate) fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    sfs::openat2(root, rel, libc::O_PATH | flags, 0, IN_ROOT)
}

/// Writes a file of the container's procfs through a private procfs instance (`procfs`: see
/// `husk_sys::mount::private_procfs`), never through the /proc the image or a shared mount could
/// have replaced; the target must still be on procfs (a hostile image cannot have us write
/// through something it planted; CVE-2019-16884 class).
pub(crate) fn write_proc(procfs: BorrowedFd<'_>, rel: &str, value: &str) -> Step<()> {
    let path = Path::new("/proc").join(rel);
    let fd = sfs::openat2(
        procfs,
        Path::new(rel),
        libc::O_WRONLY,
        0,
        sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_MAGICLINKS | sfs::RESOLVE_NO_XDEV,
    )
    .map_err(|e| fail("open", &path, e))?;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    if sfs::fstatfs_magic(fd.as_fd()).map_err(|e| fail("statfs", &path, e))? != PROC_SUPER_MAGIC {
        return Err(format!("write {}: not on procfs", path.display()));
    }
    fs::File::from(fd)
        .write_all(value.as_bytes())
        .map_err(|e| fail("write", &path, e))
}

/// The private procfs, made only when something must be written there.
pub(crate) fn procfs_handle() -> Step<OwnedFd> {
    husk_sys::mount::private_procfs().map_err(|e| fail("mount a private procfs", "proc", e))
}

/// Connects to the console socket on the host, before the clone: inside the container its path
/// would resolve in the container's mount namespace.
pub(crate) fn connect_console(path: &Path) -> Result<OwnedFd, Error> {
    std::os::unix::net::UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(Error::io("connect console socket", path))
}

/// Written atomically: callers poll for the file and read it at once.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let tmp = path.with_extension("husk-tmp");
    fs::write(&tmp, pid.to_string()).map_err(Error::io("write pid file", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("write pid file", path))
}
