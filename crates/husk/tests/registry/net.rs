//! What registry.rs and faults.rs share: a network namespace of the test's own (`unshare -n`,
//! lo up) with Debian's docker-registry on 127.0.0.1:5000, an OCI layout of a busybox image to
//! push there (umoci, skopeo), tests/registry/proxy.py in front when asked, and a husk store,
//! root and auth file of its own. Nothing reaches the host's network.

#![allow(dead_code)] // each test binary uses a part

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub const REG: &str = "127.0.0.1:5000";
pub const PROXY: &str = "127.0.0.1:5001";

/// An OCI layout with `bb` (linux/amd64: busybox, Cmd sh), `bb-arm64` (the same layer, a
/// linux/arm64 config) and `multi`, an index of both. Built once per test binary.
pub fn layout() -> &'static Path {
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
pub struct Net {
    holder: Child,
    kids: Vec<Child>,
    pub dir: PathBuf,
}

impl Net {
    pub fn new(name: &str) -> Option<Net> {
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
        // A process group of its own (timeout's, with the sleep under it), killed whole at
        // the end: killing timeout alone would leave the sleep holding the namespace.
        let mut holder = Command::new("timeout")
            .args(["300", "unshare", "-n", "sh", "-c"])
            .arg("ip link set lo up && echo up && exec sleep 300")
            .stdout(Stdio::piped())
            .process_group(0)
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
                "version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: ':5000'}}\n",
                n.dir.join("reg").display()
            ),
        )
        .unwrap();
        n.spawn("docker-registry", &["serve", cfg.to_str().unwrap()]);
        n.wait_port(5000);
        Some(n)
    }

    /// The holder's pid: `sleep` in the namespace (timeout's child).
    pub fn sleep_pid(&self) -> String {
        let kids = std::fs::read_to_string(format!(
            "/proc/{}/task/{}/children",
            self.holder.id(),
            self.holder.id()
        ))
        .unwrap();
        kids.split_whitespace()
            .next()
            .expect("unshare runs")
            .to_string()
    }

    pub fn ns(&self) -> String {
        format!("--net=/proc/{}/ns/net", self.sleep_pid())
    }

    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["120", "nsenter", &self.ns(), prog]);
        c.env("HUSK_STORE", self.store())
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .stdin(Stdio::null());
        c
    }

    pub fn spawn(&mut self, prog: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{prog}.log"))).unwrap();
        let mut c = Command::new("nsenter");
        c.args([&self.ns(), prog])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.kids.push(c.spawn().unwrap());
    }

    pub fn wait_port(&self, port: u16) {
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
    pub fn proxy(&mut self, mode: &str) {
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

    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.join("mode"), mode).unwrap();
        let _ = std::fs::write(self.dir.join("proxy-requests"), "");
    }

    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy-requests")).unwrap_or_default()
    }

    /// skopeo pushes a tag of the layout as REG/repo:latest (`--all` keeps an index whole).
    pub fn push(&self, tag: &str, repo: &str) {
        let src = format!("oci:{}:{tag}", layout().join("oci").display());
        let o = self
            .cmd("skopeo")
            .args(["copy", "-q", "--all", "--dest-tls-verify=false", &src])
            .arg(format!("docker://{REG}/{repo}:latest"))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo push: {}", stderr(&o));
    }

    pub fn husk(&self, args: &[&str]) -> Output {
        self.cmd(HUSK)
            .arg("--root")
            .arg(self.dir.join("run"))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        ok_stdout(&self.husk(args), args)
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.husk(args);
        assert!(
            !o.status.success(),
            "husk {args:?} succeeded: {}",
            stdout(&o)
        );
        stderr(&o)
    }

    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn entries(&self, sub: &str) -> Vec<String> {
        std::fs::read_dir(self.store().join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// No image, blob, layer, partial blob or temporary file.
    pub fn assert_store_empty(&self) {
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
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.holder.id())])
            .status();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
