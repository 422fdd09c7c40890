//! The image store (default /var/lib/husk, or $HUSK_STORE):
//!
//! ```text
//! lock                      flock: exclusive for every change, shared while a run reads
//! images.json               image id (config digest) -> record (manifest, layers, names)
//! blobs/sha256/<hex>        manifests, configs and layer blobs, by verified digest
//! layers/<chain hex>/diff   each layer unpacked once, shared read-only by every image
//! containers/<id>/          a running container's overlay: upper/ work/ merged/, `image`, `owner`
//! tmp/                      blobs and layers being written; renamed into place when verified
//! partial/<hex>             a blob a pull is downloading (flock'd by it), kept to resume
//! gc.lock                   flock: shared by every pull, exclusive (never waited for) by gc
//! ```
//!
//! A blob or layer appears under its name only once complete and verified (rename from tmp/ or
//! partial/), so an interrupted load or pull never leaves a half-written one where it would be
//! used. A pull holds no store lock while it downloads (a long pull would stop every run): it
//! pins the store instead, so gc, which would remove the verified blobs and layers its image
//! record does not name yet, leaves blobs and layers alone until no pull runs.

use crate::digest;
use husk_runtime::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/husk";
/// Manifests and configs are read whole: a cap keeps a hostile archive from filling memory.
pub const JSON_CAP: u64 = 8 << 20;

/// `default_root` fixed before this process enters an ordinary user's mapped namespace
/// (husk_runtime::mapped), where it is root and would otherwise pick /var/lib/husk.
static PINNED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Fixes `default_root` at what it is now, for the rest of this process and its children.
pub fn pin_default_root() -> PathBuf {
    PINNED.get_or_init(Store::default_root).clone()
}

