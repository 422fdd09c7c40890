//! The image verbs (`husk load`, `images`, `rmi`, `tag`, `image …`): argument parsing and output
//! only; the store, import and unpacking are crate husk-image's.

use clap::{Args, Subcommand};
use husk_image::{Store, import, reference};
use husk_runtime::Error;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The archive: `docker save` output or an oci-archive (plain, gzip or zstd)
    #[arg(short, long)]
    pub input: PathBuf,
    /// Print only the loaded names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the manifest digest
    #[arg(long)]
    pub digests: bool,
    /// Full image ids (sha256:...)
    #[arg(long)]
    pub no_trunc: bool,
    /// table (default), json (an object a line), or a template of {{.Repository}} {{.Tag}}
    /// {{.ID}} {{.Digest}} {{.CreatedSince}} {{.CreatedAt}} {{.Size}} (`table ` adds a header)
    #[arg(long, default_value = "")]
    pub format: String,
    /// Only this repository (any tag), or REPOSITORY:TAG
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove an image by id even when it has several names
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Print images' config and layers as JSON
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images without a name (with -a: every image no container uses)
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// List images (as `husk images`)
    Ls(ImagesArgs),
    /// Remove images (as `husk rmi`)
    Rm(RmiArgs),
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// The platform to pick from a multi-platform image: os/arch[/variant] (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Verify the registry's TLS certificate (default: yes, except for localhost and 127.0.0.0/8,
    /// reached over HTTPS without verification or plain HTTP); false also allows plain HTTP
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// Credentials USER[:PASSWORD] for this pull instead of the auth file's
    #[arg(long)]
    pub creds: Option<String>,
    /// The registry's CAs (*.crt) and client certificate (*.cert, *.key) from this directory
    /// instead of /etc/containers/certs.d/HOST:PORT or /etc/docker/certs.d/HOST:PORT
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// NAME[:TAG|@DIGEST]; short names are docker.io's (alpine = docker.io/library/alpine:latest)
    pub image: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible in the process list: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Verify the registry's TLS certificate (as for husk pull)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// The registry's CAs and client certificate from this directory (as for husk pull)
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// The registry: HOST[:PORT] (docker.io when omitted)
    pub registry: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Remove every registry's credentials
    #[arg(short, long)]
    pub all: bool,
    pub registry: Option<String>,
}

fn creds_arg(s: &str) -> husk_image::auth::Creds {
    let (user, password) = s.split_once(':').unwrap_or((s, ""));
    husk_image::auth::Creds {
        user: user.into(),
        password: password.into(),
    }
}

pub fn pull_options(
    quiet: bool,
    platform: Option<&str>,
    tls_verify: Option<bool>,
    creds: Option<&str>,
) -> Result<husk_image::pull::Options, Error> {
    Ok(husk_image::pull::Options {
        platform: platform
            .map(husk_image::platform::Platform::parse)
            .transpose()?,
        tls_verify,
        creds: creds.map(creds_arg),
        progress: husk_image::progress::Mode::detect(quiet),
        cert_dir: None,
    })
}

/// Runs `f`, which changes the store's files; for an ordinary user as root of a user namespace
/// mapped as its containers' (husk_runtime::mapped), because its store holds files of the ids
/// those containers see: unpacking chowns to them, removing removes theirs. Returns `f`'s text.
fn as_store_owner(f: impl FnOnce() -> Result<String, Error>) -> Result<String, Error> {
    let Some(me) = husk_frontend::rootless::Rootless::detect() else {
        return f();
    };
    husk_image::store::pin_default_root();
    let (uid, gid) = (me.uid_mappings(false), me.gid_mappings(false));
    let reply = husk_runtime::mapped::run(&uid, &gid, || {
        f().map(|text| husk_runtime::mapped::Reply { fds: vec![], text })
    })?;
    Ok(reply.text)
}

pub fn pull(a: PullArgs) -> Result<(), Error> {
    as_store_owner(|| pull_here(a).map(|()| String::new())).map(drop)
}

fn pull_here(a: PullArgs) -> Result<(), Error> {
    let o = husk_image::pull::Options {
        cert_dir: a.cert_dir,
        ..pull_options(
            a.quiet,
            a.platform.as_deref(),
            a.tls_verify,
            a.creds.as_deref(),
        )?
    };
    let id = husk_image::pull::pull(&Store::default_root(), &a.image, &o)?;
    crate::out::line(id)
}

