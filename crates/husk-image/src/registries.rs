//! registries.conf as podman reads it (containers-registries.conf(5), version 2): short-name
//! `[aliases]`, `unqualified-search-registries` and `short-name-mode`, and `[[registry]]`
//! tables chosen by the longest `prefix` with `location` (a rewrite of where the image is
//! fetched from; the name it is stored under stays the one asked for), `insecure` (HTTPS
//! without certificate checks, then plain HTTP) and `blocked`. The main file is
//! `$CONTAINERS_REGISTRIES_CONF`, else `~/.config/containers/registries.conf` when it exists,
//! else `/etc/containers/registries.conf`; drop-ins from `registries.conf.d/*.conf` beside the
//! system file (or the user's) follow in name order, each overriding what it sets.
//!
//! husk stays docker's in the default case: a short name with no alias and no search
//! registries is `docker.io/library/NAME`. Mirrors and the version 1 format are not read:
//! a file that uses them is refused rather than silently pulled from elsewhere.

use husk_runtime::Error;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
const SYSTEM_DIR: &str = "/etc/containers/registries.conf.d";
/// A registries.conf is a few KiB; a bigger one is not read whole.
const FILE_CAP: u64 = 1 << 20;

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<Entry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    short_name_mode: Option<String>,
    /// The version 1 format's table: refused (see the module comment).
    registries: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Entry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    mirror: Option<toml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShortNameMode {
    /// Several search registries and no alias: an error (husk never prompts).
    Enforcing,
    /// The search registries in order (podman's default when it cannot prompt).
    #[default]
    Permissive,
    Disabled,
}

/// One `[[registry]]` table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub prefix: String,
    /// Empty: the prefix itself (a `*.host` prefix has no location).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    /// The file it came from, for errors.
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub search: Vec<String>,
    pub registries: Vec<Registry>,
    pub aliases: BTreeMap<String, String>,
    pub mode: ShortNameMode,
}

/// Where and how an image name is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `host/path:tag` or `host/path@digest` to fetch: the name after `location`'s rewrite.
    pub physical: String,
    pub insecure: bool,
}

/// `host/path` without a tag or digest, as aliases and search registries want them.
fn strip_tag(name: &str) -> (&str, &str) {
    if let Some(at) = name.find('@') {
        return (&name[..at], &name[at..]);
    }
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(c) => (&name[..last + c], &name[last + c..]),
        None => (name, ""),
    }
}

/// A name whose first component is no registry host: docker's rule (reference.rs).
pub fn is_short(name: &str) -> bool {
    match name.split_once('/') {
        Some((h, _)) => !(h.contains(['.', ':']) || h == "localhost"),
        None => true,
    }
}

fn bad(source: &str, what: String) -> Error {
    Error::Msg(format!("registries.conf {source}: {what}"))
}

/// A prefix or location as written: `host[:port][/path…][:tag|@digest]`, or `*.host` for a
/// prefix. No scheme: podman refuses one too.
fn check_place(source: &str, field: &str, v: &str) -> Result<String, Error> {
    let v = v.trim_end_matches('/');
    if v.is_empty() || v.contains("://") || v.contains(char::is_whitespace) {
        return Err(bad(
            source,
            format!("[[registry]] {field} \"{v}\" is not host[:port][/path]"),
        ));
    }
    Ok(v.to_string())
}

