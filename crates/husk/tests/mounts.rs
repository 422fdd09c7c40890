//! Mounts: tmpfs options, binds (dir ro/rw, single file, recursive read-only), relative
//! destinations, propagation, /dev, devices, masked and read-only paths, read-only root, sysctls.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

fn add_mount(env: &mut Env, m: Value) {
    env.config["mounts"].as_array_mut().unwrap().push(m);
}

fn sh(env: &mut Env, id: &str, script: &str) -> Output {
    env.args(&["/bin/sh", "-c", script]);
    env.run(id)
}

/// The mountinfo line (as fields) of the mount at `target`, from the container's output.
fn mountinfo<'a>(out: &'a str, target: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f.len() > 5 && f[4] == target)
        .unwrap_or_else(|| panic!("no mount at {target} in:\n{out}"))
}

#[test]
fn tmpfs_with_options_and_a_relative_destination() {
    require_root!();
    let mut env = Env::new("m-tmpfs");
    // Mount targets are made in the rootfs (as runc makes them): a private copy.
    let private = private_rootfs("m-tmpfs");
    env.config["root"]["path"] = json!(private);
    add_mount(
        &mut env,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1730"]}),
    );
    // Relative destinations are taken from the root (runtime-spec 1.1 and later).
    add_mount(
        &mut env,
        json!({"destination": "data", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}),
    );
    let id = env.id("tmpfs");
    let o = sh(
        &mut env,
        &id,
        "cat /proc/self/mountinfo; echo mode=$(stat -c %a /scratch)",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let f = mountinfo(&out, "/scratch");
    let opts: Vec<&str> = f[5].split(',').collect();
    for want in ["nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&want), "{want} missing: {f:?}");
    }
    let dash = f.iter().position(|x| *x == "-").unwrap();
    assert_eq!(f[dash + 1], "tmpfs");
    let sopts = f[dash + 3];
    assert!(sopts.contains("size=1024k"), "{sopts}");
    assert!(sopts.contains("mode=1730"), "{sopts}");
    assert!(out.contains("mode=1730"), "{out}");
    let d = mountinfo(&out, "/data");
    assert!(d[d.len() - 1].contains("size=64k"), "{d:?}");
    // The target was made inside the rootfs, and the tmpfs did not leak out to it.
    assert!(private.join("data").is_dir());
    assert_eq!(std::fs::read_dir(private.join("data")).unwrap().count(), 0);
    assert_no_state(&env, &id);
    let _ = std::fs::remove_dir_all(&private);
}

#[test]
fn bind_dirs_ro_and_rw_and_a_single_file() {
    require_root!();
    let mut env = Env::new("m-bind");
    let private = private_rootfs("m-bind");
    env.config["root"]["path"] = json!(private);
    let host = env.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let file = env.dir.join("single.conf");
    std::fs::write(&file, "single-file\n").unwrap();
    let h = host.to_string_lossy().into_owned();
    add_mount(
        &mut env,
        json!({"destination": "/ro", "type": "bind", "source": h, "options": ["bind", "ro"]}),
    );
    add_mount(
        &mut env,
        json!({"destination": "/rw", "type": "bind", "source": h, "options": ["rbind", "rw"]}),
    );
    // The destination does not exist in the image: it is created as a file, not a directory.
    add_mount(
        &mut env,
        json!({"destination": "/etc/husk/single.conf", "source": file, "options": ["bind", "ro"]}),
    );
    let id = env.id("bind");
    let o = sh(
        &mut env,
        &id,
        "cat /ro/f; touch /ro/x 2>&1; echo written > /rw/y && echo rw-ok; \
         test -f /etc/husk/single.conf && echo is-file; cat /etc/husk/single.conf",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("from-host"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("rw-ok"), "{out}");
    assert!(out.contains("is-file"), "{out}");
    assert!(out.contains("single-file"), "{out}");
    assert!(!host.join("x").exists());
    assert_eq!(
        std::fs::read_to_string(host.join("y")).unwrap(),
        "written\n"
    );
    // The target was made inside the rootfs as an empty file, the source is unchanged.
    assert_eq!(
        std::fs::read(private.join("etc/husk/single.conf")).unwrap(),
        b""
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "single-file\n");
    let _ = std::fs::remove_dir_all(&private);
}

/// A host directory with a tmpfs mounted under it, unmounted on drop.
struct Submounted {
    dir: std::path::PathBuf,
}

impl Submounted {
    fn new(dir: &Path) -> Submounted {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.join("sub"))
            .status()
            .unwrap();
        assert!(st.success());
        Submounted {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Submounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.join("sub"))
            .status();
    }
}

#[test]
fn rbind_with_rro_makes_submounts_read_only() {
    require_root!();
    let mut env = Env::new("m-rro");
    let private = private_rootfs("m-rro");
    env.config["root"]["path"] = json!(private);
    let host = env.dir.join("tree");
    let _sub = Submounted::new(&host);
    let h = host.to_string_lossy().into_owned();
    add_mount(
        &mut env,
        json!({"destination": "/r", "source": h, "options": ["rbind", "rro"]}),
    );
    // Plain "ro" makes only the top read-only (the kernel's bind semantics).
    add_mount(
        &mut env,
        json!({"destination": "/t", "source": h, "options": ["rbind", "ro"]}),
    );
    let id = env.id("rro");
    let o = sh(
        &mut env,
        &id,
        "touch /r/x 2>&1; touch /r/sub/x 2>&1; touch /t/sub/ok && echo top-ro-sub-rw",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.matches("Read-only file system").count(),
        2,
        "both levels read-only under rro: {out}"
    );
    assert!(out.contains("top-ro-sub-rw"), "{out}");
    assert!(!host.join("x").exists());
    assert!(!host.join("sub/x").exists());
    let _ = std::fs::remove_dir_all(&private);
}

#[test]
fn propagation_option_is_applied() {
    require_root!();
    let mut env = Env::new("m-prop");
    let private = private_rootfs("m-prop");
    env.config["root"]["path"] = json!(private);
    add_mount(
        &mut env,
        json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs",
               "options": ["size=64k", "shared"]}),
    );
    add_mount(
        &mut env,
        json!({"destination": "/private", "type": "tmpfs", "source": "tmpfs",
               "options": ["size=64k", "rprivate"]}),
    );
    let id = env.id("prop");
    let o = sh(&mut env, &id, "cat /proc/self/mountinfo");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let s = mountinfo(&out, "/shared");
    assert!(s[6].starts_with("shared:"), "{s:?}");
    let p = mountinfo(&out, "/private");
    assert_eq!(p[6], "-", "private mount has no propagation tags: {p:?}");
    let _ = std::fs::remove_dir_all(&private);
}

