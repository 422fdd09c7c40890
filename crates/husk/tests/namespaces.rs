//! Namespaces: created ones differ from the host, joined ones are the host's, uts names, user
//! namespaces with id maps, and time namespaces with offsets.

mod common;
use common::*;
use serde_json::json;

fn ns_ino(path: &str) -> String {
    std::fs::metadata(path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m).to_string())
        .unwrap()
}

#[test]
fn new_namespaces_differ_from_the_host() {
    require_root!();
    let env = Env::new("ns-new");
    let p = probe(&env.run(&env.id("new")));
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let inside = &p[&format!("ns.{kind}")];
        assert_ne!(inside, &host_ns(kind), "{kind} namespace is the host's");
    }
    // Not asked for: shared with the host.
    assert_eq!(p["ns.user"], host_ns("user"));
    assert_eq!(p["ns.time"], host_ns("time"));
    // Own pid namespace: the probe is pid 1.
    assert_eq!(p["pid"], "1");
}

/// A process holding a fresh network namespace (pid 1 of this host is not ptrace-readable to us,
/// so its /proc/1/ns cannot be opened); killed on drop.
struct NsHolder(std::process::Child);

impl NsHolder {
    fn new() -> NsHolder {
        NsHolder::of("--net", "net")
    }
    /// Holding a fresh namespace of `kind` (`/proc/PID/ns` name), made by `unshare FLAG`.
    fn of(flag: &str, kind: &str) -> NsHolder {
        let c = std::process::Command::new("unshare")
            .args([flag, "sleep", "inf"])
            .spawn()
            .unwrap();
        let h = NsHolder(c);
        wait_until(PATIENCE, "unshare is in its new namespace", || {
            ns_ino(&h.path(kind)) != host_ns(kind)
        });
        h
    }
    fn path(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.0.id())
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn joining_a_namespace_by_path() {
    require_root!();
    let mut env = Env::new("ns-join");
    let holder = NsHolder::new();
    let ns = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    let mut ns: Vec<_> = ns
        .into_iter()
        .filter(|n| n["type"] != "network" && n["type"] != "ipc")
        .collect();
    ns.push(json!({"type": "network", "path": holder.path("net")}));
    ns.push(json!({"type": "ipc", "path": "/proc/self/ns/ipc"}));
    env.config["linux"]["namespaces"] = json!(ns);
    let p = probe(&env.run(&env.id("join")));
    let want = ns_ino(&holder.path("net"));
    assert_ne!(want, host_ns("net"));
    assert_eq!(p["ns.net"], want);
    // /proc/self of husk, which runs in the host's ipc namespace.
    assert_eq!(p["ns.ipc"], host_ns("ipc"));
    // The others are still new.
    assert_ne!(p["ns.uts"], host_ns("uts"));
    assert_ne!(p["ns.mnt"], host_ns("mnt"));

    // A namespace path that does not exist: a clear error and nothing left.
    let mut ns = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "network", "path": "/proc/999999999/ns/net"}));
    env.config["linux"]["namespaces"] = json!(ns);
    let id = env.id("joinbad");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/proc/999999999/ns/net"),
        "{}",
        stderr(&o)
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn hostname_and_domainname() {
    require_root!();
    let mut env = Env::new("ns-uts");
    env.config["hostname"] = json!("box-one");
    env.config["domainname"] = json!("example.test");
    let p = probe(&env.run(&env.id("uts")));
    assert_eq!(p["hostname"], "box-one");
    assert_eq!(p["domainname"], "example.test");
    // The host's names are untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box-one");

    // Without a uts namespace, setting a hostname would rename the host: refused.
    let ns: Vec<_> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "uts")
        .cloned()
        .collect();
    env.config["linux"]["namespaces"] = json!(ns);
    let id = env.id("nouts");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("hostname"), "{}", stderr(&o));
    assert_no_state(&env, &id);
}

