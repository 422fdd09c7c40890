//! `husk pull`: manifest (an index resolved to the platform), config, then the missing layers,
//! up to eight at once. Each layer is one pass: network -> sha256 of the blob -> append to
//! partial/<hex> -> decompress -> sha256 (diffID) -> hostile-safe unpack into tmp/ (the load
//! path's `import::unpack_stream`); the blob is renamed into blobs/ and the layer into layers/
//! only when both digests and the size match. A dropped connection is resumed with `Range`
//! from what partial/ holds (also by a later pull after a kill); the layer's unpack starts
//! over from the partial file, so no half-unpacked layer is ever kept. Two pulls of the same
//! blob wait on partial/<hex>'s flock; the second finds the blob and layer in place.

use crate::auth::{self, Creds};
use crate::platform::Platform;
use crate::progress::{Mode, Progress, State};
use crate::registry::{self, Client, Ref};
use crate::store::{Layer, Store};
use crate::{digest, import};
use husk_runtime::Error;
use serde_json::Value;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

pub struct Options {
    /// None: this machine's (linux/amd64 here).
    pub platform: Option<Platform>,
    pub tls_verify: Option<bool>,
    /// None: from the auth files (see crate::auth).
    pub creds: Option<Creds>,
    pub progress: Mode,
    /// podman's `--cert-dir` (crate::certs).
    pub cert_dir: Option<std::path::PathBuf>,
}

/// Layers pulled at once: every layer of a usual image, so the largest is not left to start
/// last; each is three threads (see import::unpack_stream).
const PARALLEL: usize = 8;
/// Attempts per blob when the connection fails (each resumes where the last stopped).
const ATTEMPTS: u32 = 5;

const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

struct Desc {
    digest: String,
    size: u64,
}

fn desc(v: &Value, what: &str) -> Result<Desc, Error> {
    let d = v["digest"].as_str().unwrap_or_default();
    if digest::parse(d).is_none() {
        return Err(Error::Msg(format!(
            "{what}: digest \"{d}\" is not sha256:<64 hex>"
        )));
    }
    let size = v["size"]
        .as_u64()
        .ok_or_else(|| Error::Msg(format!("{what} {d}: no size")))?;
    Ok(Desc {
        digest: d.into(),
        size,
    })
}

fn is_index(mt: &str, v: &Value) -> bool {
    mt == registry::OCI_INDEX || mt == registry::DOCKER_LIST || v["manifests"].is_array()
}