#[test]
fn default_dev_and_a_config_device() {
    require_root!();
    let mut env = Env::new("m-dev");
    let tun = Path::new("/dev/net/tun").exists();
    if tun {
        env.config["linux"]["devices"] = json!([
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o620}
        ]);
    }
    let id = env.id("dev");
    let o = sh(
        &mut env,
        &id,
        "for d in null zero full random urandom tty net/tun; do \
           [ -e /dev/$d ] && stat -c \"$d %F %t:%T %a\" /dev/$d; done; \
         echo fd=$(readlink /dev/fd) ptmx=$(readlink /dev/ptmx) stdin=$(readlink /dev/stdin); \
         [ -c /dev/pts/ptmx ] && echo pts-ok; head -c 4 /dev/zero | wc -c",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for (name, num) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("{name} character special file {num} 666");
        assert!(out.lines().any(|l| l == want), "{want} not in:\n{out}");
    }
    if tun {
        assert!(
            out.lines()
                .any(|l| l == "net/tun character special file a:c8 620"),
            "{out}"
        );
    }
    assert!(out.contains("fd=/proc/self/fd "), "{out}");
    assert!(out.contains("ptmx=pts/ptmx"), "{out}");
    assert!(out.contains("stdin=/proc/self/fd/0"), "{out}");
    assert!(out.contains("pts-ok"), "{out}");
    assert!(out.lines().any(|l| l.trim() == "4"), "{out}");
}