#[test]
fn user_namespace_with_id_maps() {
    require_root!();
    let mut env = Env::new("ns-user");
    let mut ns = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    ns.push(json!({"type": "user"}));
    env.config["linux"]["namespaces"] = json!(ns);
    env.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.args(&["/bin/cat", "/proc/self/uid_map", "/proc/self/gid_map"]);
    let id = env.id("user");
    let o = env.run(&id);
    assert!(o.status.success(), "{}", stderr(&o));
    let maps: Vec<Vec<String>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(maps.len(), 2, "{}", stdout(&o));
    for m in &maps {
        assert_eq!(m, &["0", "100000", "65536"]);
    }

    // Inside, the process is root of its namespace, which is not the host's.
    env.args(&["/bin/probe"]);
    let p = probe(&env.run(&id));
    assert_eq!(p["uid"], "0");
    assert_eq!(p["gid"], "0");
    assert_ne!(p["ns.user"], host_ns("user"));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn time_namespace_offsets_boottime() {
    require_root!();
    let mut env = Env::new("ns-time");
    let mut ns = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    ns.push(json!({"type": "time"}));
    env.config["linux"]["namespaces"] = json!(ns);
    env.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400 * 1000}});
    env.args(&["/bin/cat", "/proc/uptime"]);
    let id = env.id("time");
    let o = env.run(&id);
    assert!(o.status.success(), "{}", stderr(&o));
    let up: f64 = stdout(&o)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up >= 86_400_000.0, "uptime inside: {up}");
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(host_up < 86_400_000.0, "the host's clock was offset");

    env.args(&["/bin/probe"]);
    let p = probe(&env.run(&id));
    assert_ne!(p["ns.time"], host_ns("time"));
}

#[test]
fn a_new_session_keyring_unless_no_new_keyring() {
    require_root!();
    let mut env = Env::new("keyring");
    env.args(&["/bin/probe"]);
    let host = std::process::Command::new(rootfs().join("bin/probe"))
        .output()
        .unwrap();
    let host_ring = probe(&host)["session_keyring"].clone();
    let b = env.bundle.to_string_lossy().into_owned();
    let own = probe(&env.husk(&["run", "-b", &b, &env.id("own")]))["session_keyring"].clone();
    let shared = probe(&env.husk(&["run", "--no-new-keyring", "-b", &b, &env.id("shared")]))["session_keyring"].clone();
    assert_ne!(own, host_ring, "the container joined a keyring of its own");
    assert_eq!(
        shared, host_ring,
        "--no-new-keyring keeps the caller's session keyring"
    );
}

/// A private rootfs with a file the host does not have, to tell whose / the process sees.
fn marked_rootfs(env: &mut Env, name: &str) -> std::path::PathBuf {
    let root = private_rootfs(name);
    std::fs::write(root.join("etc/marker"), "container root\n").unwrap();
    env.config["root"]["path"] = json!(root);
    root
}

/// No mount namespace: before, `root.path` was ignored and the process ran in the host's /.
/// Now it is chrooted there, as runc does; /dev gets its nodes in the root's own /dev (runc
/// too); `create` waits for `start` there although the root has no /proc. What would have to
/// be mounted in the host's mount table is refused by name, one
/// field after another as a user removes them from a `runc spec` bundle: masked and
/// read-only paths (runc refuses them too), the mounts (runc mounts them on the host and leaves
/// them there), a read-only root (runc silently ignores it).
#[test]
fn without_a_mount_namespace_the_process_is_chrooted_into_the_root() {
    require_root!();
    let mut env = Env::new("ns-nomnt");
    let root = marked_rootfs(&mut env, "ns-nomnt");
    let host_dir = env.dir.to_string_lossy().into_owned();
    env.args(&[
        "/bin/sh",
        "-c",
        &format!(
            "cat /etc/marker; pwd; test -c /dev/null && echo null-ok; test -e {host_dir} && echo host-visible; true"
        ),
    ]);
    use_runc_spec(&mut env);
    env.without_namespace("mount");
    env.config["root"]["readonly"] = json!(true);
    let refusals = [
        ("maskedPaths", "linux.maskedPaths: needs a mount namespace"),
        (
            "readonlyPaths",
            "linux.readonlyPaths: needs a mount namespace",
        ),
        ("mounts", "mounts[0] (/proc): needs a mount namespace"),
        ("readonly", "root.readonly: needs a mount namespace"),
    ];
    for (i, (field, want)) in refusals.into_iter().enumerate() {
        let id = env.id(&format!("no{i}"));
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1), "{field}: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{field}: {}", stderr(&o));
        assert_no_state(&env, &id);
        match field {
            "mounts" => env.config["mounts"] = json!([]),
            "readonly" => env.config["root"]["readonly"] = json!(false),
            f => env.config["linux"][f] = json!([]),
        }
    }
    let o = env.run(&env.id("chroot"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "container root\n/\nnull-ok\n");
    // create waits for start without a /proc in the root, and exec lands in the root too.
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("created");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", &id, "-b", &b]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = env.husk(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let o = env.husk(&["exec", &id, "/bin/cat", "/etc/marker"]);
    assert_eq!(stdout(&o), "container root\n", "exec: {}", stderr(&o));
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    for d in ["proc", "dev", "sys"] {
        assert_not_mounted(&root.join(d));
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A mount namespace joined by path is set up as runc sets it up: the root bound and pivoted
/// into, the config's mounts and masks made there. Before, the rootfs setup was skipped and
/// the process ran in that namespace's / (here a copy of the host's).
#[test]
fn a_joined_mount_namespace_gets_the_rootfs() {
    require_root!();
    let mut env = Env::new("ns-joinmnt");
    let root = marked_rootfs(&mut env, "ns-joinmnt");
    env.args(&[
        "/bin/sh",
        "-c",
        "cat /etc/marker; readlink /proc/self/ns/mnt; grep -c ' /proc/keys ' /proc/self/mountinfo",
    ]);
    use_runc_spec(&mut env);
    let holder = NsHolder::of("-m", "mnt");
    env.without_namespace("mount");
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "mount", "path": holder.path("mnt")}));
    let o = env.run(&env.id("joinmnt"));
    assert!(
        o.status.success(),
        "{:?} {}{}",
        o.status,
        stderr(&o),
        stdout(&o)
    );
    let want_ns = std::fs::read_link(holder.path("mnt")).unwrap();
    assert_eq!(
        stdout(&o),
        format!("container root\n{}\n1\n", want_ns.display()),
        "the root, the joined namespace, /proc/keys masked"
    );
    drop(holder);
    assert_not_mounted(&root.join("proc"));
    let _ = std::fs::remove_dir_all(&root);
}