/// Pulls `image` into the store at `root`; returns the image id (its config digest). A short
/// name's candidates (registries.conf: an alias, else each search registry, else docker.io)
/// are tried in order, as podman does; the first one found is pulled.
pub fn pull(root: &Path, image: &str, o: &Options) -> Result<String, Error> {
    let conf = crate::registries::current()?;
    let names = conf.candidates(image)?;
    let mut failed = vec![];
    for name in &names {
        match pull_one(root, name, conf, o) {
            Ok(id) => return Ok(id),
            Err(e) if names.len() == 1 => return Err(e),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    Err(Error::Msg(format!(
        "{image}: no candidate could be pulled (registries.conf's unqualified-search-registries): {}",
        failed.join("; ")
    )))
}

fn pull_one(
    root: &Path,
    name: &str,
    conf: &crate::registries::Config,
    o: &Options,
) -> Result<String, Error> {
    let (r, insecure) = Ref::routed(name, conf)?;
    let platform = o.platform.clone().unwrap_or_else(Platform::host);
    let creds = match &o.creds {
        Some(c) => Some(c.clone()),
        None => auth::lookup(&r.registry, &r.repo)?,
    };
    let say = |s: &str| {
        if o.progress != Mode::Quiet {
            let _ = writeln!(io::stderr(), "{s}");
        }
    };
    if r.name.starts_with(&format!("{}/{}", r.registry, r.repo)) {
        say(&format!("Trying to pull {}...", r.name));
    } else {
        say(&format!(
            "Trying to pull {} from {}/{} (registries.conf)...",
            r.name, r.registry, r.repo
        ));
    }
    let client = Client::connect(
        &r,
        &registry::Options {
            // An explicit --tls-verify wins over the table's `insecure`, as podman's does.
            tls_verify: o.tls_verify.or(insecure.then_some(false)),
            creds,
            cert_dir: o.cert_dir.clone(),
        },
    )?;
    let (bytes, mt, md, m) = fetch_image_manifest(&client, &r, &platform)?;
    husk_runtime::fault::point("pull.manifest")?;
    let (cfg, layers) = config_and_layers(&r.name, &mt, &md, &m)?;

    let store = Store::pin(root)?;
    let cfg_bytes = fetch_config(&client, &cfg)?;
    husk_runtime::fault::point("pull.config")?;
    let config: Value = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| Error::Msg(format!("image config {}: {e}", cfg.digest)))?;
    let diff_ids = import::diff_ids(&config, &cfg.digest, layers.len())?;
    let chain = digest::chain_ids(&diff_ids);

    let done = match fetch_layers(&store, &client, o.progress, &layers, &diff_ids, &chain) {
        Ok(done) => done,
        Err(f) => {
            drop(store);
            if !f.keep {
                // What this pull verified and put in place belongs to no image: collected now
                // (unless another pull runs), so a refused image leaves nothing behind.
                if let Ok(s) = Store::open(root, true) {
                    let _ = s.index().and_then(|idx| s.gc(&idx));
                }
            }
            return Err(f.error);
        }
    };
    store.ingest(&mut cfg_bytes.as_slice(), Some(&cfg.digest))?;
    store.ingest(&mut bytes.as_slice(), Some(&md))?;
    husk_runtime::fault::point("pull.recording")?;
    say(&format!("Writing manifest {md}"));
    let commit = Store::open(root, true)?;
    commit.record(&md, &cfg.digest, done, vec![r.name.clone()])?;
    drop(store);
    Ok(cfg.digest)
}

/// The image manifest `r` names: through an index, the one for `platform`.
fn fetch_image_manifest(
    client: &Client,
    r: &Ref,
    platform: &Platform,
) -> Result<(Vec<u8>, String, String, Value), Error> {
    let (mut bytes, mut mt, mut md) = client.manifest(&r.reference)?;
    let mut m: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if is_index(&mt, &m) {
        let chosen = platform.pick(&m, &r.name)?;
        let d = desc(chosen, "index entry")?;
        (bytes, mt, md) = client.manifest(&d.digest)?;
        m = serde_json::from_slice(&bytes).unwrap_or_default();
        if is_index(&mt, &m) {
            return Err(Error::Msg(format!(
                "{}: the index for {platform} names another index ({md}): not supported",
                r.name
            )));
        }
    }
    Ok((bytes, mt, md, m))
}

/// The config and layers the manifest `m` names, refused unless it is an image manifest
/// whose config fits the cap and whose layers are all image layers.
fn config_and_layers(
    name: &str,
    mt: &str,
    md: &str,
    m: &Value,
) -> Result<(Desc, Vec<Desc>), Error> {
    if m["schemaVersion"] == 1 {
        return Err(Error::Msg(format!(
            "{}: a Docker schema 1 manifest (deprecated since 2017): not supported",
            name
        )));
    }
    if mt != registry::OCI_MANIFEST && mt != registry::DOCKER_MANIFEST && !mt.is_empty() {
        return Err(Error::Msg(format!(
            "{}: manifest {md} is a {mt}, not an image manifest",
            name
        )));
    }
    let cfg = desc(&m["config"], "manifest config")?;
    if cfg.size > crate::store::JSON_CAP {
        return Err(Error::Msg(format!(
            "{}: image config {} is {} bytes, over the {} byte cap",
            name,
            cfg.digest,
            cfg.size,
            crate::store::JSON_CAP
        )));
    }
    let mut layers = vec![];
    for l in m["layers"].as_array().into_iter().flatten() {
        let d = desc(l, "manifest layer")?;
        let lt = l["mediaType"].as_str().unwrap_or_default();
        if !LAYER_TYPES.contains(&lt) {
            return Err(Error::Msg(format!(
                "{}: layer {} has media type \"{lt}\", not an image layer",
                name, d.digest
            )));
        }
        layers.push(d);
    }
    Ok((cfg, layers))
}

/// Fetches and unpacks `layers` on up to PARALLEL threads, showing progress. One failure stops
/// the rest; the one returned is the first in layer order that was not just such a stop.
fn fetch_layers(
    store: &Store,
    client: &Client,
    mode: Mode,
    layers: &[Desc],
    diff_ids: &[String],
    chain: &[String],
) -> Result<Vec<Layer>, Failure> {
    let progress = Progress::new(
        mode,
        &layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect::<Vec<_>>(),
    );
    let job = Job {
        store,
        client,
        progress: &progress,
        abort: AtomicBool::new(false),
    };
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Layer, Failure>>>> =
        layers.iter().map(|_| Mutex::new(None)).collect();
    let (tx, rx) = mpsc::channel::<()>();
    let workers = PARALLEL.min(layers.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (job, next, results, layers) = (&job, &next, &results, &layers);
            let (diff_ids, chain) = (&diff_ids, &chain);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= layers.len() || job.abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = job.layer(i, &layers[i], &diff_ids[i], &chain[i]);
                    if r.is_err() {
                        job.abort.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
                let _ = tx.send(());
            });
        }
        drop(tx);
        let every = match mode {
            Mode::Terminal => Duration::from_millis(200),
            _ => Duration::from_secs(1),
        };
        let mut left = workers;
        while left > 0 {
            match rx.recv_timeout(every) {
                Ok(()) => left -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            progress.tick(false);
        }
        progress.tick(true);
    });

    let mut done = vec![];
    let mut failure: Option<Failure> = None;
    for r in results {
        match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(l)) => done.push(l),
            Some(Err(f)) if failure.as_ref().is_none_or(|g| g.aborted && !f.aborted) => {
                failure = Some(f)
            }
            _ => {}
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(done),
    }
}

