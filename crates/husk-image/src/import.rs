//! Bringing images into the store: `docker save` archives (manifest.json), OCI archives and OCI
//! layout directories (index.json). Every blob is copied into the store by digest (checked
//! against the name the archive gives it), then each missing layer is unpacked into tmp/, its
//! diffID checked against the config's, and renamed into layers/<chain id>.

use crate::store::{Layer, Store};
use crate::{decompress, digest, readahead, unpack};
use husk_runtime::Error;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Where an image's files come from: archive entries already spooled into the store (path ->
/// digest), or a directory read on demand.
enum Files {
    Spooled(BTreeMap<String, String>),
    Dir(PathBuf),
}

impl Files {
    /// The store digest of `path`; `expected` must match when the archive names it by digest.
    fn blob(&self, store: &Store, path: &str, expected: Option<&str>) -> Result<String, Error> {
        let path = clean(path)?;
        let d = match self {
            Files::Spooled(m) => m
                .get(&path)
                .cloned()
                .ok_or_else(|| Error::Msg(format!("archive has no file \"{path}\"")))?,
            Files::Dir(dir) => {
                let p = dir.join(&path);
                let mut f = std::fs::File::open(&p).map_err(Error::io("open", &p))?;
                store.ingest(&mut f, expected)?.0
            }
        };
        if let Some(e) = expected
            && e != d
        {
            return Err(Error::Msg(format!(
                "{path}: digest mismatch: expected {e}, the content is {d}"
            )));
        }
        Ok(d)
    }

    fn has(&self, path: &str) -> bool {
        match self {
            Files::Spooled(m) => m.contains_key(path),
            Files::Dir(d) => d.join(path).is_file(),
        }
    }
}

fn clean(p: &str) -> Result<String, Error> {
    crate::unpack::clean(p.as_bytes())
        .map(|c| c.to_string_lossy().into_owned())
        .map_err(|why| Error::Msg(format!("archive path \"{p}\": {why}")))
}

/// `husk load -i FILE`: a docker-archive or oci-archive (gzip/zstd-compressed or plain).
/// Returns the names (or ids, for unnamed images) loaded.
pub fn load_archive(store: &Store, file: &Path) -> Result<Vec<String>, Error> {
    let f = std::fs::File::open(file).map_err(Error::io("open archive", file))?;
    let r = decompress::auto(f).map_err(Error::io("read archive", file))?;
    let mut ar = tar::Archive::new(r);
    let mut files = BTreeMap::new();
    let mut links = vec![];
    let bad = |e: std::io::Error| Error::Msg(format!("{}: not a tar archive: {e}", file.display()));
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()))?;
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous => {
                let (d, _) = store.ingest(&mut entry, None)?;
                files.insert(path, d);
            }
            // docker-archive's legacy <v1 id>/layer.tar links to the layer: resolved below.
            T::Symlink | T::Link => {
                if let Some(t) = entry.link_name_bytes() {
                    let t = String::from_utf8_lossy(&t).into_owned();
                    let base = match entry.header().entry_type() {
                        T::Symlink => Path::new(&path).parent().unwrap_or(Path::new("")).join(t),
                        _ => PathBuf::from(t),
                    };
                    links.push((path, base.to_string_lossy().into_owned()));
                }
            }
            _ => {}
        }
    }
    for (link, target) in links {
        if let Ok(t) = clean_dots(&target)
            && let Some(d) = files.get(&t).cloned()
        {
            files.insert(link, d);
        }
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    import(store, &Files::Spooled(files), &stem, None)
}

/// `a/b/../c` -> `a/c`, refusing to climb above the archive's root.
fn clean_dots(p: &str) -> Result<String, Error> {
    let mut out: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()
                    .ok_or_else(|| Error::Msg(format!("link \"{p}\" leads outside the archive")))?;
            }
            c => out.push(c),
        }
    }
    Ok(out.join("/"))
}

/// `oci:DIR[:TAG]`: the image tagged TAG (or the only one) in an OCI layout directory.
pub fn load_layout(store: &Store, dir: &Path, tag: Option<&str>) -> Result<Vec<String>, Error> {
    let stem = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    import(
        store,
        &Files::Dir(dir.to_path_buf()),
        &stem,
        Some(tag.unwrap_or("")),
    )
}