impl Config {
    /// The files' merged settings, in the order given (main file first, then drop-ins).
    /// `files` are (where it came from, its text).
    pub fn parse(files: &[(String, String)]) -> Result<Config, Error> {
        let mut c = Config::default();
        for (source, text) in files {
            let f: FileV2 = toml::from_str(text).map_err(|e| {
                let at = e.span().map_or(0, |s| s.start).min(text.len());
                let line = text[..at].matches('\n').count() + 1;
                let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
                bad(
                    source,
                    format!("line {line}, column {col}: {}", e.message().trim()),
                )
            })?;
            if f.registries.is_some() {
                return Err(bad(
                    source,
                    "the version 1 format ([registries.search], [registries.insecure], [registries.block]) is not read by husk: write unqualified-search-registries and [[registry]] tables (containers-registries.conf(5))".into(),
                ));
            }
            if let Some(s) = f.unqualified_search_registries {
                for r in &s {
                    if r.is_empty() || r.contains('/') || is_short(&format!("{r}/x")) {
                        return Err(bad(
                            source,
                            format!("unqualified-search-registries: \"{r}\" is not host[:port]"),
                        ));
                    }
                }
                c.search = s;
            }
            if let Some(m) = f.short_name_mode {
                c.mode = match m.as_str() {
                    "enforcing" => ShortNameMode::Enforcing,
                    "permissive" | "" => ShortNameMode::Permissive,
                    "disabled" => ShortNameMode::Disabled,
                    o => {
                        return Err(bad(
                            source,
                            format!(
                                "short-name-mode \"{o}\" is not enforcing, permissive or disabled"
                            ),
                        ));
                    }
                };
            }
            for (k, v) in f.aliases {
                let (kn, ktag) = strip_tag(&k);
                if !is_short(&k) || !ktag.is_empty() || k.is_empty() {
                    return Err(bad(
                        source,
                        format!("alias \"{k}\": the name is a short name without tag or digest"),
                    ));
                }
                if v.is_empty() {
                    c.aliases.remove(kn);
                    continue;
                }
                if is_short(&v) || !strip_tag(&v).1.is_empty() {
                    return Err(bad(
                        source,
                        format!(
                            "alias \"{k}\" = \"{v}\": the value is a fully qualified name (registry/repository) without tag or digest"
                        ),
                    ));
                }
                crate::reference::normalize(&v)
                    .map_err(|e| bad(source, format!("alias \"{k}\": {e}")))?;
                c.aliases.insert(k, v);
            }
            for e in f.registry {
                if e.mirror.is_some() {
                    return Err(bad(
                        source,
                        format!(
                            "[[registry]] {}: mirrors are not supported by husk (it would pull from the location instead): remove [[registry.mirror]]",
                            e.prefix.as_deref().or(e.location.as_deref()).unwrap_or("")
                        ),
                    ));
                }
                let location = match &e.location {
                    Some(l) if !l.is_empty() => check_place(source, "location", l)?,
                    _ => String::new(),
                };
                let prefix = match &e.prefix {
                    Some(p) if !p.is_empty() => check_place(source, "prefix", p)?,
                    _ if !location.is_empty() => location.clone(),
                    _ => {
                        return Err(bad(
                            source,
                            "a [[registry]] table has neither prefix nor location".into(),
                        ));
                    }
                };
                if prefix.starts_with("*.") && !location.is_empty() {
                    return Err(bad(
                        source,
                        format!(
                            "[[registry]] prefix \"{prefix}\": a wildcard prefix takes no location"
                        ),
                    ));
                }
                // A later file's table for the same prefix replaces the earlier one.
                c.registries.retain(|r| r.prefix != prefix);
                c.registries.push(Registry {
                    location: if location == prefix {
                        String::new()
                    } else {
                        location
                    },
                    prefix,
                    insecure: e.insecure,
                    blocked: e.blocked,
                    source: source.clone(),
                });
            }
        }
        Ok(c)
    }

    /// The fully qualified names `s` may mean, in the order to try them: its alias, else each
    /// search registry, else docker.io's (docker's rule). A qualified name is itself.
    pub fn candidates(&self, s: &str) -> Result<Vec<String>, Error> {
        let docker = crate::reference::normalize(s)?;
        if !is_short(s) {
            return Ok(vec![docker]);
        }
        let (name, tag) = strip_tag(s);
        if let Some(v) = self.aliases.get(name) {
            return Ok(vec![crate::reference::normalize(&format!("{v}{tag}"))?]);
        }
        match self.search.len() {
            0 => Ok(vec![docker]),
            n if n > 1 && self.mode == ShortNameMode::Enforcing => Err(Error::Msg(format!(
                "{s}: a short name with several unqualified-search-registries ({}) and short-name-mode \"enforcing\" in registries.conf: name the image fully (e.g. {}/{s}) or give it an [aliases] entry",
                self.search.join(", "),
                self.search[0]
            ))),
            _ => self
                .search
                .iter()
                .map(|r| crate::reference::normalize(&format!("{r}/{s}")))
                .collect(),
        }
    }

    /// The `[[registry]]` table with the longest prefix that matches `name` (normalized).
    fn table(&self, name: &str) -> Option<&Registry> {
        let host = name.split('/').next().unwrap_or("");
        self.registries
            .iter()
            .filter(|r| match r.prefix.strip_prefix("*.") {
                Some(dom) => host.strip_suffix(dom).is_some_and(|h| h.ends_with('.')),
                None => {
                    name.starts_with(&r.prefix)
                        && match name.as_bytes().get(r.prefix.len()) {
                            None | Some(b'/' | b'@') => true,
                            // A tag follows a repository; a host prefix is no match of
                            // host:port (containers-image's own comment calls that a bug).
                            Some(b':') => r.prefix.contains('/'),
                            Some(_) => false,
                        }
                }
            })
            .max_by_key(|r| r.prefix.len())
    }

