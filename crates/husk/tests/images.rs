//! Images end to end: `husk load` of archives skopeo wrote (docker-archive, oci-archive), an OCI
//! layout as `oci:DIR:TAG`, `husk run IMAGE` on an overlay root with the config applied,
//! `images`/`tag`/`rmi`/`image inspect|prune`, and crafted hostile layers.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Store {
    dir: PathBuf,
    root: PathBuf,
}

impl Store {
    fn new(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("husk-img-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("run");
        Store { dir, root }
    }

    fn husk(&self, args: &[&str]) -> Output {
        Command::new(HUSK)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env("HUSK_STORE", self.dir.join("store"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        ok_stdout(&self.husk(args), args)
    }

    fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// Nothing of a container remains: no overlay mounted, no upper dir, no tmp file.
    fn assert_clean(&self) {
        let c = self.store().join("containers");
        let left: Vec<_> = std::fs::read_dir(&c).unwrap().flatten().collect();
        assert!(left.is_empty(), "left in {}: {left:?}", c.display());
        let t: Vec<_> = std::fs::read_dir(self.store().join("tmp"))
            .unwrap()
            .flatten()
            .collect();
        assert!(t.is_empty(), "left in tmp/: {t:?}");
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.contains(&*self.store().to_string_lossy()),
            "an overlay is still mounted"
        );
        assert_host_network_untouched();
    }

    fn layer_count(&self) -> usize {
        std::fs::read_dir(self.store().join("layers")).map_or(0, |d| d.count())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A two-layer busybox image built with umoci (the second layer deletes /etc/gone with a
/// whiteout, makes /opq opaque and hard-links a file; VOLUMEs /vol, seeded, and /over, Labels
/// and ExposedPorts in its config), copied by skopeo into a docker-archive
/// and an oci-archive. Returns the fixture directory, or None (after a SKIP) without the tools.
fn fixture(s: &Store) -> Option<PathBuf> {
    if let Some(r) = skip_reason() {
        skip(Skip::Prerequisite, &r);
        return None;
    }
    for t in ["umoci", "skopeo", "busybox"] {
        if !have(t) {
            skip(Skip::Prerequisite, &format!("{t} not installed"));
            return None;
        }
    }
    let d = s.dir.join("fx");
    std::fs::create_dir_all(&d).unwrap();
    let script = r#"set -e
mkdir -p rootfs/bin rootfs/etc rootfs/tmp rootfs/opq l2/opq l2/etc
cp "$(command -v busybox)" rootfs/bin/busybox
for a in $(rootfs/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox rootfs/bin/$a; done
printf 'root:x:0:0:root:/root:/bin/sh\nu:x:1001:1001::/tmp:/bin/sh\n' > rootfs/etc/passwd
printf 'root:x:0:\n' > rootfs/etc/group
echo gone > rootfs/etc/gone; echo old > rootfs/opq/old
mkdir -p rootfs/vol/sub; echo seed > rootfs/vol/sub/f; ln -s sub/f rootfs/vol/link; chmod 0750 rootfs/vol
tar --numeric-owner --owner=0 --group=0 -C rootfs -cf l1.tar .
echo new > l2/opq/new; ln l2/opq/new l2/opq/hard; touch l2/opq/.wh..wh..opq l2/etc/.wh.gone
tar --numeric-owner --owner=0 --group=0 -C l2 -cf l2.tar .
umoci init --layout oci; umoci new --image oci:t
umoci raw add-layer --image oci:t l1.tar; umoci raw add-layer --image oci:t l2.tar
umoci config --image oci:t --config.entrypoint /bin/env --config.cmd cat --config.cmd /etc/passwd \
  --config.env PATH=/bin --config.env FOO=img --config.workingdir /work/dir --architecture amd64 --os linux \
  --config.volume /vol --config.volume /over --config.label a=img --config.label b=img --config.exposedports 80/tcp
umoci gc --layout oci
skopeo copy -q oci:oci:t docker-archive:t-docker.tar:localhost/t:latest
skopeo copy -q oci:oci:t oci-archive:t-oci.tar:localhost/t-oci:v1
"#;
    fixture_script(&d, script);
    Some(d)
}

#[test]
fn load_run_and_remove_images() {
    let s = Store::new("run");
    let Some(fx) = fixture(&s) else { return };
    let docker = fx.join("t-docker.tar");
    let oci = fx.join("t-oci.tar");
    assert_eq!(
        s.ok(&["load", "-i", docker.to_str().unwrap()]).trim(),
        "Loaded image: localhost/t:latest"
    );
    s.ok(&["load", "-i", oci.to_str().unwrap()]);
    // The same image from both archives: one id, its layers unpacked once.
    let ids = s.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert_eq!(s.layer_count(), 2);
    let table = s.ok(&["images", "--digests"]);
    assert!(
        table.contains("localhost/t ") && table.contains("localhost/t-oci"),
        "{table}"
    );
    assert!(table.contains("sha256:"), "{table}");
    let head: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        head,
        ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    );
    // docker's --format: templates (with `table `'s header), json; `image ls REPO[:TAG]`.
    assert_eq!(
        s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "localhost/t:latest\nlocalhost/t-oci:v1\n"
    );
    let t = s.ok(&[
        "image",
        "ls",
        "--format",
        "table {{.ID}}\\t{{.CreatedSince}}",
        "localhost/t-oci",
    ]);
    let id = ids.trim();
    assert!(
        t.starts_with(&format!("IMAGE ID\tCREATED\n{id}\t"))
            && t.ends_with(" ago\n")
            && t.lines().count() == 2,
        "{t}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&s.ok(&["images", "--format", "json", "localhost/t:latest"])).unwrap();
    assert_eq!(
        (&j["Repository"], &j["Tag"], &j["ID"]),
        (&"localhost/t".into(), &"latest".into(), &id.into())
    );
    assert!(
        j["Size"].as_str().unwrap().ends_with("MB")
            && j["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"),
        "{j}"
    );
    let insp: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "inspect", "localhost/t"])).unwrap();
    assert_eq!(s.ok(&["images", "-q", "--no-trunc"]).trim(), insp[0]["Id"]);
    assert_eq!(
        s.ok(&["images", "localhost/t:nope"]).lines().count(),
        1,
        "only the header"
    );

    // Entrypoint + Cmd as docker joins them.
    let out = s.ok(&["run", "--network", "none", "localhost/t"]);
    assert!(out.starts_with("root:x:0:0"), "{out}");
    // CMD replaces Cmd; -e overrides Env; WorkingDir made; whiteouts and opaque dir applied.
    let out = s.ok(&[
        "run",
        "--network",
        "none",
        "-e",
        "FOO=cli",
        "--entrypoint",
        "/bin/sh",
        "localhost/t:latest",
        "-c",
        "pwd; echo $FOO; ls /opq; ls /etc/gone 2>&1; cat /opq/hard; echo x > /etc/new",
    ]);
    let want = "/work/dir\ncli\nhard\nnew\nls: /etc/gone: No such file or directory\nnew\n";
    assert_eq!(out, want);
    // A write lands in the container's upper layer, never in the shared layers.
    let out = s.ok(&[
        "run",
        "--network",
        "none",
        "localhost/t-oci:v1",
        "/bin/sh",
        "-c",
        "ls /etc/new 2>&1; echo $FOO",
    ]);
    assert_eq!(out, "ls: /etc/new: No such file or directory\nimg\n");
    // A foreground run's root is thrown away after it: overlayfs skips syncing the upper fs
    // (its unmount would otherwise sync the store's whole filesystem).
    let mi = s.ok(&[
        "run",
        "--network",
        "none",
        "localhost/t",
        "/bin/cat",
        "/proc/self/mountinfo",
    ]);
    let root_line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    // Linux shows it as `volatile` or (6.x) `fsync=volatile`.
    assert!(root_line.contains("volatile"), "{root_line}");
    s.assert_clean();

    // An OCI layout directory runs as oci:DIR:TAG.
    let layout = format!("oci:{}:t", fx.join("oci").display());
    assert_eq!(
        s.ok(&["run", "--network", "none", &layout, "/bin/echo", "hi"]),
        "hi\n"
    );

    s.ok(&["tag", "localhost/t", "example.com/x/y:2"]);
    let insp: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "inspect", "example.com/x/y:2"])).unwrap();
    assert_eq!(insp[0]["Config"]["WorkingDir"], "/work/dir");
    assert_eq!(insp[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    // husk save writes what husk load, skopeo (docker-archive and OCI layout) read back.
    let saved = s.dir.join("saved.tar");
    s.ok(&["save", "-o", saved.to_str().unwrap(), "example.com/x/y:2"]);
    let other = Store::new("saved");
    assert_eq!(
        other.ok(&["load", "-i", saved.to_str().unwrap()]).trim(),
        "Loaded image: example.com/x/y:2"
    );
    assert_eq!(other.ok(&["images", "-q"]), ids);
    assert_eq!(
        other.ok(&[
            "run",
            "--network",
            "none",
            "example.com/x/y:2",
            "/bin/cat",
            "/opq/new"
        ]),
        "new\n"
    );
    for t in ["docker-archive", "oci-archive"] {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", &format!("{t}:{}", saved.display())])
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo reads {t}: {}", stderr(&o));
    }
    // By id with several names: refused without -f; by name: untagged only.
    let id = ids.trim().to_string();
    let o = s.husk(&["rmi", &id]);
    assert!(
        !o.status.success() && stderr(&o).contains("several names"),
        "{}",
        stderr(&o)
    );
    assert!(
        s.ok(&["rmi", "example.com/x/y:2"])
            .contains("Untagged: example.com/x/y:2")
    );
    assert_eq!(s.layer_count(), 2);
    let out = s.ok(&["rmi", "-f", &id]);
    assert!(out.contains(&format!("Deleted: sha256:{id}")), "{out}");
    assert_eq!(
        s.layer_count(),
        0,
        "layers of a removed image are collected"
    );
    let o = s.husk(&["run", "--network", "none", "--pull=never", "localhost/t"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("no such image"), "{}", stderr(&o));
    s.assert_clean();
}

#[test]
fn rmi_is_refused_while_a_container_uses_the_image() {
    let s = Store::new("inuse");
    let Some(fx) = fixture(&s) else { return };
    s.ok(&["load", "-i", fx.join("t-docker.tar").to_str().unwrap()]);
    let mut run = Command::new(HUSK)
        .arg("--root")
        .arg(&s.root)
        .args([
            "run",
            "--network",
            "none",
            "--name",
            "imgbusy",
            "localhost/t",
            "/bin/sleep",
            "600",
        ])
        .env("HUSK_STORE", s.store())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(PATIENCE, "the container to run", || {
        stdout(&s.husk(&["state", "imgbusy"])).contains("\"running\"")
    });
    let o = s.husk(&["rmi", "-f", "localhost/t"]);
    assert!(!o.status.success(), "rmi of an image in use succeeded");
    assert!(
        stderr(&o).contains("in use by container imgbusy"),
        "{}",
        stderr(&o)
    );
    // docker's prompt, answered by /dev/null: nothing pruned.
    let o = s.husk(&["image", "prune", "-a"]);
    assert!(o.status.success() && stderr(&o).contains("Are you sure"));
    assert_eq!(stdout(&o), "");
    let o = s.husk(&["image", "prune", "-af"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.layer_count(), 2, "prune kept the image a container uses");
    s.ok(&["kill", "imgbusy", "KILL"]);
    wait_code(&mut run);
    s.assert_clean();
    s.ok(&["rmi", "localhost/t"]);
}

/// A docker-archive made of crafted layers (tests/images/mkarchive.py).
fn crafted(s: &Store, name: &str, spec: serde_json::Value) -> PathBuf {
    let out = s.dir.join(format!("{name}.tar"));
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/mkarchive.py");
    let o = Command::new("python3")
        .arg(py)
        .arg(&out)
        .arg(format!("localhost/{name}:latest"))
        .arg(spec.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "mkarchive: {}", stderr(&o));
    out
}

#[test]
fn hostile_layers_stay_inside_the_layer() {
    use serde_json::json;
    let s = Store::new("hostile");
    if let Some(r) = skip_reason() {
        return skip(Skip::Prerequisite, &r);
    }
    if !have("python3") {
        return skip(Skip::Prerequisite, "python3 not installed");
    }
    let bait = s.dir.join("bait");
    std::fs::create_dir_all(&bait).unwrap();
    std::fs::write(bait.join("secret"), "host").unwrap();
    let b = bait.to_string_lossy().into_owned();
    let b = b.trim_start_matches('/');

    // Refused outright: `..`, a hard link to a file the layer does not hold, a wrong diffID.
    for (name, layer, why) in [
        (
            "dotdot",
            json!([{"name": "../../x", "data": "x"}]),
            "\"..\" leads out of the root",
        ),
        (
            "hardout",
            json!([{"name": "h", "type": "link", "target": format!("/{b}/secret")}]),
            "hard link",
        ),
        (
            "badid",
            json!([{"name": "f", "data": "x"}]),
            "diffID mismatch",
        ),
    ] {
        let bad = name == "badid";
        let a = crafted(&s, name, json!([{"entries": layer, "bad_diff_id": bad}]));
        let o = s.husk(&["load", "-i", a.to_str().unwrap()]);
        assert!(!o.status.success(), "{name}: loaded");
        assert!(stderr(&o).contains(why), "{name}: {}", stderr(&o));
        assert_eq!(s.layer_count(), 0, "{name}: a layer was stored");
        let blobs = std::fs::read_dir(s.store().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 0, "{name}: blobs of a failed load were kept");
        s.assert_clean();
    }

    // Absolute paths and paths through symlinks (absolute or climbing) land inside the layer;
    // whiteouts, a device node, a fifo and setuid bits are kept as overlayfs and docker want.
    let a = crafted(
        &s,
        "tricks",
        json!([{"entries": [
            {"name": format!("/{b}/abs"), "data": "abs"},
            {"name": "up", "type": "symlink", "target": "../../../../../../"},
            {"name": format!("up/{b}/viaup"), "data": "up"},
            {"name": "root", "type": "symlink", "target": "/"},
            {"name": format!("root/{b}/secret"), "data": "overwritten?"},
            {"name": "bin/su", "data": "#!", "mode": 0o4755},
            // cap_net_raw+ep (vfs_cap_data v2), and an overlay xattr that must not be taken.
            {"name": "bin/ping", "data": "#!", "xattrs": {
                "security.capability": "0100000200200000000000000000000000000000",
                "trusted.overlay.opaque": "79"}},
            {"name": "dev/null2", "type": "char", "major": 1, "minor": 3},
            {"name": "p", "type": "fifo"},
            {"name": "etc/.wh.hidden", "data": ""},
            {"name": "keep/.wh..wh..opq", "data": ""},
        ]}]),
    );
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(bait.join("secret")).unwrap(),
        "host"
    );
    assert!(!bait.join("abs").exists() && !bait.join("viaup").exists());
    let insp: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "inspect", "localhost/tricks"])).unwrap();
    let diff = PathBuf::from(insp[0]["Husk"]["LayerDirs"][0].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(diff.join(b).join("abs")).unwrap(),
        "abs"
    );
    assert_eq!(
        std::fs::read_to_string(diff.join(b).join("viaup")).unwrap(),
        "up"
    );
    assert_eq!(
        std::fs::read_to_string(diff.join(b).join("secret")).unwrap(),
        "overwritten?"
    );
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert_eq!(
        std::fs::metadata(diff.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    // Only the capability, and the value the layer carried (cap_net_raw=ep, VFS revision 2).
    let o = Command::new("python3")
        .args([
            "-c",
            "import os,sys; p=sys.argv[1]; print(os.listxattr(p), os.getxattr(p, 'security.capability').hex())",
        ])
        .arg(diff.join("bin/ping"))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        "['security.capability'] 0100000200200000000000000000000000000000\n",
        "{}",
        stderr(&o)
    );
    let dev = std::fs::symlink_metadata(diff.join("dev/null2")).unwrap();
    assert!(dev.file_type().is_char_device() && dev.rdev() == 0x103);
    assert!(
        std::fs::symlink_metadata(diff.join("p"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let wh = std::fs::symlink_metadata(diff.join("etc/hidden")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 device"
    );
    assert!(!diff.join("etc/.wh.hidden").exists() && !diff.join("keep/.wh..wh..opq").exists());
    s.assert_clean();
}

/// 70 layers: their paths overflow the one page of mount options, so the root's lowerdirs
/// are named by fd; every layer shows, the upper ones over the lower.
#[test]
fn an_image_of_seventy_layers_runs() {
    let s = Store::new("layers");
    if let Some(r) = skip_reason() {
        return skip(Skip::Prerequisite, &r);
    }
    for t in ["python3", "busybox"] {
        if !have(t) {
            return skip(Skip::Prerequisite, &format!("{t} not installed"));
        }
    }
    let bb = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v busybox"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut layers = vec![serde_json::json!({"entries": [
        {"name": "bin/busybox", "from": bb.trim(), "mode": 0o755},
    ]})];
    for i in 1..70 {
        layers.push(serde_json::json!({"entries": [
            {"name": format!("f{i}"), "data": format!("{i}")},
            {"name": "top", "data": format!("{i}")},
        ]}));
    }
    let a = crafted(&s, "many", serde_json::Value::Array(layers));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    assert_eq!(s.layer_count(), 70);
    assert_eq!(
        s.ok(&[
            "run",
            "--network",
            "none",
            "localhost/many",
            "/bin/busybox",
            "cat",
            "/f1",
            "/f69",
            "/top"
        ]),
        "16969"
    );
    s.assert_clean();
}

