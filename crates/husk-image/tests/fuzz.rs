//! Fuzz targets of husk-image: hostile tar layers unpacked into a temporary directory (nothing
//! may be written outside it: a bait directory next to it, named by absolute symlinks and hard
//! links in the layers, must stay as it was), and OCI image layouts whose index, manifest and
//! config are mutated (loaded into a temporary store), and a registry's auth answers (its
//! `WWW-Authenticate` challenge, its token endpoint's JSON). Refusals are fine, panics are not.

use husk_fuzz::{apply, edits, fuzz, proptest::prelude::*};
use husk_image::store::Store;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A fresh directory under the test target dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "fuzz-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Path components of hostile layers; `@BAIT` becomes the bait directory's absolute path.
const PARTS: &[&str] = &[
    "a",
    "b",
    "..",
    ".",
    "",
    "etc",
    "link",
    "dir",
    ".wh.a",
    ".wh..wh..opq",
    ".wh.",
    "@BAIT",
    "marker",
    "dev",
    "x",
];

#[derive(Debug, Clone)]
struct Entry {
    kind: u8,
    path: Vec<&'static str>,
    link: Vec<&'static str>,
    absolute: (bool, bool),
    mode: u32,
    ids: (u64, u64),
    data: Vec<u8>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let parts = || prop::collection::vec(prop::sample::select(PARTS), 0..5);
    (
        0u8..8,
        parts(),
        parts(),
        any::<(bool, bool)>(),
        prop_oneof![
            Just(0o644u32),
            Just(0o755),
            Just(0o4755),
            Just(0o7777),
            any::<u32>()
        ],
        prop_oneof![
            Just((0u64, 0u64)),
            Just((1000, 1000)),
            any::<(u32, u32)>().prop_map(|(a, b)| (a as u64, b as u64))
        ],
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, path, link, absolute, mode, ids, data)| Entry {
            kind,
            path,
            link,
            absolute,
            mode,
            ids,
            data,
        })
}

fn join(parts: &[&str], absolute: bool, bait: &str) -> Vec<u8> {
    let s = parts
        .iter()
        .map(|p| if *p == "@BAIT" { bait } else { p })
        .collect::<Vec<_>>()
        .join("/");
    let s = if absolute { format!("/{s}") } else { s };
    s.into_bytes()
}

/// The tar stream of `entries`, names written raw (the tar crate's setters refuse `..`, which
/// is what a hostile layer carries).
fn tar_of(entries: &[Entry], bait: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        use tar::EntryType as T;
        let kind = [
            T::Regular,
            T::Directory,
            T::Symlink,
            T::Link,
            T::Char,
            T::Fifo,
            T::Block,
            T::Regular,
        ][e.kind as usize];
        h.set_entry_type(kind);
        let name = join(&e.path, e.absolute.0, bait);
        let link = join(&e.link, e.absolute.1, bait);
        let g = h.as_gnu_mut().unwrap();
        let n = name.len().min(99);
        g.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(99);
        g.linkname[..l].copy_from_slice(&link[..l]);
        h.set_mode(e.mode);
        h.set_uid(e.ids.0);
        h.set_gid(e.ids.1);
        h.set_mtime(1_700_000_000);
        if kind == T::Char || kind == T::Block {
            let _ = h.set_device_major(1);
            let _ = h.set_device_minor(3);
        }
        let data: &[u8] = if kind == T::Regular { &e.data } else { &[] };
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Every path under `dir`, relative, with its type.
fn listing(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            v.push(format!(
                "{} {:?}",
                p.strip_prefix(dir).unwrap().display(),
                ft
            ));
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn tar_layers_never_write_outside_the_layer() {
    fuzz(
        "tar layer unpack",
        prop::collection::vec(entry(), 1..12),
        |entries| {
            let s = Scratch::new("unpack");
            let (layer, bait) = (s.0.join("layer"), s.0.join("bait"));
            std::fs::create_dir_all(&layer).unwrap();
            std::fs::create_dir_all(&bait).unwrap();
            std::fs::write(bait.join("marker"), "bait\n").unwrap();
            let before = listing(&bait);
            let tar = tar_of(&entries, &bait.to_string_lossy());
            let _ = husk_image::unpack::unpack(&tar[..], &layer);
            assert_eq!(listing(&bait), before, "the bait directory was written");
            assert_eq!(
                std::fs::read_to_string(bait.join("marker")).unwrap(),
                "bait\n"
            );
            let mut top: Vec<_> = std::fs::read_dir(&s.0)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            top.sort();
            assert_eq!(top, ["bait", "layer"], "written next to the layer");
        },
    );
}

const IMAGE_KEYS: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "manifests",
    "digest",
    "size",
    "annotations",
    "org.opencontainers.image.ref.name",
    "platform",
    "architecture",
    "os",
    "variant",
    "config",
    "layers",
    "rootfs",
    "type",
    "diff_ids",
    "Cmd",
    "Entrypoint",
    "Env",
    "User",
    "WorkingDir",
    "StopSignal",
    "urls",
];
const IMAGE_STRINGS: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "sha256:",
    "sha256:../../etc",
    "sha512:00",
    "amd64",
    "arm64",
    "linux",
    "windows",
    "layers",
    "v1",
    "latest",
    "/bin/sh",
    "0:0",
    "nobody",
    "SIGTERM",
    "",
];

