//! `husk pull`, `husk login/logout` and `husk run --pull` against a local registry (Debian's
//! docker-registry) run inside a network namespace each test makes (`unshare -n`, lo up):
//! nothing reaches the host's network. Images are built with umoci from busybox-static and
//! pushed with skopeo; tests/registry/proxy.py stands in front of the registry as a token-auth
//! registry, one that drops connections mid-blob, one that corrupts blobs, and one that
//! redirects blobs to another host.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const REG: &str = "127.0.0.1:5000";
const PROXY: &str = "127.0.0.1:5001";

/// An OCI layout with `bb` (linux/amd64: busybox, Cmd sh), `bb-arm64` (the same layer, a
/// linux/arm64 config) and `multi`, an index of both. Built once per test binary.
fn layout() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Earlier runs' layouts (their test binary gone) are removed, not piled up.
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("registry-fixture-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let d = base.join(format!("registry-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let script = r#"set -e
mkdir -p rootfs/bin rootfs/etc rootfs/tmp
cp "$(command -v busybox)" rootfs/bin/busybox
for a in $(rootfs/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox rootfs/bin/$a; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > rootfs/etc/passwd
printf 'root:x:0:\n' > rootfs/etc/group
tar --numeric-owner --owner=0 --group=0 -C rootfs -cf l1.tar .
umoci init --layout oci
umoci new --image oci:bb
umoci raw add-layer --image oci:bb l1.tar
umoci config --image oci:bb --config.cmd sh --config.env PATH=/bin --config.env MARK=amd64 --architecture amd64 --os linux
umoci new --image oci:bb-arm64
umoci raw add-layer --image oci:bb-arm64 l1.tar
umoci config --image oci:bb-arm64 --config.cmd sh --config.env PATH=/bin --config.env MARK=arm64 --architecture arm64 --os linux
umoci gc --layout oci
rm -rf rootfs l1.tar
"#;
        fixture_script(&d, script);
        // The index of both platforms, as docker buildx pushes one.
        let oci = d.join("oci");
        let idx_path = oci.join("index.json");
        let mut idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&idx_path).unwrap()).unwrap();
        let pick = |tag: &str, arch: &str| {
            let mut m = idx["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
                .unwrap()
                .clone();
            m.as_object_mut().unwrap().remove("annotations");
            m["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
            m
        };
        let multi = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [pick("bb-arm64", "arm64"), pick("bb", "amd64")],
        });
        let bytes = serde_json::to_vec(&multi).unwrap();
        let tmp = d.join("multi.json");
        std::fs::write(&tmp, &bytes).unwrap();
        let sum = Command::new("sha256sum").arg(&tmp).output().unwrap();
        let hex = stdout(&sum).split_whitespace().next().unwrap().to_string();
        std::fs::rename(&tmp, oci.join("blobs/sha256").join(&hex)).unwrap();
        idx["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
        std::fs::write(&idx_path, serde_json::to_vec(&idx).unwrap()).unwrap();
        d
    })
}

/// A network namespace held by a `sleep`, with lo up, a registry on 127.0.0.1:5000 and,
/// when asked, the proxy on 127.0.0.1:5001; a husk store and auth file of its own.
struct Net {
    holder: Child,
    kids: Vec<Child>,
    dir: PathBuf,
}

impl Net {
    fn new(name: &str) -> Option<Net> {
        if let Some(r) = skip_reason() {
            skip(Skip::Prerequisite, &r);
            return None;
        }
        for t in [
            "docker-registry",
            "skopeo",
            "umoci",
            "busybox",
            "python3",
            "unshare",
            "nsenter",
            "ip",
            "timeout",
        ] {
            if !have(t) {
                skip(Skip::Prerequisite, &format!("{t} not installed"));
                return None;
            }
        }
        let dir = std::env::temp_dir().join(format!("husk-reg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("reg")).unwrap();
        let mut holder = Command::new("timeout")
            .args(["300", "unshare", "-n", "sh", "-c"])
            .arg("ip link set lo up && echo up && exec sleep 300")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "up", "the namespace holder did not start");
        let mut n = Net {
            holder,
            kids: vec![],
            dir,
        };
        let cfg = n.dir.join("registry.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: {REG}}}\n",
                n.dir.join("reg").display()
            ),
        )
        .unwrap();
        n.spawn("docker-registry", &["serve", cfg.to_str().unwrap()]);
        n.wait_port(5000);
        Some(n)
    }