/// A registry as login/logout name it: a bare host, its docker.io URL forms included.
fn registry_arg(r: Option<&str>) -> Result<husk_image::registry::Ref, Error> {
    let host = r.unwrap_or("docker.io");
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host)
        .trim_end_matches('/');
    let host = match host.split('/').next().unwrap_or("") {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    if host.is_empty() || !(host.contains(['.', ':']) || host == "localhost") {
        return Err(Error::Msg(format!(
            "\"{}\" is not a registry (HOST[:PORT], e.g. quay.io or localhost:5000)",
            r.unwrap_or_default()
        )));
    }
    // The repository only shapes the token's scope; a login checks the registry itself.
    husk_image::registry::Ref::parse(&format!("{host}/husk-login-check"))
}

pub fn login(a: LoginArgs) -> Result<(), Error> {
    use std::io::BufRead;
    let r = registry_arg(a.registry.as_deref())?;
    let user = match a.username {
        Some(u) => u,
        None => {
            return Err(Error::Msg(
                "husk login needs -u USER (and -p PASSWORD or --password-stdin)".into(),
            ));
        }
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(Error::Msg(
                "-p/--password and --password-stdin: give one of them".into(),
            ));
        }
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(Error::io("read password", "stdin"))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(Error::Msg(
                "husk login needs -p PASSWORD or --password-stdin (no prompt: the password would echo)".into(),
            ));
        }
    };
    let creds = husk_image::auth::Creds { user, password };
    husk_image::registry::check_login(
        &r,
        &husk_image::registry::Options {
            tls_verify: a.tls_verify,
            creds: Some(creds.clone()),
            cert_dir: a.cert_dir,
        },
    )?;
    husk_image::auth::save(&r.registry, &creds)?;
    crate::out::line("Login Succeeded!")
}

pub fn logout(a: LogoutArgs) -> Result<(), Error> {
    if a.all {
        let (path, _) = husk_image::auth::remove(None)?;
        return crate::out::line(format!(
            "Removed login credentials for all registries in {}",
            path.display()
        ));
    }
    let r = registry_arg(a.registry.as_deref())?;
    let (path, removed) = husk_image::auth::remove(Some(&r.registry))?;
    if !removed {
        return Err(Error::Msg(format!(
            "not logged in to {} ({} has no entry for it)",
            r.registry,
            path.display()
        )));
    }
    crate::out::line(format!("Removed login credentials for {}", r.registry))
}

fn store(exclusive: bool) -> Result<Store, Error> {
    Store::open(&Store::default_root(), exclusive)
}

pub fn load(a: LoadArgs) -> Result<(), Error> {
    as_store_owner(|| load_here(a).map(|()| String::new())).map(drop)
}

fn load_here(a: LoadArgs) -> Result<(), Error> {
    let s = store(true)?;
    let loaded = import::load_archive(&s, &a.input);
    // Archive files no image refers to (docker-archive's legacy v1 json, or everything of a
    // load that failed) are not kept.
    s.gc(&s.index()?)?;
    for n in loaded? {
        if a.quiet {
            crate::out::line(n)?;
        } else {
            let what = if n.starts_with("sha256:") {
                "image ID"
            } else {
                "image"
            };
            crate::out::line(format!("Loaded {what}: {n}"))?;
        }
    }
    Ok(())
}

/// docker's units.HumanSizeWithPrecision(n, 3): decimal units, three significant digits.
fn human(n: u64) -> String {
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < 4 {
        v /= 1000.0;
        unit += 1;
    }
    let digits = match v {
        _ if v >= 99.95 => 0,
        _ if v >= 9.995 => 1,
        _ => 2,
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", ["B", "kB", "MB", "GB", "TB"][unit])
}

const IMAGE_FIELDS: &[&str] = &[
    "Containers",
    "CreatedAt",
    "CreatedSince",
    "Digest",
    "ID",
    "Repository",
    "SharedSize",
    "Size",
    "Tag",
    "UniqueSize",
    "VirtualSize",
];

/// docker's header for a field in `--format 'table ...'`.
fn header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "VirtualSize" => "SIZE".into(),
        "SharedSize" => "SHARED SIZE".into(),
        "UniqueSize" => "UNIQUE SIZE".into(),
        f => f.to_uppercase(),
    }
}

