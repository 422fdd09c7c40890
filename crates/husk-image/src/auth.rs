//! Registry credentials in the files podman and docker use: `$REGISTRY_AUTH_FILE`, else
//! `${XDG_RUNTIME_DIR}/containers/auth.json` (root without XDG_RUNTIME_DIR:
//! `/run/containers/0/auth.json`, as podman), then `~/.config/containers/auth.json` and
//! `~/.docker/config.json`. All share `{"auths": {"KEY": {"auth": base64("user:password")}}}`,
//! KEY being a registry (`quay.io`), a registry and namespace (`quay.io/me`), or docker's URL
//! forms (`https://index.docker.io/v1/`). `husk login`/`logout` write the first.
//!
//! A file's `credHelpers` (`{"HOST": "NAME"}`) and `credsStore` (`"NAME"`) name docker's
//! credential helpers: `docker-credential-NAME get`, the server on stdin, answers
//! `{"Username", "Secret"}` as JSON. Per file: the registry's helper, then an `auths` entry
//! that holds credentials, then the store (docker leaves `auths` entries empty beside one).

use base64::Engine as _;
use husk_runtime::Error;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds({}, ***)", self.user)
    }
}

impl Creds {
    /// `user:password`, as `Authorization: Basic` and the files carry it.
    pub fn basic(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.password))
    }
}

/// The file `husk login` writes (and `logout` edits).
pub fn write_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(d) => PathBuf::from(d).join("containers/auth.json"),
        None => {
            use std::os::unix::fs::MetadataExt;
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            PathBuf::from(format!("/run/containers/{uid}/auth.json"))
        }
    }
}

/// Every file read, in order: the first that has an entry for the registry wins.
fn read_paths() -> Vec<PathBuf> {
    if std::env::var_os("REGISTRY_AUTH_FILE").is_some_and(|p| !p.is_empty()) {
        return vec![write_path()];
    }
    let mut v = vec![write_path()];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        v.push(home.join(".config/containers/auth.json"));
        v.push(home.join(".docker/config.json"));
    }
    v
}

/// docker.io's entries are found under any of the names docker and podman write.
fn aliases(registry: &str) -> Vec<&str> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            vec!["docker.io", "index.docker.io", "registry-1.docker.io"]
        }
        r => vec![r],
    }
}

/// A key as the files spell it, reduced to `host[/path]`: docker writes `https://host/v1/`.
fn key_name(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.trim_end_matches('/');
    k.strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k)
}

fn read(path: &std::path::Path) -> Result<Option<Value>, Error> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Msg(format!("{}: not a JSON auth file: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read auth file", path)(e)),
    }
}

fn decode(path: &std::path::Path, key: &str, auth: &str) -> Result<Creds, Error> {
    let bad = || {
        Error::Msg(format!(
            "{}: auths.\"{key}\".auth is not base64 of user:password",
            path.display()
        ))
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Creds {
        user: user.into(),
        password: password.into(),
    })
}

