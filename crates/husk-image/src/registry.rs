//! The pull side of the OCI distribution spec 1.1 over blocking HTTP (ureq + rustls): the
//! `/v2/` ping, manifests by tag or digest, blobs (with `Range` to resume), the
//! `WWW-Authenticate` challenge (Bearer token flow, Basic), and plain HTTP for registries that
//! are insecure (localhost, 127.0.0.0/8, ::1, or `--tls-verify=false`): HTTPS without
//! certificate checks first, then HTTP, as docker does for localhost.

use crate::auth::Creds;
use crate::digest;
use husk_runtime::Error;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

/// A manifest or index is read whole; registries refuse ones over 4 MiB (distribution spec).
pub const MANIFEST_CAP: u64 = 4 << 20;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// An image name taken apart: `registry/repo:tag` or `registry/repo@digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// The normalized name, as the store records it.
    pub name: String,
    /// As named (`docker.io`, `127.0.0.1:5000`): the key of credentials.
    pub registry: String,
    pub repo: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

impl Ref {
    pub fn parse(s: &str) -> Result<Ref, Error> {
        let name = crate::reference::normalize(s)?;
        let (registry, rest) = name.split_once('/').expect("normalize gives host/path");
        let (repo, reference) = match rest.split_once('@') {
            Some(x) => x,
            None => rest.rsplit_once(':').expect("normalize gives a tag"),
        };
        Ok(Ref {
            registry: registry.to_string(),
            repo: repo.to_string(),
            reference: reference.to_string(),
            name,
        })
    }

    /// The image `name` (normalized) as registries.conf routes it: fetched from its
    /// `location`, recorded under `name`; the flag is the table's `insecure`.
    pub fn routed(name: &str, conf: &crate::registries::Config) -> Result<(Ref, bool), Error> {
        let route = conf.route(name)?;
        let mut r = Ref::parse(&route.physical)?;
        r.name = name.to_string();
        Ok((r, route.insecure))
    }

    /// docker.io's API lives on another host.
    pub fn endpoint(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" => "registry-1.docker.io",
            r => r,
        }
    }

    /// Registries docker and podman reach over plain HTTP without being told: this machine.
    pub fn is_local(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.registry.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback())
    }
}

pub struct Options {
    /// None: verify certificates except for local registries without certs.d files.
    pub tls_verify: Option<bool>,
    pub creds: Option<Creds>,
    /// podman's `--cert-dir`: the registry's CAs and client certificate (crate::certs).
    pub cert_dir: Option<std::path::PathBuf>,
}

pub struct Client {
    agent: ureq::Agent,
    /// `https://host` or `http://host`.
    base: String,
    registry: String,
    repo: String,
    creds: Option<Creds>,
    /// The `Authorization` value the last challenge earned, shared by the layer threads.
    auth: Mutex<Option<String>>,
}

fn agent(verify: bool, certs: crate::certs::Tls) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder()
        .disable_verification(!verify)
        .client_cert(certs.client);
    if !certs.cas.is_empty() {
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs.cas));
    }
    let tls = tls.build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        // Blob storage behind a redirect (S3, a CDN) gets no registry token.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .max_redirects(10)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A registry that stops sending mid-blob is a failed read, resumed by the caller.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("husk/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn net(step: &str, url: &str) -> impl Fn(ureq::Error) -> Error {
    let what = format!("{step} {url}");
    move |e| Error::Msg(format!("{what}: {e}"))
}

/// A registry's answer other than the one wanted, with the spec's error body when it has one.
fn refused(what: &str, resp: ureq::http::Response<ureq::Body>) -> Error {
    let status = resp.status();
    let mut body = vec![];
    let _ = resp
        .into_body()
        .into_reader()
        .take(4096)
        .read_to_end(&mut body);
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = &v["errors"][0];
            Some(format!(
                "{}: {}",
                e["code"].as_str()?,
                e["message"].as_str().unwrap_or("")
            ))
        })
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect()
        });
    Error::Msg(format!("{what}: the registry answered {status} {detail}"))
}

/// `Bearer realm="…",service="…",scope="…"` -> ("bearer", [(key, value)]): a registry's
/// `WWW-Authenticate` header, which is hostile input (fuzzed in tests/fuzz.rs).
pub fn challenge(h: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = vec![];
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, after)) = s.split_once('=') else {
            break;
        };
        let (v, tail) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"').unwrap_or(q.len());
                (&q[..end], q.get(end + 1..).unwrap_or(""))
            }
            None => after.split_once(',').map_or((after, ""), |(v, t)| (v, t)),
        };
        params.push((k.trim().to_ascii_lowercase(), v.to_string()));
        s = tail.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
}