/// The config, read whole (it is capped): a dropped connection is tried again, as a layer's.
fn fetch_config(client: &Client, cfg: &Desc) -> Result<Vec<u8>, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut bytes = vec![];
        let read = client.blob(&cfg.digest, 0).and_then(|(body, _)| {
            body.take(cfg.size + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::Msg(format!("image config {}: read: {e}", cfg.digest)))
        });
        let short = read.is_ok() && (bytes.len() as u64) < cfg.size;
        match read {
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(_) => {}
            Ok(_) if short && attempt < ATTEMPTS => {}
            Ok(_) => {
                if bytes.len() as u64 != cfg.size || digest::of(&bytes) != cfg.digest {
                    return Err(Error::Msg(format!(
                        "image config {}: digest mismatch: the registry sent {} bytes with digest {} (the manifest says {} bytes); nothing was stored",
                        cfg.digest,
                        bytes.len(),
                        digest::of(&bytes),
                        cfg.size
                    )));
                }
                return Ok(bytes);
            }
        }
        std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
    }
}

struct Failure {
    error: Error,
    /// Keep what was verified and the partial blob: the next pull resumes from them.
    keep: bool,
    /// Stopped because another layer failed (that one's error is the one to report).
    aborted: bool,
}

impl Failure {
    fn content(error: Error) -> Failure {
        Failure {
            error,
            keep: false,
            aborted: false,
        }
    }
}

struct Job<'a> {
    store: &'a Store,
    client: &'a Client,
    progress: &'a Progress,
    abort: AtomicBool,
}

/// The network side of one attempt: appends what it reads to the partial file, counts it,
/// and tells a dropped connection (retry from what is kept) from anything else.
struct Tee<'a> {
    body: Box<dyn Read + Send>,
    file: io::BufWriter<&'a File>,
    pos: u64,
    size: u64,
    /// Why the connection failed, when it did.
    dropped: &'a Mutex<Option<String>>,
    abort: &'a AtomicBool,
    /// Past the blob's half: the fault walk's `pull.blob-half` was reached.
    half: bool,
}