/// The credentials for `registry/repo`: the most specific key (`host/ns/repo`, `host/ns`,
/// then `host`) of the first file that has one.
pub fn lookup(registry: &str, repo: &str) -> Result<Option<Creds>, Error> {
    for path in read_paths() {
        let Some(v) = read(&path)? else { continue };
        if let Some((host, name)) = v["credHelpers"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, _)| aliases(registry).contains(&key_name(k)))
            && let Some(name) = name.as_str()
        {
            let found = helper(&path, &format!("credHelpers.\"{host}\""), name, registry)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        if let Some((k, a)) = v["auths"]
            .as_object()
            .and_then(|auths| auths_entry(auths, registry, repo))
        {
            return decode(&path, k, a).map(Some);
        }
        if let Some(name) = v["credsStore"].as_str().filter(|n| !n.is_empty())
            && let Some(c) = helper(&path, "credsStore", name, registry)?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The `auths` key most specific to `registry/repo` and its `auth`, when it holds one (docker
/// leaves the entry empty when a credsStore keeps the secret).
fn auths_entry<'v>(
    auths: &'v serde_json::Map<String, Value>,
    registry: &str,
    repo: &str,
) -> Option<(&'v str, &'v str)> {
    let mut best: Option<(usize, &str, &Value)> = None;
    for (k, entry) in auths {
        let name = key_name(k);
        let (host, ns) = name.split_once('/').unwrap_or((name, ""));
        let ns_ok = ns.is_empty() || repo == ns || repo.starts_with(&format!("{ns}/"));
        if aliases(registry).contains(&host) && ns_ok && best.is_none_or(|(n, _, _)| ns.len() > n) {
            best = Some((ns.len(), k, entry));
        }
    }
    let (_, k, entry) = best?;
    Some((k, entry["auth"].as_str().filter(|a| !a.is_empty())?))
}

/// `docker-credential-NAME get` for `registry` (docker.io as docker names it to helpers);
/// None when the helper has nothing for it (it exits 1 saying "credentials not found").
fn helper(
    path: &std::path::Path,
    key: &str,
    name: &str,
    registry: &str,
) -> Result<Option<Creds>, Error> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let prog = format!("docker-credential-{name}");
    let server = match registry {
        "docker.io" => "https://index.docker.io/v1/",
        r => r,
    };
    let from = || format!("{prog} ({key} in {})", path.display());
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Msg(format!(
                "credential helper {}: {}",
                from(),
                if e.kind() == std::io::ErrorKind::NotFound {
                    "not found in $PATH".to_string()
                } else {
                    husk_runtime::errno_text(&e)
                }
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its answer below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(Error::io("wait for credential helper", &prog))?;
    let said = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if !out.status.success() {
        let msg = [said(&out.stdout), said(&out.stderr)].join(" ");
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::Msg(format!(
            "credential helper {} get {server}: {}: {}",
            from(),
            out.status,
            msg.trim()
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::Msg(format!(
            "credential helper {} get {server}: not JSON ({e})",
            from()
        ))
    })?;
    let (Some(user), Some(secret)) = (v["Username"].as_str(), v["Secret"].as_str()) else {
        return Err(Error::Msg(format!(
            "credential helper {} get {server}: no Username and Secret in its answer",
            from()
        )));
    };
    if user == "<token>" {
        return Err(Error::Msg(format!(
            "credential helper {} get {server}: an identity token (OAuth2 refresh token): not yet supported by husk",
            from()
        )));
    }
    Ok(Some(Creds {
        user: user.into(),
        password: secret.into(),
    }))
}

/// `husk login`: the entry for `registry` in `write_path()`, created 0600 with its directory.
pub fn save(registry: &str, c: &Creds) -> Result<PathBuf, Error> {
    let path = write_path();
    let mut v = read(&path)?.unwrap_or_else(|| serde_json::json!({}));
    if !v["auths"].is_object() {
        v["auths"] = serde_json::json!({});
    }
    v["auths"][registry] = serde_json::json!({ "auth": c.basic() });
    write(&path, &v)?;
    Ok(path)
}

/// `husk logout`: removes `registry`'s entries (all of them with `None`). Whether any was there.
pub fn remove(registry: Option<&str>) -> Result<(PathBuf, bool), Error> {
    let path = write_path();
    let Some(mut v) = read(&path)? else {
        return Ok((path, false));
    };
    let Some(auths) = v["auths"].as_object_mut() else {
        return Ok((path, false));
    };
    let before = auths.len();
    auths.retain(|k, _| registry.is_some_and(|r| !aliases(r).contains(&key_name(k))));
    let removed = auths.len() != before;
    if removed {
        write(&path, &v)?;
    }
    Ok((path, removed))
}

fn write(path: &std::path::Path, v: &Value) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(Error::io("create auth file directory", d))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_vec_pretty(v).map_err(|e| Error::Msg(e.to_string()))?;
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text))
        .map_err(Error::io("write auth file", &tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(Error::io("rename auth file", path)));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    /// The most specific key wins; an empty one there leaves the file's credsStore to answer
    /// rather than a less specific key's credentials.
    #[test]
    fn the_most_specific_auths_entry_and_its_auth() {
        let auths = serde_json::json!({
            "https://index.docker.io/v1/": {"auth": "aG9zdA=="},
            "docker.io/me": {"auth": "bnM="},
            "quay.io": {"auth": "cXVheQ=="},
            "quay.io/me": {},
        });
        let auths = auths.as_object().unwrap();
        let e = |registry, repo| super::auths_entry(auths, registry, repo);
        assert_eq!(e("docker.io", "me/app"), Some(("docker.io/me", "bnM=")));
        assert_eq!(
            e("docker.io", "library/busybox"),
            Some(("https://index.docker.io/v1/", "aG9zdA=="))
        );
        assert_eq!(e("quay.io", "other/app"), Some(("quay.io", "cXVheQ==")));
        assert_eq!(e("quay.io", "me/app"), None);
        assert_eq!(e("ghcr.io", "me/app"), None);
    }

    #[test]
    fn keys_as_docker_and_podman_write_them() {
        assert_eq!(
            super::key_name("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(super::key_name("quay.io/me"), "quay.io/me");
        assert_eq!(super::key_name("http://127.0.0.1:5000"), "127.0.0.1:5000");
        let c = super::Creds {
            user: "u".into(),
            password: "p:w".into(),
        };
        let d = super::decode(std::path::Path::new("f"), "k", &c.basic()).unwrap();
        assert_eq!(d, c);
    }
}
