//! A container's root from an image: overlayfs with the image's layers as lowerdirs (read-only,
//! shared) and the container's own upper/work under containers/<id>/, removed with it. More
//! layers than one page of mount options holds are named by fd.
//!
//! An ordinary user cannot mount overlayfs in the host's mount namespace, only as root of a user
//! namespace (Linux >= 5.11, `userxattr`). Its root (`prepare_detached`) is made by a child in a
//! namespace mapped as the container's (husk_runtime::mapped): the overlay, whose detached copy
//! (open_tree) is sent back as an fd. The front end reads the root through that fd and init
//! attaches it in the container's own mount namespace (move_mount). Nothing of it is mounted on
//! the host: it goes when the last reference (init's mount namespace, the front end's fd) does,
//! even after a kill. A foreground run's upper and work are a tmpfs (its writes go with it; only
//! the image's volumes are on the host's filesystems); a kept root's (`run -d`) are directories
//! under containers/<id>/ on the store's filesystem, so a container stopped and started again
//! finds its writes, as docker's and podman's do: each start mounts it again the same way
//! (`mount_kept`), and `remove` removes it as root of such a namespace (its upper holds files of
//! the container's ids, which the user cannot remove).
//! fuse-overlayfs, podman's fallback for older kernels, is not needed on these.

use crate::store::{Image, Store};
use husk_runtime::Error;
use husk_spec::config::IdMapping;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The mounted root of one container; `release` (or drop) unmounts it and removes its upper.
pub struct Root {
    pub dir: PathBuf,
    pub merged: PathBuf,
    /// `prepare_detached`'s overlay, mounted nowhere; `merged` is then only where init attaches it.
    pub mount: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// The image's anonymous volumes (crate::volumes), in the order of their VOLUMEs: made with
    /// an ordinary user's root (`prepare_detached`), after the image's config for root's.
    pub volumes: Vec<PathBuf>,
}

/// mount(2) takes its options in one page.
const OPTIONS_MAX: usize = 4095;

/// Mounts the root of container `id`. `record` is where the container's record will live (a
/// detached container's directory in the front end's store, a foreground run's state dir):
/// with this husk's pid it goes into the root's `owner` file, so a root whose husk was killed
/// before any record held it is found and removed (`reclaim`). `volatile`: the root is thrown
/// away when its run ends (a foreground run's), so overlayfs may skip every sync to the upper
/// filesystem; without it, the unmount syncs the whole filesystem the store is on (tens to
/// hundreds of ms on a busy machine).
pub fn prepare(
    store: &Store,
    img: &Image,
    id: &str,
    record: &Path,
    volatile: bool,
) -> Result<Root, Error> {
    let root = root_dir(store, img, id, record, &["upper", "work", "merged"])?;
    mount(store, img, &root.dir, volatile, "", None)?;
    husk_runtime::fault::point("image.overlay-mounted")?;
    Ok(root)
}

/// containers/<id>/ of a new root, with its `owner`, `subdirs` and `image`.
fn root_dir(
    store: &Store,
    img: &Image,
    id: &str,
    record: &Path,
    subdirs: &[&str],
) -> Result<Root, Error> {
    let dir = store.root.join("containers").join(id);
    if dir.exists() {
        // Left by a husk that was killed: its container is gone (the caller checked).
        release_dir(&dir)?;
    }
    let root = Root {
        merged: dir.join("merged"),
        dir,
        mount: None,
        volumes: vec![],
    };
    // The owner first: a husk killed after this leaves a root `reclaim` recognises as its.
    // A start time that cannot be read fails the run: 0 would make the root look abandoned.
    let me = std::process::id() as i32;
    let (start, _) =
        husk_sys::process::proc_stat(me).map_err(Error::io("read", "/proc/self/stat"))?;
    std::fs::create_dir_all(&root.dir)
        .map_err(Error::io("create container directory", &root.dir))?;
    let op = root.dir.join(OWNER);
    std::fs::write(&op, format!("{me} {start}\n{}\n", record.display()))
        .map_err(Error::io("write", &op))?;
    for d in subdirs {
        let p = root.dir.join(d);
        std::fs::create_dir_all(&p).map_err(Error::io("create container directory", &p))?;
    }
    let ip = root.dir.join("image");
    std::fs::write(&ip, &img.id).map_err(Error::io("write", &ip))?;
    Ok(root)
}

