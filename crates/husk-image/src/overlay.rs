//! A container's root from an image: overlayfs with the image's layers as lowerdirs (read-only,
//! shared) and the container's own upper/work under containers/<id>/, removed with it.

use crate::store::{Image, Store};
use husk_runtime::Error;
use std::path::{Path, PathBuf};

/// The mounted root of one container; `release` (or drop) unmounts it and removes its upper.
pub struct Root {
    pub dir: PathBuf,
    pub merged: PathBuf,
}

/// mount(2) takes its options in one page.
const OPTIONS_MAX: usize = 4095;

pub fn prepare(store: &Store, img: &Image, id: &str) -> Result<Root, Error> {
    let dir = store.root.join("containers").join(id);
    if dir.exists() {
        // Left by a husk that was killed: its container is gone (the caller checked).
        release_dir(&dir)?;
    }
    let root = Root {
        merged: dir.join("merged"),
        dir,
    };
    for d in ["upper", "work", "merged"] {
        let p = root.dir.join(d);
        std::fs::create_dir_all(&p).map_err(Error::io("create container directory", &p))?;
    }
    let ip = root.dir.join("image");
    std::fs::write(&ip, &img.id).map_err(Error::io("write", &ip))?;
    let mut lower = vec![];
    for l in img.layers.iter().rev() {
        lower.push(store.layer_dir(&l.chain_id)?.join("diff"));
    }
    if lower.is_empty() {
        // overlayfs needs a lower layer; an image without layers is an empty root.
        let e = root.dir.join("empty");
        std::fs::create_dir_all(&e).map_err(Error::io("create", &e))?;
        lower.push(e);
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":"),
        root.dir.join("upper").display(),
        root.dir.join("work").display()
    );
    if opts.len() > OPTIONS_MAX {
        return Err(Error::Msg(format!(
            "image {}: {} layers do not fit in overlayfs' one-page mount options (not yet supported)",
            img.short_id(),
            img.layers.len()
        )));
    }
    husk_sys::fs::mount(
        Some("overlay"),
        &root.merged.to_string_lossy(),
        Some("overlay"),
        0,
        Some(&opts),
    )
    .map_err(Error::io("mount overlay root", &root.merged))?;
    husk_runtime::fault::point("image.overlay-mounted")?;
    Ok(root)
}

impl Root {
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
    if let Err(e) = husk_sys::fs::umount2(&merged.to_string_lossy(), libc::MNT_DETACH)
        && !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT))
    {
        return Err(Error::io("unmount overlay root", &merged)(e));
    }
    std::fs::remove_dir_all(dir).map_err(Error::io("remove container directory", dir))
}