fn blob(dir: &Path, bytes: &[u8]) -> String {
    let d = husk_image::digest::of(bytes);
    let hex = d.strip_prefix("sha256:").unwrap_or(&d).to_string();
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    d
}

fn descriptor(media: &str, digest: &str, size: usize) -> Value {
    json!({"mediaType": media, "digest": digest, "size": size})
}

#[test]
fn oci_layouts_with_mutated_index_manifest_and_config() {
    let s = (
        edits(IMAGE_KEYS, IMAGE_STRINGS),
        edits(IMAGE_KEYS, IMAGE_STRINGS),
        edits(IMAGE_KEYS, IMAGE_STRINGS),
        any::<[bool; 3]>(),
        prop::option::of(prop::sample::select(&["v1", "latest", ""][..])),
    );
    fuzz(
        "OCI layout index/manifest/config",
        s,
        |(ce, me, ie, which, tag)| {
            let s = Scratch::new("layout");
            let (layout, store_dir) = (s.0.join("layout"), s.0.join("store"));
            std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
            std::fs::write(
                layout.join("oci-layout"),
                r#"{"imageLayoutVersion":"1.0.0"}"#,
            )
            .unwrap();
            let layer = tar_of(
                &[Entry {
                    kind: 0,
                    path: vec!["a"],
                    link: vec![],
                    absolute: (false, false),
                    mode: 0o644,
                    ids: (0, 0),
                    data: b"hi\n".to_vec(),
                }],
                "",
            );
            let dl = blob(&layout, &layer);
            let mut config = json!({"architecture": husk_image::import::platform_arch(), "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [dl]},
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"}});
            if which[0] {
                apply(&mut config, &ce);
            }
            let cb = config.to_string().into_bytes();
            let dc = blob(&layout, &cb);
            let mut manifest = json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &dc, cb.len()),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &dl, layer.len())]});
            if which[1] {
                apply(&mut manifest, &me);
            }
            let mb = manifest.to_string().into_bytes();
            let dm = blob(&layout, &mb);
            let mut index = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dm,
            "size": mb.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
            if which[2] {
                apply(&mut index, &ie);
            }
            std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
            let store = Store::open(&store_dir, true).unwrap();
            let _ = husk_image::import::load_layout(&store, &layout, tag);
            // Nothing half-written is left visible in the store's staging area.
            let tmp = listing(&store_dir.join("tmp"));
            assert!(tmp.is_empty(), "left in the store's tmp/: {tmp:?}");
        },
    );
}

/// Pieces of `WWW-Authenticate` headers: schemes, keys, quotes, separators, odd bytes.
const CHALLENGE_PARTS: &[&str] = &[
    "Bearer",
    "Basic",
    "bearer",
    " ",
    ",",
    "=",
    "\"",
    "realm",
    "service",
    "scope",
    "https://auth.example/token",
    "registry.example",
    "repository:a/b:pull",
    "\u{e9}",
    "\u{1F600}",
    "\t",
    "\\",
    "==",
    ",,",
    "a=b",
    "\"\"",
];

#[test]
fn registry_auth_challenges_parse_without_panics_and_keep_quoted_values() {
    fuzz(
        "WWW-Authenticate challenge",
        (
            prop::collection::vec(prop::sample::select(CHALLENGE_PARTS), 0..24),
            prop::collection::vec(("[a-zA-Z]{1,8}", "[^\"]{0,16}"), 0..5),
        ),
        |(parts, params)| {
            let _ = husk_image::registry::challenge(&parts.concat());
            // Well-formed: every quoted value comes back as written, its key lowercased.
            let h = params
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",");
            let (scheme, got) = husk_image::registry::challenge(&format!("Bearer {h}"));
            assert_eq!(scheme, "bearer");
            let want: Vec<_> = params
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            assert_eq!(got, want, "{h}");
        },
    );
}

#[test]
fn token_answers_are_parsed_and_never_become_header_lines() {
    fuzz(
        "token endpoint answer",
        (
            prop::option::of(any::<String>()),
            prop::option::of(any::<String>()),
            prop::collection::vec(any::<u8>(), 0..64),
        ),
        |(token, access, junk)| {
            let _ = husk_image::registry::token_from(&junk);
            let mut v = serde_json::Map::new();
            if let Some(t) = &token {
                v.insert("token".into(), json!(t));
            }
            if let Some(t) = &access {
                v.insert("access_token".into(), json!(t));
            }
            let body = serde_json::to_vec(&Value::Object(v)).unwrap();
            match husk_image::registry::token_from(&body) {
                Ok(t) => {
                    assert!(
                        !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()),
                        "{t:?}"
                    );
                    assert!(token.as_deref() == Some(&t) || access.as_deref() == Some(&t));
                }
                Err(_) => {
                    let usable = |t: &Option<String>| {
                        t.as_deref().is_some_and(|t| {
                            !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
                        })
                    };
                    let chosen = token.as_ref().or(access.as_ref());
                    assert!(
                        !usable(&chosen.cloned()),
                        "refused a usable token: {chosen:?}"
                    );
                }
            }
        },
    );
}
