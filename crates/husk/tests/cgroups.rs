//! Resource limits that really hold, on this host's layout (v1 hybrid here; pure v2 in the guest
//! run by scripts/test-cgroup2.sh): files, OOM, pids, update, pause/resume, ps, events.

mod common;
use common::*;
use serde_json::{Value, json};

fn v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Reads a limit file of the container's cgroup: the v1 file under its controller, or the v2 file.
fn cg_read(id: &str, v1: (&str, &str), v2_file: &str) -> String {
    let path = if v2() {
        format!("/sys/fs/cgroup/husk/{id}/{v2_file}")
    } else {
        format!("/sys/fs/cgroup/{}/husk/{id}/{}", v1.0, v1.1)
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

/// `husk ps --format json`: the container's pids.
fn ps(env: &Env, id: &str) -> Vec<i32> {
    serde_json::from_slice(&env.husk(&["ps", "--format", "json", id]).stdout).unwrap()
}

#[test]
fn limits_land_in_their_files() {
    require_root!();
    let mut env = Env::new("cglimits");
    let id = env.id("lim");
    env.args(&["/bin/sleep", "30"]);
    env.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "swap": 67108864, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 42},
    });
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", &id, "-b", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        cg_read(&id, ("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );
    assert_eq!(cg_read(&id, ("pids", "pids.max"), "pids.max"), "42");
    if v2() {
        assert_eq!(cg_read(&id, ("", ""), "cpu.max"), "50000 100000");
        assert_eq!(cg_read(&id, ("", ""), "cpu.weight"), "20");
        assert_eq!(cg_read(&id, ("", ""), "memory.swap.max"), "0");
        assert_eq!(cg_read(&id, ("", ""), "memory.low"), "33554432");
    } else {
        assert_eq!(cg_read(&id, ("cpu", "cpu.cfs_quota_us"), ""), "50000");
        assert_eq!(cg_read(&id, ("cpu", "cpu.shares"), ""), "512");
        assert_eq!(
            cg_read(&id, ("memory", "memory.soft_limit_in_bytes"), ""),
            "33554432"
        );
        assert_eq!(
            cg_read(&id, ("memory", "memory.memsw.limit_in_bytes"), ""),
            "67108864"
        );
    }
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn memory_hog_is_oom_killed_with_an_event() {
    require_root!();
    let mut env = Env::new("cgoom");
    env.config["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    // As init it is killed outright: the run returns 128 + SIGKILL.
    env.args(&[
        "/bin/dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    let id = env.id("oom");
    assert_eq!(env.run(&id).status.code(), Some(137));
    assert_no_cgroup(&id);

    // Not as init: `events` reports the kill. The hog is exec'd once `events` streams, so the
    // kill cannot happen before `events` looks.
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("oomev");
    env.run_detached(&id);
    let mut child = std::process::Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["events", "--interval", "100ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut saw_oom, mut hogged) = (false, false);
    // At most ~60 s of stats lines (PATIENCE) before the oom event.
    for line in reader.lines().take(600) {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(v["id"], json!(id));
        if v["type"] == "oom" {
            saw_oom = true;
            break;
        }
        assert_eq!(v["type"], "stats");
        if !hogged {
            hogged = true;
            let o = env.husk(&[
                "exec",
                &id,
                "/bin/dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=64M",
                "count=1",
            ]);
            assert!(!o.status.success(), "the hog survived: {}", stderr(&o));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(saw_oom, "no oom event");
    assert!(env.husk(&["delete", "-f", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn pids_limit_stops_forks() {
    require_root!();
    let mut env = Env::new("cgpids");
    env.config["linux"]["resources"] = json!({"pids": {"limit": 4}});
    env.args(&[
        "/bin/sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep inf & done 2>&1; echo spawned",
    ]);
    let id = env.id("pids");
    let o = env.run(&id);
    let text = stdout(&o) + &stderr(&o);
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "{text}"
    );
    assert_no_cgroup(&id);
}

/// runtime-spec 1.3 (and runc 1.4): `limit: 0` is pids.max 0, no new task at all; a `pids`
/// object without a limit leaves pids.max alone.
#[test]
fn pids_limit_zero_is_a_limit_and_no_limit_touches_nothing() {
    require_root!();
    let mut env = Env::new("cgpids0");
    env.config["linux"]["resources"] = json!({"pids": {"limit": 0}});
    env.args(&["/bin/sh", "-c", "/bin/echo forked; exit 0"]);
    let id = env.id("pids0");
    let o = env.run(&id);
    let text = stdout(&o) + &stderr(&o);
    assert!(
        text.contains("can't fork") && !text.contains("forked"),
        "{text}"
    );
    env.args(&["/bin/sleep", "30"]);
    let b = env.bundle.to_string_lossy().into_owned();
    for (pids, want) in [(json!({"limit": 0}), "0"), (json!({}), "max")] {
        env.config["linux"]["resources"] = json!({ "pids": pids });
        let o = env.husk(&["create", &id, "-b", &b]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            cg_read(&id, ("pids", "pids.max"), "pids.max"),
            want,
            "{pids}"
        );
        assert!(env.husk(&["delete", "--force", &id]).status.success());
    }
    assert_no_cgroup(&id);
}

#[test]
fn update_pause_resume_ps_events() {
    require_root!();
    let mut env = Env::new("cgverbs");
    env.args(&["/bin/sh", "-c", "sleep inf & sleep inf"]);
    let id = env.id("verbs");
    env.run_detached(&id);
    // `run -d` returns once sh is executed; its two sleeps follow.
    wait_until(PATIENCE, "sh's two sleeps run", || ps(&env, &id).len() == 2);

    let o = env.husk(&["update", "--memory", "64m", "--pids-limit", "30", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        cg_read(&id, ("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );
    assert_eq!(cg_read(&id, ("pids", "pids.max"), "pids.max"), "30");
    let rfile = env.dir.join("res.json");
    std::fs::write(&rfile, r#"{"pids":{"limit":-1}}"#).unwrap();
    assert!(
        env.husk(&["update", "-r", &rfile.to_string_lossy(), &id])
            .status
            .success()
    );
    assert_eq!(cg_read(&id, ("pids", "pids.max"), "pids.max"), "max");
    let bad = env.husk(&["update", "--memory", "12x", &id]);
    assert_eq!(bad.status.code(), Some(1));

    let pids = ps(&env, &id);
    assert_eq!(pids.len(), 2, "{pids:?}");
    let table = stdout(&env.husk(&["ps", &id]));
    assert!(
        table.lines().next().unwrap_or("").contains("PID") && table.lines().count() == 3,
        "{table}"
    );

    assert!(env.husk(&["pause", &id]).status.success());
    assert_eq!(env.status(&id), "paused");
    assert!(
        !env.husk(&["pause", &id]).status.success(),
        "pausing twice is an error"
    );
    assert!(env.husk(&["resume", &id]).status.success());
    assert_eq!(env.status(&id), "running");

    let ev: Value = serde_json::from_slice(&env.husk(&["events", "--stats", &id]).stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(ev["data"]["pids"]["current"], 2);

    assert!(env.husk(&["kill", "--all", &id, "KILL"]).status.success());
    assert!(env.husk(&["delete", "-f", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn resources_this_host_cannot_apply_are_errors() {
    require_root!();
    let mut env = Env::new("cgunsup");
    let cases = if v2() {
        vec![
            json!({"network": {"classID": 1}}),
            json!({"memory": {"limit": 67108864, "swappiness": 10}}),
        ]
    } else {
        vec![
            json!({"unified": {"memory.high": "1000000"}}),
            json!({"network": {"classID": 1}}),
        ]
    };
    for (i, res) in cases.into_iter().enumerate() {
        env.config["linux"]["resources"] = res.clone();
        let id = env.id(&format!("u{i}"));
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1), "{res}");
        assert!(stderr(&o).contains("cgroup"), "{res}: {}", stderr(&o));
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
}

#[test]
fn delete_kills_every_process_without_a_pid_namespace() {
    require_root!();
    let mut env = Env::new("cgkillall");
    env.without_namespace("pid");
    env.args(&["/bin/sh", "-c", "sleep inf & sleep inf & sleep inf"]);
    let id = env.id("ka");
    env.run_detached(&id);
    // `run -d` returns once sh is executed; its three sleeps follow.
    wait_until(PATIENCE, "sh's three sleeps run", || {
        ps(&env, &id).len() >= 3
    });
    let pids = ps(&env, &id);
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_cgroup(&id);
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "process {pid} survived delete --force");
    }
}

/// `linux.resources.devices` as podman writes it (deny all, then allow what its flags name: here
/// c 1:3) holds inside the container, with runc's default rules after it, which every client
/// relies on: /dev/ptmx (c 5:2) and the pts it hands out (c 136:N) open (the first thing a
/// terminal needs: `podman run -it` failed with `open /dev/pts/ptmx: EPERM` without them), so do
/// /dev/null (the rule) and /dev/zero (a default node), while a node with a number no rule names
/// is refused with EPERM by the device filter. The number (c 62:7, local/experimental, never
/// handed out dynamically) has no driver, so past the filter the kernel says ENXIO instead:
/// `update` with an allow-all rule then shows ENXIO (the old rules are replaced, not kept).
fn device_rules_hold(name: &str) {
    let mut env = Env::new(name);
    env.config["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]});
    let odd = env.dir.join("odd");
    let st = std::process::Command::new("mknod")
        .arg(&odd)
        .args(["c", "62", "7"])
        .status()
        .unwrap();
    assert!(st.success(), "mknod {}", odd.display());
    env.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/dev/odd", "type": "bind",
                     "source": odd, "options": ["bind"]}));
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("dev");
    env.run_detached(&id);

    let o = env.husk(&["exec", &id, "/bin/probe", "pty"]);
    let p = probe(&o);
    assert_eq!(
        p.get("ptmx").map(String::as_str),
        Some("ok"),
        "{}",
        stderr(&o)
    );
    assert!(
        p.get("pts").is_some_and(|v| v.starts_with("ok /dev/pts/")),
        "{p:?} {}",
        stderr(&o)
    );
    let check = "cat /dev/null && echo null-ok; head -c 1 /dev/zero >/dev/null && echo zero-ok; \
                 true </dev/odd && echo odd-ok";
    let o = env.husk(&["exec", &id, "/bin/sh", "-c", check]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(out.contains("null-ok"), "{out} {err}");
    assert!(out.contains("zero-ok"), "{out} {err}");
    assert!(!out.contains("odd-ok"), "{out} {err}");
    assert!(
        err.contains("/dev/odd") && err.contains("Operation not permitted"),
        "{out} {err}"
    );

    let rfile = env.dir.join("devices.json");
    std::fs::write(&rfile, r#"{"devices":[{"allow":true,"access":"rwm"}]}"#).unwrap();
    let o = env.husk(&["update", "-r", &rfile.to_string_lossy(), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = env.husk(&["exec", &id, "/bin/sh", "-c", "true </dev/odd"]);
    assert!(
        stderr(&o).contains("No such device or address"),
        "after update the filter lets it through to the kernel: {} {}",
        stdout(&o),
        stderr(&o)
    );

    assert!(env.husk(&["delete", "-f", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn device_rules_v2_bpf_program() {
    require_root!();
    skip_unless!(v2(), "this host's devices controller is cgroup v1");
    device_rules_hold("cgdevbpf");
}

#[test]
fn device_rules_v1_devices_files() {
    require_root!();
    skip_unless!(!v2(), "this host is cgroup v2 only");
    device_rules_hold("cgdevv1");
}

/// The block device under /, for blkio/io throttling (None in the guest, which has no disk).
fn root_block_device() -> Option<(u64, u64)> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = mi.lines().find(|l| l.split(' ').nth(4) == Some("/"))?;
    let (maj, min) = line.split(' ').nth(2)?.split_once(':')?;
    let (maj, min): (u64, u64) = (maj.parse().ok()?, min.parse().ok()?);
    // Only a whole disk takes throttle rules.
    std::path::Path::new(&format!("/sys/dev/block/{maj}:{min}/queue"))
        .exists()
        .then_some((maj, min))
}

#[test]
fn more_limits_land_in_their_files() {
    require_root!();
    let mut env = Env::new("cgmore");
    let id = env.id("more");
    env.args(&["/bin/sleep", "30"]);
    let mut res = json!({
        "cpu": {"burst": 1000, "idle": 1, "cpus": "0", "mems": "0", "quota": 50000, "period": 100000},
        "memory": {"limit": 67108864},
    });
    if !v2() {
        res["memory"]["swappiness"] = json!(10);
        res["memory"]["disableOOMKiller"] = json!(true);
        res["memory"]["useHierarchy"] = json!(true);
    }
    let disk = root_block_device();
    if let Some((maj, min)) = disk {
        res["blockIO"] =
            json!({"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]});
    }
    env.config["linux"]["resources"] = res;
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", &id, "-b", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    if v2() {
        assert_eq!(cg_read(&id, ("", ""), "cpu.max.burst"), "1000");
        assert_eq!(cg_read(&id, ("", ""), "cpu.idle"), "1");
        assert_eq!(cg_read(&id, ("", ""), "cpuset.cpus"), "0");
        assert_eq!(cg_read(&id, ("", ""), "cpuset.mems"), "0");
    } else {
        assert_eq!(cg_read(&id, ("cpu", "cpu.cfs_burst_us"), ""), "1000");
        assert_eq!(cg_read(&id, ("cpu", "cpu.idle"), ""), "1");
        assert_eq!(cg_read(&id, ("cpuset", "cpuset.cpus"), ""), "0");
        assert_eq!(cg_read(&id, ("cpuset", "cpuset.mems"), ""), "0");
        assert_eq!(cg_read(&id, ("memory", "memory.swappiness"), ""), "10");
        assert!(cg_read(&id, ("memory", "memory.oom_control"), "").contains("oom_kill_disable 1"));
        assert_eq!(cg_read(&id, ("memory", "memory.use_hierarchy"), ""), "1");
    }
    if let Some((maj, min)) = disk {
        let file = cg_read(&id, ("blkio", "blkio.throttle.read_bps_device"), "io.max");
        assert!(
            file.contains(&format!("{maj}:{min}")) && (file.contains("1048576")),
            "{file}"
        );
    } else {
        skip(
            Skip::HostFeature,
            "the throttle part: no whole disk under /",
        );
    }
    // checkBeforeUpdate refuses a limit below the current usage.
    let rfile = env.dir.join("tiny.json");
    std::fs::write(
        &rfile,
        r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#,
    )
    .unwrap();
    let o = env.husk(&["update", "-r", &rfile.to_string_lossy(), &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("checkBeforeUpdate"), "{}", stderr(&o));
    assert_eq!(
        cg_read(&id, ("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864",
        "the limit is unchanged"
    );
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn hugetlb_in_the_cgroup2_tree_and_blkio_weight() {
    require_root!();
    let layout_v2 = v2();
    let hybrid = !layout_v2
        && std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .is_ok_and(|c| c.contains("hugetlb"));
    skip_unless!(layout_v2 || hybrid, "no hugetlb controller on this layout");
    let mut env = Env::new("cghuge");
    let id = env.id("huge");
    env.args(&["/bin/true"]);
    env.config["linux"]["resources"] =
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", &id, "-b", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Hybrid hosts (this project's CI) have hugetlb only in the cgroup2 tree: husk uses it.
    let dir = if layout_v2 {
        format!("/sys/fs/cgroup/husk/{id}")
    } else {
        format!("/sys/fs/cgroup/unified/husk/{id}")
    };
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/hugetlb.2MB.max"))
            .unwrap()
            .trim(),
        "4194304"
    );
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_cgroup(&id);

    // blkio weight: this hybrid host has no blkio.weight file (no CFQ/BFQ weights), so it is an
    // error naming the file; on v2 it lands in io.weight (or io.bfq.weight).
    env.config["linux"]["resources"] = json!({"blockIO": {"weight": 500}});
    let id = env.id("weight");
    let o = env.run(&id);
    if layout_v2 || std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists() {
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("blkio.weight"), "{}", stderr(&o));
    }
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// A cgroup that already holds processes is refused before anything is made, naming its path
/// (runc 1.2 refuses it too; 1.1 only warned), so `delete` can never kill processes husk did not
/// start. The process sits in a sub-cgroup, and on v1 in the pids hierarchy, which is not the
/// first one husk looks at: every hierarchy and every level counts. Nothing of the cgroup or
/// the process is touched.
#[test]
fn a_cgroup_already_holding_processes_is_refused() {
    require_root!();
    let env = Env::new("cgbusy");
    let id = env.id("busy");
    let base = if v2() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    };
    let dir = std::path::PathBuf::from(format!("{base}/husk/{id}"));
    let inner = dir.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    std::fs::write(inner.join("cgroup.procs"), &pid).unwrap();
    let b = env.bundle.to_string_lossy().into_owned();
    let create = env.husk(&["create", &id, "-b", &b]);
    let run = env.husk(&["run", "-b", &b, &id]);
    let alive = sleeper.try_wait().unwrap().is_none();
    let procs = std::fs::read_to_string(inner.join("cgroup.procs")).unwrap_or_default();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    // The sleeper's cgroup empties as it is reaped; rmdir waits for that, not for a guess.
    for d in [&inner, &dir] {
        wait_until(PATIENCE, &format!("{} can be removed", d.display()), || {
            std::fs::remove_dir(d).is_ok()
        });
    }
    for (what, o) in [("create", &create), ("run", &run)] {
        assert!(!o.status.success(), "{what} joined a busy cgroup");
        let err = stderr(o);
        assert!(
            err.contains(&format!(
                "cgroup {}: not empty (1 process(es) already there)",
                dir.display()
            )),
            "{what}: {err}"
        );
    }
    assert_no_state(&env, &id);
    assert!(alive, "husk killed a process it did not start");
    assert_eq!(procs.trim(), pid, "the process was moved");
    assert!(
        !dir.exists(),
        "could not remove the test's cgroup {}",
        dir.display()
    );
}

/// Values the kernel refuses are named with the file, the value, the errno and what the host
/// allows (they were a bare "Result not representable (os error 34)"); bounds the kernel
/// documents are refused by field before anything is made.
#[test]
fn refused_values_name_file_value_errno_and_what_is_allowed() {
    require_root!();
    let mut env = Env::new("cgrefused");
    env.config["linux"]["resources"] = json!({"cpu": {"cpus": "100000"}});
    let id = env.id("cpuset");
    let o = env.run(&id);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("husk: cgroup: write \"100000\" to /sys/fs/cgroup/"),
        "{err}"
    );
    assert!(
        err.contains("/cpuset.cpus: ERANGE (") || err.contains("/cpuset.cpus: EINVAL ("),
        "{err}"
    );
    assert!(err.contains("; this cgroup may use cpus "), "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);

    env.config["linux"]["resources"] = json!({"cpu": {"quota": 100, "period": 100000}});
    let id = env.id("quota");
    let o = env.run(&id);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cpu.quota 100: the kernel takes at least 1000 µs (1 ms) per period"),
        "{err}"
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}
