//! The container's filesystem, run in the child inside its new mount namespace. The rootfs is
//! hostile: every path in it is resolved by fd with RESOLVE_IN_ROOT (a symlink is followed as if
//! the rootfs were `/`, so it can never lead out), and every mount targets the resolved fd
//! through /proc/self/fd, so nothing can swap the target after we checked it.

use crate::shared::{IN_ROOT, Step, fail, open_in_root};
use husk_spec::mountopt::{attr, ms};
use husk_spec::plan::{DevKind, DeviceOp, MountOp, Plan};
use husk_sys::fs as sfs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// `mkdir -p` inside the root; returns an O_PATH fd of the directory.
pub(crate) fn mkdir_all(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    mkdir_all_depth(root, rel, 0)
}

/// Symlinks followed while creating one path, as the kernel's MAXSYMLINKS.
const MAX_LINKS: u32 = 40;

fn mkdir_all_depth(root: BorrowedFd<'_>, rel: &Path, links: u32) -> io::Result<OwnedFd> {
    match open_in_root(root, rel, libc::O_DIRECTORY) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        r => return r,
    }
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    let dir = mkdir_all_depth(root, parent, links)?;
    // mkdirat never follows a symlink in its last component, and `dir` is already inside.
    match sfs::mkdirat(dir.as_fd(), Path::new(name), 0o755) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(e),
    }
    // Usually the directory just made: opened right below `dir`, following nothing. Anything
    // else there (a symlink the image or a racing process put) is resolved in the root below.
    if let Ok(fd) = sfs::openat2(
        dir.as_fd(),
        Path::new(name),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_SYMLINKS,
    ) {
        return Ok(fd);
    }
    match open_in_root(root, rel, libc::O_DIRECTORY) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // `name` is a dangling symlink: create what it points to, resolved inside the root
            // (as runc's MkdirAllInRoot does). Before, this was an error, so an image with
            // `dir -> /../../host/path` could not take a mount at `dir` although the mount
            // would land inside the rootfs anyway.
            let target = follow_in_root(root, dir.as_fd(), parent, Path::new(name), links)?;
            mkdir_all_depth(root, &target, links + 1)
        }
        r => r,
    }
}

/// The root-relative path a symlink `dir/name` points to (lexically cleaned, so it cannot climb
/// above the root; the result is still only ever opened with RESOLVE_IN_ROOT).
fn follow_in_root(
    root: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    dir_rel: &Path,
    name: &Path,
    links: u32,
) -> io::Result<PathBuf> {
    if links >= MAX_LINKS {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    // Not a symlink (EINVAL): the ENOENT stands.
    let target =
        sfs::readlinkat(Some(dir), name).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    if target.is_absolute() {
        return Ok(husk_spec::plan::clean_in_root(&target.to_string_lossy()));
    }
    // Relative: from the directory holding the link, by its real path inside the root (the
    // path as asked if that directory is in a bind mount from elsewhere).
    let real = |fd: BorrowedFd<'_>| std::fs::read_link(husk_sys::mount::fd_path(fd));
    let (dir_real, root_real) = (real(dir)?, real(root)?);
    let base = dir_real.strip_prefix(&root_real).unwrap_or(dir_rel);
    Ok(husk_spec::plan::clean_in_root(
        &base.join(target).to_string_lossy(),
    ))
}

/// Makes sure a file exists at `rel` (for binding a file source onto it).
fn create_file(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    create_file_depth(root, rel, 0)
}

fn create_file_depth(root: BorrowedFd<'_>, rel: &Path, links: u32) -> io::Result<OwnedFd> {
    match open_in_root(root, rel, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        r => return r,
    }
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    let pfd = mkdir_all(root, parent)?;
    // Never follows a symlink; if one raced in, the in-root open below still stays inside.
    let _ = sfs::openat2(
        pfd.as_fd(),
        Path::new(name),
        libc::O_CREAT | libc::O_RDONLY,
        0o644,
        sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_SYMLINKS,
    );
    match open_in_root(root, rel, 0) {
        // A dangling symlink: create its target inside the root, as for directories.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let target = follow_in_root(root, pfd.as_fd(), parent, Path::new(name), links)?;
            create_file_depth(root, &target, links + 1)
        }
        r => r,
    }
}