impl Tee<'_> {
    fn dropped(&self, why: String) -> io::Error {
        let msg = format!(
            "the connection failed at byte {} of {}: {why}",
            self.pos, self.size
        );
        *self.dropped.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
        io::Error::new(io::ErrorKind::UnexpectedEof, msg)
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped: another layer failed"));
        }
        let n = match self.body.read(buf) {
            Ok(n) => n,
            Err(e) => return Err(self.dropped(e.to_string())),
        };
        if n == 0 && self.pos < self.size {
            return Err(self.dropped("it ended early".into()));
        }
        if self.pos + n as u64 > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the registry sent more than the manifest's {} bytes",
                    self.size
                ),
            ));
        }
        self.file.write_all(&buf[..n])?;
        self.pos += n as u64;
        if !self.half && self.pos * 2 >= self.size && self.pos < self.size {
            // Half of the blob in partial/ (on disk, as a crash would find it).
            self.half = true;
            self.file.flush()?;
            husk_runtime::fault::point("pull.blob-half")
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(n)
    }
}

impl Drop for Tee<'_> {
    fn drop(&mut self) {
        // What arrived before a drop is a valid prefix: kept for the resume.
        let _ = self.file.flush();
    }
}

/// Counts bytes for the progress line.
struct Counted<'a, R> {
    inner: R,
    n: &'a AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// partial/<hex> opened and flock'd; reopened when a pull holding it meanwhile renamed or
/// removed it (the lock then belongs to a file no longer at that path).
fn lock_partial(p: &Path) -> Result<File, Error> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    loop {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .map_err(Error::io("open partial blob", p))?;
        husk_sys::fs::flock_exclusive(f.as_fd()).map_err(Error::io("lock partial blob", p))?;
        let mine = f.metadata().map_err(Error::io("stat partial blob", p))?;
        match std::fs::metadata(p) {
            Ok(now) if now.ino() == mine.ino() && now.dev() == mine.dev() => return Ok(f),
            _ => continue,
        }
    }
}