/// A hostname and domainname with a uts namespace joined by path are set in that namespace,
/// as runc sets them; before, husk refused them.
#[test]
fn hostname_in_a_joined_uts_namespace() {
    require_root!();
    let mut env = Env::new("ns-joinuts");
    use_runc_spec(&mut env);
    let holder = NsHolder::of("-u", "uts");
    env.without_namespace("uts");
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "uts", "path": holder.path("uts")}));
    env.config["hostname"] = json!("joined-box");
    env.config["domainname"] = json!("joined.test");
    let p = probe(&env.run(&env.id("joinuts")));
    assert_eq!(p["ns.uts"], ns_ino(&holder.path("uts")));
    assert_eq!(p["hostname"], "joined-box");
    assert_eq!(p["domainname"], "joined.test");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "joined-box");
}

/// A Kubernetes pod's sysctls go into every container's config, and its containers join the
/// pause's network and ipc namespaces by path: they are set there (as runc does), and refused
/// only for a joined network namespace that is the runtime's own, which they would change.
#[test]
fn sysctls_in_joined_namespaces() {
    require_root!();
    let mut env = Env::new("ns-joinsysctl");
    use_runc_spec(&mut env);
    let (net, ipc) = (NsHolder::of("--net", "net"), NsHolder::of("--ipc", "ipc"));
    env.without_namespace("network").without_namespace("ipc");
    let ns = env.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "network", "path": net.path("net")}));
    ns.push(json!({"type": "ipc", "path": ipc.path("ipc")}));
    env.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_unprivileged_port_start": "81",
        "kernel.shm_rmid_forced": "1",
    });
    let o = env.run(&env.id("sysctl"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let read = |flag: String, file: &str| {
        let o = std::process::Command::new("nsenter")
            .args([flag.as_str(), "cat", file])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let port = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    assert_eq!(read(format!("--net={}", net.path("net")), port), "81");
    let shm = "/proc/sys/kernel/shm_rmid_forced";
    assert_eq!(read(format!("--ipc={}", ipc.path("ipc")), shm), "1");
    assert_ne!(std::fs::read_to_string(port).unwrap().trim(), "81");

    // husk's own network namespace, the host's: refused before the container exists.
    let ns = env.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "network", "path": "/proc/self/ns/net"}));
    let id = env.id("sysctlhost");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "linux.sysctl.net.ipv4.ip_unprivileged_port_start: the network namespace joined at \
             /proc/self/ns/net is the runtime's own"
        ),
        "{}",
        stderr(&o)
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
    assert_ne!(std::fs::read_to_string(port).unwrap().trim(), "81");
}
