//! An image's VOLUMEs as docker makes them: each a fresh anonymous volume, seeded with what the
//! image holds at that path (owners, modes, symlinks, device nodes and fifos kept), bound over
//! it. The volumes live in the container's directory (`containers/<id>/volumes/<name>`) and go
//! with it: at the end of a foreground run (docker's `--rm`), at `rm` of a detached one. husk
//! has no volume verbs to find a dangling volume by, so none is left behind.
//!
//! An ordinary user's volumes (in its store, `$XDG_DATA_HOME/husk`) are seeded by the child that
//! mounts its root (overlay::prepare_detached), root of a user namespace mapped as the container's:
//! only there can the copies get the image's owners, shifted into the user's ranges as its
//! layers' are. Their files then belong to ids the user itself cannot remove: the overlay module
//! removes them through such a namespace too.

use husk_runtime::Error;
use husk_sys::fs::{self as sfs, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};
use husk_sys::mount::fd_path;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const DIR: i32 = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// A volume under `dir` for each of the image's VOLUMEs `paths`, seeded from the container's
/// (still unused) root seen at `view`; returns the directories to bind there, in order.
pub fn create(view: &Path, dir: &Path, paths: &[String]) -> Result<Vec<PathBuf>, Error> {
    if paths.is_empty() {
        return Ok(vec![]);
    }
    std::fs::create_dir_all(dir).map_err(Error::io("create volumes directory", dir))?;
    paths.iter().map(|p| create_one(view, dir, p)).collect()
}

/// One volume under `dir` for the VOLUME `path` of the root seen at `view`.
fn create_one(view: &Path, dir: &Path, path: &str) -> Result<PathBuf, Error> {
    let rel = inside(path)?;
    let name =
        husk_sys::random::hex::<32>().map_err(Error::io("read", husk_sys::random::SOURCE))?;
    let vol = dir.join(name);
    std::fs::create_dir(&vol).map_err(Error::io("create volume", &vol))?;
    let r = sfs::openat(None, view, DIR, 0).map_err(Error::io("open", view))?;
    let src = match sfs::openat2(
        r.as_fd(),
        &rel,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        // Nothing to seed: the runtime makes the mount point.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(vol),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::Msg(format!(
                "image VOLUME {path}: not a directory in the image ({})",
                husk_runtime::errno_text(&e)
            )));
        }
        r => r.map_err(Error::io("open image VOLUME", Path::new(path)))?,
    };
    let dst = sfs::openat(None, &vol, DIR, 0).map_err(Error::io("open", &vol))?;
    copy_dir(src.as_fd(), dst.as_fd())
        .and_then(|()| copy_owner_mode(src.as_fd(), dst.as_fd()))
        .map_err(|e| Error::io("seed volume from the image", Path::new(path))(e))?;
    Ok(vol)
}

/// The volume's name when `source` (a bind mount's) is an anonymous volume made here.
pub fn name_of(source: &Path) -> Option<String> {
    let parent = source.parent()?;
    let name = source.file_name()?.to_str()?;
    (parent.file_name()? == "volumes"
        && parent.parent()?.parent()?.file_name()? == "containers"
        && name.len() == 64
        && name.bytes().all(|b| b.is_ascii_hexdigit()))
    .then(|| name.to_string())
}

/// The image's path as components inside the root; not the root itself.
fn inside(path: &str) -> Result<PathBuf, Error> {
    let out = crate::unpack::clean(path.as_bytes())
        .map_err(|why| Error::Msg(format!("image VOLUME \"{path}\": {why}")))?;
    if out.as_os_str().is_empty() {
        return Err(Error::Msg(format!(
            "image VOLUME \"{path}\": a volume cannot be the root"
        )));
    }
    Ok(out)
}

/// Owner, mode and modification time (docker's copy keeps them too); a directory's after its
/// entries are copied, which would move its time again.
fn copy_owner_mode(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let st = sfs::fstat(src)?;
    // chown first: it clears setuid/setgid bits the image may carry.
    sfs::fchown(dst, st.st_uid, st.st_gid)?;
    sfs::fchmod(dst, st.st_mode & 0o7777)?;
    sfs::futimens(dst, st.st_mtime, st.st_mtime_nsec)
}

/// Copies the tree under `src` into `dst` entry by entry, each opened with O_NOFOLLOW relative
/// to its directory's fd: a symlink in the image is copied as a link, never followed.
fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    for e in std::fs::read_dir(fd_path(src))? {
        let name = PathBuf::from(e?.file_name());
        let at = sfs::openat(Some(src), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let st = sfs::fstat(at.as_fd())?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                sfs::mkdirat(dst, &name, 0o700)?;
                let s = sfs::openat(Some(src), &name, DIR, 0)?;
                let d = sfs::openat(Some(dst), &name, DIR, 0)?;
                copy_dir(s.as_fd(), d.as_fd())?;
                copy_owner_mode(s.as_fd(), d.as_fd())?;
            }
            libc::S_IFREG => {
                let s = sfs::openat(Some(src), &name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
                let d: OwnedFd = sfs::openat(
                    Some(dst),
                    &name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )?;
                let (mut from, mut to) = (std::fs::File::from(s), std::fs::File::from(d));
                io::copy(&mut from, &mut to)?;
                copy_owner_mode(from.as_fd(), to.as_fd())?;
            }
            libc::S_IFLNK => {
                let target = sfs::readlinkat(Some(src), &name)?;
                sfs::symlinkat(&target, dst, &name)?;
                std::os::unix::fs::lchown(
                    Path::new(&fd_path(dst)).join(&name),
                    Some(st.st_uid),
                    Some(st.st_gid),
                )?;
            }
            libc::S_IFIFO | libc::S_IFCHR | libc::S_IFBLK => {
                let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                sfs::mknodat(dst, &name, st.st_mode, major, minor)?;
                let d = sfs::openat(Some(dst), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
                // fchown/fchmod need a real fd; the O_PATH one is reached through /proc.
                let p = fd_path(d.as_fd());
                std::os::unix::fs::chown(&p, Some(st.st_uid), Some(st.st_gid))?;
                std::fs::set_permissions(
                    &p,
                    std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
                )?;
            }
            // A socket is a live endpoint, not content: docker's copy skips it too.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let n = "a".repeat(64);
        let src = PathBuf::from(format!("/var/lib/husk/containers/ID/volumes/{n}"));
        assert_eq!(name_of(&src), Some(n));
        assert_eq!(name_of(Path::new("/srv/data")), None);
        assert_eq!(inside("/var/lib/x/").unwrap(), PathBuf::from("var/lib/x"));
        assert!(inside("/").is_err() && inside("/a\0b").is_err());
        let e = inside("/a/../b").unwrap_err().to_string();
        assert!(e.contains("\"..\" leads out of the root"), "{e}");
    }
}