/// One row of `images`: an image under one of its names.
struct Row {
    repo: String,
    tag: String,
    id: String,
    digest: String,
    created_ns: u64,
    size: u64,
}

impl Row {
    fn field(&self, f: &str, now: u64) -> String {
        match f {
            "Repository" => self.repo.clone(),
            "Tag" => self.tag.clone(),
            "ID" => self.id.clone(),
            "Digest" => self.digest.clone(),
            "CreatedSince" => format!(
                "{} ago",
                husk_containers::time::human(now.saturating_sub(self.created_ns))
            ),
            // docker's Go time format: 2024-01-26 23:00:00 +0000 UTC
            "CreatedAt" => {
                let t = husk_containers::time::rfc3339(self.created_ns);
                format!("{} {} +0000 UTC", &t[..10], &t[11..19])
            }
            "Size" | "VirtualSize" => human(self.size),
            _ => "N/A".into(),
        }
    }
}

fn rows(s: &Store, a: &ImagesArgs) -> Result<Vec<Row>, Error> {
    let idx = s.index()?;
    // docker's order: the newest image first; created the same second, by id.
    let created = |i: &husk_image::store::Image| -> u64 {
        s.read_json::<serde_json::Value>(&i.id, "image config")
            .ok()
            .and_then(|c| {
                c["created"]
                    .as_str()
                    .and_then(husk_containers::time::parse_rfc3339)
            })
            .unwrap_or(i.loaded * 1_000_000_000)
    };
    let mut with_time: Vec<_> = idx.images.values().map(|i| (created(i), i)).collect();
    with_time.sort_by(|(tx, x), (ty, y)| ty.cmp(tx).then(x.id.cmp(&y.id)));
    // `images REPO` lists each of its tags; `images REPO:TAG` that one.
    let wanted = match &a.reference {
        Some(r) => {
            let tagged = r.rsplit('/').next().is_some_and(|last| last.contains(':'));
            let n = reference::normalize(r)?;
            Some((
                reference::split(&n).0.to_string(),
                tagged.then(|| reference::split(&n).1.to_string()),
            ))
        }
        None => None,
    };
    let mut out = vec![];
    for (created_ns, i) in with_time {
        let names = if i.names.is_empty() {
            vec![("<none>", "<none>")]
        } else {
            i.names.iter().map(|n| reference::split(n)).collect()
        };
        for (repo, tag) in names {
            if let Some((r, t)) = &wanted
                && (repo != r || t.as_deref().is_some_and(|t| t != tag))
            {
                continue;
            }
            out.push(Row {
                repo: repo.into(),
                tag: tag.into(),
                id: if a.no_trunc {
                    i.id.clone()
                } else {
                    i.short_id().into()
                },
                digest: i.manifest.clone(),
                created_ns,
                size: i.size(),
            });
        }
    }
    Ok(out)
}

pub fn images(a: ImagesArgs) -> Result<(), Error> {
    use husk_containers::format;
    let s = store(false)?;
    let rows = rows(&s, &a)?;
    let now = husk_containers::time::now_ns();
    if a.quiet {
        // One line an image, however many names it has.
        let mut seen = std::collections::HashSet::new();
        for r in rows.iter().filter(|r| seen.insert(r.id.clone())) {
            crate::out::line(&r.id)?;
        }
        return Ok(());
    }
    let mut columns = vec!["Repository", "Tag"];
    if a.digests {
        columns.push("Digest");
    }
    columns.extend(["ID", "CreatedSince", "Size"]);
    let field = |r: &Row, f: &str| r.field(f, now);
    for l in format::listing(&a.format, IMAGE_FIELDS, &columns, header, &rows, field)? {
        crate::out::line(l)?;
    }
    Ok(())
}

pub fn rmi(a: RmiArgs) -> Result<(), Error> {
    as_store_owner(|| rmi_here(a).map(|()| String::new())).map(drop)
}