fn import(
    store: &Store,
    files: &Files,
    stem: &str,
    want: Option<&str>,
) -> Result<Vec<String>, Error> {
    let mut loaded = vec![];
    if files.has("manifest.json") && want.is_none() {
        let d = files.blob(store, "manifest.json", None)?;
        let m: Vec<Value> = store.read_json(&d, "docker-archive manifest.json")?;
        for e in m {
            let cfg = files.blob(store, str_of(&e["Config"], "manifest.json Config")?, None)?;
            let mut blobs = vec![];
            for l in e["Layers"].as_array().into_iter().flatten() {
                blobs.push(files.blob(store, str_of(l, "manifest.json Layers")?, None)?);
            }
            let mut names = vec![];
            for t in e["RepoTags"].as_array().into_iter().flatten() {
                names.push(crate::reference::normalize(str_of(t, "RepoTags")?)?);
            }
            let manifest = docker_manifest(store, &cfg, &blobs)?;
            loaded.extend(commit(store, &manifest, &cfg, &blobs, names)?);
        }
        return Ok(loaded);
    }
    if !files.has("index.json") {
        return Err(Error::Msg(
            "neither manifest.json (docker-archive) nor index.json (OCI layout) found".into(),
        ));
    }
    let d = files.blob(store, "index.json", None)?;
    let index: Value = store.read_json(&d, "index.json")?;
    let mut found = false;
    for desc in index["manifests"].as_array().into_iter().flatten() {
        let ann = &desc["annotations"];
        let ref_name = ann["io.containerd.image.name"]
            .as_str()
            .or(ann["org.opencontainers.image.ref.name"].as_str());
        if let Some(w) = want
            && !w.is_empty()
            && ann["org.opencontainers.image.ref.name"].as_str() != Some(w)
            && ref_name != Some(w)
        {
            continue;
        }
        found = true;
        let md = resolve_platform(store, files, desc)?;
        let m: Value = store.read_json(&md, "manifest")?;
        let cfg_d = str_of(&m["config"]["digest"], "manifest config digest")?;
        let cfg = blob_by_digest(store, files, cfg_d)?;
        let mut blobs = vec![];
        for l in m["layers"].as_array().into_iter().flatten() {
            blobs.push(blob_by_digest(
                store,
                files,
                str_of(&l["digest"], "layer digest")?,
            )?);
        }
        // A bare tag (skopeo's oci-archive:FILE:TAG) names the image after the archive.
        let names = match ref_name {
            Some(n) if n.contains(['/', ':']) || n.contains('.') => {
                vec![crate::reference::normalize(n)?]
            }
            Some(tag) if !stem.is_empty() => {
                vec![crate::reference::normalize(&format!(
                    "localhost/{}:{tag}",
                    stem.to_ascii_lowercase()
                ))?]
            }
            _ => vec![],
        };
        loaded.extend(commit(store, &md, &cfg, &blobs, names)?);
    }
    if !found {
        return Err(Error::Msg(format!(
            "no image tagged \"{}\" in the layout",
            want.unwrap_or_default()
        )));
    }
    Ok(loaded)
}

fn str_of<'a>(v: &'a Value, what: &str) -> Result<&'a str, Error> {
    v.as_str()
        .ok_or_else(|| Error::Msg(format!("{what}: missing or not a string")))
}

fn blob_by_digest(store: &Store, files: &Files, d: &str) -> Result<String, Error> {
    let hex =
        digest::parse(d).ok_or_else(|| Error::Msg(format!("\"{d}\" is not a sha256 digest")))?;
    files.blob(store, &format!("blobs/sha256/{hex}"), Some(d))
}

/// An index's entry for this machine (linux and this arch), or the manifest itself.
fn resolve_platform(store: &Store, files: &Files, desc: &Value) -> Result<String, Error> {
    let d = blob_by_digest(store, files, str_of(&desc["digest"], "index digest")?)?;
    let mt = desc["mediaType"].as_str().unwrap_or_default();
    let v: Value = store.read_json(&d, "manifest")?;
    let is_index = mt == OCI_INDEX || mt == DOCKER_LIST || v["manifests"].is_array();
    if !is_index {
        return Ok(d);
    }
    let chosen = crate::platform::Platform::host().pick(&v, &d)?;
    resolve_platform(store, files, chosen)
}

pub use crate::platform::host_arch as platform_arch;