    /// Where `name` (normalized) is fetched from; a blocked one is an error naming the table.
    pub fn route(&self, name: &str) -> Result<Route, Error> {
        let Some(t) = self.table(name) else {
            return Ok(Route {
                physical: name.to_string(),
                insecure: false,
            });
        };
        if t.blocked {
            return Err(Error::Msg(format!(
                "{name}: blocked by registries.conf ([[registry]] prefix \"{}\" in {})",
                t.prefix, t.source
            )));
        }
        let physical = if t.location.is_empty() {
            name.to_string()
        } else {
            format!("{}{}", t.location, &name[t.prefix.len()..])
        };
        Ok(Route {
            physical,
            insecure: t.insecure,
        })
    }
}

fn read(path: &Path) -> Result<Option<String>, Error> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open registries.conf", path)(e)),
    };
    let mut s = String::new();
    f.take(FILE_CAP)
        .read_to_string(&mut s)
        .map_err(Error::io("read registries.conf", path))?;
    Ok(Some(s))
}

/// The main file and drop-in directory podman would read.
fn paths() -> (PathBuf, PathBuf) {
    if let Some(p) = std::env::var_os("CONTAINERS_REGISTRIES_CONF").filter(|p| !p.is_empty()) {
        return (PathBuf::from(p), PathBuf::from(SYSTEM_DIR));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let user = Path::new(&home).join(".config/containers");
        if user.join("registries.conf").exists() {
            let dir = user.join("registries.conf.d");
            let dir = if dir.exists() {
                dir
            } else {
                PathBuf::from(SYSTEM_DIR)
            };
            return (user.join("registries.conf"), dir);
        }
    }
    (PathBuf::from(SYSTEM_FILE), PathBuf::from(SYSTEM_DIR))
}

fn load() -> Result<Config, Error> {
    let (file, dir) = paths();
    let mut files = vec![];
    if let Some(t) = read(&file)? {
        files.push((file.display().to_string(), t));
    }
    let mut drop_ins: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(Error::io("read registries.conf.d", &dir)(e)),
    };
    drop_ins.sort();
    for p in drop_ins {
        if let Some(t) = read(&p)? {
            files.push((p.display().to_string(), t));
        }
    }
    Config::parse(&files)
}

/// This process's registries.conf, read once.
pub fn current() -> Result<&'static Config, Error> {
    static C: OnceLock<Result<Config, String>> = OnceLock::new();
    C.get_or_init(|| load().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Msg(e.clone()))
}

