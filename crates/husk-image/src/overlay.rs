//! A container's root from an image: overlayfs with the image's layers as lowerdirs (read-only,
//! shared) and the container's own upper/work under containers/<id>/, removed with it. More
//! layers than one page of mount options holds are named by fd.

use crate::store::{Image, Store};
use husk_runtime::Error;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The mounted root of one container; `release` (or drop) unmounts it and removes its upper.
pub struct Root {
    pub dir: PathBuf,
    pub merged: PathBuf,
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
    let dir = store.root.join("containers").join(id);
    if dir.exists() {
        // Left by a husk that was killed: its container is gone (the caller checked).
        release_dir(&dir)?;
    }
    let root = Root {
        merged: dir.join("merged"),
        dir,
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
    for d in ["upper", "work", "merged"] {
        let p = root.dir.join(d);
        std::fs::create_dir_all(&p).map_err(Error::io("create container directory", &p))?;
    }
    let ip = root.dir.join("image");
    std::fs::write(&ip, &img.id).map_err(Error::io("write", &ip))?;
    mount(store, img, &root.dir, volatile)?;
    husk_runtime::fault::point("image.overlay-mounted")?;
    Ok(root)
}

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

/// A root kept past its run (`Root::keep`: a detached container's) mounted again where it is
/// not (after a reboot), on the same upper: the container's changes survive, as docker's do.
pub fn remount(dir: &Path) -> Result<(), Error> {
    let merged = dir.join("merged");
    let dev = |p: &Path| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::dev(&m));
    if dev(&merged).map_err(Error::io("stat", &merged))?
        != dev(dir).map_err(Error::io("stat", dir))?
    {
        return Ok(());
    }
    let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let store = Store::open(root, false)?;
    let ip = dir.join("image");
    let id = std::fs::read_to_string(&ip).map_err(Error::io("read", &ip))?;
    let idx = store.index()?;
    mount(&store, store.find(&idx, id.trim())?, dir, false)
}

/// Removes a kept root (`Root::keep`): unmounted, its upper gone.
pub fn remove(dir: &Path) -> Result<(), Error> {
    release_dir(dir)
}

fn mount(store: &Store, img: &Image, dir: &Path, volatile: bool) -> Result<(), Error> {
    let merged = dir.join("merged");
    let mut lower = vec![];
    for l in img.layers.iter().rev() {
        lower.push(store.layer_dir(&l.chain_id)?.join("diff"));
    }
    if lower.is_empty() {
        // overlayfs needs a lower layer; an image without layers is an empty root.
        let e = dir.join("empty");
        std::fs::create_dir_all(&e).map_err(Error::io("create", &e))?;
        lower.push(e);
    }
    let options = |lower: &[PathBuf]| {
        format!(
            "lowerdir={},upperdir={},workdir={}",
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
    /// Keeps the root mounted past this value, for a container that outlives its `run` (`-d`);
    /// `remove` takes it away, `remount` mounts it again after a reboot.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.dir)
    }

    pub fn release(mut self) -> Result<(), Error> {
        let dir = std::mem::take(&mut self.dir);
        release_dir(&dir)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = release_dir(&self.dir);
        }
    }
}

fn release_dir(dir: &Path) -> Result<(), Error> {
    let merged = dir.join("merged");
    if let Err(e) = husk_sys::mount::umount2(&merged.to_string_lossy(), libc::MNT_DETACH)
        && !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT))
    {
        return Err(Error::io("unmount overlay root", &merged)(e));
    }
    // Gone already: another `rm` (or a `--rm` run's exit) removed it meanwhile.
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("remove container directory", dir)(e))
        }
        _ => Ok(()),
    }
}
