//! The fault walk (issue 19): every named step of create, start, exec and delete (and init's own
//! steps) is made to fail, and to SIGKILL husk (or init) there, through the test-only
//! `fault-injection` feature (husk_runtime::fault, HUSK_FAULT). After each fault, `delete
//! --force` leaves nothing (state dir, cgroup, process, mount, fd) and the same id works again.
//! The steps are learned by tracing one clean pass (HUSK_FAULT_TRACE), so a step added to the
//! code is walked without touching this file.

mod common;
#[path = "registry/net.rs"]
mod net;
use common::*;
use net::{Net, REG};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

/// Runs husk with `fault` in HUSK_FAULT (and the trace file when given).
fn husk_with(env: &Env, fault: Option<&str>, trace: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(HUSK);
    cmd.arg("--root").arg(&env.root).args(args);
    cmd.env_remove("HUSK_FAULT").env_remove("HUSK_FAULT_TRACE");
    if let Some(f) = fault {
        cmd.env("HUSK_FAULT", f);
    }
    if let Some(t) = trace {
        cmd.env("HUSK_FAULT_TRACE", t);
    }
    env.capture(cmd)
}

/// create, start, exec, delete --force of `id`, each under the fault; stops at the first
/// command that fails (as a caller would) and says which.
fn lifecycle(env: &Env, id: &str, fault: Option<&str>, trace: Option<&Path>) -> Result<(), String> {
    let b = env.bundle.to_string_lossy().into_owned();
    let pid_file = env.dir.join(format!("{id}.pid"));
    let pf = pid_file.to_string_lossy().into_owned();
    let steps: [&[&str]; 4] = [
        &["create", "-b", &b, "--pid-file", &pf, id],
        &["start", id],
        &["exec", id, "/bin/true"],
        &["delete", "--force", id],
    ];
    for args in steps {
        let o = husk_with(env, fault, trace, args);
        if !o.status.success() {
            return Err(format!("{} failed: {:?} {}", args[0], o.status, stderr(&o)));
        }
    }
    Ok(())
}

/// Whatever is left of container `id`: its state dir, cgroup dirs, live processes naming it,
/// mounts under the test's dir, and fds any process holds into the test's dir.
fn leftovers(env: &Env, id: &str) -> Vec<String> {
    let mut left = Vec::new();
    if env.root.join(id).exists() {
        left.push(format!("state dir {}", env.root.join(id).display()));
    }
    for d in cgroup_dirs(id) {
        if d.exists() {
            left.push(format!("cgroup {}", d.display()));
        }
    }
    for p in procs_naming(id) {
        left.push(format!("process {p}"));
    }
    let dir = env.dir.to_string_lossy().into_owned();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for l in mi.lines().filter(|l| l.contains(&dir)) {
        left.push(format!("mount {l}"));
    }
    left.extend(fds_into(&env.dir));
    left
}

/// Polls until nothing of `id` is left (a SIGKILLed husk's init needs a moment to die), then
/// asserts it.
fn assert_nothing_left(env: &Env, id: &str, what: &str) {
    assert_none_left(what, || leftovers(env, id));
}