/// `s`'s candidate names under this machine's registries.conf (see Config::candidates).
pub fn candidates(s: &str) -> Result<Vec<String>, Error> {
    if !is_short(s) {
        return Ok(vec![crate::reference::normalize(s)?]);
    }
    current()?.candidates(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(files: &[&str]) -> Result<Config, Error> {
        Config::parse(
            &files
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("f{i}.conf"), t.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn short_names_resolve_through_aliases_then_search_registries_then_docker_io() {
        let none = conf(&[]).unwrap();
        assert_eq!(
            none.candidates("alpine:3").unwrap(),
            ["docker.io/library/alpine:3"]
        );
        let c = conf(&[
            r#"
            [aliases]
            "centos" = "quay.io/centos/centos"
            "opensuse/leap" = "registry.opensuse.org/opensuse/leap"
            "gone" = "quay.io/x/gone"
            "#,
            // A drop-in erases an alias with "" and adds its own.
            "[aliases]\n\"gone\" = \"\"\n\"mine\" = \"localhost:5000/team/mine\"\n",
        ])
        .unwrap();
        assert_eq!(
            c.candidates("centos:7").unwrap(),
            ["quay.io/centos/centos:7"]
        );
        let d = format!("sha256:{}", "c".repeat(64));
        assert_eq!(
            c.candidates(&format!("opensuse/leap@{d}")).unwrap(),
            [format!("registry.opensuse.org/opensuse/leap@{d}")]
        );
        assert_eq!(
            c.candidates("mine").unwrap(),
            ["localhost:5000/team/mine:latest"]
        );
        assert_eq!(
            c.candidates("gone").unwrap(),
            ["docker.io/library/gone:latest"]
        );
        // Qualified names are never aliased.
        assert_eq!(
            c.candidates("docker.io/centos").unwrap(),
            ["docker.io/library/centos:latest"]
        );

        let s = conf(&["unqualified-search-registries = [\"quay.io\", \"docker.io\"]"]).unwrap();
        assert_eq!(
            s.candidates("busybox").unwrap(),
            ["quay.io/busybox:latest", "docker.io/library/busybox:latest"]
        );
        let e = conf(&[
            "unqualified-search-registries = [\"quay.io\", \"docker.io\"]",
            "short-name-mode = \"enforcing\"",
        ])
        .unwrap();
        let m = e.candidates("busybox").unwrap_err().to_string();
        assert!(
            m.contains("enforcing") && m.contains("quay.io, docker.io"),
            "{m}"
        );
        // One search registry is no ambiguity.
        let one = conf(&[
            "unqualified-search-registries = [\"localhost:5000\"]\nshort-name-mode = \"enforcing\"",
        ])
        .unwrap();
        assert_eq!(
            one.candidates("x/y").unwrap(),
            ["localhost:5000/x/y:latest"]
        );
        assert!(none.candidates("Alpine").is_err());
    }

    #[test]
    fn registry_tables_rewrite_block_and_mark_insecure_by_longest_prefix() {
        let c = conf(&[r#"
            [[registry]]
            prefix = "docker.io"
            location = "mirror.example:5000"
            [[registry]]
            prefix = "docker.io/library/busybox"
            location = "localhost:5000/bb"
            insecure = true
            [[registry]]
            location = "evil.example"
            blocked = true
            [[registry]]
            prefix = "*.corp.example"
            insecure = true
            [[registry]]
            prefix = "plain.example"
            "#])
        .unwrap();
        let r = |n: &str| c.route(n).unwrap();
        assert_eq!(
            r("docker.io/library/alpine:3"),
            Route {
                physical: "mirror.example:5000/library/alpine:3".into(),
                insecure: false
            }
        );
        assert_eq!(
            r("docker.io/library/busybox:latest"),
            Route {
                physical: "localhost:5000/bb:latest".into(),
                insecure: true
            }
        );
        // A prefix ends at a separator: busyboxes is another repository.
        assert_eq!(
            r("docker.io/library/busyboxes:1").physical,
            "mirror.example:5000/library/busyboxes:1"
        );
        assert!(r("reg.corp.example/a:1").insecure);
        assert!(!r("corp.example/a:1").insecure);
        // A host prefix does not match the same host on another port.
        assert_eq!(
            r("plain.example:5000/a:1").physical,
            "plain.example:5000/a:1"
        );
        assert_eq!(r("quay.io/a:1").physical, "quay.io/a:1");
        let m = c.route("evil.example/x:1").unwrap_err().to_string();
        assert!(m.contains("blocked") && m.contains("f0.conf"), "{m}");
        assert!(
            c.route("evil.example:443/x:1").is_ok(),
            "another port is another registry"
        );

        // A drop-in's table for the same prefix replaces the main file's.
        let c = conf(&[
            "[[registry]]\nprefix = \"a.example\"\nblocked = true",
            "[[registry]]\nprefix = \"a.example\"\ninsecure = true",
        ])
        .unwrap();
        assert_eq!(c.registries.len(), 1);
        assert!(c.route("a.example/x:1").unwrap().insecure);
    }

    #[test]
    fn what_husk_does_not_read_is_refused_with_the_file_named() {
        for (text, says) in [
            (
                "[registries.search]\nregistries = ['a.example']",
                "version 1",
            ),
            (
                "[[registry]]\nprefix = \"a.example\"\n[[registry.mirror]]\nlocation = \"b.example\"",
                "mirrors",
            ),
            (
                "[[registry]]\ninsecure = true",
                "neither prefix nor location",
            ),
            (
                "[[registry]]\nlocation = \"https://a.example\"",
                "is not host",
            ),
            (
                "[[registry]]\nprefix = \"*.a.example\"\nlocation = \"b.example\"",
                "wildcard",
            ),
            ("[aliases]\n\"quay.io/x\" = \"quay.io/x\"", "short name"),
            ("[aliases]\n\"x:1\" = \"quay.io/x\"", "short name"),
            ("[aliases]\n\"x\" = \"x/y\"", "fully qualified"),
            ("[aliases]\n\"x\" = \"quay.io/x:1\"", "fully qualified"),
            ("short-name-mode = \"strict\"", "short-name-mode"),
            (
                "unqualified-search-registries = [\"quay.io/ns\"]",
                "host[:port]",
            ),
            ("unqualified-search-registries = \"quay.io\"", "f0.conf"),
            ("[aliases\n", "line 1, column 9"),
        ] {
            let m = conf(&[text]).unwrap_err().to_string();
            assert!(m.contains(says) && m.contains("f0.conf"), "{text}: {m}");
        }
    }
}