    /// The holder's pid: `sleep` in the namespace (timeout's child).
    fn ns(&self) -> String {
        let kids = std::fs::read_to_string(format!(
            "/proc/{}/task/{}/children",
            self.holder.id(),
            self.holder.id()
        ))
        .unwrap();
        format!(
            "--net=/proc/{}/ns/net",
            kids.split_whitespace().next().expect("unshare runs")
        )
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["120", "nsenter", &self.ns(), prog]);
        c.env("HUSK_STORE", self.store())
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .stdin(Stdio::null());
        c
    }

    fn spawn(&mut self, prog: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{prog}.log"))).unwrap();
        let mut c = Command::new("nsenter");
        c.args([&self.ns(), prog])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.kids.push(c.spawn().unwrap());
    }

    fn wait_port(&self, port: u16) {
        wait_until(Duration::from_secs(60), &format!("port {port}"), || {
            self.cmd("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
    }

    /// The proxy on 5001 in front of the registry, in `mode` (see proxy.py).
    fn proxy(&mut self, mode: &str) {
        self.set_mode(mode);
        let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/proxy.py");
        let (m, l) = (self.dir.join("mode"), self.dir.join("proxy-requests"));
        self.spawn(
            "python3",
            &[
                py.to_str().unwrap(),
                "5001",
                "5000",
                m.to_str().unwrap(),
                l.to_str().unwrap(),
            ],
        );
        self.wait_port(5001);
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.join("mode"), mode).unwrap();
        let _ = std::fs::write(self.dir.join("proxy-requests"), "");
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy-requests")).unwrap_or_default()
    }

    /// skopeo pushes a tag of the layout as REG/repo:latest (`--all` keeps an index whole).
    fn push(&self, tag: &str, repo: &str) {
        let src = format!("oci:{}:{tag}", layout().join("oci").display());
        let o = self
            .cmd("skopeo")
            .args(["copy", "-q", "--all", "--dest-tls-verify=false", &src])
            .arg(format!("docker://{REG}/{repo}:latest"))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo push: {}", stderr(&o));
    }

    fn husk(&self, args: &[&str]) -> Output {
        self.cmd(HUSK)
            .arg("--root")
            .arg(self.dir.join("run"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        ok_stdout(&self.husk(args), args)
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.husk(args);
        assert!(
            !o.status.success(),
            "husk {args:?} succeeded: {}",
            stdout(&o)
        );
        stderr(&o)
    }

    fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    fn entries(&self, sub: &str) -> Vec<String> {
        std::fs::read_dir(self.store().join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// No image, blob, layer, partial blob or temporary file.
    fn assert_store_empty(&self) {
        for sub in ["blobs/sha256", "layers", "partial", "tmp"] {
            assert_eq!(self.entries(sub), Vec::<String>::new(), "left in {sub}/");
        }
        assert_eq!(self.ok(&["images", "-q"]), "");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn pull_and_run_from_a_local_registry() {
    let Some(n) = Net::new("run") else { return };
    n.push("bb", "bb");
    let img = format!("{REG}/bb");
    let o = n.husk(&["pull", &img]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // Not a terminal: plain lines, one per layer event.
    let err = stderr(&o);
    assert!(
        err.contains(&format!("Trying to pull {img}:latest")),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(n.entries("layers").len(), 1);
    assert_eq!(
        n.ok(&[
            "run",
            "--network",
            "none",
            "--rm",
            &img,
            "cat",
            "/etc/passwd"
        ]),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    // Present: a second pull finds the layer in place; -q prints the id only.
    let o = n.husk(&["pull", "-q", &img]);
    assert_eq!((stdout(&o).trim(), stderr(&o).as_str()), (id.as_str(), ""));
    // Two pulls at once into an empty store: both succeed, one image, the layer unpacked once.
    n.ok(&["rmi", &img]);
    n.assert_store_empty();
    let pulls: Vec<Child> = (0..2)
        .map(|_| {
            n.cmd(HUSK)
                .args(["pull", "-q", &img])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "concurrent pull: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), id);
    }
    assert_eq!(n.ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(n.entries("layers").len(), 1);
    assert!(n.entries("partial").is_empty() && n.entries("tmp").is_empty());
    // run --pull: never refuses what is missing, missing (the default) pulls it, always pulls.
    n.ok(&["rmi", &img]);
    let e = n.fails(&[
        "run",
        "--network",
        "none",
        "--rm",
        "--pull=never",
        &img,
        "true",
    ]);
    assert!(
        e.contains("no such image") && e.contains("--pull never"),
        "{e}"
    );
    let o = n.husk(&["run", "--network", "none", "--rm", &img, "echo", "pulled"]);
    assert_eq!(stdout(&o), "pulled\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("Pull complete"), "{}", stderr(&o));
    let o = n.husk(&[
        "run",
        "--network",
        "none",
        "--rm",
        "-q",
        "--pull=always",
        &img,
        "echo",
        "again",
    ]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("again\n", ""));
    let inspect = n.ok(&["image", "inspect", &img]);
    assert!(inspect.contains("MARK=amd64"), "{inspect}");
}

#[test]
fn an_index_is_resolved_to_the_platform() {
    let Some(n) = Net::new("platform") else {
        return;
    };
    n.push("multi", "multi");
    let img = format!("{REG}/multi");
    n.ok(&["pull", "-q", &img]);
    assert!(n.ok(&["image", "inspect", &img]).contains("MARK=amd64"));
    n.ok(&["pull", "-q", "--platform", "linux/arm64", &img]);
    let inspect = n.ok(&["image", "inspect", &img]);
    assert!(
        inspect.contains("MARK=arm64") && inspect.contains("\"arm64\""),
        "{inspect}"
    );
    // Both configs share the one layer: still unpacked once.
    assert_eq!(n.entries("layers").len(), 1);
    let e = n.fails(&["pull", "--platform", "linux/s390x", &img]);
    assert!(
        e.contains("no image for linux/s390x") && e.contains("linux/arm64, linux/amd64"),
        "{e}"
    );
    let e = n.fails(&["pull", "--platform", "linux", &img]);
    assert!(e.contains("os/arch[/variant]"), "{e}");
}

#[test]
fn token_auth_login_and_logout() {
    let Some(mut n) = Net::new("token") else {
        return;
    };
    n.push("bb", "bb");
    // Blobs redirected to another host: the registry's token must not follow them there.
    n.proxy("token redirect");
    let img = format!("{PROXY}/bb");
    let e = n.fails(&["pull", &img]);
    assert!(e.contains(&format!("husk login {PROXY}")), "{e}");
    let login = |pw: &str| {
        let mut c = n.cmd(HUSK);
        c.args(["login", "-u", "user", "--password-stdin", PROXY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        writeln!(ch.stdin.take().unwrap(), "{pw}").unwrap();
        ch.wait_with_output().unwrap()
    };
    let o = login("wrong");
    assert!(!o.status.success(), "a wrong password logged in");
    assert!(
        !n.dir.join("auth.json").exists(),
        "a refused login wrote the auth file"
    );
    let o = login("secret");
    assert!(o.status.success(), "login: {}", stderr(&o));
    assert_eq!(stdout(&o), "Login Succeeded!\n");
    let auth = std::fs::read_to_string(n.dir.join("auth.json")).unwrap();
    assert!(
        auth.contains(PROXY) && auth.contains("dXNlcjpzZWNyZXQ="),
        "{auth}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(n.dir.join("auth.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    n.set_mode("token redirect");
    n.ok(&["pull", "-q", &img]);
    let log = n.requests();
    assert!(log.contains("GET /token"), "{log}");
    assert!(log.contains("GET /storage/v2/bb/blobs/sha256:"), "{log}");
    assert!(
        log.contains("/v2/bb/manifests/latest range=- auth=Bearer"),
        "{log}"
    );
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", &img, "echo", "ok"]),
        "ok\n"
    );
    n.ok(&["logout", PROXY]);
    assert!(
        !std::fs::read_to_string(n.dir.join("auth.json"))
            .unwrap()
            .contains(PROXY)
    );
    let e = n.fails(&["logout", PROXY]);
    assert!(e.contains("not logged in"), "{e}");
    // Basic credentials on the command line work without the file.
    n.ok(&["rmi", &img]);
    n.ok(&["pull", "-q", "--creds", "user:secret", &img]);
    n.ok(&["rmi", &img]);
    cred_helpers(&n, &img);
}

/// docker's credential helpers: `credHelpers` names one for the registry, `credsStore` one for
/// every registry; husk runs `docker-credential-NAME get` with the registry on stdin.
fn cred_helpers(n: &Net, img: &str) {
    use std::os::unix::fs::PermissionsExt;
    let bin = n.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-fake");
    let log = n.dir.join("helper.log");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\necho \"$1 $server\" >> {}\ncase \"$server\" in\n{PROXY}) printf '{{\"ServerURL\":\"%s\",\"Username\":\"user\",\"Secret\":\"secret\"}}' \"$server\";;\n*) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pull = |auth: serde_json::Value| {
        std::fs::write(n.dir.join("auth.json"), auth.to_string()).unwrap();
        let o = n
            .cmd(HUSK)
            .env("PATH", &path)
            .args([
                "--root",
                n.dir.join("run").to_str().unwrap(),
                "pull",
                "-q",
                img,
            ])
            .output()
            .unwrap();
        let _ = n.husk(&["rmi", img]);
        o
    };
    let o = pull(serde_json::json!({"credHelpers": {PROXY: "fake"}}));
    assert!(o.status.success(), "credHelpers: {}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("get {PROXY}\n")
    );
    let o = pull(serde_json::json!({"auths": {PROXY: {}}, "credsStore": "fake"}));
    assert!(o.status.success(), "credsStore: {}", stderr(&o));
    let o = pull(serde_json::json!({"credHelpers": {PROXY: "gone"}}));
    assert!(
        !o.status.success()
            && stderr(&o).contains("docker-credential-gone (credHelpers.\"127.0.0.1:5001\" in ")
            && stderr(&o).contains("not found in $PATH"),
        "{}",
        stderr(&o)
    );
    // A helper without credentials for the registry: the registry's challenge is answered as
    // without any ("husk login").
    let o = pull(serde_json::json!({"credHelpers": {PROXY: "fake"}, "credsStore": "fake"}));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        &helper,
        "#!/bin/sh\necho 'credentials not found in native keychain'; exit 1\n",
    )
    .unwrap();
    let o = pull(serde_json::json!({"credsStore": "fake"}));
    assert!(
        !o.status.success() && stderr(&o).contains(&format!("husk login {PROXY}")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_dropped_connection_is_resumed_and_a_wrong_digest_refused() {
    let Some(mut n) = Net::new("drop") else {
        return;
    };
    n.push("bb", "bb");
    n.proxy("drop-once");
    let img = format!("{PROXY}/bb");
    // Each blob's first GET ends halfway: husk resumes it with a Range request.
    n.ok(&["pull", "-q", &img]);
    let log = n.requests();
    assert!(
        log.lines().any(|l| l.contains("/blobs/")
            && l.contains("range=bytes=")
            && !l.contains("range=bytes=0-")),
        "no resumed request: {log}"
    );
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", &img, "echo", "whole"]),
        "whole\n"
    );
    n.ok(&["rmi", &img]);
    n.assert_store_empty();

    // Every attempt ends halfway: the pull fails, the partial blob is kept, nothing is visible.
    n.set_mode("drop");
    let e = n.fails(&["pull", "-q", &img]);
    assert!(
        e.contains("the connection failed at byte") && e.contains("resumes"),
        "{e}"
    );
    let partial = n.entries("partial");
    assert_eq!(partial.len(), 1);
    assert!(n.entries("layers").is_empty() && n.ok(&["images", "-q"]).is_empty());
    // The next pull asks for the layer from where the kept bytes end, once.
    n.set_mode("pass");
    n.ok(&["pull", "-q", &img]);
    let log = n.requests();
    let gets: Vec<&str> = log.lines().filter(|l| l.contains(&partial[0])).collect();
    assert_eq!(gets.len(), 1, "{log}");
    assert!(
        gets[0].contains("range=bytes=") && !gets[0].contains("range=bytes=0-"),
        "{log}"
    );
    assert!(n.entries("partial").is_empty());
    n.ok(&["rmi", &img]);
    n.assert_store_empty();

    // Bytes that are not the blob the manifest names: refused, and nothing of them kept.
    n.set_mode("corrupt");
    let e = n.fails(&["pull", "-q", &img]);
    assert!(e.contains("digest mismatch"), "{e}");
    n.assert_store_empty();
}

#[test]
fn a_zstd_layer_of_two_frames_is_pulled() {
    let Some(n) = Net::new("zstd") else { return };
    require!(have("zstd"), "zstd not installed");
    // The uncompressed layer (skopeo's dir: copy), recompressed as two zstd frames end to end.
    let d = n.dir.join("raw");
    let src = format!("oci:{}:bb", layout().join("oci").display());
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--dest-decompress", &src])
        .arg(format!("dir:{}", d.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
    let hex = |v: &serde_json::Value| v.as_str().unwrap()[7..].to_string();
    let (cfg, layer) = (hex(&m["config"]["digest"]), hex(&m["layers"][0]["digest"]));
    fixture_script(
        &d,
        &format!(
            "head -c 100000 {layer} | zstd -q -c > l.zst; tail -c +100001 {layer} | zstd -q -c >> l.zst"
        ),
    );
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/push.py");
    let o = n
        .cmd("python3")
        .arg(py)
        .args([REG, "zst", "latest"])
        .arg(d.join(&cfg))
        .arg(d.join("l.zst"))
        .output()
        .unwrap();
    assert!(o.status.success(), "push.py: {}", stderr(&o));
    let img = format!("{REG}/zst");
    n.ok(&["pull", "-q", &img]);
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", &img, "echo", "zstd"]),
        "zstd\n"
    );
}

/// Removes a directory when dropped (a test's /etc/containers/certs.d entry).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_tls_registry_is_trusted_through_certs_d() {
    let Some(mut n) = Net::new("tls") else {
        return;
    };
    if !have("openssl") {
        skip(Skip::Prerequisite, "openssl not installed");
        return;
    }
    n.push("bb", "bb");
    // A CA, a certificate for 127.0.0.1 it signs, and a CA that signs nothing here.
    let tls = n.dir.join("tls");
    for d in ["good", "other"] {
        std::fs::create_dir_all(tls.join(d)).unwrap();
    }
    let script = r#"set -e
ec() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "$@" 2>/dev/null; }
ec -subj /CN=husk-test-ca -keyout ca.key -out good/ca.crt
ec -subj /CN=husk-other-ca -keyout other.key -out other/ca.crt
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext
openssl x509 -req -in srv.csr -CA good/ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out srv.crt 2>/dev/null
"#;
    fixture_script(&tls, script);
    let cfg = n.dir.join("registry-tls.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:5443, tls: {{certificate: {}, key: {}}}}}\n",
            n.dir.join("reg").display(),
            tls.join("srv.crt").display(),
            tls.join("srv.key").display()
        ),
    )
    .unwrap();
    n.spawn("docker-registry", &["serve", cfg.to_str().unwrap()]);
    n.wait_port(5443);
    let img = "127.0.0.1:5443/bb";
    let e = n.fails(&["pull", "-q", "--tls-verify=true", img]);
    assert!(
        e.contains("127.0.0.1:5443's TLS certificate: no CA husk trusts signed it")
            && e.contains("/etc/containers/certs.d/127.0.0.1:5443/ca.crt"),
        "{e}"
    );
    let other = tls.join("other");
    let e = n.fails(&["pull", "-q", "--cert-dir", other.to_str().unwrap(), img]);
    assert!(
        e.contains(&format!(
            "the CAs in {} do not vouch for it",
            other.display()
        )),
        "{e}"
    );
    n.ok(&[
        "pull",
        "-q",
        "--cert-dir",
        tls.join("good").to_str().unwrap(),
        img,
    ]);
    n.ok(&["rmi", img]);
    // docker's and podman's place: a local registry given a CA is verified with it.
    let certs_d = PathBuf::from("/etc/containers/certs.d/127.0.0.1:5443");
    std::fs::create_dir_all(&certs_d).unwrap();
    let _gone = RemoveDir(certs_d.clone());
    std::fs::copy(other.join("ca.crt"), certs_d.join("ca.crt")).unwrap();
    let e = n.fails(&["pull", "-q", img]);
    assert!(e.contains("do not vouch for it"), "{e}");
    std::fs::copy(tls.join("good/ca.crt"), certs_d.join("ca.crt")).unwrap();
    n.ok(&["pull", "-q", img]);
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", img, "echo", "ok"]),
        "ok\n"
    );
}
