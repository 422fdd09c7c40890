//! `husk save`: images written as one archive both `docker load` and OCI tools read (the layout
//! docker 25+ writes): `blobs/sha256/<hex>` for manifests, configs and layers as stored,
//! docker's `manifest.json`, and an OCI `index.json` + `oci-layout`. The file appears under its
//! name only when complete.

use crate::store::{Image, Store};
use husk_runtime::Error;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn save(store: &Store, images: &[(Image, Vec<String>)], out: &Path) -> Result<(), Error> {
    let tmp_path = {
        let mut p = out.as_os_str().to_owned();
        p.push(format!(".husk-tmp-{}", std::process::id()));
        std::path::PathBuf::from(p)
    };
    let f = std::fs::File::create_new(&tmp_path).map_err(Error::io("create", &tmp_path))?;
    let tmp = crate::store::Tmp(tmp_path.clone());
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(256 << 10, f));
    let werr = |e: std::io::Error| Error::io("write archive", &tmp_path)(e);
    let mut written = BTreeSet::new();
    let mut docker = vec![];
    let mut index = vec![];
    for (img, names) in images {
        let mut blobs = vec![img.manifest.clone(), img.id.clone()];
        blobs.extend(img.layers.iter().map(|l| l.blob.clone()));
        for d in &blobs {
            if !written.insert(d.clone()) {
                continue;
            }
            let p = store.blob_path(d)?;
            let mut file = std::fs::File::open(&p).map_err(Error::io("open blob", &p))?;
            let len = file.metadata().map_err(Error::io("stat blob", &p))?.len();
            let mut h = tar::Header::new_gnu();
            h.set_size(len);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("blobs/sha256/{}", &d[7..]), &mut file)
                .map_err(werr)?;
        }
        docker.push(json!({
            "Config": format!("blobs/sha256/{}", &img.id[7..]),
            "RepoTags": names,
            "Layers": img.layers.iter().map(|l| format!("blobs/sha256/{}", &l.blob[7..])).collect::<Vec<_>>(),
        }));
        let m: Value = store.read_json(&img.manifest, "manifest")?;
        let mp = store.blob_path(&img.manifest)?;
        let size = std::fs::metadata(&mp)
            .map_err(Error::io("stat", &mp))?
            .len();
        let mt = m["mediaType"].as_str().unwrap_or(OCI_MANIFEST);
        let with_names: Vec<&String> = if names.is_empty() {
            vec![]
        } else {
            names.iter().collect()
        };
        for n in with_names {
            let tag = crate::reference::split(n).1;
            index.push(json!({"mediaType": mt, "digest": img.manifest, "size": size,
                "annotations": {"io.containerd.image.name": n, "org.opencontainers.image.ref.name": tag}}));
        }
        if names.is_empty() {
            index.push(json!({"mediaType": mt, "digest": img.manifest, "size": size}));
        }
    }
    let small = |b: &mut tar::Builder<_>, name: &str, v: Vec<u8>| -> Result<(), Error> {
        let mut h = tar::Header::new_gnu();
        h.set_size(v.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, v.as_slice()).map_err(werr)
    };
    let j = |v: &Value| serde_json::to_vec(v).map_err(|e| Error::Msg(e.to_string()));
    small(&mut b, "manifest.json", j(&json!(docker))?)?;
    small(
        &mut b,
        "index.json",
        j(
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}),
        )?,
    )?;
    small(
        &mut b,
        "oci-layout",
        j(&json!({"imageLayoutVersion": "1.0.0"}))?,
    )?;
    let mut w = b.into_inner().map_err(werr)?;
    w.flush().map_err(werr)?;
    w.get_ref().sync_all().map_err(werr)?;
    tmp.keep(out)
}