fn rmi_here(a: RmiArgs) -> Result<(), Error> {
    let s = store(true)?;
    husk_image::overlay::reclaim(&s);
    let mut idx = s.index()?;
    let used = s.in_use();
    for r in &a.images {
        let img = s.find(&idx, r)?.clone();
        if let Some((c, _)) = used.iter().find(|(_, id)| *id == img.id) {
            return Err(Error::Msg(format!(
                "{r}: image {} is in use by container {c}",
                img.short_id()
            )));
        }
        let by_name = named_as(&img, r);
        let entry = idx.images.get_mut(&img.id).expect("found above");
        if let Some(n) = &by_name
            && img.names.len() > 1
        {
            entry.names.retain(|x| x != n);
            crate::out::line(format!("Untagged: {n}"))?;
            continue;
        }
        if by_name.is_none() && img.names.len() > 1 && !a.force {
            return Err(Error::Msg(format!(
                "{r}: image {} has several names ({}): remove them by name, or use -f",
                img.short_id(),
                img.names.join(", ")
            )));
        }
        for n in &img.names {
            crate::out::line(format!("Untagged: {n}"))?;
        }
        idx.images.remove(&img.id);
        crate::out::line(format!("Deleted: {}", img.id))?;
    }
    s.write_index(&idx)?;
    s.gc(&idx)
}

/// The name of `img` that `r` gives (a short name through registries.conf), if `r` is a name.
fn named_as(img: &husk_image::store::Image, r: &str) -> Option<String> {
    husk_image::registries::candidates(r)
        .ok()?
        .into_iter()
        .find(|n| img.names.contains(n))
}

/// Names given as names are saved under them; an image given by id, under all of its names.
pub fn save(out: &Path, refs: &[String]) -> Result<(), Error> {
    let s = store(false)?;
    let idx = s.index()?;
    let mut picked: Vec<(husk_image::store::Image, Vec<String>)> = vec![];
    for r in refs {
        let img = s.find(&idx, r)?;
        let names = match named_as(img, r) {
            Some(n) => vec![n],
            None => img.names.clone(),
        };
        match picked.iter_mut().find(|(i, _)| i.id == img.id) {
            Some((_, ns)) => {
                for n in names {
                    if !ns.contains(&n) {
                        ns.push(n);
                    }
                }
            }
            None => picked.push((img.clone(), names)),
        }
    }
    husk_image::export::save(&s, &picked, out)
}

pub fn tag(src: &str, dst: &str) -> Result<(), Error> {
    let s = store(true)?;
    let mut idx = s.index()?;
    let id = s.find(&idx, src)?.id.clone();
    let name = reference::normalize(dst)?;
    if name.contains('@') {
        return Err(Error::Msg(format!("{dst}: a tag cannot be a digest")));
    }
    for i in idx.images.values_mut() {
        i.names.retain(|n| *n != name);
    }
    idx.images
        .get_mut(&id)
        .expect("found above")
        .names
        .push(name);
    s.write_index(&idx)
}

pub fn image(c: ImageCmd) -> Result<(), Error> {
    match c {
        ImageCmd::Inspect { images } => inspect(&images),
        ImageCmd::Prune { all, force } => prune(all, force),
        ImageCmd::Ls(a) => images(a),
        ImageCmd::Rm(a) => rmi(a),
    }
}

fn inspect(refs: &[String]) -> Result<(), Error> {
    let s = store(false)?;
    let idx = s.index()?;
    let mut out = vec![];
    for r in refs {
        let i = s.find(&idx, r)?;
        let cfg: serde_json::Value = s.read_json(&i.id, "image config")?;
        let digests: Vec<String> = i
            .names
            .iter()
            .map(|n| format!("{}@{}", reference::split(n).0, i.manifest))
            .collect();
        out.push(serde_json::json!({
            "Id": i.id,
            "RepoTags": i.names,
            "RepoDigests": digests,
            "Created": cfg["created"],
            "Author": cfg["author"],
            "Architecture": cfg["architecture"],
            "Os": cfg["os"],
            "Config": cfg["config"],
            "Size": i.size(),
            "RootFS": {"Type": "layers", "Layers": i.layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
            "Husk": {
                "Manifest": i.manifest,
                "LayerDirs": i.layers.iter().map(|l| s.layer_dir(&l.chain_id).map(|d| d.join("diff"))).collect::<Result<Vec<_>, _>>()?,
            },
        }));
    }
    crate::out::line(serde_json::to_string_pretty(&out).map_err(|e| Error::Msg(e.to_string()))?)
}

fn prune(all: bool, force: bool) -> Result<(), Error> {
    let what = if all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    };
    if !force && !crate::out::confirm(what) {
        return Ok(());
    }
    as_store_owner(|| prune_here(all).map(|()| String::new())).map(drop)
}