/// The cgroup facts the child needs to build /sys/fs/cgroup.
#[derive(Clone, Default)]
pub(crate) struct CgroupView {
    pub hierarchies: Vec<husk_cgroup::Hierarchy>,
    pub dirs: Vec<PathBuf>,
    pub own_cgroup_ns: bool,
}

pub(crate) struct Rootfs<'a> {
    pub plan: &'a Plan,
    /// User namespaces for id-mapped mounts, aligned with `plan.mounts` (see `idmap`).
    pub idmaps: &'a [Option<OwnedFd>],
    /// Bind sources opened by the parent, aligned with `plan.mounts` (empty without a user
    /// namespace of the container's own).
    pub bind_sources: &'a [Option<OwnedFd>],
    pub in_userns: bool,
    pub cgroups: &'a CgroupView,
    /// Called before the first cgroup mount: init joins its cgroup and makes its cgroup
    /// namespace there (see init's `CgroupEntry`).
    pub enter_cgroup: &'a dyn Fn() -> Step<()>,
    pub root: OwnedFd,
}

/// Refuses /proc, /sys and /dev when the image made them symlinks: mounting through them would
/// put the kernel's view where the image chose.
fn refuse_symlinked_top(root: BorrowedFd<'_>, dest: &Path) -> Step<()> {
    let Some(first) = dest.components().next() else {
        return Ok(());
    };
    let first = Path::new(first.as_os_str());
    if ![Path::new("proc"), Path::new("sys"), Path::new("dev")].contains(&first) {
        return Ok(());
    }
    if let Ok(target) = sfs::readlinkat(Some(root), first) {
        return Err(format!(
            "rootfs: /{} is a symlink (to {}): refusing to mount over it",
            first.display(),
            target.display()
        ));
    }
    Ok(())
}

