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
        let c = std::process::Command::new("unshare")
            .args(["--net", "sleep", "inf"])
            .spawn()
            .unwrap();
        let h = NsHolder(c);
        wait_until(PATIENCE, "unshare is in its new network namespace", || {
            ns_ino(&h.path("net")) != host_ns("net")
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

    // Without a new uts namespace, setting a hostname would rename the host: refused.
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