fn prune_here(all: bool) -> Result<(), Error> {
    let s = store(true)?;
    husk_image::overlay::reclaim(&s);
    let mut idx = s.index()?;
    let used: Vec<String> = s.in_use().into_iter().map(|(_, id)| id).collect();
    let gone: Vec<String> = idx
        .images
        .values()
        .filter(|i| (all || i.names.is_empty()) && !used.contains(&i.id))
        .map(|i| i.id.clone())
        .collect();
    if !gone.is_empty() {
        crate::out::line("Deleted Images:")?;
    }
    for id in &gone {
        if let Some(i) = idx.images.remove(id) {
            for n in &i.names {
                crate::out::line(format!("untagged: {n}"))?;
            }
        }
        crate::out::line(format!("deleted: {id}"))?;
    }
    s.write_index(&idx)?;
    s.gc(&idx)
}

/// Removes the image roots whose run was killed before any record held them
/// (husk_image::overlay::reclaim), when there is an image store.
pub fn reclaim_roots() {
    let root = Store::default_root();
    if root.join("containers").is_dir()
        && let Ok(s) = Store::open(&root, true)
    {
        husk_image::overlay::reclaim(&s);
    }
}

/// `husk run IMAGE`: the image (loading `oci:DIR[:TAG]` first) mounted as the container's root
/// with its config applied to `a`. Dropping the returned root unmounts and removes it.
/// `record`: where the container's record will be (see husk_image::overlay::prepare). `kept`:
/// the container outlives this run (`-d`, and the monitored foreground runs of --detach-keys
/// and --sig-proxy=false), so `start` mounts its root again, even after a crash: not volatile.
pub fn prepare_run(
    a: &mut husk_frontend::RunArgs,
    image: &str,
    id: &str,
    record: &Path,
    kept: bool,
) -> Result<husk_image::overlay::Root, Error> {
    // An image's container is a service as docker's are: on the bridge unless told otherwise
    // (docs/frontend.md says why --rootfs and the embedded default stay on none). An ordinary
    // user has no bridge (husk refuses one): none there.
    let rootless = husk_frontend::rootless::Rootless::detect();
    if a.network.is_none() && rootless.is_none() {
        a.network = Some(husk_net::networks::DEFAULT.to_string());
    }
    let root = Store::default_root();
    let policy = a.pull.as_deref().unwrap_or("missing");
    let missing = |root: &Path| {
        let how = if policy == "never" {
            "--pull never: husk pull IMAGE or husk load -i FILE first"
        } else {
            "husk load -i FILE loads one, oci:DIR[:TAG] names an OCI layout"
        };
        Error::Msg(format!(
            "{image}: no such image in {} ({how}). To run {image} on the host's root, read-only: husk run [OPTIONS] -- {image} ...",
            root.display()
        ))
    };
    let from_layout = image.starts_with("oci:");
    let stored = |root: &Path| -> Result<bool, Error> {
        if !root.join("images.json").exists() {
            return Ok(false);
        }
        let s = Store::open(root, false)?;
        let idx = s.index()?;
        Ok(s.find(&idx, image).is_ok())
    };
    let pulling = !from_layout && (policy == "always" || (policy == "missing" && !stored(&root)?));
    // What changes the store (a pull, a layout's load) runs where the store's owner is root.
    let want = if pulling || from_layout {
        let (quiet, platform, tls) = (a.quiet, a.platform.clone(), a.tls_verify);
        let r = root.clone();
        as_store_owner(move || {
            if pulling {
                let o = pull_options(quiet, platform.as_deref(), tls, None)?;
                husk_image::pull::pull(&r, image, &o).map_err(|e| {
                    Error::Msg(format!(
                        "{image}: {e}. To run {image} on the host's root, read-only: husk run [OPTIONS] -- {image} ..."
                    ))
                })?;
            }
            let Some(rest) = image.strip_prefix("oci:") else {
                return Ok(image.to_string());
            };
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') => (d, Some(t)),
                _ => (rest, None),
            };
            let s = Store::open(&r, true)?;
            let names = import::load_layout(&s, Path::new(dir), tag)?;
            Ok(names.into_iter().next().unwrap_or_default())
        })?
    } else {
        image.to_string()
    };
    // A mistyped command is no reason to create the store.
    if !from_layout && !root.join("images.json").exists() {
        return Err(missing(&root));
    }
    let s = Store::open(&root, true)?;
    let idx = s.index()?;
    let img = s.find(&idx, &want).map_err(|e| match e {
        Error::Msg(m) if m.contains("no such image") => missing(&s.root),
        e => e,
    })?;
    let cfg: serde_json::Value = s.read_json(&img.id, "image config")?;
    a.exposed = exposed_ports(&cfg);
    let volumes = anonymous_volumes(&cfg, a)?;
    // keep-id's map needs the layers unpacked for it (husk_image::remap). Without ranges both
    // maps hold the user's id alone, which owns every file of the default unpacking already.
    let remap = rootless.as_ref().is_some_and(|me| {
        a.userns.as_deref() == Some("keep-id") && !me.subuids.is_empty() && !me.subgids.is_empty()
    });
    let mut root = match &rootless {
        Some(me) => {
            let (uid, gid) = (me.uid_mappings(remap), me.gid_mappings(remap));
            let variant = remap.then(|| husk_image::remap::variant(&uid, &gid));
            husk_image::overlay::prepare_detached(
                &s,
                img,
                id,
                record,
                &husk_image::overlay::IdMaps { uid, gid, variant },
                &volumes,
                kept,
            )?
        }
        None => husk_image::overlay::prepare(&s, img, id, record, !kept)?,
    };
    let view = root.view();
    husk_image::apply::apply(&cfg, a, (!remap).then_some(view.as_path()), image)?;
    a.root_mount = root.mount.clone();
    if rootless.is_none() {
        // Seeded once the WorkingDir exists, as docker's are.
        root.volumes = husk_image::volumes::create(&view, &root.dir.join("volumes"), &volumes)?;
    }
    for (v, dir) in volumes.iter().zip(&root.volumes) {
        a.image_volumes
            .push(husk_frontend::mounts::anonymous_volume(v, dir)?);
    }
    a.rootfs = Some(root.merged.clone());
    Ok(root)
}