impl Rootfs<'_> {
    /// Opens the rootfs as a mount of its own (pivot_root needs a mount point). A root of `/`
    /// is bound onto `staging` instead: bound onto itself, it could not be reached (a lookup of
    /// `/` never crosses the mount stacked on it) and pivot_root would see the old root.
    /// A root given as a detached mount (`detached`) is attached there instead.
    pub fn prepare(
        plan: &Plan,
        staging: Option<&Path>,
        detached: Option<&OwnedFd>,
    ) -> Step<OwnedFd> {
        let applied = crate::propagation::before_bind(plan.rootfs_propagation);
        husk_sys::mount::mount(None, "/", None, applied, None)
            .map_err(|e| fail("set propagation of", "/", e))?;
        let target = staging.unwrap_or(&plan.rootfs);
        crate::propagation::make_parent_private(applied, target)?;
        if let Some(fd) = detached {
            husk_sys::mount::move_mount_to_path(fd.as_fd(), target)
                .map_err(|e| fail("attach the root's mount at", target, e))?;
        } else {
            let (r, t) = (plan.rootfs.to_string_lossy(), target.to_string_lossy());
            husk_sys::mount::mount(Some(&r), &t, None, ms::BIND | ms::REC, None)
                .map_err(|e| fail("bind rootfs", &plan.rootfs, e))?;
        }
        let root = sfs::openat(None, target, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| fail("open rootfs", target, e))?;
        if plan.rootfs_readonly_recursive {
            husk_sys::mount::mount_setattr(root.as_fd(), true, attr::RDONLY, 0, None)
                .map_err(|e| fail("make read-only (recursively)", &plan.rootfs, e))?;
        }
        Ok(root)
    }

    pub fn mount_all(&self) -> Step<()> {
        for m in &self.plan.mounts {
            refuse_symlinked_top(self.root.as_fd(), &m.dest)?;
            self.mount_one(m).map_err(|e| {
                format!(
                    "mount {} on {}: {e}",
                    m.source
                        .as_deref()
                        .map_or(m.fstype.clone(), |s| s.display().to_string()),
                    m.dest_display
                )
            })?;
        }
        if self.plan.install_init {
            self.install_init()?;
        }
        if self.plan.setup_dev {
            refuse_symlinked_top(self.root.as_fd(), Path::new("dev"))?;
            self.setup_dev()?;
        }
        Ok(())
    }

    /// The fd the parent opened for this mount's source, if it did.
    fn bind_source(&self, m: &MountOp) -> Option<&OwnedFd> {
        let i = self.plan.mounts.iter().position(|x| std::ptr::eq(x, m))?;
        self.bind_sources.get(i)?.as_ref()
    }

    fn target(&self, m: &MountOp) -> Step<OwnedFd> {
        let is_file = m.opts.is_bind()
            && match self.bind_source(m) {
                Some(fd) => sfs::fstat(fd.as_fd())
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT != libc::S_IFDIR),
                None => m
                    .source
                    .as_ref()
                    .is_some_and(|s| std::fs::metadata(s).is_ok_and(|md| !md.is_dir())),
            };
        let r = if is_file {
            create_file(self.root.as_fd(), &m.dest)
        } else {
            mkdir_all(self.root.as_fd(), &m.dest)
        };
        r.map_err(|e| fail("create mount target", Path::new("/").join(&m.dest), e))
    }

    fn mount_one(&self, m: &MountOp) -> Step<()> {
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            (self.enter_cgroup)()?;
            return self.mount_cgroup(m);
        }
        let target = self.target(m)?;
        let tpath = husk_sys::mount::fd_path(target.as_fd());
        let idmap = self
            .plan
            .mounts
            .iter()
            .position(|x| std::ptr::eq(x, m))
            .and_then(|i| self.idmaps.get(i))
            .and_then(Option::as_ref);
        if let (Some(userns), Some(src)) = (idmap, &m.source) {
            // A detached copy of the source, id-mapped, then attached on the resolved target.
            let tree = husk_sys::mount::open_tree_clone(src, m.opts.flags & ms::REC != 0)
                .map_err(|e| fail("open_tree", src, e))?;
            husk_sys::mount::mount_setattr(
                tree.as_fd(),
                m.opts.idmap == Some(true),
                husk_sys::mount::MOUNT_ATTR_IDMAP,
                0,
                Some(userns.as_fd()),
            )
            .map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                    " (the source's filesystem or this kernel cannot id-map mounts)"
                } else {
                    ""
                };
                format!("{}{hint}", fail("id-map", src, e))
            })?;
            husk_sys::mount::move_mount_to_fd(tree.as_fd(), target.as_fd())
                .map_err(|e| fail("move_mount", src, e))?;
        } else if let Some(tree) = self.bind_source(m) {
            husk_sys::mount::move_mount_to_fd(tree.as_fd(), target.as_fd()).map_err(|e| {
                fail(
                    "move_mount",
                    m.source.as_deref().unwrap_or(Path::new("")),
                    e,
                )
            })?;
        } else if m.opts.is_bind() {
            let src = m
                .source
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            husk_sys::mount::mount(
                Some(&src),
                &tpath,
                None,
                ms::BIND | (m.opts.flags & ms::REC),
                None,
            )
            .map_err(|e| fail("bind", &src, e))?;
        } else {
            let flags = m.opts.flags & !(ms::BIND | ms::REC | ms::REMOUNT);
            let src = m
                .source
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| m.fstype.clone());
            let data = (!m.opts.data.is_empty()).then_some(m.opts.data.as_str());
            match husk_sys::mount::mount(Some(&src), &tpath, Some(&m.fstype), flags, data) {
                // In a user namespace that does not own the network namespace, sysfs cannot be
                // mounted; runc binds the host's /sys instead, and so do we.
                Err(e)
                    if m.fstype == "sysfs"
                        && self.in_userns
                        && e.raw_os_error() == Some(libc::EPERM) =>
                {
                    husk_sys::mount::mount(Some("/sys"), &tpath, None, ms::BIND | ms::REC, None)
                        .map_err(|e| fail("bind", "/sys", e))?;
                    self.set_attrs(
                        &m.dest,
                        true,
                        attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
                        0,
                    )?;
                }
                r => r.map_err(|e| fail("mount", &m.fstype, e))?,
            }
            if let Some(label) = self.plan.mount_label.as_deref()
                && husk_spec::lsm::labelled_by_xattr(&m.fstype)
            {
                self.label_root(m, label)?;
            }
        }
        if m.opts.is_bind() && !m.opts.attrs.is_empty() {
            self.set_attrs(&m.dest, false, m.opts.attrs.set, m.opts.attrs.clear)?;
        }
        if !m.opts.rec_attrs.is_empty() {
            self.set_attrs(&m.dest, true, m.opts.rec_attrs.set, m.opts.rec_attrs.clear)?;
        }
        if !m.opts.propagation.is_empty() {
            let top = open_in_root(self.root.as_fd(), &m.dest, 0)
                .map_err(|e| fail("reopen", &m.dest_display, e))?;
            for p in &m.opts.propagation {
                husk_sys::mount::mount(
                    None,
                    &husk_sys::mount::fd_path(top.as_fd()),
                    None,
                    *p,
                    None,
                )
                .map_err(|e| fail("set propagation of", &m.dest_display, e))?;
            }
        }
        Ok(())
    }

    /// `linux.mountLabel` on the root of the mount just made at `m.dest`, as an xattr.
    fn label_root(&self, m: &MountOp, label: &str) -> Step<()> {
        let what = |step: &str| format!("{step} (linux.mountLabel)");
        let fd = sfs::openat2(
            self.root.as_fd(),
            &m.dest,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            IN_ROOT,
        )
        .map_err(|e| fail(&what("open"), &m.dest_display, e))?;
        sfs::fsetxattr(fd.as_fd(), c"security.selinux", label.as_bytes())
            .map_err(|e| fail(&what("set security.selinux of"), &m.dest_display, e))
    }

    /// Applies mount attributes to the mount now at `dest` (reopened, so we hold the new mount).
    fn set_attrs(&self, dest: &Path, recursive: bool, set: u64, clear: u64) -> Step<()> {
        let top = open_in_root(self.root.as_fd(), dest, 0)
            .map_err(|e| fail("reopen", Path::new("/").join(dest), e))?;
        husk_sys::mount::mount_setattr(top.as_fd(), recursive, set, clear, None)
            .map_err(|e| fail("mount_setattr", Path::new("/").join(dest), e))
    }

    /// `cgroup`/`cgroup2` mounts: on a v2 host one cgroup2 mount; on v1 and hybrid a tmpfs with
    /// one directory per hierarchy, each a fresh cgroup mount inside a cgroup namespace or else a
    /// bind of the container's own cgroup (so the container never sees its siblings).
    fn mount_cgroup(&self, m: &MountOp) -> Step<()> {
        let target = mkdir_all(self.root.as_fd(), &m.dest)
            .map_err(|e| fail("create mount target", &m.dest_display, e))?;
        let tpath = husk_sys::mount::fd_path(target.as_fd());
        let flags = m.opts.flags & (ms::NOSUID | ms::NODEV | ms::NOEXEC | ms::RELATIME);
        let all_v2 = self.cgroups.hierarchies.iter().all(|h| h.v2);
        if all_v2 || m.fstype == "cgroup2" {
            let r = if self.cgroups.own_cgroup_ns {
                husk_sys::mount::mount(Some("cgroup2"), &tpath, Some("cgroup2"), flags, None)
            } else {
                let dir = self
                    .cgroups
                    .hierarchies
                    .iter()
                    .zip(&self.cgroups.dirs)
                    .find(|(h, _)| h.v2)
                    .map(|(_, d)| d.to_string_lossy().into_owned());
                match dir {
                    Some(d) => husk_sys::mount::mount(Some(&d), &tpath, None, ms::BIND, None),
                    None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
                }
            };
            r.map_err(|e| fail("mount", "cgroup2", e))?;
        } else {
            husk_sys::mount::mount(
                Some("tmpfs"),
                &tpath,
                Some("tmpfs"),
                flags,
                Some("mode=755"),
            )
            .map_err(|e| fail("mount", "tmpfs", e))?;
            // The tmpfs just mounted holds nothing the image made: its directories are made
            // and opened right below its root, following nothing.
            let top = open_in_root(self.root.as_fd(), &m.dest, libc::O_DIRECTORY)
                .map_err(|e| fail("open", &m.dest_display, e))?;
            for (h, dir) in self.cgroups.hierarchies.iter().zip(&self.cgroups.dirs) {
                let name = if h.v2 {
                    "unified".to_string()
                } else {
                    h.controllers.join(",").replace("name=", "")
                };
                let sub = m.dest.join(&name);
                let fd = sfs::mkdirat(top.as_fd(), Path::new(&name), 0o755)
                    .and_then(|()| {
                        sfs::openat2(
                            top.as_fd(),
                            Path::new(&name),
                            libc::O_PATH | libc::O_DIRECTORY,
                            0,
                            sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_SYMLINKS,
                        )
                    })
                    .map_err(|e| fail("create", Path::new("/").join(&sub), e))?;
                let p = husk_sys::mount::fd_path(fd.as_fd());
                let r = if self.cgroups.own_cgroup_ns {
                    if h.v2 {
                        husk_sys::mount::mount(Some("cgroup2"), &p, Some("cgroup2"), flags, None)
                    } else {
                        let opts = h.controllers.join(",");
                        husk_sys::mount::mount(
                            Some("cgroup"),
                            &p,
                            Some("cgroup"),
                            flags,
                            Some(&opts),
                        )
                    }
                } else {
                    husk_sys::mount::mount(Some(&dir.to_string_lossy()), &p, None, ms::BIND, None)
                };
                r.map_err(|e| fail("mount cgroup", Path::new("/").join(&sub), e))?;
                // Co-mounted controllers ("cpu,cpuacct") are also reached by each name, as
                // hosts and runc link them: systemd looks for /sys/fs/cgroup/cpu.
                if name.contains(',') {
                    for part in name.split(',') {
                        match sfs::symlinkat(Path::new(&name), top.as_fd(), Path::new(part)) {
                            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                                return Err(fail("symlink", m.dest.join(part), e));
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        let (mut set, mut clear) = (0, 0);
        if m.opts.flags & ms::RDONLY != 0 {
            set |= attr::RDONLY;
        }
        for (f, a) in [
            (ms::NOSUID, attr::NOSUID),
            (ms::NODEV, attr::NODEV),
            (ms::NOEXEC, attr::NOEXEC),
        ] {
            if m.opts.flags & f != 0 {
                set |= a;
            }
        }
        set |= m.opts.rec_attrs.set;
        clear |= m.opts.rec_attrs.clear;
        if set != 0 || clear != 0 {
            self.set_attrs(&m.dest, true, set, clear)?;
        }
        Ok(())
    }

    /// `--init`: a copy of husk (read through /proc/self/exe while the host's /proc is still
    /// visible) as /dev/init on the container's own /dev tmpfs. A copy, never a bind: whatever
    /// the container does to it cannot reach the host's binary (CVE-2019-5736).
    fn install_init(&self) -> Step<()> {
        let dev =
            mkdir_all(self.root.as_fd(), Path::new("dev")).map_err(|e| fail("open", "/dev", e))?;
        let dev = sfs::openat2(
            dev.as_fd(),
            Path::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            0,
        )
        .map_err(|e| fail("open", "/dev", e))?;
        let dst = sfs::openat2(
            dev.as_fd(),
            Path::new("init"),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            0o555,
            sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| fail("create", "/dev/init", e))?;
        let mut src =
            std::fs::File::open("/proc/self/exe").map_err(|e| fail("open", "/proc/self/exe", e))?;
        std::io::copy(&mut src, &mut std::fs::File::from(dst))
            .map_err(|e| fail("copy husk to", "/dev/init", e))?;
        Ok(())
    }

    fn setup_dev(&self) -> Step<()> {
        let dev =
            mkdir_all(self.root.as_fd(), Path::new("dev")).map_err(|e| fail("open", "/dev", e))?;
        for d in &self.plan.devices {
            self.make_device(d, dev.as_fd())
                .map_err(|e| format!("create device /{}: {e}", d.path.display()))?;
        }
        let links = [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ];
        for (name, target) in links {
            match sfs::symlinkat(Path::new(target), dev.as_fd(), Path::new(name)) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                    return Err(fail("symlink", Path::new("/dev").join(name), e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One node; `dev` is the container's /dev, where most of them go.
    fn make_device(&self, d: &DeviceOp, dev: BorrowedFd<'_>) -> Step<()> {
        let (Some(parent), Some(name)) = (d.path.parent(), d.path.file_name()) else {
            return Ok(());
        };
        let own;
        let pfd = if parent == Path::new("dev") {
            dev
        } else {
            own = mkdir_all(self.root.as_fd(), parent)
                .map_err(|e| fail("mkdir", Path::new("/").join(parent), e))?;
            own.as_fd()
        };
        let name = Path::new(name);
        if self.in_userns {
            // mknod is not allowed in a user namespace: bind the host's node instead (runc too).
            let host = Path::new("/").join(&d.path);
            let f = sfs::openat2(
                pfd.as_fd(),
                name,
                libc::O_CREAT | libc::O_RDONLY,
                0o644,
                sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_SYMLINKS,
            )
            .map_err(|e| fail("create", &host, e))?;
            return husk_sys::mount::mount(
                Some(&host.to_string_lossy()),
                &husk_sys::mount::fd_path(f.as_fd()),
                None,
                ms::BIND,
                None,
            )
            .map_err(|e| fail("bind", &host, e));
        }
        let kind = match d.kind {
            DevKind::Char => libc::S_IFCHR,
            DevKind::Block => libc::S_IFBLK,
            DevKind::Fifo => libc::S_IFIFO,
        };
        match sfs::mknodat(pfd.as_fd(), name, kind | d.mode, d.major, d.minor) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Ok(()),
            r => r.map_err(|e| fail("mknod", Path::new("/").join(&d.path), e))?,
        }
        let node = sfs::openat2(
            pfd.as_fd(),
            name,
            libc::O_PATH,
            0,
            sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| fail("open", &d.path, e))?;
        if d.uid != 0 || d.gid != 0 {
            sfs::fchown(node.as_fd(), d.uid, d.gid).map_err(|e| fail("chown", &d.path, e))?;
        }
        Ok(())
    }

    /// pivot_root into the rootfs and drop the old root; or, with `no_pivot`, MS_MOVE + chroot
    /// (for roots on ramfs, where pivot_root is impossible).
    pub fn pivot(&self, no_pivot: bool) -> Step<()> {
        sfs::fchdir(self.root.as_fd()).map_err(|e| fail("chdir", &self.plan.rootfs, e))?;
        if no_pivot {
            husk_sys::mount::mount(Some("."), "/", None, libc::MS_MOVE, None)
                .map_err(|e| fail("move rootfs to", "/", e))?;
            husk_sys::mount::chroot(".").map_err(|e| fail("chroot", &self.plan.rootfs, e))?;
        } else {
            let old_root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
                .map_err(|e| fail("open", "/", e))?;
            husk_sys::mount::pivot_root(".", ".")
                .map_err(|e| fail("pivot_root", &self.plan.rootfs, e))?;
            // The old root is now stacked on top of the new one. Our cwd is still the new
            // root's mount, so "." must be re-pointed at the old root before the rslave below:
            // without this fchdir, "." named the new root, the rslave went over the container's
            // own tree (a mount asked to be "shared" silently became private) and the old root
            // was never made a slave before its unmount (as runc does it: fchdir(oldroot)).
            sfs::fchdir(old_root.as_fd()).map_err(|e| fail("chdir", "old root", e))?;
            // Make the old root a slave first so the unmount does not propagate to the host.
            husk_sys::mount::mount(None, ".", None, ms::SLAVE | ms::REC, None)
                .map_err(|e| fail("make old root rslave", "/", e))?;
            husk_sys::mount::umount2(".", libc::MNT_DETACH)
                .map_err(|e| fail("unmount old root", "/", e))?;
        }
        std::env::set_current_dir("/").map_err(|e| fail("chdir", "/", e))
    }

    /// Without a mount namespace: chroot into the root, through an fd so the path is
    /// resolved once.
    pub fn chroot(plan: &Plan) -> Step<()> {
        let root = sfs::openat(None, &plan.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| fail("open rootfs", &plan.rootfs, e))?;
        sfs::fchdir(root.as_fd()).map_err(|e| fail("chdir", &plan.rootfs, e))?;
        husk_sys::mount::chroot(".").map_err(|e| fail("chroot", &plan.rootfs, e))?;
        std::env::set_current_dir("/").map_err(|e| fail("chdir", "/", e))
    }

    /// After pivot: read-only root, masked and read-only paths (paths now relative to the new /).
    pub fn finish(plan: &Plan, sysctl_first: impl FnOnce() -> Step<()>) -> Step<()> {
        let root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| fail("open", "/", e))?;
        // sysctls go through /proc/sys, which readonlyPaths usually makes read-only: first.
        sysctl_first()?;
        if !plan.masked_paths.is_empty() || !plan.readonly_paths.is_empty() {
            check_proc_fd(root.as_fd())?;
        }
        let null = std::cell::OnceCell::new();
        for p in &plan.masked_paths {
            mask_path(root.as_fd(), p, &null, plan.mount_label.as_deref())?;
        }
        for p in &plan.readonly_paths {
            let rel = husk_spec::plan::clean_in_root(p);
            let fd = match open_in_root(root.as_fd(), &rel, 0) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                r => r.map_err(|e| fail("open readonly path", p, e))?,
            };
            let fp = husk_sys::mount::fd_path(fd.as_fd());
            husk_sys::mount::mount(Some(&fp), &fp, None, ms::BIND | ms::REC, None)
                .map_err(|e| fail("bind readonly path", p, e))?;
            let top = open_in_root(root.as_fd(), &rel, 0).map_err(|e| fail("reopen", p, e))?;
            husk_sys::mount::mount_setattr(top.as_fd(), true, attr::RDONLY, 0, None)
                .map_err(|e| fail("make read-only", p, e))?;
        }
        if plan.rootfs_readonly {
            husk_sys::mount::mount_setattr(root.as_fd(), false, attr::RDONLY, 0, None)
                .map_err(|e| fail("make read-only", "/", e))?;
        }
        Ok(())
    }
}

/// From here on mounts target `/proc/self/fd/N` in the container's own /proc. Should that not be
/// procfs (a config with no proc mount, or one binding the image's own tree there), those paths
/// would be whatever the image planted, symlinks included, and a mask or read-only bind could be
/// sent elsewhere in the container, leaving the real path open: refuse instead.
fn check_proc_fd(root: BorrowedFd<'_>) -> Step<()> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let magic = open_in_root(root, Path::new("proc/self/fd"), libc::O_DIRECTORY)
        .and_then(|fd| sfs::fstatfs_magic(fd.as_fd()));
    match magic {
        Ok(PROC_SUPER_MAGIC) => Ok(()),
        r => Err(format!(
            "masked and read-only paths: /proc/self/fd in the container is not on procfs{}",
            r.err()
                .map(|e| format!(" ({})", crate::errno_text(&e)))
                .unwrap_or_default()
        )),
    }
}

/// Masks with /dev/null for files and an empty read-only tmpfs for directories. /dev/null is
/// checked to be the real 1:3 character device first, so an image that planted something else
/// there cannot have it bound over /proc files (CVE-2025-31133). It is opened and checked once,
/// into `null`.
/// Masking tmpfs carry the mount label, as runc's do.
fn mask_path(
    root: BorrowedFd<'_>,
    p: &str,
    null: &std::cell::OnceCell<OwnedFd>,
    label: Option<&str>,
) -> Step<()> {
    let rel = husk_spec::plan::clean_in_root(p);
    let fd = match open_in_root(root, &rel, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        r => r.map_err(|e| fail("open masked path", p, e))?,
    };
    let st = sfs::fstat(fd.as_fd()).map_err(|e| fail("stat", p, e))?;
    let target = husk_sys::mount::fd_path(fd.as_fd());
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return husk_sys::mount::mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            ms::RDONLY,
            Some(&husk_spec::lsm::with_mount_label(
                "size=0k,nr_inodes=1",
                label,
            )),
        )
        .map_err(|e| fail("mask", p, e));
    }
    let null = match null.get() {
        Some(fd) => fd,
        None => {
            let fd = open_in_root(root, Path::new("dev/null"), 0)
                .map_err(|e| fail("open", "/dev/null", e))?;
            let nst = sfs::fstat(fd.as_fd()).map_err(|e| fail("stat", "/dev/null", e))?;
            if nst.st_mode & libc::S_IFMT != libc::S_IFCHR || nst.st_rdev != libc::makedev(1, 3) {
                return Err(format!(
                    "mask {p}: /dev/null in the container is not the null device"
                ));
            }
            null.get_or_init(|| fd)
        }
    };
    husk_sys::mount::mount(
        Some(&husk_sys::mount::fd_path(null.as_fd())),
        &target,
        None,
        ms::BIND,
        None,
    )
    .map_err(|e| fail("mask", p, e))
}