/// Polls `left` until it finds nothing, then asserts that.
fn assert_none_left(what: &str, left: impl Fn() -> Vec<String>) {
    let end = std::time::Instant::now() + PATIENCE;
    loop {
        let left = left();
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "{what}: left behind: {left:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The steps a clean pass reaches, in order, each once.
fn traced_steps(env: &Env, id: &str) -> Vec<String> {
    let trace = env.dir.join("trace");
    lifecycle(env, id, None, Some(&trace)).expect("the clean pass");
    steps_in(&trace, |_| true)
}

/// The steps `trace` lists that `keep` takes, in order, each once.
fn steps_in(trace: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    for s in std::fs::read_to_string(trace).unwrap().lines() {
        if keep(s) && !steps.iter().any(|x| x == s) {
            steps.push(s.to_string());
        }
    }
    steps
}

/// Fails unless every step of `want` is in `steps`.
fn assert_traced(steps: &[String], want: &[&str]) {
    for w in want {
        assert!(steps.iter().any(|s| s == w), "{w} not traced: {steps:?}");
    }
}

#[test]
fn every_step_of_the_lifecycle_fails_and_is_killed_cleanly() {
    require_root!();
    let mut env = Env::new("faults");
    env.args(&["/bin/sleep", "1000"]);
    // A prestart hook, a pid file and a pids limit bring their steps into the walk.
    env.config["hooks"] = json!({"prestart": [{"path": "/bin/true"}]});
    env.config["linux"]["resources"] = json!({"pids": {"limit": 100}});
    let steps = traced_steps(&env, &env.id("trace"));
    assert_traced(
        &steps,
        &[
            "create.state-dir",
            "create.clone",
            "create.prestart-hooks",
            "init.mounted",
            "init.ready",
            "init.started",
            "start.released",
            "exec.joined",
            "delete.cgroup-removed",
        ],
    );
    for (i, step) in steps.iter().enumerate() {
        for action in ["error", "kill"] {
            let id = env.id(&format!("f{i}{}", &action[..1]));
            let fault = format!("{step}:{action}");
            let r = lifecycle(&env, &id, Some(&fault), None);
            assert!(r.is_err(), "{fault}: every command succeeded");
            // A half-made or half-deleted container never breaks listing.
            let o = husk_with(&env, None, None, &["list"]);
            assert!(o.status.success(), "{fault}: list: {}", stderr(&o));
            let o = husk_with(&env, None, None, &["delete", "--force", &id]);
            assert!(
                o.status.success(),
                "{fault}: delete --force after {r:?}: {}",
                stderr(&o)
            );
            assert_nothing_left(&env, &id, &fault);
            // The next command works: the same id, from scratch.
            lifecycle(&env, &id, None, None)
                .unwrap_or_else(|e| panic!("{fault}: the next lifecycle: {e}"));
            assert_nothing_left(&env, &id, &format!("{fault}, then a clean pass"));
        }
    }
}

/// Found by the front end's walk: a foreground `run --network bridge -p` SIGKILLed after its
/// lease and port rule, before its container existed, left both behind after `delete --force`
/// (reclaimed only by the next bridge run). In a network namespace of its own (network.rs' rule).
#[test]
fn delete_force_after_a_run_killed_with_its_lease_frees_lease_and_rule() {
    require_root!();
    for t in ["unshare", "ip", "nft", "timeout"] {
        let ok = Command::new(t)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        require!(ok, "no {t} binary");
    }
    let env = Env::new("faults-lease");
    let script = r#"
HUSK_FAULT=run.network-leased:kill "$HUSK" --root "$ROOT" run --name k --network bridge -p 28081:80 --rootfs "$RF" -- /bin/true && exit 1
echo "leased: $(ls "$ROOT/.net/leases" | wc -l)"
"$HUSK" --root "$ROOT" delete --force k
echo "leases: $(ls "$ROOT/.net/leases" | wc -l)"
echo "rules: $(nft list chain inet husk ports | grep -c dnat || true)"
"$HUSK" --root "$ROOT" run --name k --network bridge -p 28081:80 --rootfs "$RF" -- /bin/true
echo "after: $(ls "$ROOT/.net/leases" | wc -l)"
"#;
    let o = Command::new("timeout")
        .args(["120", "unshare", "-n", "sh", "-uc", script])
        .env("HUSK", HUSK)
        .env("ROOT", &env.root)
        .env("RF", rootfs())
        .env_remove("HUSK_FAULT")
        .env_remove("HUSK_FAULT_TRACE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    for want in ["leased: 1\n", "leases: 0\n", "rules: 0\n", "after: 0\n"] {
        assert!(
            out.contains(want),
            "{want:?} not in:\n{out}\n{}",
            stderr(&o)
        );
    }
}

/// The front end's own steps (pull, the image's overlay, bridge networking, the detached
/// monitor, its log and its exit record, `network connect` and `disconnect`); create's, init's
/// and the rest are walked above.
const FRONT_END: &[&str] = &[
    "pull.",
    "image.",
    "run.",
    "net.",
    "monitor.",
    "log.",
    "finish.",
    "connect/",
    "disconnect/",
];

/// The second network of the walk's `network connect` passes.
const NET2: &str = "fwnet";

/// One front-end pass under `fault`: pull, `run -d` on the bridge with a published port,
/// then with `links` `network connect` and `disconnect` of NET2 while it runs and a `stop`, wait
/// for the container and its monitor to be gone, `logs` (the line it wrote, in a clean pass),
/// `rm -f`, `rmi`; the pull and the rmi only for a pull's fault or a clean pass (the image stays
/// pulled between the others, which keeps the walk's time down). Stops at the first command
/// that fails.
fn front_end_pass(
    n: &Net,
    img: &str,
    name: &str,
    pull: bool,
    links: bool,
    fault: Option<&str>,
    trace: Option<&Path>,
) -> Result<(), String> {
    let husk = |args: &[&str]| {
        let mut c = n.cmd(HUSK);
        c.arg("--root").arg(n.dir.join("run")).args(args);
        c.env_remove("HUSK_FAULT").env_remove("HUSK_FAULT_TRACE");
        if let Some(f) = fault {
            c.env("HUSK_FAULT", f);
        }
        if let Some(t) = trace {
            c.env("HUSK_FAULT_TRACE", t);
        }
        let o = c.output().unwrap();
        if o.status.success() {
            Ok(stdout(&o))
        } else {
            Err(format!("{} failed: {:?} {}", args[0], o.status, stderr(&o)))
        }
    };
    if pull {
        husk(&["pull", "-q", img])?;
    }
    let sh = if links {
        "echo out; exec sleep 1000"
    } else {
        "echo out"
    };
    husk(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "bridge",
        "-p",
        "28090:80",
        img,
        "sh",
        "-c",
        sh,
        name,
    ])?;
    if links {
        husk(&["network", "connect", NET2, name])?;
        husk(&["network", "disconnect", NET2, name])?;
        husk(&["stop", "-t", "0", name])?;
    }
    // The container (its $0 is the name) and every monitor process of the store end.
    let fe = n.dir.join("run-fe").to_string_lossy().into_owned();
    wait_until(PATIENCE, &format!("{name} and its monitor to end"), || {
        procs_naming(&fe).is_empty() && procs_naming(name).is_empty()
    });
    let logs = husk(&["logs", name])?;
    if fault.is_none() && logs != "out\n" {
        return Err(format!("logs: {logs:?}, not the line the container wrote"));
    }
    husk(&["rm", "-f", name])?;
    if pull {
        husk(&["rmi", img])?;
    }
    Ok(())
}

/// Whatever a front-end pass left: the container's record, runtime state and cgroup, the
/// overlay mount and the container's upper, processes, the lease, hosts entries, veths and
/// DNAT rules in the test's namespace.
fn front_end_leftovers(n: &Net, name: &str, ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let dirs = [
        n.dir.join("run-fe/containers"),
        n.dir.join("run-fe/run"),
        n.dir.join("run-fe/names"),
        n.store().join("containers"),
        n.dir.join("run/.net/leases"),
    ];
    for d in dirs {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            // husk-runtime's root keeps its own lock files beside the state dirs.
            if !(p.is_file() && d.ends_with("run-fe/run")) {
                left.push(format!("{}", p.display()));
            }
        }
    }
    for id in ids {
        left.extend(
            cgroup_dirs(id)
                .iter()
                .filter(|d| d.exists())
                .map(|d| format!("cgroup {}", d.display())),
        );
    }
    let fe = n.dir.join("run-fe").to_string_lossy().into_owned();
    for p in procs_naming(&fe).into_iter().chain(procs_naming(name)) {
        left.push(format!("process {p}"));
    }
    let dir = n.dir.to_string_lossy().into_owned();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    left.extend(
        mi.lines()
            .filter(|l| l.contains(&dir))
            .map(|l| format!("mount {l}")),
    );
    for d in [n.dir.join("run"), n.dir.join("run-fe"), n.store()] {
        left.extend(fds_into(&d));
    }
    let veths = n
        .cmd("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .unwrap();
    left.extend(stdout(&veths).lines().map(|l| format!("veth {l}")));
    let rules = n
        .cmd("nft")
        .args(["-a", "list", "ruleset"])
        .output()
        .unwrap();
    left.extend(
        stdout(&rules)
            .lines()
            .filter(|l| l.contains("dnat to"))
            .map(|l| format!("rule {l}")),
    );
    if let Ok(hosts) = std::fs::read_dir(n.dir.join("run/.net/endpoints")) {
        left.extend(
            hosts
                .flatten()
                .map(|e| format!("hosts {}", e.path().display())),
        );
    }
    left.extend(endpoints(n).iter().map(|e| format!("endpoint {e}")));
    left
}

/// The hosts index's entries (husk_net::hosts, `run/.net/endpoints.json`): none when it is
/// gone, as it is once empty.
fn endpoints(n: &Net) -> Vec<serde_json::Value> {
    let path = n.dir.join("run/.net/endpoints.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", path.display(), String::from_utf8_lossy(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Every blob visible in the store is whole: its content has the digest it is named by.
fn assert_blobs_whole(n: &Net, what: &str) {
    for e in std::fs::read_dir(n.store().join("blobs/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let o = Command::new("sha256sum").arg(e.path()).output().unwrap();
        let sum = stdout(&o);
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            sum.starts_with(&name),
            "{what}: a blob that is not its digest: {sum}"
        );
    }
}

#[test]
fn every_step_of_the_front_end_fails_and_is_killed_cleanly() {
    require_root!();
    for t in ["nft", "sha256sum"] {
        require!(have(t), "{t} not installed");
    }
    let Some(n) = Net::new("faults") else { return };
    n.push("bb", "bb");
    let img = format!("{REG}/bb");
    n.ok(&["network", "create", NET2]);
    let trace = n.dir.join("trace");
    front_end_pass(&n, &img, "fw-trace", true, true, None, Some(&trace)).expect("the clean pass");
    n.assert_store_empty();
    let steps = steps_in(&trace, |s| FRONT_END.iter().any(|p| s.starts_with(p)));
    assert_traced(
        &steps,
        &[
            "pull.manifest",
            "pull.blob-half",
            "pull.unpacked",
            "pull.recording",
            "image.overlay-mounted",
            "net.bridge",
            "net.leased",
            "net.ports",
            "net.addressed",
            "monitor.running",
            "monitor.fds_placed",
            "monitor.reported",
            "log.open",
            "finish.released",
            "finish.recorded",
            "connect/net.leased",
            "connect/net.veth",
            "connect/network.attached",
            "disconnect/net.veth-deleted",
            "disconnect/network.detached",
        ],
    );
    for (i, step) in steps.iter().enumerate() {
        if i > 0 && step.starts_with("pull.") != steps[i - 1].starts_with("pull.") {
            n.ok(&["pull", "-q", &img]);
        }
        for action in ["error", "kill"] {
            let name = format!("fw{i}{}", &action[..1]);
            let fault = format!("{step}:{action}");
            // The bridge is made by the first run of a namespace: gone, so its steps are
            // reached again.
            let _ = n.cmd("ip").args(["link", "del", "husk0"]).output();
            let reached = n.dir.join("reached");
            let _ = std::fs::remove_file(&reached);
            eprintln!("{fault}");
            let pull = step.starts_with("pull.");
            let links = step.contains('/');
            let r = front_end_pass(&n, &img, &name, pull, links, Some(&fault), Some(&reached));
            let trace = std::fs::read_to_string(&reached).unwrap_or_default();
            assert!(
                trace.lines().any(|s| s == step),
                "{fault}: not reached ({r:?})"
            );
            assert_blobs_whole(&n, &fault);
            let o = n.husk(&["ps", "-a"]);
            assert!(o.status.success(), "{fault}: ps -a: {}", stderr(&o));
            if links && action == "error" {
                assert_link_undone(&n, &name, &fault, &r);
            }
            let ids: Vec<String> = std::fs::read_dir(n.dir.join("run-fe/containers"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            // What a user does after a failure: remove the container, then the image.
            let o = n.husk(&["rm", "-f", &name]);
            assert!(
                o.status.success() || stderr(&o).contains("no such container"),
                "{fault}: rm -f after {r:?}: {}",
                stderr(&o)
            );
            if pull {
                let _ = n.husk(&["rmi", &img]);
            }
            assert_none_left(&format!("{fault} ({r:?})"), || {
                front_end_leftovers(&n, &name, &ids)
            });
            // The next pass works, from the same name, and leaves the store empty.
            front_end_pass(&n, &img, &name, pull, links, None, None)
                .unwrap_or_else(|e| panic!("{fault}: the next pass: {e}"));
            if pull {
                n.assert_store_empty();
            }
            let left = front_end_leftovers(&n, &name, &ids);
            assert!(
                left.is_empty(),
                "{fault}, then a clean pass: left behind: {left:#?}"
            );
        }
    }
}

/// After a `network connect` or `disconnect` that failed, the container (still running) is on
/// the bridge alone or, its disconnect failed midway, `disconnect` finishes it: one lease and one
/// veth left, its bridge's, and no endpoint (hosts entry) on NET2.
fn assert_link_undone(n: &Net, name: &str, fault: &str, r: &Result<(), String>) {
    if fault.starts_with("disconnect/") {
        let o = n.husk(&["network", "disconnect", NET2, name]);
        assert!(
            o.status.success() || stderr(&o).contains("not on"),
            "{fault}: disconnect again: {}",
            stderr(&o)
        );
    }
    let count = |d: &str| {
        std::fs::read_dir(n.dir.join("run/.net").join(d))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let veths = n
        .cmd("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .unwrap();
    let veths = stdout(&veths).lines().count();
    let on_net2 = endpoints(n).iter().filter(|e| e["Network"] == NET2).count();
    assert_eq!(
        (count("leases"), on_net2, veths),
        (1, 0, 1),
        "{fault} ({r:?}): leases, endpoints on {NET2} and veths left"
    );
}