#[test]
fn masked_and_readonly_paths() {
    require_root!();
    let mut env = Env::new("m-mask");
    // /proc/kcore is absent on kernels without CONFIG_PROC_KCORE: mask files that exist.
    env.config["linux"]["maskedPaths"] = json!([
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/tty",
        "/proc/nonexistent"
    ]);
    let id = env.id("mask");
    let o = sh(
        &mut env,
        &id,
        "[ -e /proc/kcore ] && echo kcore=$(wc -c < /proc/kcore); \
         echo keys=$(wc -c < /proc/keys) timer=$(wc -c < /proc/timer_list); echo tty=$(ls /proc/tty | wc -l); \
         echo x > /proc/sys/kernel/hostname 2>&1; echo host=$(hostname)",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    if Path::new("/proc/kcore").exists() {
        assert!(out.contains("kcore=0"), "{out}");
    }
    assert!(out.contains("keys=0 timer=0"), "{out}");
    assert!(std::fs::metadata("/proc/timer_list").is_ok());
    assert!(out.contains("tty=0"), "{out}");
    // /proc/sys is in the default readonlyPaths.
    assert!(
        stderr(&o).contains("Read-only file system") || out.contains("Read-only file system"),
        "{out} {}",
        stderr(&o)
    );
    assert!(out.contains("host=husk"), "{out}");
    // The host's /proc/tty is not masked.
    assert!(std::fs::read_dir("/proc/tty").unwrap().count() > 0);
}

#[test]
fn readonly_root_and_writable_root() {
    require_root!();
    let mut env = Env::new("m-roroot");
    let id = env.id("ro");
    assert_eq!(env.config["root"]["readonly"], json!(true));
    let o = sh(&mut env, &id, "touch /x 2>&1; echo done");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Read-only file system"),
        "{}",
        stdout(&o)
    );
    assert!(!rootfs().join("x").exists());

    let private = private_rootfs("m-rwroot");
    env.config["root"]["path"] = json!(private);
    env.config["root"]["readonly"] = json!(false);
    let o = sh(&mut env, &id, "touch /written && echo ok");
    assert!(stdout(&o).contains("ok"), "{}", stderr(&o));
    assert!(private.join("written").exists());
    let _ = std::fs::remove_dir_all(&private);
}

#[test]
fn sysctl_in_a_new_network_namespace() {
    require_root!();
    let mut env = Env::new("m-sysctl");
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    env.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"});
    let id = env.id("sysctl");
    let o = sh(
        &mut env,
        &id,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["1", "2048"]
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before
    );

    // A sysctl that is not namespaced would change the host: refused before anything runs.
    env.config["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("vm.swappiness"), "{}", stderr(&o));
    assert_no_state(&env, &id);
}

#[test]
fn idmapped_bind_mount_maps_owners() {
    require_root!();
    let mut env = Env::new("idmap");
    let src = env.dir.join("idsrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("root-owned"), "").unwrap();
    let maps = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    env.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": "/idm", "type": "bind", "source": src, "options": ["rbind", "idmap"],
            "uidMappings": maps, "gidMappings": maps,
        }));
    env.args(&["/bin/stat", "-c", "%u:%g", "/idm/root-owned"]);
    let id = env.id("idm");
    let o = env.run(&id);
    // e.g. tmpfs before Linux 6.3 (the cgroup v2 guest's root is a 6.1 tmpfs).
    skip_unless!(
        !stderr(&o).contains("cannot id-map mounts"),
        "{}",
        stderr(&o).trim()
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // runc's semantics: the mount's mapping sends on-disk 0 (containerID) to 1000 (hostID).
    assert_eq!(stdout(&o).trim(), "1000:1000");
    assert_no_cgroup(&id);
}