pub struct Store {
    pub root: PathBuf,
    _lock: OwnedFd,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Layer {
    /// The blob as stored (compressed or not).
    pub blob: String,
    pub diff_id: String,
    pub chain_id: String,
    pub size: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Image {
    pub id: String,
    pub manifest: String,
    pub layers: Vec<Layer>,
    pub names: Vec<String>,
    /// Seconds since the epoch when this husk stored it.
    pub loaded: u64,
}

impl Image {
    pub fn short_id(&self) -> &str {
        &self.id[7..19]
    }
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Index {
    pub images: BTreeMap<String, Image>,
}

/// A path under tmp/ removed on drop unless `keep` moved it into place.
pub struct Tmp(pub PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        if std::fs::remove_file(&self.0).is_err() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Tmp {
    /// Renames into `dest` (atomic on one filesystem) and disarms the removal.
    pub fn keep(mut self, dest: &Path) -> Result<(), Error> {
        std::fs::rename(&self.0, dest).map_err(Error::io("rename into the store", dest))?;
        self.0 = PathBuf::new();
        Ok(())
    }
}

impl Tmp {
    /// `keep` for an unpacked layer: when a concurrent pull already put the same layer (same
    /// chain id, so the same content) in place, that one stays and this one is dropped.
    pub fn keep_layer(self, dest: &Path) -> Result<(), Error> {
        match std::fs::rename(&self.0, dest) {
            Err(_) if dest.join("diff").is_dir() => Ok(()),
            r => {
                r.map_err(Error::io("rename into the store", dest))?;
                let mut me = self;
                me.0 = PathBuf::new();
                Ok(())
            }
        }
    }
}

impl Store {
    /// `$HUSK_STORE`, else /var/lib/husk, or an ordinary user's `$XDG_DATA_HOME/husk`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = PINNED.get() {
            return p.clone();
        }
        std::env::var_os("HUSK_STORE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| husk_runtime::userdirs::current_data_dir().ok().flatten())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }

    /// Opens (creating) the store and takes its lock: exclusive to change it, shared to read.
    pub fn open(root: &Path, exclusive: bool) -> Result<Store, Error> {
        let fd = Self::lock_file(root, "lock")?;
        let lp = root.join("lock");
        if exclusive {
            husk_sys::fs::flock_exclusive(fd.as_fd())
        } else {
            husk_sys::fs::flock_shared(fd.as_fd())
        }
        .map_err(Error::io("lock store", &lp))?;
        Ok(Store {
            root: root.to_path_buf(),
            _lock: fd,
        })
    }

    fn lock_file(root: &Path, name: &str) -> Result<OwnedFd, Error> {
        for d in ["blobs/sha256", "layers", "containers", "tmp", "partial"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(Error::io("create store directory", &p))?;
        }
        let lp = root.join(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(Error::io("open store lock", &lp))?;
        Ok(OwnedFd::from(f))
    }

    /// The store as a pull uses it: no store lock (a run or a listing goes on meanwhile), the
    /// gc lock shared so nothing collects the blobs and layers it verified before it records
    /// its image (under `open(root, true)`, briefly).
    pub fn pin(root: &Path) -> Result<Store, Error> {
        let fd = Self::lock_file(root, "gc.lock")?;
        husk_sys::fs::flock_shared(fd.as_fd())
            .map_err(Error::io("lock store", root.join("gc.lock")))?;
        Ok(Store {
            root: root.to_path_buf(),
            _lock: fd,
        })
    }

    pub fn blob_path(&self, d: &str) -> Result<PathBuf, Error> {
        let hex = digest::parse(d)
            .ok_or_else(|| Error::Msg(format!("\"{d}\" is not a sha256 digest")))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn layer_dir(&self, chain_id: &str) -> Result<PathBuf, Error> {
        let hex = digest::parse(chain_id)
            .ok_or_else(|| Error::Msg(format!("\"{chain_id}\" is not a sha256 digest")))?;
        Ok(self.root.join("layers").join(hex))
    }

    /// A fresh name under tmp/.
    pub fn tmp(&self, what: &str) -> Tmp {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Tmp(self
            .root
            .join("tmp")
            .join(format!("{what}-{}-{t}-{n}", std::process::id())))
    }

    /// Copies `r` into the store as a blob; `expected`, when given, must be its digest.
    /// Returns (digest, size). A blob already present is not written twice.
    pub fn ingest(&self, r: &mut dyn Read, expected: Option<&str>) -> Result<(String, u64), Error> {
        let tmp = self.tmp("blob");
        let f = std::fs::File::create_new(&tmp.0).map_err(Error::io("create blob", &tmp.0))?;
        let mut w = digest::HashingWriter::new(std::io::BufWriter::with_capacity(256 << 10, f));
        std::io::copy(r, &mut w).map_err(Error::io("write blob", &tmp.0))?;
        w.flush().map_err(Error::io("write blob", &tmp.0))?;
        let d = w.digest();
        if let Some(e) = expected
            && e != d
        {
            return Err(Error::Msg(format!(
                "blob digest mismatch: expected {e}, the content is {d}; nothing was stored"
            )));
        }
        let dest = self.blob_path(&d)?;
        if dest.exists() {
            return Ok((d, w.count));
        }
        tmp.keep(&dest)?;
        Ok((d, w.count))
    }

    /// A stored blob read whole (manifests, configs), capped at JSON_CAP.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        d: &str,
        what: &str,
    ) -> Result<T, Error> {
        let p = self.blob_path(d)?;
        let f = std::fs::File::open(&p).map_err(Error::io("open blob", &p))?;
        let mut buf = vec![];
        f.take(JSON_CAP + 1)
            .read_to_end(&mut buf)
            .map_err(Error::io("read blob", &p))?;
        if buf.len() as u64 > JSON_CAP {
            return Err(Error::Msg(format!(
                "{what} {d} is larger than {JSON_CAP} bytes"
            )));
        }
        serde_json::from_slice(&buf).map_err(|e| Error::Msg(format!("{what} {d}: {e}")))
    }

    pub fn index(&self) -> Result<Index, Error> {
        let p = self.root.join("images.json");
        match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| Error::Msg(format!("{}: {e}", p.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(Error::io("read", &p)(e)),
        }
    }

    pub fn write_index(&self, idx: &Index) -> Result<(), Error> {
        let tmp = self.tmp("index");
        let text = serde_json::to_vec_pretty(idx).map_err(|e| Error::Msg(e.to_string()))?;
        std::fs::write(&tmp.0, text).map_err(Error::io("write", &tmp.0))?;
        tmp.keep(&self.root.join("images.json"))
    }

    /// The image `r` names: an id (`sha256:…`, or a hex prefix of at least 3), else a name (a
    /// short one through registries.conf: the first of its candidates the store holds).
    pub fn find<'a>(&self, idx: &'a Index, r: &str) -> Result<&'a Image, Error> {
        let hex = r.strip_prefix("sha256:").unwrap_or(r);
        if hex.len() >= 3 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&Image> = idx
                .images
                .values()
                .filter(|i| i.id[7..].starts_with(hex))
                .collect();
            match hits.len() {
                1 => return Ok(hits[0]),
                0 => {}
                _ => return Err(Error::Msg(format!("{r}: ambiguous image id prefix"))),
            }
        }
        let names = crate::registries::candidates(r)?;
        names
            .iter()
            .find_map(|n| idx.images.values().find(|i| i.names.contains(n)))
            .ok_or_else(|| Error::Msg(format!("{r}: no such image (husk images lists them)")))
    }

    /// Image ids the containers under containers/ run from.
    pub fn in_use(&self) -> Vec<(String, String)> {
        let mut v = vec![];
        if let Ok(rd) = std::fs::read_dir(self.root.join("containers")) {
            for e in rd.flatten() {
                if let Ok(id) = std::fs::read_to_string(e.path().join("image")) {
                    v.push((
                        e.file_name().to_string_lossy().into_owned(),
                        id.trim().to_string(),
                    ));
                }
            }
        }
        v
    }

    /// Removes blobs and layers no image refers to, and what tmp/ holds (an interrupted load's
    /// or pull's leftovers). Containers hold their image, so its layers. While a pull runs
    /// (gc.lock shared) nothing is collected: the next gc does it.
    pub fn gc(&self, idx: &Index) -> Result<(), Error> {
        let gl = Self::lock_file(&self.root, "gc.lock")?;
        if !husk_sys::fs::flock_try_exclusive(gl.as_fd())
            .map_err(Error::io("lock store", self.root.join("gc.lock")))?
        {
            return Ok(());
        }
        let t = self.root.join("tmp");
        for e in std::fs::read_dir(&t)
            .map_err(Error::io("read", &t))?
            .flatten()
        {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
        let mut blobs = std::collections::BTreeSet::new();
        let mut layers = std::collections::BTreeSet::new();
        for i in idx.images.values() {
            blobs.insert(i.id[7..].to_string());
            blobs.insert(i.manifest[7..].to_string());
            for l in &i.layers {
                blobs.insert(l.blob[7..].to_string());
                layers.insert(l.chain_id[7..].to_string());
            }
        }
        for (dir, keep) in [("blobs/sha256", &blobs), ("layers", &layers)] {
            let d = self.root.join(dir);
            for e in std::fs::read_dir(&d)
                .map_err(Error::io("read", &d))?
                .flatten()
            {
                let n = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&n) {
                    let p = e.path();
                    let r = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                    r.map_err(Error::io("remove unused", &p))?;
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Partial blobs of interrupted pulls (kept to resume them), for `image prune`. Only when
    /// no pull runs, which could be writing one.
    pub fn remove_partials(&self) -> Result<(), Error> {
        let gl = Self::lock_file(&self.root, "gc.lock")?;
        if husk_sys::fs::flock_try_exclusive(gl.as_fd())
            .map_err(Error::io("lock store", self.root.join("gc.lock")))?
        {
            let p = self.root.join("partial");
            for e in std::fs::read_dir(&p)
                .map_err(Error::io("read", &p))?
                .flatten()
            {
                let f = e.path();
                std::fs::remove_file(&f).map_err(Error::io("remove partial blob", &f))?;
            }
        }
        Ok(())
    }

    /// Records an image whose blobs and layers are in place; its names move to it from any
    /// other image, as with docker load/pull. Returns the names (or the id, without one).
    pub fn record(
        &self,
        manifest: &str,
        cfg: &str,
        layers: Vec<Layer>,
        names: Vec<String>,
    ) -> Result<Vec<String>, Error> {
        let mut idx = self.index()?;
        for other in idx.images.values_mut() {
            other.names.retain(|n| !names.contains(n));
        }
        let img = idx.images.entry(cfg.to_string()).or_insert_with(|| Image {
            id: cfg.to_string(),
            manifest: manifest.to_string(),
            layers,
            names: vec![],
            loaded: now(),
        });
        for n in &names {
            if !img.names.contains(n) {
                img.names.push(n.clone());
            }
        }
        self.write_index(&idx)?;
        Ok(if names.is_empty() {
            vec![cfg.to_string()]
        } else {
            names
        })
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