impl Job<'_> {
    fn layer(&self, i: usize, d: &Desc, diff_id: &str, chain: &str) -> Result<Layer, Failure> {
        let r = self.layer_inner(i, d, diff_id, chain);
        if r.is_err() {
            self.progress.set(i, State::Failed);
        }
        r
    }

    fn layer_inner(
        &self,
        i: usize,
        d: &Desc,
        diff_id: &str,
        chain: &str,
    ) -> Result<Layer, Failure> {
        let c = Failure::content;
        let dest = self.store.layer_dir(chain).map_err(c)?;
        let blob = self.store.blob_path(&d.digest).map_err(c)?;
        let record = |size| Layer {
            blob: d.digest.clone(),
            diff_id: diff_id.to_string(),
            chain_id: chain.to_string(),
            size,
        };
        if dest.is_dir() && blob.is_file() {
            self.progress.set(i, State::Exists);
            return Ok(record(import::layer_size(&dest)));
        }
        let hex = digest::parse(&d.digest).expect("checked by desc");
        let part_path = self.store.root.join("partial").join(hex);
        let part = lock_partial(&part_path).map_err(c)?;
        // Whoever held the lock before may have finished this blob and layer.
        if dest.is_dir() && blob.is_file() {
            let _ = std::fs::remove_file(&part_path);
            self.progress.set(i, State::Exists);
            return Ok(record(import::layer_size(&dest)));
        }
        let counter = &self.progress.bars[i].done;
        if blob.is_file() {
            self.progress.set(i, State::Unpacking);
            let _ = std::fs::remove_file(&part_path);
            let f = File::open(&blob).map_err(|e| c(Error::io("open layer blob", &blob)(e)))?;
            let (tmp, size) = import::unpack_stream(
                self.store,
                Counted {
                    inner: f,
                    n: counter,
                },
                &d.digest,
                diff_id,
            )
            .map_err(c)?;
            tmp.keep_layer(&dest).map_err(c)?;
            self.progress.set(i, State::Done);
            return Ok(record(size));
        }
        let unpack = !dest.is_dir();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.progress.set(i, State::Pulling);
            let dropped = Mutex::new(None);
            let r = self.attempt(d, diff_id, &part, &part_path, unpack, &dropped, counter);
            // A failed connection is reported as such, not as the unpack step it broke.
            let dropped = dropped.into_inner().unwrap_or_else(|p| p.into_inner());
            let r = match (r, dropped.is_some()) {
                (Err(_), true) => Err(Error::Msg(format!(
                    "blob {}: {}",
                    d.digest,
                    dropped.as_deref().unwrap_or_default()
                ))),
                (r, _) => r,
            };
            match r {
                Ok(size) => {
                    let size = match size {
                        Some((tmp, size)) => {
                            tmp.keep_layer(&dest).map_err(c)?;
                            husk_runtime::fault::point("pull.unpacked").map_err(c)?;
                            size
                        }
                        None => import::layer_size(&dest),
                    };
                    self.progress.set(i, State::Done);
                    return Ok(record(size));
                }
                Err(e) if self.abort.load(Ordering::Relaxed) => {
                    return Err(Failure {
                        error: e,
                        keep: true,
                        aborted: true,
                    });
                }
                Err(e) if dropped.is_some() && attempt < ATTEMPTS => {
                    self.progress.say_plain(&format!(
                        "{}: {e}; resuming (attempt {} of {ATTEMPTS})",
                        self.progress.bars[i].label,
                        attempt + 1
                    ));
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                Err(e) if dropped.is_some() => {
                    return Err(Failure {
                        error: Error::Msg(format!(
                            "{e} (after {ATTEMPTS} attempts; {} is kept and the next pull resumes from it)",
                            part_path.display()
                        )),
                        keep: true,
                        aborted: false,
                    });
                }
                Err(e) => {
                    // The bytes are wrong, not short: nothing of them may be resumed.
                    let _ = std::fs::remove_file(&part_path);
                    return Err(c(e));
                }
            }
        }
    }

    /// One pass over the blob: what partial/ holds, then the network from there. Returns the
    /// unpacked layer (still in tmp/) when `unpack`, after renaming the verified blob into
    /// blobs/.
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &self,
        d: &Desc,
        diff_id: &str,
        part: &File,
        part_path: &Path,
        unpack: bool,
        dropped: &Mutex<Option<String>>,
        counter: &AtomicU64,
    ) -> Result<Option<(crate::store::Tmp, u64)>, Error> {
        let mut have = part
            .metadata()
            .map_err(Error::io("stat partial blob", part_path))?
            .len();
        if have > d.size {
            have = 0;
        }
        let (body, start): (Box<dyn Read + Send>, u64) = if have == d.size {
            (Box::new(io::empty()), have)
        } else {
            self.client.blob(&d.digest, have).inspect_err(|e| {
                *dropped.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            })?
        };
        if start != have {
            have = start;
        }
        part.set_len(have)
            .map_err(Error::io("truncate partial blob", part_path))?;
        let mut append = part;
        use std::io::Seek;
        append
            .seek(io::SeekFrom::End(0))
            .map_err(Error::io("seek partial blob", part_path))?;
        let prefix = File::open(part_path)
            .map_err(Error::io("open partial blob", part_path))?
            .take(have);
        let tee = Tee {
            body,
            file: io::BufWriter::with_capacity(256 << 10, append),
            pos: have,
            size: d.size,
            dropped,
            abort: &self.abort,
            half: false,
        };
        let mut hashed = digest::Hashing::new(Counted {
            inner: prefix.chain(tee),
            n: counter,
        });
        let read_err = |e: io::Error| Error::Msg(format!("blob {}: {e}", d.digest));
        let unpacked = if unpack {
            import::unpack_stream(self.store, &mut hashed, &d.digest, diff_id).map(Some)
        } else {
            io::copy(&mut hashed, &mut io::sink())
                .map(|_| None)
                .map_err(read_err)
        };
        if unpacked.is_err() && dropped.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return unpacked;
        }
        // A blob that is not what the manifest names is reported as such, whatever its
        // unpacking said: the rest of it is read to know.
        let (got, n) = hashed.finish().map_err(read_err)?;
        if got != d.digest || n != d.size {
            return Err(Error::Msg(format!(
                "blob {}: digest mismatch: the registry sent {n} bytes with digest {got} (the manifest says {} bytes); nothing was stored",
                d.digest, d.size
            )));
        }
        let unpacked = unpacked?;
        husk_runtime::fault::point("pull.verified")?;
        let dest: PathBuf = self.store.blob_path(&d.digest)?;
        std::fs::rename(part_path, &dest).map_err(Error::io("rename into the store", &dest))?;
        husk_runtime::fault::point("pull.blob-stored")?;
        Ok(unpacked)
    }
}
