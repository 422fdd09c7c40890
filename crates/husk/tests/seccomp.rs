//! `linux.seccomp`: errno rules, defaultErrnoRet, argument comparisons, kill actions, the load
//! order without no_new_privs, config errors, and a SCMP_ACT_NOTIFY agent on listenerPath.

mod common;
use common::*;
// Linked for the glibc symbol Debian's libseccomp.a needs in a musl build (its build.rs).
use husk_runtime as _;
use libseccomp::{ScmpArch, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
use serde_json::{Value, json};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::Instant;

fn sh(env: &mut Env, script: &str) {
    env.args(&["/bin/sh", "-c", script]);
}

/// Every syscall name libseccomp knows on x86_64, except `without`: an allow list that lets a
/// default action other than ALLOW leave the container (and husk's last steps) working.
fn all_syscalls_but(without: &[&str]) -> Vec<String> {
    (0..600)
        .filter_map(|n| {
            ScmpSyscall::from_raw_syscall(n)
                .get_name_by_arch(ScmpArch::X8664)
                .ok()
        })
        .filter(|n| !without.contains(&n.as_str()))
        .collect()
}

#[test]
fn errno_rule_denies_mkdir() {
    require_root!();
    let mut env = Env::new("sc-errno");
    let id = env.id("errno");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            // Names the library does not know are skipped, as runc skips them.
            {"names": ["mkdir", "mkdirat", "no_such_syscall_in_any_table"],
             "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    });
    sh(&mut env, "mkdir /dev/shm/x; echo rc=$?; ls -d /dev/shm/x");
    let o = env.run(&id);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(out.contains("rc=1"), "{out}\n{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(!out.contains("/dev/shm/x"), "{out}");
    assert_no_state(&env, &id);
}

#[test]
fn default_errno_ret() {
    require_root!();
    let mut env = Env::new("sc-deferrno");
    let id = env.id("deferrno");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "syscalls": [{"names": all_syscalls_but(&["mkdir", "mkdirat"]), "action": "SCMP_ACT_ALLOW"}]
    });
    sh(&mut env, "mkdir /dev/shm/x; echo rc=$?");
    let o = env.run(&id);
    assert!(stdout(&o).contains("rc=1"), "{}", stdout(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

#[test]
fn masked_eq_argument_rule() {
    require_root!();
    let mut env = Env::new("sc-args");
    let id = env.id("args");
    // personality(PER_LINUX32) is refused, personality(PER_LINUX) is not: only the low byte
    // (the domain) is compared.
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}]
    });
    sh(
        &mut env,
        "linux32 /bin/true; echo rc32=$?; linux64 /bin/true; echo rc64=$?",
    );
    let o = env.run(&id);
    let out = stdout(&o);
    assert!(out.contains("rc64=0"), "{out}\n{}", stderr(&o));
    assert!(!out.contains("rc32=0"), "{out}");
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn kill_actions_deliver_sigsys() {
    require_root!();
    let mut env = Env::new("sc-kill");
    // The kernel forces SIGSYS for all three (even on pid 1 of a pid namespace): 128 + 31.
    for (i, action) in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"]
        .into_iter()
        .enumerate()
    {
        let id = env.id(&format!("kill{i}"));
        env.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sync"], "action": action}]
        });
        env.args(&["/bin/sync"]);
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(159), "{action}: {}", stderr(&o));
        assert_no_state(&env, &id);
    }
}

#[test]
fn without_no_new_privs_a_non_root_user_gets_the_filter() {
    require_root!();
    let mut env = Env::new("sc-nonnp");
    let id = env.id("nonnp");
    // Not root and without CAP_SYS_ADMIN afterwards: husk keeps it for the load, just before
    // execve, which drops it. A distinct errno shows the denial is seccomp's.
    env.config["process"]["noNewPrivileges"] = json!(false);
    env.config["process"]["user"] = json!({"uid": 65534, "gid": 65534});
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": [],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]
    });
    sh(
        &mut env,
        "mkdir /dev/shm/y; echo rc=$?; grep -E '^(NoNewPrivs|Seccomp|CapPrm|CapEff):' /proc/self/status",
    );
    let o = env.run(&id);
    let out = stdout(&o);
    assert!(
        stderr(&o).contains("Operation not supported"),
        "{}",
        stderr(&o)
    );
    assert!(out.contains("rc=1"), "{out}");
    // libseccomp would set no_new_privs itself; the config said no.
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000000"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

#[test]
fn config_errors_fail_before_side_effects() {
    require_root!();
    let mut env = Env::new("sc-bad");
    let id = env.id("bad");
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_NOPE"}),
            "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}),
            "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}),
            "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_PDP11\"",
        ),
    ];
    for (sc, want) in cases {
        env.config["linux"]["seccomp"] = sc;
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
}