/// `prepare` for an ordinary user (see the module's comment): `ids` are the container's maps
/// (and their layers' unpacking when it is not the store's own, crate::remap, made first where
/// missing). The image's `volumes` are seeded by the child that mounts the root, the only place
/// their copies can get the image's owners (crate::volumes). containers/<id>/ holds `owner`,
/// `image`, the empty `merged` init attaches the root at and `volumes/`, all of it but the
/// volumes' contents the user's own, removed by `release`; with `kept`, also `upper`, `work` and
/// `idmap` (`ids`, for `mount_kept` and `remove`).
pub fn prepare_detached(
    store: &Store,
    img: &Image,
    id: &str,
    record: &Path,
    ids: &IdMaps,
    volumes: &[String],
    kept: bool,
) -> Result<Root, Error> {
    let mut subdirs = vec!["merged"];
    if !volumes.is_empty() {
        subdirs.push("volumes");
    }
    if kept {
        subdirs.extend(["upper", "work"]);
    }
    let mut root = root_dir(store, img, id, record, &subdirs)?;
    if kept {
        let p = root.dir.join(IDMAP);
        let text = serde_json::to_vec(ids).map_err(|e| Error::Msg(e.to_string()))?;
        std::fs::write(&p, text).map_err(Error::io("write", &p))?;
    }
    let (fd, made) = mount_mapped(store, img, &root.dir, ids, !kept, volumes)?;
    root.mount = Some(std::sync::Arc::new(fd));
    root.volumes = made;
    husk_runtime::fault::point("image.overlay-mounted")?;
    Ok(root)
}

/// The id maps of an ordinary user's container, as its kept root's `idmap` records them.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct IdMaps {
    pub uid: Vec<IdMapping>,
    pub gid: Vec<IdMapping>,
    /// The layers' unpacking for these maps when they are not the store's own (crate::remap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// The overlay of the root in `dir`, mounted by a child mapped by `ids` and returned detached,
/// with the `volumes` it seeded (crate::volumes) under `dir`'s `volumes/`. `scratch`: upper and
/// work on a tmpfs of the child's over `merged` (the container's directory beside it stays the
/// store's, for the volumes), else `dir`'s own `upper` and `work`.
fn mount_mapped(
    store: &Store,
    img: &Image,
    dir: &Path,
    ids: &IdMaps,
    scratch: bool,
    volumes: &[String],
) -> Result<(OwnedFd, Vec<PathBuf>), Error> {
    let variant = ids.variant.as_deref();
    let vols = dir.join("volumes");
    let base = if scratch {
        dir.join("merged")
    } else {
        dir.to_path_buf()
    };
    let reply = husk_runtime::mapped::run(&ids.uid, &ids.gid, || {
        if let Some(v) = variant {
            crate::remap::ensure(store, img, v)?;
        }
        if scratch {
            // The child's own mount namespace: this tmpfs over the (empty) `merged` is seen by
            // no one else, and lives on only as the overlay's upper layer.
            let s = base.to_string_lossy();
            husk_sys::mount::mount(Some("tmpfs"), &s, Some("tmpfs"), 0, Some("mode=0755"))
                .map_err(Error::io("mount tmpfs for the upper layer", &base))?;
            for d in ["upper", "work", "merged"] {
                let p = base.join(d);
                std::fs::create_dir(&p).map_err(Error::io("create", &p))?;
            }
        }
        // mount(2), not fsconfig, whose values stop at 256 bytes (a few layers' paths); then a
        // detached copy to send.
        mount(store, img, &base, false, ",userxattr", variant)?;
        let merged = base.join("merged");
        let made = crate::volumes::create(&merged, &vols, volumes)?;
        let fd = husk_sys::mount::open_tree_clone(&merged, false).map_err(Error::io(
            "take a detached copy of the overlay root",
            &merged,
        ))?;
        let names: Vec<String> = made
            .iter()
            .filter_map(|v| Some(v.file_name()?.to_str()?.to_string()))
            .collect();
        Ok(husk_runtime::mapped::Reply {
            fds: vec![fd],
            text: names.join("\n"),
        })
    })?;
    let fd = reply
        .fds
        .into_iter()
        .next()
        .ok_or_else(|| Error::Msg("the overlay root's fd did not arrive".into()))?;
    Ok((fd, reply.text.lines().map(|n| vols.join(n)).collect()))
}

