//! Hostile images: symlinks planted in the rootfs must never lead a mount, a device, the cwd or a
//! file out of it. After each case the host directory the image pointed at (`Bait`) is checked
//! untouched.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::Path;

#[test]
fn proc_as_a_symlink_is_refused() {
    require_root!();
    let mut env = Env::new("x-proc");
    let bait = Bait::new(&env);
    let rootfs = private_rootfs("x-proc");
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    symlink(&bait.dir, rootfs.join("proc")).unwrap();
    env.config["root"]["path"] = json!(rootfs);
    let id = env.id("proc");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
    bait.assert_untouched();
    let _ = std::fs::remove_dir_all(&rootfs);
}

#[test]
fn a_mount_through_an_escaping_symlink_lands_inside() {
    require_root!();
    let mut env = Env::new("x-mount");
    let bait = Bait::new(&env);
    let rootfs = private_rootfs("x-mount");
    symlink(bait.escape_link(), rootfs.join("evil")).unwrap();
    // A relative link climbing out, one level down.
    std::fs::create_dir_all(rootfs.join("a")).unwrap();
    let ups = "../".repeat(bait.dir.components().count() + 3);
    symlink(format!("{ups}tmp/rel-escape"), rootfs.join("a/rel")).unwrap();
    env.config["root"]["path"] = json!(rootfs);
    env.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}),
    );
    env.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/a/rel", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}),
    );
    env.args(&[
        "/bin/sh",
        "-c",
        "echo planted > /evil/marker && cat /proc/self/mountinfo",
    ]);
    let id = env.id("mount");
    let o = env.run(&id);
    assert!(o.status.success(), "{}", stderr(&o));
    // The tmpfs is mounted at the link's target as seen inside the rootfs.
    let inside = bait.dir.to_string_lossy().into_owned();
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(&*inside)),
        "{}",
        stdout(&o)
    );
    // Its mount point was made inside the rootfs; the host dir was not touched.
    assert!(rootfs.join(bait.dir.strip_prefix("/").unwrap()).is_dir());
    assert!(rootfs.join("tmp/rel-escape").is_dir());
    assert!(!Path::new("/tmp/rel-escape").exists());
    assert_not_mounted(Path::new("/tmp/rel-escape"));
    bait.assert_untouched();
    let _ = std::fs::remove_dir_all(&rootfs);
}

#[test]
fn a_cwd_symlink_pointing_outside_stays_inside() {
    require_root!();
    let mut env = Env::new("x-cwd");
    let bait = Bait::new(&env);
    let rootfs = private_rootfs("x-cwd");
    symlink(bait.escape_link(), rootfs.join("evilcwd")).unwrap();
    env.config["root"]["path"] = json!(rootfs);
    env.config["root"]["readonly"] = json!(false);
    env.config["process"]["cwd"] = json!("/evilcwd");
    env.args(&["/bin/sh", "-c", "echo planted > relfile && exec /bin/probe"]);
    let p = probe(&env.run(&env.id("cwd")));
    assert_eq!(p["cwd"], bait.dir.to_string_lossy());
    let inside = rootfs.join(bait.dir.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(inside.join("relfile")).unwrap(),
        "planted\n"
    );
    bait.assert_untouched();
    let _ = std::fs::remove_dir_all(&rootfs);
}

#[test]
fn a_bind_under_a_symlinked_dir_to_etc_stays_inside() {
    require_root!();
    let mut env = Env::new("x-etc");
    let rootfs = private_rootfs("x-etc");
    symlink("/etc", rootfs.join("etclink")).unwrap();
    let src = env.dir.join("planted-src");
    std::fs::write(&src, "from-bind\n").unwrap();
    let name = format!("husk-planted-{}", std::process::id());
    env.config["root"]["path"] = json!(rootfs);
    env.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": format!("/etclink/{name}"), "source": src, "options": ["bind", "ro"]
    }));
    // A directory target too.
    env.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": format!("/etclink/{name}.d"), "type": "tmpfs", "source": "tmpfs",
        "options": ["size=64k"]
    }));
    env.args(&["/bin/cat", &format!("/etc/{name}")]);
    let o = env.run(&env.id("etc"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "from-bind\n");
    let host = Path::new("/etc").join(&name);
    assert!(!host.exists(), "created on the host: {}", host.display());
    assert!(!Path::new("/etc").join(format!("{name}.d")).exists());
    assert_not_mounted(&host);
    assert!(rootfs.join("etc").join(&name).is_file());
    assert!(rootfs.join("etc").join(format!("{name}.d")).is_dir());
    let _ = std::fs::remove_dir_all(&rootfs);
}

#[test]
fn a_device_path_through_a_symlink_stays_inside() {
    require_root!();
    let mut env = Env::new("x-dev");
    let bait = Bait::new(&env);
    let rootfs = private_rootfs("x-dev");
    env.config["root"]["path"] = json!(rootfs);
    // /dev is a fresh tmpfs, so a link can only come from a mount the config adds: bind a host
    // dir whose entry is an escaping symlink over /dev/evil.
    let linkdir = env.dir.join("links");
    std::fs::create_dir_all(&linkdir).unwrap();
    symlink(bait.escape_link(), linkdir.join("net")).unwrap();
    env.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/dev/evil", "source": linkdir, "options": ["bind", "ro"]
    }));
    env.config["linux"]["devices"] =
        json!([{"path": "/dev/evil/net/null2", "type": "c", "major": 1, "minor": 3}]);
    env.args(&["/bin/true"]);
    let id = env.id("dev");
    let o = env.run(&id);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_no_state(&env, &id);
    // The link was followed inside the rootfs: the node is there, not in the host dir.
    let inside = rootfs
        .join(bait.dir.strip_prefix("/").unwrap())
        .join("null2");
    assert!(inside.exists(), "{}", inside.display());
    bait.assert_untouched();
    let _ = std::fs::remove_dir_all(&rootfs);
}