/// The rootfs bound onto itself and made shared on the host, as an image's overlay mount is
/// on a systemd host (here / is private, which would hide the difference between slave and
/// private); unmounted on drop.
struct SharedRoot(std::path::PathBuf);

impl SharedRoot {
    fn new(dir: &Path) -> SharedRoot {
        let run = |args: &[&str]| {
            let st = std::process::Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .unwrap();
            assert!(st.success(), "mount {args:?}");
        };
        run(&["--bind"]);
        let guard = SharedRoot(dir.to_path_buf());
        let st = std::process::Command::new("mount")
            .arg("--make-shared")
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount --make-shared");
        guard
    }
}

impl Drop for SharedRoot {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// `linux.rootfsPropagation`, every value, on a rootfs that is a shared mount: before, `shared`
/// and `rshared` failed with `pivot_root: EINVAL` (the bind of the root joined the shared peer
/// group) and `unbindable` with `bind rootfs: EINVAL` (runc 1.1 fails that one too, and leaves
/// a `shared` root private). Now the container's root carries what was asked, read from its
/// own mountinfo; the recursive values reach /proc as well, and a mount's own propagation
/// option still wins over the recursive root change.
#[test]
fn rootfs_propagation_every_value_on_a_shared_mount() {
    require_root!();
    let mut env = Env::new("m-rootprop");
    let private = private_rootfs("m-rootprop");
    env.config["root"]["path"] = json!(private);
    env.args(&["/bin/cat", "/proc/self/mountinfo"]);
    let runc = use_runc_spec(&mut env);
    eprintln!(
        "config from {}",
        if runc { "runc spec" } else { "husk spec" }
    );
    add_mount(
        &mut env,
        json!({"destination": "/own", "type": "tmpfs", "source": "tmpfs",
               "options": ["size=64k", "private"]}),
    );
    let _shared = SharedRoot::new(&private);
    // (value, root's tag, /proc's tag): "master" = a slave, "" = private.
    let cases = [
        (None, "master:", ""),
        (Some("slave"), "master:", ""),
        (Some("rslave"), "master:", ""),
        (Some("shared"), "shared:", ""),
        (Some("rshared"), "shared:", "shared:"),
        (Some("private"), "", ""),
        (Some("rprivate"), "", ""),
        (Some("unbindable"), "unbindable", ""),
        (Some("runbindable"), "unbindable", "unbindable"),
    ];
    let tag = |f: &[&str]| -> String {
        let t = f[6];
        if t == "-" {
            String::new()
        } else {
            t.to_string()
        }
    };
    for (i, (value, root_tag, proc_tag)) in cases.into_iter().enumerate() {
        match value {
            Some(v) => env.config["linux"]["rootfsPropagation"] = json!(v),
            None => {
                env.config["linux"]
                    .as_object_mut()
                    .unwrap()
                    .remove("rootfsPropagation");
            }
        }
        let o = env.run(&env.id(&format!("rp{i}")));
        let what = value.unwrap_or("(default)");
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let out = stdout(&o);
        let (root, proc, own) = (
            tag(&mountinfo(&out, "/")),
            tag(&mountinfo(&out, "/proc")),
            tag(&mountinfo(&out, "/own")),
        );
        let ok = |got: &str, want: &str| {
            if want.is_empty() {
                got.is_empty()
            } else {
                got.starts_with(want)
            }
        };
        assert!(
            ok(&root, root_tag),
            "{what}: root is {root:?}, want {root_tag:?}\n{out}"
        );
        assert!(
            ok(&proc, proc_tag),
            "{what}: /proc is {proc:?}, want {proc_tag:?}\n{out}"
        );
        assert!(own.is_empty(), "{what}: /own asked for private, is {own:?}");
    }
    assert_not_mounted(&private.join("proc"));
    drop(_shared);
    let _ = std::fs::remove_dir_all(&private);
}