/// A kept root's maps: an ordinary user's (`prepare_detached`), None for root's.
fn read_idmap(dir: &Path) -> Result<Option<IdMaps>, Error> {
    let p = dir.join(IDMAP);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Msg(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &p)(e)),
    }
}

/// A kept root's maps (JSON `IdMaps`), present only in an ordinary user's.
const IDMAP: &str = "idmap";

/// A root's `owner`: "PID START" of the husk that made it, then the path of its record.
const OWNER: &str = "owner";

/// Removes the roots under containers/ that nothing holds: their husk is gone (killed between
/// the mount and the container's record) and no record names them. Called with the store
/// locked exclusively (rm -f, rmi, prune), so no root is being made meanwhile.
pub fn reclaim(store: &Store) {
    let Ok(rd) = std::fs::read_dir(store.root.join("containers")) else {
        return;
    };
    for e in rd.flatten() {
        let dir = e.path();
        let Ok(text) = std::fs::read_to_string(dir.join(OWNER)) else {
            continue;
        };
        let mut lines = text.lines();
        let holder = lines.next().unwrap_or_default();
        let record = lines.next().unwrap_or_default();
        let alive = holder.split_once(' ').is_some_and(|(pid, start)| {
            let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
                return false;
            };
            husk_sys::process::alive(pid, start)
        });
        if !alive && (record.is_empty() || !Path::new(record).exists()) {
            husk_runtime::explain::step(|| {
                format!(
                    "image store: removed the root of a killed run ({})",
                    dir.display()
                )
            });
            let _ = release_dir(&dir);
        }
    }
}

/// A kept root (`Root::keep`: a detached container's) for a new start of its container, on
/// the same upper, so the container's changes survive as docker's do. Root's is mounted on
/// `merged` in this mount namespace where it is not already (after a reboot): None. An ordinary
/// user's is mounted anew in a mapped namespace and returned detached, for init to attach
/// (`CreateOpts::rootfs_mount`); it goes with the container's mount namespace.
pub fn mount_kept(dir: &Path) -> Result<Option<OwnedFd>, Error> {
    let maps = read_idmap(dir)?;
    let merged = dir.join("merged");
    let dev = |p: &Path| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::dev(&m));
    if maps.is_none()
        && dev(&merged).map_err(Error::io("stat", &merged))?
            != dev(dir).map_err(Error::io("stat", dir))?
    {
        return Ok(None);
    }
    let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let store = Store::open(root, false)?;
    let ip = dir.join("image");
    let id = std::fs::read_to_string(&ip).map_err(Error::io("read", &ip))?;
    let idx = store.index()?;
    let img = store.find(&idx, id.trim())?;
    match maps {
        Some(ids) => mount_mapped(&store, img, dir, &ids, false, &[]).map(|(fd, _)| Some(fd)),
        None => mount(&store, img, dir, false, "", None).map(|()| None),
    }
}

/// Removes a kept root (`Root::keep`): unmounted, its upper gone.
pub fn remove(dir: &Path) -> Result<(), Error> {
    release_dir(dir)
}

/// `extra`: more options, each with its leading comma. `variant`: the layers' unpacking for
/// another map (crate::remap), else the store's own.
fn mount(
    store: &Store,
    img: &Image,
    dir: &Path,
    volatile: bool,
    extra: &str,
    variant: Option<&str>,
) -> Result<(), Error> {
    let merged = dir.join("merged");
    let mut lower = vec![];
    for l in img.layers.iter().rev() {
        let layer = store.layer_dir(&l.chain_id)?;
        lower.push(
            variant
                .map_or(layer.clone(), |v| layer.join(v))
                .join("diff"),
        );
    }
    if lower.is_empty() {
        // overlayfs needs a lower layer; an image without layers is an empty root.
        let e = dir.join("empty");
        std::fs::create_dir_all(&e).map_err(Error::io("create", &e))?;
        lower.push(e);
    }
    let options = |lower: &[PathBuf]| {
        format!(
            "lowerdir={},upperdir={},workdir={}{extra}",
            lower
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        )
    };
    let fits = |opts: &str| opts.len() + ",volatile".len() <= OPTIONS_MAX;
    let mut opts = options(&lower);
    // Too many layers for one page: each named by an fd of this process (`/proc/self/fd/N`,
    // 17 bytes instead of ~100), which overlayfs resolves at mount time; held until then.
    let mut held = vec![];
    if !fits(&opts) {
        for l in &lower {
            held.push(
                husk_sys::fs::openat(None, l, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .map_err(Error::io("open image layer", l))?,
            );
        }
        let short: Vec<PathBuf> = held
            .iter()
            .map(|fd| PathBuf::from(husk_sys::mount::fd_path(fd.as_fd())))
            .collect();
        opts = options(&short);
    }
    if !fits(&opts) {
        return Err(Error::Msg(format!(
            "image {}: {} layers do not fit in overlayfs' one-page mount options even named by fd",
            img.short_id(),
            img.layers.len()
        )));
    }
    let target = merged.to_string_lossy();
    let overlay = |opts: &str| {
        husk_sys::mount::mount(Some("overlay"), &target, Some("overlay"), 0, Some(opts))
    };
    let mounted = match volatile {
        // Linux < 5.10 knows no `volatile` (EINVAL): such a root is mounted as a kept one.
        true => match overlay(&format!("{opts},volatile")) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => overlay(&opts),
            r => r,
        },
        false => overlay(&opts),
    };
    mounted.map_err(Error::io("mount overlay root", &merged))
}