#[test]
fn wait_killable_recv_needs_libseccomp_2_6() {
    require_root!();
    let v = libseccomp::ScmpVersion::current().unwrap();
    skip_unless!(
        (v.major, v.minor) < (2, 6),
        "libseccomp {}.{} supports the flag",
        v.major,
        v.minor
    );
    let mut env = Env::new("sc-waitkill");
    let id = env.id("waitkill");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    });
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    let want = format!(
        "needs libseccomp >= 2.6.0; husk is built with libseccomp {}.{}.{}",
        v.major, v.minor, v.micro
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// What the agent saw: the payload sent with the fd, and the syscalls it answered.
struct AgentLog {
    payload: Vec<u8>,
    answered: Vec<String>,
}

/// A seccomp agent: takes one connection, the notify fd and state from it, and lets every
/// notified syscall go on (SECCOMP_USER_NOTIF_FLAG_CONTINUE) until the container is gone.
/// Bounded by PATIENCE so a broken runtime fails the test instead of hanging it.
fn agent(listener: UnixListener) -> AgentLog {
    let deadline = Instant::now() + PATIENCE;
    listener.set_nonblocking(true).unwrap();
    let mut conn = None;
    wait_until(PATIENCE, "husk connects to the agent", || {
        match listener.accept() {
            Ok((c, _)) => conn = Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("agent accept: {e}"),
        }
        conn.is_some()
    });
    let conn = conn.unwrap();
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let (n, fd) = husk_sys::sock::recv_fd(conn.as_fd(), &mut buf).unwrap();
    let mut payload = buf[..n].to_vec();
    (&conn).read_to_end(&mut payload).unwrap();
    let fd = fd.expect("no fd came with the state");
    let mut answered = Vec::new();
    // NOTIF_RECV would block forever once the container is gone: poll, and stop at POLLHUP
    // (the kernel's sign that no task uses the filter any more).
    while Instant::now() < deadline {
        let rev = husk_sys::sock::poll_in(&[fd.as_fd()], 100).unwrap()[0];
        if rev & libc::POLLIN != 0 {
            let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
            answered.push(
                req.data
                    .syscall
                    .get_name_by_arch(req.data.arch)
                    .unwrap_or_default(),
            );
            ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::empty())
                .respond(fd.as_raw_fd())
                .unwrap();
        } else if rev & libc::POLLHUP != 0 {
            break;
        }
    }
    AgentLog { payload, answered }
}

#[test]
fn notify_sends_fd_and_state_to_the_listener() {
    require_root!();
    let mut env = Env::new("sc-notify");
    let id = env.id("notify");
    let sock = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || agent(listener));
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "hello agent",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // The mkdir blocks in the kernel until the agent lets it continue; then it really happens.
    sh(&mut env, "mkdir /dev/shm/n && ls -d /dev/shm/n");
    let o = env.run(&id);
    let log = agent.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "/dev/shm/n");
    assert!(
        log.answered.iter().any(|n| n == "mkdir" || n == "mkdirat"),
        "{:?}",
        log.answered
    );
    // runc's ContainerProcessState.
    let st: Value = serde_json::from_slice(&log.payload).unwrap();
    assert_eq!(st["fds"], json!(["seccompFd"]));
    assert_eq!(st["metadata"], "hello agent");
    assert_eq!(st["ociVersion"], "1.3.0");
    assert_eq!(st["state"]["id"], json!(id));
    assert_eq!(st["state"]["status"], "creating");
    assert!(st["pid"].as_u64().unwrap() > 1, "{st}");
    assert_eq!(st["pid"], st["state"]["pid"]);
    assert_no_state(&env, &id);
}

