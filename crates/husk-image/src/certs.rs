//! A registry's own TLS trust, as docker and podman configure it: the first of
//! `/etc/containers/certs.d/HOST[:PORT]/` and `/etc/docker/certs.d/HOST[:PORT]/` that exists
//! (or podman's `--cert-dir DIR` instead): each `*.crt` a CA trusted for that registry, a
//! `*.cert` with the `*.key` of the same name a client certificate.
//!
//! The CAs found replace the built-in roots for that registry (ureq takes one root set): a
//! registry given a CA is one with a private CA.

use husk_runtime::Error;
use std::path::{Path, PathBuf};
use ureq::tls::{Certificate, ClientCert, PemItem};

const DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

#[derive(Default)]
pub struct Tls {
    /// Where they came from, for errors.
    pub dir: Option<PathBuf>,
    pub cas: Vec<Certificate<'static>>,
    pub client: Option<ClientCert>,
}

/// Where `registry`'s files would be: what an error about an untrusted certificate names.
pub fn default_dir(registry: &str) -> PathBuf {
    Path::new(DIRS[0]).join(registry)
}

pub fn for_registry(registry: &str, cert_dir: Option<&Path>) -> Result<Tls, Error> {
    let dir = match cert_dir {
        Some(d) => d.to_path_buf(),
        None => match DIRS
            .iter()
            .map(|d| Path::new(d).join(registry))
            .find(|d| d.is_dir())
        {
            Some(d) => d,
            None => return Ok(Tls::default()),
        },
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(Error::io("read registry certificates directory", &dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut tls = Tls::default();
    for p in &names {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => tls.cas.extend(pem(p)?.0),
            Some("cert") => {
                let key = p.with_extension("key");
                let (chain, _) = pem(p)?;
                let Some(k) = pem(&key)?.1 else {
                    return Err(Error::Msg(format!(
                        "{}: a client certificate without its key (no private key in {})",
                        p.display(),
                        key.display()
                    )));
                };
                tls.client = Some(ClientCert::new_with_certs(&chain, k));
            }
            _ => {}
        }
    }
    tls.dir = Some(dir);
    Ok(tls)
}

/// The certificates and the (first) private key of a PEM file.
fn pem(
    p: &Path,
) -> Result<
    (
        Vec<Certificate<'static>>,
        Option<ureq::tls::PrivateKey<'static>>,
    ),
    Error,
> {
    let bytes = std::fs::read(p).map_err(Error::io("read", p))?;
    let (mut certs, mut key) = (vec![], None);
    for item in ureq::tls::parse_pem(&bytes) {
        match item.map_err(|e| Error::Msg(format!("{}: not PEM: {e}", p.display())))? {
            PemItem::Certificate(c) => certs.push(c),
            PemItem::PrivateKey(k) if key.is_none() => key = Some(k),
            _ => {}
        }
    }
    if certs.is_empty() && key.is_none() {
        return Err(Error::Msg(format!(
            "{}: no PEM certificate or key in it",
            p.display()
        )));
    }
    Ok((certs, key))
}