impl Root {
    /// Where the root's files are read and written before the container runs: the detached
    /// overlay by its fd, else `merged`.
    pub fn view(&self) -> PathBuf {
        match &self.mount {
            Some(fd) => PathBuf::from(husk_sys::mount::fd_path(fd.as_fd())),
            None => self.merged.clone(),
        }
    }

    /// Keeps the root past this value, for a container that outlives its `run` (`-d`): root's
    /// stays mounted, an ordinary user's detached mount goes with this value. `remove` takes it
    /// away, `mount_kept` mounts it for the next start.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.dir)
    }

    pub fn release(mut self) -> Result<(), Error> {
        let dir = std::mem::take(&mut self.dir);
        self.mount = None;
        release_dir(&dir)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // A detached overlay goes first (when this was its last holder), its upper after.
        self.mount = None;
        if !self.dir.as_os_str().is_empty() {
            let _ = release_dir(&self.dir);
        }
    }
}

fn release_dir(dir: &Path) -> Result<(), Error> {
    let merged = dir.join("merged");
    // EPERM: an ordinary user, whose roots are never mounted in this namespace.
    if let Err(e) = husk_sys::mount::umount2(&merged.to_string_lossy(), libc::MNT_DETACH)
        && !matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOENT | libc::EPERM)
        )
    {
        return Err(Error::io("unmount overlay root", &merged)(e));
    }
    // An ordinary user's kept upper holds files of its containers' ids (and overlayfs' work
    // directory is mode 0): removed as root of a namespace that maps them. Not from inside one
    // (rmi's and prune's `reclaim` run there already, as root).
    if let Some(ids) = read_idmap(dir)?
        && husk_runtime::caller::Caller::current().unprivileged()
    {
        let mapped = husk_runtime::mapped::run(&ids.uid, &ids.gid, || {
            remove_all(dir).map(|()| husk_runtime::mapped::Reply::default())
        });
        // A root whose first mount failed (newuidmap refusing, say) holds only the user's own
        // files: removed as the user then.
        return match mapped {
            Err(e) => remove_all(dir).map_err(|_| e),
            Ok(_) => Ok(()),
        };
    }
    remove_users_volumes(dir)?;
    remove_all(dir)
}

fn remove_all(dir: &Path) -> Result<(), Error> {
    // Gone already: another `rm` (or a `--rm` run's exit) removed it meanwhile.
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("remove container directory", dir)(e))
        }
        _ => Ok(()),
    }
}

/// An ordinary user's volumes hold files of the ids its ranges grant (crate::volumes), in
/// directories of those owners: the user may not remove them, root of a namespace mapping them
/// may. Its other files (owner, image, merged) are the user's own.
fn remove_users_volumes(dir: &Path) -> Result<(), Error> {
    let volumes = dir.join("volumes");
    if !volumes.exists() {
        return Ok(());
    }
    let Some(me) = husk_frontend::rootless::Rootless::detect() else {
        return Ok(());
    };
    husk_runtime::mapped::run(&me.uid_mappings(false), &me.gid_mappings(false), || {
        match std::fs::remove_dir_all(&volumes) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove the container's volumes", &volumes)(e))
            }
            _ => Ok(husk_runtime::mapped::Reply::default()),
        }
    })
    .map(drop)
}