#[test]
fn run_d_image_keeps_its_root_until_rm_and_remounts_after_a_reboot() {
    let s = Store::new("detached");
    let Some(fx) = fixture(&s) else { return };
    s.ok(&["load", "-i", fx.join("t-docker.tar").to_str().unwrap()]);
    let over = s.dir.join("over");
    std::fs::create_dir_all(&over).unwrap();
    let id = s.ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "dimg",
        "--label",
        "b=cli",
        "-v",
        &format!("{}:/over/", over.display()),
        "localhost/t",
        "/bin/sleep",
        "600",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    // The image's config applies (Env, WorkingDir); the container writes into its upper.
    // VOLUME /vol: an anonymous volume seeded from the image (mode, symlink, contents), written
    // there and not into the upper layer; /over is the -v's, not a volume.
    assert_eq!(
        s.ok(&[
            "exec",
            "dimg",
            "sh",
            "-c",
            "echo $FOO; pwd; echo kept > /tmp/f; stat -c %a /vol; readlink /vol/link; cat /vol/link; echo w > /vol/w; grep -c ' /vol ' /proc/self/mountinfo"
        ]),
        "img\n/work/dir\n750\nsub/f\nseed\n1\n"
    );
    let insp: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "dimg"])).unwrap();
    let mounts = insp[0]["Mounts"].as_array().unwrap();
    let vol = mounts.iter().find(|m| m["Destination"] == "/vol").unwrap();
    assert_eq!(vol["Type"], "volume", "{mounts:?}");
    assert_eq!(vol["Name"].as_str().unwrap().len(), 64, "{vol}");
    let src = PathBuf::from(vol["Source"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(src.join("w")).unwrap(), "w\n");
    assert!(
        !s.store()
            .join("containers")
            .join(id)
            .join("upper/vol/w")
            .exists(),
        "the volume's write went into the upper layer"
    );
    let o = mounts
        .iter()
        .find(|m| m["Destination"] == "/over/")
        .unwrap();
    assert_eq!(o["Type"], "bind", "{mounts:?}");
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    // Labels: the image's under --label; ExposedPorts shown.
    let c = &insp[0]["Config"];
    assert_eq!(
        (&c["Labels"]["a"], &c["Labels"]["b"]),
        (&"img".into(), &"cli".into()),
        "{c}"
    );
    assert_eq!(c["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    let img: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "inspect", "localhost/t"])).unwrap();
    assert_eq!(img[0]["Config"]["Labels"]["b"], "img");
    assert_eq!(
        img[0]["Config"]["ExposedPorts"],
        serde_json::json!({"80/tcp": {}})
    );
    // A kept root must survive a crash: no `volatile` on it.
    let mi = s.ok(&["exec", "dimg", "cat", "/proc/self/mountinfo"]);
    let root_line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(!root_line.contains("volatile"), "{root_line}");
    let row = s.ok(&["ps", "--format", "{{.Image}} {{.Names}}"]);
    assert_eq!(row.trim(), "localhost/t dimg");
    let o = s.husk(&["rmi", "-f", "localhost/t"]);
    assert!(
        !o.status.success(),
        "rmi of an image a detached container uses succeeded"
    );
    // The "reboot": the container, its monitor and the overlay mount gone.
    let insp: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "dimg"])).unwrap();
    let monitor = insp[0]["Monitor"]["Pid"].as_i64().unwrap() as i32;
    let pid = insp[0]["State"]["Pid"].as_i64().unwrap() as i32;
    for p in [monitor, pid] {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    wait_until(PATIENCE, "the container is gone", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    let merged = s.store().join("containers").join(id).join("merged");
    let st = Command::new("umount")
        .args(["-l", merged.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(s.ok(&["ps", "-a"]).contains("Exited (255)"));
    // start mounts the same root again: what the container wrote is still there.
    s.ok(&["start", "dimg"]);
    assert_eq!(s.ok(&["exec", "dimg", "cat", "/tmp/f"]), "kept\n");
    assert_eq!(
        s.ok(&["exec", "dimg", "cat", "/vol/w"]),
        "w\n",
        "the volume survives"
    );
    s.ok(&["rm", "-f", "-v", "dimg"]);
    assert!(!src.exists(), "rm -v left the volume");
    s.assert_clean();
}

/// Images run on the bridge by default; these tests say `--network none` (networking is
/// network.rs's, in namespaces of its own), so this namespace, the host's, has no husk0 and no
/// table of husk's.
fn assert_host_network_untouched() {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(
        !dev.lines()
            .any(|l| l.trim_start().starts_with("husk0:") || l.trim_start().starts_with("hk")),
        "a husk link in the host's namespace:\n{dev}"
    );
    if let Ok(o) = Command::new("nft").args(["list", "tables"]).output() {
        assert!(
            !stdout(&o).contains("table inet husk"),
            "table inet husk in the host's namespace"
        );
    }
}