/// The token in a token endpoint's JSON answer (`token`, else `access_token`), refused unless
/// it can go into the Authorization header as it is: visible ASCII only, so a hostile answer
/// cannot end the header line and add one of its own.
pub fn token_from(body: &[u8]) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let t = v["token"]
        .as_str()
        .or(v["access_token"].as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no token")?;
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token is not a header value (visible ASCII only)".into());
    }
    Ok(t.to_string())
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// Finds how to reach the registry (HTTPS, or HTTP for an insecure one) by its `/v2/`
    /// endpoint, and answers its challenge there when it makes one.
    pub fn connect(r: &Ref, o: &Options) -> Result<Client, Error> {
        let certs = crate::certs::for_registry(&r.registry, o.cert_dir.as_deref())?;
        // A local registry given a CA is one whose certificate is to be checked.
        let insecure = match o.tls_verify {
            Some(v) => !v,
            None => r.is_local() && certs.cas.is_empty(),
        };
        let trust = certs.dir.clone();
        let mut c = Client {
            agent: agent(!insecure, certs),
            base: format!("https://{}", r.endpoint()),
            registry: r.registry.clone(),
            repo: r.repo.clone(),
            creds: o.creds.clone(),
            auth: Mutex::new(None),
        };
        let resp = match c.ping() {
            Ok(resp) => resp,
            Err(tls) if insecure => {
                c.base = format!("http://{}", r.endpoint());
                c.ping()
                    .map_err(|plain| Error::Msg(format!("{tls}; over plain HTTP: {plain}")))?
            }
            Err(Error::Msg(m)) if m.contains("certificate") => {
                let hint = match &trust {
                    Some(d) => format!("the CAs in {} do not vouch for it", d.display()),
                    None => format!(
                        "no CA husk trusts signed it: put the registry's CA in {}/ca.crt, or --tls-verify=false",
                        crate::certs::default_dir(&r.registry).display()
                    ),
                };
                return Err(Error::Msg(format!(
                    "{m} ({}'s TLS certificate: {hint})",
                    r.registry
                )));
            }
            Err(e) => return Err(e),
        };
        if resp.status() == 401 {
            c.authenticate(&resp)?;
        }
        Ok(c)
    }

    fn ping(&self) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let url = format!("{}/v2/", self.base);
        self.agent
            .get(&url)
            .call()
            .map_err(net("reach the registry at", &url))
    }

    /// Earns an `Authorization` value for the challenge `resp` carries.
    fn authenticate(&self, resp: &ureq::http::Response<ureq::Body>) -> Result<(), Error> {
        let h = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (scheme, params) = challenge(h);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let login = || {
            Error::Msg(format!(
                "{}: the registry wants credentials{}: husk login {}",
                self.registry,
                if self.creds.is_some() {
                    " and refused the ones husk has"
                } else {
                    ""
                },
                self.registry
            ))
        };
        let value = match scheme.as_str() {
            "basic" => format!("Basic {}", self.creds.as_ref().ok_or_else(login)?.basic()),
            "bearer" => {
                let realm = param("realm")
                    .filter(|r| r.starts_with("http"))
                    .ok_or_else(|| {
                        Error::Msg(format!(
                            "{}: a Bearer challenge without an http(s) realm: \"{h}\"",
                            self.registry
                        ))
                    })?;
                let scope = format!("repository:{}:pull", self.repo);
                let mut url = format!("{realm}?scope={}", query_escape(&scope));
                if let Some(s) = param("service") {
                    url.push_str(&format!("&service={}", query_escape(&s)));
                }
                let mut req = self.agent.get(&url);
                if let Some(c) = &self.creds {
                    req = req.header("Authorization", format!("Basic {}", c.basic()));
                }
                let tr = req.call().map_err(net("get a token from", &realm))?;
                if tr.status() == 401 || tr.status() == 403 {
                    return Err(login());
                }
                if tr.status() != 200 {
                    return Err(refused(&format!("token from {realm}"), tr));
                }
                let mut body = vec![];
                tr.into_body()
                    .into_reader()
                    .take(MANIFEST_CAP)
                    .read_to_end(&mut body)
                    .map_err(|e| Error::Msg(format!("token from {realm}: {e}")))?;
                let t = token_from(&body)
                    .map_err(|e| Error::Msg(format!("token from {realm}: {e}")))?;
                format!("Bearer {t}")
            }
            _ => {
                return Err(Error::Msg(format!(
                    "{}: the registry answered 401 with an unknown challenge \"{h}\"",
                    self.registry
                )));
            }
        };
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(())
    }

    /// GET with the current credentials; a 401 is answered once and the request repeated.
    fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        from: u64,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let mut answered = false;
        loop {
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if from > 0 {
                req = req.header("Range", format!("bytes={from}-"));
            }
            let auth = self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let resp = req.call().map_err(net("GET", url))?;
            if resp.status() == 401 && !answered {
                answered = true;
                self.authenticate(&resp)?;
                continue;
            }
            if resp.status() == 401 {
                return Err(Error::Msg(format!(
                    "GET {url}: the registry refused the credentials (401): husk login {}",
                    self.registry
                )));
            }
            return Ok(resp);
        }
    }

    /// A manifest or index by tag or digest: (bytes, media type, digest). Its digest is
    /// checked against the reference when that is a digest, and against the registry's
    /// Docker-Content-Digest header when it sends one.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String, String), Error> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        let what = format!("{}/{}:{reference}", self.registry, self.repo);
        let resp = self.get(&url, Some(ACCEPT), 0)?;
        if resp.status() == 404 {
            return Err(refused(&format!("{what}: not found"), resp));
        }
        if resp.status() != 200 {
            return Err(refused(&format!("manifest {what}"), resp));
        }
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
        };
        let ctype = header("content-type").unwrap_or_default();
        let said = header("docker-content-digest");
        let mut bytes = vec![];
        resp.into_body()
            .into_reader()
            .take(MANIFEST_CAP + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Msg(format!("manifest {what}: read: {e}")))?;
        if bytes.len() as u64 > MANIFEST_CAP {
            return Err(Error::Msg(format!(
                "manifest {what} is larger than {MANIFEST_CAP} bytes"
            )));
        }
        let got = digest::of(&bytes);
        for want in [Some(reference.to_string()), said].into_iter().flatten() {
            if want.starts_with("sha256:") && want != got {
                return Err(Error::Msg(format!(
                    "manifest {what}: digest mismatch: expected {want}, the content is {got}"
                )));
            }
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Msg(format!("manifest {what}: not JSON: {e}")))?;
        let mt = v["mediaType"]
            .as_str()
            .filter(|m| !m.is_empty())
            .map(String::from)
            .unwrap_or(ctype);
        Ok((bytes, mt, got))
    }

    /// A blob's bytes from offset `from` (0, or where a partial download stopped): the
    /// reader and the offset it really starts at (0 when the registry ignored the Range).
    pub fn blob(&self, d: &str, from: u64) -> Result<(Box<dyn Read + Send>, u64), Error> {
        let url = format!("{}/v2/{}/blobs/{d}", self.base, self.repo);
        let resp = self.get(&url, None, from)?;
        let start = match resp.status().as_u16() {
            200 => 0,
            206 => {
                let cr = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let first = cr
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|n| n.parse::<u64>().ok());
                if first != Some(from) {
                    return Err(Error::Msg(format!(
                        "blob {d}: asked from byte {from}, the registry sent \"{cr}\""
                    )));
                }
                from
            }
            _ => {
                return Err(refused(
                    &format!("blob {}/{} {d}", self.registry, self.repo),
                    resp,
                ));
            }
        };
        Ok((Box::new(resp.into_body().into_reader()), start))
    }
}