/// What -P publishes: the image's ExposedPorts, PORT[-PORT][/PROTO] only (a key with a host
/// part is not the image's to choose). Read here, the image's config being plain JSON to
/// husk-image too.
fn exposed_ports(cfg: &serde_json::Value) -> Vec<String> {
    cfg["config"]["ExposedPorts"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| {
                    let port = k.split('/').next().unwrap_or_default();
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The image's VOLUMEs the command line mounts nothing at: a -v, --mount or --tmpfs at the same
/// path takes the anonymous volume's place, as docker's does.
fn anonymous_volumes(
    cfg: &serde_json::Value,
    a: &husk_frontend::RunArgs,
) -> Result<Vec<String>, Error> {
    let norm = |p: &str| Path::new(p).components().collect::<PathBuf>();
    let taken: Vec<PathBuf> = husk_frontend::mounts::user_mounts(a)?
        .iter()
        .map(|m| norm(&m.destination))
        .collect();
    Ok(cfg["config"]["Volumes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !taken.contains(&norm(k)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VOLUME the caller mounts something at (by -v, --tmpfs or any --mount spelling of the
    /// target, trailing slash or not) gets no anonymous volume.
    #[test]
    fn anonymous_volumes_are_those_nothing_is_mounted_at() {
        let cfg = serde_json::json!({"config": {"Volumes": {
            "/free": {}, "/v/": {}, "/t": {}, "/m": {}, "/d": {}
        }}});
        let mut a = husk_frontend::RunArgs {
            volume: vec!["/etc:/v:ro".into()],
            tmpfs: vec!["/t/:size=1m".into()],
            mount: vec![
                "type=tmpfs,target=/m".into(),
                "type=bind,src=/etc,destination=/d/".into(),
            ],
            ..Default::default()
        };
        assert_eq!(anonymous_volumes(&cfg, &a).unwrap(), ["/free"]);
        // A bad -v is refused here, before the image's root is made.
        a.volume = vec!["rel:/x".into()];
        assert!(anonymous_volumes(&cfg, &a).is_err());
    }
}