/// docker-archive has no manifest: husk writes the schema2 one `docker push` would.
fn docker_manifest(store: &Store, cfg: &str, blobs: &[String]) -> Result<String, Error> {
    let size = |d: &str| -> Result<u64, Error> {
        let p = store.blob_path(d)?;
        Ok(std::fs::metadata(&p).map_err(Error::io("stat", &p))?.len())
    };
    let mut layers = vec![];
    for b in blobs {
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
            "size": size(b)?, "digest": b,
        }));
    }
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": size(cfg)?, "digest": cfg},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&m).map_err(|e| Error::Msg(e.to_string()))?;
    Ok(store.ingest(&mut bytes.as_slice(), None)?.0)
}

/// Unpacks the layers that are missing and records the image under `names`.
fn commit(
    store: &Store,
    manifest: &str,
    cfg: &str,
    blobs: &[String],
    names: Vec<String>,
) -> Result<Vec<String>, Error> {
    let config: Value = store.read_json(cfg, "image config")?;
    let diff_ids = diff_ids(&config, cfg, blobs.len())?;
    let chain = digest::chain_ids(&diff_ids);
    let mut layers = vec![];
    for (i, blob) in blobs.iter().enumerate() {
        let dest = store.layer_dir(&chain[i])?;
        let size = if dest.is_dir() {
            layer_size(&dest)
        } else {
            unpack_layer(store, blob, &diff_ids[i], &dest)?
        };
        layers.push(Layer {
            blob: blob.clone(),
            diff_id: diff_ids[i].clone(),
            chain_id: chain[i].clone(),
            size,
        });
    }
    store.record(manifest, cfg, layers, names)
}

/// The config's rootfs.diff_ids, one per layer of the manifest, each a sha256 digest.
pub fn diff_ids(config: &Value, cfg: &str, layers: usize) -> Result<Vec<String>, Error> {
    let mut out = vec![];
    for v in config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let d = v.as_str().unwrap_or_default();
        if digest::parse(d).is_none() {
            return Err(Error::Msg(format!(
                "image config {cfg}: diff_id \"{d}\" is not a sha256 digest"
            )));
        }
        out.push(d.to_string());
    }
    if out.len() != layers {
        return Err(Error::Msg(format!(
            "image config {cfg}: {} diff_ids for {} layers",
            out.len(),
            layers
        )));
    }
    Ok(out)
}

/// An unpacked layer's content size, as recorded when it was unpacked.
pub fn layer_size(dest: &Path) -> u64 {
    std::fs::read_to_string(dest.join("size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A stored blob unpacked as the layer `dest` (see `unpack_stream`).
pub(crate) fn unpack_layer(
    store: &Store,
    blob: &str,
    diff_id: &str,
    dest: &Path,
) -> Result<u64, Error> {
    let p = store.blob_path(blob)?;
    let f = std::fs::File::open(&p).map_err(Error::io("open layer blob", &p))?;
    let (tmp, bytes) = unpack_stream(store, f, blob, diff_id)?;
    tmp.keep_layer(dest)?;
    Ok(bytes)
}

/// A layer blob's stream -> decompress -> diffID hash -> hostile-safe unpack into tmp/. The
/// unpacked layer (`diff/` and its `size`) is returned still under tmp/: the caller renames it
/// into layers/ once everything else it checks holds. One path for load and pull. Three threads:
/// `blob_stream` (for a pull: network, blob digest, partial file), gunzip + diffID digest, and
/// tar + file creation.
pub fn unpack_stream(
    store: &Store,
    blob_stream: impl std::io::Read + Send,
    blob: &str,
    diff_id: &str,
) -> Result<(crate::store::Tmp, u64), Error> {
    let tmp = store.tmp("layer");
    let diff = tmp.0.join("diff");
    std::fs::create_dir_all(&diff).map_err(Error::io("create layer directory", &diff))?;
    let read_err = |e: std::io::Error| Error::Msg(format!("layer {blob}: read: {e}"));
    let (r, _) = readahead::split(blob_stream, |compressed| -> Result<_, Error> {
        let r = decompress::auto(compressed).map_err(read_err)?;
        let (stats, h) =
            readahead::split(digest::Hashing::new(r), |tar| unpack::unpack(tar, &diff));
        let stats = stats.map_err(|e| Error::Msg(format!("layer {blob}: {e}")))?;
        Ok((stats, h.finish().map_err(read_err)?.0))
    });
    let (stats, got) = r?;
    if got != diff_id {
        return Err(Error::Msg(format!(
            "layer {blob}: diffID mismatch: the config says {diff_id}, the content is {got}; the layer was not stored"
        )));
    }
    let sp = tmp.0.join("size");
    std::fs::write(&sp, stats.bytes.to_string()).map_err(Error::io("write", &sp))?;
    Ok((tmp, stats.bytes))
}