/// `husk login`: the credentials tried against the registry's challenge (token or Basic).
pub fn check_login(r: &Ref, o: &Options) -> Result<(), Error> {
    let c = Client::connect(r, o)?;
    let url = format!("{}/v2/", c.base);
    let resp = c.get(&url, None, 0)?;
    if resp.status() == 200 {
        return Ok(());
    }
    Err(refused(&format!("login to {}", r.registry), resp))
}

#[cfg(test)]
mod tests {
    use super::{Ref, challenge};

    #[test]
    fn references_and_challenges() {
        let r = Ref::parse("alpine").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("docker.io", "library/alpine", "latest")
        );
        assert_eq!(r.endpoint(), "registry-1.docker.io");
        assert!(!r.is_local());
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Ref::parse(&format!("127.0.0.1:5000/a/b@{d}")).unwrap();
        assert_eq!((r.repo.as_str(), r.reference.as_str()), ("a/b", d.as_str()));
        assert!(r.is_local());
        assert!(Ref::parse("localhost:5000/x").unwrap().is_local());
        assert!(!Ref::parse("quay.io/x").unwrap().is_local());
        let (s, p) = challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(p[2].1, "repository:library/alpine:pull");
        assert_eq!(challenge(r#"Basic realm="r""#).0, "basic");
    }
}