#[test]
fn exec_gets_the_containers_filter() {
    require_root!();
    let mut env = Env::new("sc-exec");
    let id = env.id("exec");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    env.args(&["/bin/sleep", "inf"]);
    env.run_detached(&id);
    let o = env.husk(&["exec", &id, "/bin/sh", "-c", "mkdir /dev/shm/y; echo rc=$?"]);
    assert!(
        stdout(&o).contains("rc=1"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    assert!(env.husk(&["delete", "-f", &id]).status.success());
}

/// What the static probe makes after its execve, recorded with strace (`probe sleep 0` in a
/// container), plus what another libc's start-up may add: a profile recorded from the program.
const PROBE_SYSCALLS: &[&str] = &[
    "arch_prctl",
    "brk",
    "clock_nanosleep",
    "close",
    "execve",
    "exit",
    "exit_group",
    "fstat",
    "getcwd",
    "getdents64",
    "getgroups",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getuid",
    "ioctl",
    "ioprio_get",
    "keyctl",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "prlimit64",
    "read",
    "readlink",
    "rseq",
    "sched_getparam",
    "sched_getscheduler",
    "set_robust_list",
    "set_tid_address",
    "statx",
    "umask",
    "uname",
    "write",
];

/// What husk made after loading the filter before issue 11: none may be needed now.
const HUSK_ONLY: &[&str] = &[
    "close_range",
    "sendto",
    "sendmsg",
    "rt_sigaction",
    "rt_sigprocmask",
    "fcntl",
    "execveat",
    "capset",
    "capget",
    "setresuid",
    "setresgid",
    "setgroups",
    "clone",
    "clone3",
    "wait4",
    "waitid",
];

fn allow_only(names: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

fn cap_bit(p: &std::collections::BTreeMap<String, String>, set: &str, bit: u32) -> bool {
    u64::from_str_radix(&p[set], 16).unwrap() & (1 << bit) != 0
}

/// After the container's filter husk makes only the exec: the trampoline's execveat, fcntl
/// and execve, or one execve (re-executing from a read-only copy of husk when the profile
/// refuses execveat or fcntl). Without no_new_privs too: CAP_SYS_ADMIN, kept for the load,
/// is gone after execve.
#[test]
fn after_the_filter_only_the_exec() {
    require_root!();
    for n in HUSK_ONLY {
        assert!(!PROBE_SYSCALLS.contains(n), "{n}");
    }
    let mut env = Env::new("sc-minimal");
    let id = env.id("minimal");
    let with_trampoline: Vec<&str> = PROBE_SYSCALLS
        .iter()
        .copied()
        .chain(["execveat", "fcntl"])
        .collect();
    const CAP_SYS_ADMIN: u32 = 21;
    for (nnp, user, caps_set, names) in [
        (true, 0, true, &with_trampoline[..]),
        (true, 0, true, PROBE_SYSCALLS),
        (false, 0, true, PROBE_SYSCALLS),
        (false, 0, true, &with_trampoline[..]),
        (false, 1000, true, PROBE_SYSCALLS),
        // No capability sets and not root: setresuid alone would drop CAP_SYS_ADMIN.
        (false, 1000, false, PROBE_SYSCALLS),
    ] {
        let what = format!(
            "nnp {nnp} uid {user} capabilities {caps_set} {} syscalls",
            names.len()
        );
        env.config["process"]["noNewPrivileges"] = json!(nnp);
        env.config["process"]["user"] = json!({"uid": user, "gid": user});
        if !caps_set {
            env.config["process"]["capabilities"] = Value::Null;
        }
        env.config["linux"]["seccomp"] = allow_only(names);
        let p = probe(&env.run(&id));
        assert_eq!(p["Seccomp"], "2", "{what}");
        assert_eq!(p["uid"], user.to_string(), "{what}");
        assert!(!cap_bit(&p, "CapEff", CAP_SYS_ADMIN), "{what}");
        assert!(!cap_bit(&p, "CapPrm", CAP_SYS_ADMIN), "{what}");
        if user != 0 {
            assert_eq!(p["CapPrm"], "0000000000000000", "{what}");
        }
        assert_no_state(&env, &id);
    }
    // A profile recorded without close_range (the case), without no_new_privs.
    env.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": all_syscalls_but(&["close_range"]), "action": "SCMP_ACT_ALLOW"}]
    });
    assert_eq!(probe(&env.run(&id))["Seccomp"], "2");

    // create, then start: the fifo is opened and written before the filter goes in.
    env.config["process"]["noNewPrivileges"] = json!(true);
    env.config["linux"]["seccomp"] = allow_only(&with_trampoline);
    env.write_config();
    let out = env.dir.join("created.out");
    let b = env.bundle.to_string_lossy().into_owned();
    let root = env.root.to_string_lossy().into_owned();
    let st = Command::new(HUSK)
        .args(["--root", &root, "create", "-b", &b, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(env.dir.join("created.err")).unwrap())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "{}",
        std::fs::read_to_string(env.dir.join("created.err")).unwrap()
    );
    let o = env.husk(&["start", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_until(PATIENCE, "the started probe reports", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.contains("\nenv."))
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("Seccomp=2"), "{text}");
    assert!(env.husk(&["delete", "--force", &id]).status.success());

    // exec: the process makes only its execve after the filter.
    env.args(&["/bin/probe", "sleep", "60"]);
    env.config["linux"]["seccomp"] = allow_only(PROBE_SYSCALLS);
    env.run_detached(&id);
    let p = probe(&env.husk(&["exec", &id, "/bin/probe"]));
    assert_eq!(p["Seccomp"], "2");
    assert!(env.husk(&["delete", "--force", &id]).status.success());
}
