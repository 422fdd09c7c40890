//! `husk run` as a person uses it: the embedded default (host root, read-only) and --rootfs,
//! with docker's options and exit codes, and nothing left behind.

mod common;
use common::*;
use std::process::{Command, Output, Stdio};

struct Front {
    root: std::path::PathBuf,
}

impl Front {
    fn new(name: &str) -> Front {
        let root = std::env::temp_dir().join(format!("husk-front-{name}-{}", std::process::id()));
        Front { root }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(HUSK);
        c.arg("--root")
            .arg(&self.root)
            .arg("run")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs `args` and checks nothing is left: no state dir entry and no cgroup.
    fn run_clean(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        let left: Vec<_> = std::fs::read_dir(&self.root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state left behind: {left:?}");
        o
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let mut store = self.root.clone().into_os_string();
        store.push("-fe");
        let _ = std::fs::remove_dir_all(store);
    }
}

fn out(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}, stderr: {}",
        o.status,
        stderr(o)
    );
    stdout(o)
}

#[test]
fn embedded_default_is_the_host_root_read_only_and_isolated() {
    require_root!();
    let f = Front::new("embedded");
    let o = f
        .cmd(&["--name", "it-fe-embedded", "--", "/bin/sh", "-c", "echo pid=$$; pwd; touch /usr/husk-test 2>/dev/null && echo rw || echo ro; touch /tmp/x && ls /tmp; ls /run | wc -l; cat /sys/class/net/lo/operstate; ls /sys/class/net | wc -l; hostname"])
        .current_dir("/etc")
        .output()
        .unwrap();
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "/etc", "cwd is the caller's");
    assert_eq!(lines[2], "ro");
    assert_eq!(lines[3], "x", "a private writable /tmp");
    assert_eq!(lines[4], "0", "a fresh /run");
    assert_eq!(
        lines[5], "unknown",
        "lo is up (operstate of lo is 'unknown' when up)"
    );
    assert_eq!(lines[6], "1", "only lo in the new network namespace");
    assert!(
        lines[7].len() == 12 && lines[7].bytes().all(|b| b.is_ascii_hexdigit()),
        "hostname: a 12-digit short id as docker's and podman's, never the --name: {}",
        lines[7]
    );
    assert!(!std::path::Path::new("/usr/husk-test").exists());
    assert_no_cgroup("it-fe-embedded");
    assert!(f.run_clean(&["--", "/bin/true"]).status.success());
}

#[test]
fn exit_codes_are_dockers() {
    require_root!();
    let f = Front::new("codes");
    assert_eq!(
        f.run_clean(&["--", "/bin/sh", "-c", "exit 42"])
            .status
            .code(),
        Some(42)
    );
    let o = f.run_clean(&["--", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert_eq!(f.run_clean(&["--", "/etc/passwd"]).status.code(), Some(126));
    let o = f.run_clean(&["--rootfs", "/nonexistent", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(
        f.run_clean(&["-m", "12x", "--", "true"]).status.code(),
        Some(125)
    );
    assert_eq!(
        f.run_clean(&["--no-such-option", "--", "true"])
            .status
            .code(),
        Some(125)
    );
    assert_eq!(
        f.run_clean(&["--", "/bin/sh", "-c", "kill -9 $$"])
            .status
            .code(),
        Some(0),
        "pid 1 cannot SIGKILL itself"
    );
}

#[test]
fn rootfs_with_options() {
    require_root!();
    let f = Front::new("rootfs");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let env_file = std::env::temp_dir().join(format!("husk-envfile-{}", std::process::id()));
    std::fs::write(&env_file, "# comment\nFROMFILE=1\nB=file\n").unwrap();
    let vol = std::env::temp_dir().join(format!("husk-vol-{}", std::process::id()));
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "data").unwrap();
    let o = f.run_clean(&[
        "--rootfs",
        &rootfs,
        "--read-only",
        "-e",
        "A=1",
        "-e",
        "B=flag",
        "--env-file",
        &env_file.to_string_lossy(),
        "-w",
        "/work/dir",
        "-u",
        "nobody",
        "-h",
        "box",
        "-v",
        &format!("{}:/vol:ro", vol.display()),
        "--tmpfs",
        "/scratch:size=1m",
        "--ulimit",
        "nofile=100:200",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "host",
        "--",
        "/bin/probe",
    ]);
    let p = probe(&o);
    assert_eq!(p["env.A"], "1");
    assert_eq!(p["env.B"], "flag", "-e wins over --env-file");
    assert_eq!(p["env.FROMFILE"], "1");
    assert_eq!(p["cwd"], "/work/dir");
    assert_eq!((p["uid"].as_str(), p["gid"].as_str()), ("65534", "65534"));
    assert_eq!(p["hostname"], "box");
    assert_eq!(p["rlimit.nofile"], "100:200");
    assert_eq!(p["CapBnd"], "0000000000001000");
    assert_eq!(p["nnp"], "1");
    assert_eq!(
        p["ns.net"],
        host_ns("net"),
        "--network host shares the host's network namespace"
    );
    assert_ne!(p["ns.pid"], host_ns("pid"));
    let o = f.run_clean(&["--rootfs", &rootfs, "-v", &format!("{}:/vol:ro", vol.display()), "--tmpfs", "/scratch", "-u", "1:2",
        "--", "/bin/sh", "-c", "cat /vol/f; echo; touch /vol/g 2>/dev/null || echo vol-ro; touch /scratch/s && echo scratch-rw; id -u; id -g"]);
    assert_eq!(out(&o), "data\nvol-ro\nscratch-rw\n1\n2\n");
    let o = f.run_clean(&[
        "--rootfs",
        &rootfs,
        "--",
        "/bin/sh",
        "-c",
        "touch /rootfs-was-writable && echo rw",
    ]);
    assert_eq!(out(&o), "rw\n");
    std::fs::remove_file(rootfs_path_join(&rootfs, "rootfs-was-writable")).unwrap();
    let _ = std::fs::remove_dir_all(&vol);
    let _ = std::fs::remove_file(&env_file);
}

fn rootfs_path_join(root: &str, rel: &str) -> std::path::PathBuf {
    std::path::Path::new(root).join(rel)
}

/// Options that make husk re-execute itself from a read-only copy (CVE-2019-5736) with the
/// things a run makes before its launch: a name and its log, a cidfile, a monitor. The
/// re-execution used to come at the launch, after those, and the new husk found them made
/// (exit 125, its message lost on a log pipe).
/// `run` arguments: `pre`, `opts`, then `--name NAME --rootfs ROOTFS -- CMD...`.
fn named_run<'a>(
    pre: &[&'a str],
    opts: &[&'a str],
    name: &'a str,
    rootfs: &'a str,
    cmd: &[&'a str],
) -> Vec<&'a str> {
    let mut args = [pre, opts].concat();
    args.extend(["--name", name, "--rootfs", rootfs, "--"]);
    args.extend(cmd);
    args
}

#[test]
fn privileged_runs_keep_names_cidfiles_and_detach() {
    require_root!();
    // From a binary on a read-only mount husk never re-executes (nothing can write it through
    // /proc/self/exe), so the cases below would pass without the re-execution they are about.
    skip_unless!(
        !husk_sys::mount::on_readonly_mount(std::path::Path::new(HUSK)).unwrap_or(false),
        "{HUSK} lies on a read-only mount: husk runs from it as it is and never re-executes"
    );
    let f = Front::new("privname");
    let rootfs = rootfs().to_string_lossy().into_owned();
    // Where the host lets husk make neither read-only copy (no open_tree, memfds not
    // executable), every case here fails alike for that reason, not for the one tested.
    let o = f.run(&[
        "--privileged",
        "--rm",
        "--rootfs",
        &rootfs,
        "--",
        "/bin/true",
    ]);
    let e = stderr(&o);
    skip_unless!(
        !e.contains("re-execute husk from a read-only copy of its binary"),
        "the re-execution cannot be set up here: {}",
        e.trim()
    );
    out(&o);
    let name = format!("privname-{}", std::process::id());
    // A profile that does not plainly allow execveat: --security-opt alone makes husk
    // re-execute (the trampoline would need execveat under the container's filter).
    let profile = f.root.with_extension("seccomp.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["execveat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
    let seccomp_file = format!("seccomp={}", profile.display());
    let verb = |args: &[&str]| {
        Command::new(HUSK)
            .arg("--root")
            .arg(&f.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for opts in [
        &["--privileged"][..],
        &["--cap-add", "SYS_PTRACE"],
        &["--pid", "host"],
        &["--privileged", "--security-opt", "seccomp=unconfined"],
        &["--security-opt", &seccomp_file],
    ] {
        let args = named_run(&[], opts, &name, &rootfs, &["/bin/echo", "hi"]);
        assert_eq!(out(&f.run(&args)), "hi\n", "{opts:?}");
        assert_eq!(out(&verb(&["logs", &name])), "hi\n", "{opts:?}: logs");
        out(&verb(&["rm", &name]));
    }
    let cid = f.root.with_extension("cid");
    let _ = std::fs::remove_file(&cid);
    let cidfile = cid.to_string_lossy().into_owned();
    let o = f.run(&[
        "--privileged",
        "--cidfile",
        &cidfile,
        "--rm",
        "--rootfs",
        &rootfs,
        "--",
        "/bin/true",
    ]);
    out(&o);
    let written = std::fs::read_to_string(&cid).unwrap();
    assert!(
        !written.is_empty() && written.bytes().all(|b| b.is_ascii_hexdigit()),
        "the id in the cidfile: {written:?}"
    );
    std::fs::remove_file(&cid).unwrap();
    for opts in [
        &["--privileged"][..],
        &[
            "--cap-add",
            "SYS_PTRACE",
            "--security-opt",
            "seccomp=unconfined",
        ],
    ] {
        let args = named_run(&["-d"], opts, &name, &rootfs, &["/bin/sleep", "100"]);
        let id = out(&f.run(&args));
        assert_eq!(id.trim().len(), 64, "{opts:?}: run -d prints the id: {id}");
        let ps = out(&verb(&["ps"]));
        assert!(ps.contains(&name), "{opts:?}: running: {ps}");
        out(&verb(&["rm", "-f", &name]));
    }
    let _ = std::fs::remove_file(&profile);
}

#[test]
fn privileged_and_interactive() {
    require_root!();
    let f = Front::new("priv");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let p = probe(&f.run_clean(&["--rootfs", &rootfs, "--privileged", "--", "/bin/probe"]));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        p["CapEff"], ours,
        "--privileged grants every capability husk holds"
    );
    let p = probe(&f.run_clean(&["--rootfs", &rootfs, "--", "/bin/probe"]));
    assert_eq!(
        p["CapEff"], "00000000a80425fb",
        "docker's default capabilities"
    );

    let mut child = f
        .cmd(&["-i", "--rootfs", &rootfs, "--", "/bin/cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    assert_eq!(out(&child.wait_with_output().unwrap()), "through stdin\n");
    let o = f
        .cmd(&["--rootfs", &rootfs, "--", "/bin/cat"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out(&o), "", "without -i stdin is /dev/null");
}

#[test]
fn user_names_come_from_the_roots_passwd() {
    require_root!();
    let f = Front::new("user");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let o = f.run_clean(&["--rootfs", &rootfs, "-u", "no-such-user", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("unable to find user no-such-user"));
    let p = probe(&f.run_clean(&["--rootfs", &rootfs, "-u", "nobody:root", "--", "/bin/probe"]));
    assert_eq!((p["uid"].as_str(), p["gid"].as_str()), ("65534", "0"));
}

#[test]
fn default_seccomp_profile_and_security_opts() {
    require_root!();
    let f = Front::new("seccomp");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let o = f.run_clean(&["--rootfs", &rootfs, "--", "/bin/sh", "-c", "grep Seccomp: /proc/self/status; unshare -n true 2>/dev/null && echo unshared || echo denied; mount -t tmpfs t /tmp 2>/dev/null && echo mounted || echo denied"]);
    assert_eq!(out(&o), "Seccomp:\t2\ndenied\ndenied\n");
    let o = f.run_clean(&[
        "--rootfs",
        &rootfs,
        "--security-opt",
        "seccomp=unconfined",
        "--",
        "/bin/grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out(&o), "Seccomp:\t0\n");
    let profile = std::env::temp_dir().join(format!("husk-fe-seccomp-{}.json", std::process::id()));
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
    let o = f.run_clean(&[
        "--rootfs",
        &rootfs,
        "--security-opt",
        &format!("seccomp={}", profile.display()),
        "--",
        "/bin/sh",
        "-c",
        "mkdir /tmp/x 2>/dev/null && echo made || echo denied",
    ]);
    assert_eq!(out(&o), "denied\n");
    let _ = std::fs::remove_file(&profile);
}

#[test]
fn tty_in_the_foreground_through_script() {
    require_root!();
    require!(has_script(), "no script(1) (util-linux) to provide a pty");
    let f = Front::new("tty");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let inner = format!(
        "{HUSK} --root {} run -t --rootfs {rootfs} -- /bin/sh -c 'tty; test -t 0 && echo stdin-is-a-tty; exit 3'",
        f.root.display()
    );
    let o = in_a_pty(&inner);
    let text = stdout(&o);
    assert!(
        text.contains("/dev/pts/0") && text.contains("stdin-is-a-tty"),
        "{text}\n{}",
        stderr(&o)
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "the exit code comes through the terminal session"
    );
    // And runc's `run` without a console socket, in the foreground, does the same.
    let mut env = Env::new("tty-oci");
    env.config["process"]["terminal"] = serde_json::json!(true);
    env.args(&["/bin/sh", "-c", "tty; exit 4"]);
    env.write_config();
    let inner = format!(
        "{HUSK} --root {} run -b {} {}",
        env.root.display(),
        env.bundle.display(),
        env.id("t")
    );
    let o = in_a_pty(&inner);
    assert!(
        stdout(&o).contains("/dev/pts/0"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(4));
}

/// `--systemd always`: what systemd as pid 1 needs is there when the container runs (the
/// tmpfs, the cgroup mount writable, `container=husk`), and the stop signal is recorded.
#[test]
fn systemd_mode_mounts_tmpfs_and_a_writable_cgroup() {
    require_root!();
    let f = Front::new("systemd");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let sh = ["--rootfs", rootfs.as_str(), "--", "/bin/sh", "-c"];
    let script = "echo container=$container; for d in /run /run/lock /tmp /sys/fs/cgroup; do \
         grep \" $d \" /proc/self/mountinfo | while read -r _ _ _ _ p o _; do echo \"$p ${o%%,*}\"; done; \
         done";
    let o = f.run_clean(&[&["--systemd", "always"][..], &sh, &[script]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let tmpfs = ["/run rw", "/run/lock rw", "/tmp rw"];
    for want in tmpfs.iter().chain(&["container=husk", "/sys/fs/cgroup rw"]) {
        assert!(text.lines().any(|l| l == *want), "{want:?} in {text}");
    }
    // The same command without the flag: not systemd, so none of it.
    let o = f.run_clean(&[&sh[..], &["echo container=$container"]].concat());
    assert_eq!(stdout(&o).trim(), "container=", "{}", stderr(&o));
}

#[test]
fn init_reaps_orphans_and_forwards_signals() {
    require_root!();
    let f = Front::new("init");
    let rootfs = rootfs().to_string_lossy().into_owned();
    // The orphan's pid comes back from a subshell that exits at once; sh then waits (at most
    // 60 s) until the reaper has reaped it: its /proc entry is gone.
    let o = f.run_clean(&["--init", "--rootfs", &rootfs, "--", "/bin/sh", "-c",
        "echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '; echo; o=$( (sleep 0.1 >/dev/null & echo $!) ); \
         n=0; while [ -e /proc/$o ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done; \
         echo zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("pid=2\n") && text.contains("/dev/init -- /bin/sh"),
        "{text}"
    );
    assert!(text.contains("zombies=0"), "{text}");
    // SIGTERM to husk reaches the command through the reaper. Sent once the container runs
    // (before that husk has not blocked signals yet, and a slow machine takes a while).
    let mut child = f
        .cmd(&[
            "--init",
            "--name",
            "it-fe-init-sig",
            "--rootfs",
            &rootfs,
            "--",
            "/bin/sleep",
            "inf",
        ])
        .spawn()
        .unwrap();
    wait_until(PATIENCE, "the container runs", || {
        let o = Command::new(HUSK)
            .arg("--root")
            .arg(&f.root)
            .args(["state", "it-fe-init-sig"])
            .output()
            .unwrap();
        stdout(&o).contains("\"running\"")
    });
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
}

#[test]
fn resource_flags_are_applied() {
    require_root!();
    let f = Front::new("res");
    let rootfs = rootfs().to_string_lossy().into_owned();
    // The container's own cgroup is the root of its cgroup namespace: read the files there.
    let script = "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; \
                  else cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us; fi";
    for root in [None, Some(rootfs.as_str())] {
        let mut args = vec!["-m", "64m", "--pids-limit", "20", "--cpus", "0.5"];
        if let Some(r) = root {
            args.extend(["--rootfs", r]);
        }
        args.extend(["--", "/bin/sh", "-c", script]);
        let text = out(&f.run_clean(&args));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "67108864", "{text}");
        assert_eq!(lines[1], "20", "{text}");
        assert!(lines[2] == "50000" || lines[2] == "50000 100000", "{text}");
    }
}

#[test]
fn everything_after_the_first_positional_is_the_command() {
    require_root!();
    let f = Front::new("grammar");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let echo = |args: &[&str]| out(&f.run_clean(args));
    // Options after the command's name are the command's (docker's rule), with or without `--`.
    let script = "echo $#:$*:$(hostname)";
    for dashes in [&[][..], &["--"][..]] {
        let mut a = vec!["--rootfs", &rootfs, "-h", "box"];
        a.extend(dashes);
        a.extend(["/bin/sh", "-c", script, "sh", "-e", "hi", "-h", "x", "-la"]);
        assert_eq!(echo(&a), "5:-e hi -h x -la:box\n", "{a:?}");
    }
    assert_eq!(
        echo(&[
            "--rootfs",
            &rootfs,
            "/bin/sh",
            "-c",
            "echo \"$@\"",
            "sh",
            "--",
            "-x"
        ]),
        "-- -x\n",
        "a `--` after the command is the command's"
    );
    assert!(
        f.run_clean(&["--rootfs", &rootfs, "ls", "-la", "/"])
            .status
            .success()
    );
    // The embedded default: `--` says there is no image.
    assert_eq!(
        echo(&["-h", "box", "--", "/bin/sh", "-c", script, "sh", "-e", "hi"]),
        "2:-e hi:box\n"
    );
    // Without `--` the first word is an image: none by that name (and no pull: this test has no
    // registry), and husk says how to write it.
    let o = f.run_clean(&["--pull=never", "ls", "-la"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("ls: no such image") && stderr(&o).contains("husk run [OPTIONS] -- ls"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn runc_run_only_with_bundle() {
    require_root!();
    let f = Front::new("runcmode");
    let rootfs = rootfs().to_string_lossy().into_owned();
    // -d belongs to the front end: a detached front-end container (detached.rs), not runc's run;
    // husk returns with its output pipes closed, as `$(husk run -d ...)` needs.
    let o = f.run_clean(&["-d", "--rootfs", &rootfs, "--", "sleep", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let rm = Command::new(HUSK)
        .arg("--root")
        .arg(&f.root)
        .args(["rm", "-f", &id])
        .output()
        .unwrap();
    assert!(rm.status.success(), "{}", stderr(&rm));
    // From a directory holding a config.json, front-end options are not ignored for that bundle:
    // the front end runs `x`, which is not found (docker's 127), and removes what it made.
    let env = Env::new("fe-runcmode");
    env.write_config();
    let o = f
        .cmd(&["-d", "--rootfs", &rootfs, "-e", "FOO=bar", "--", "x"])
        .current_dir(&env.bundle)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let mut store = f.root.clone().into_os_string();
    store.push("-fe/containers");
    let left = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a container that never ran is removed");
    for flag in [
        &["--pid-file", "/tmp/p"][..],
        &["--console-socket", "/tmp/s"],
        &["--keep"],
        &["--preserve-fds", "1"],
        &["--no-pivot"],
        &["--no-new-keyring"],
    ] {
        let mut a = flag.to_vec();
        a.extend(["--rootfs", &rootfs, "--", "true"]);
        let o = f.run_clean(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}");
        assert!(
            stderr(&o).contains(&format!(
                "{} is an option of runc's `run`, which needs -b/--bundle",
                flag[0]
            )),
            "{}",
            stderr(&o)
        );
    }
    // -b with a front-end option: an error naming both, and nothing created.
    let b = env.bundle.to_string_lossy().into_owned();
    for (opt, name) in [
        (&["-e", "A=1"][..], "--env"),
        (&["--rootfs", &rootfs], "--rootfs"),
        (&["--memory-swap", "-1"], "--memory-swap"),
        (&["--rm"], "--rm"),
    ] {
        let mut a = vec!["-b", &b];
        a.extend(opt);
        a.push("it-fe-runcmode");
        let o = f.run_clean(&a);
        assert_eq!(o.status.code(), Some(1), "{a:?}");
        assert!(
            stderr(&o).contains("-b/--bundle selects runc's `run`") && stderr(&o).contains(name),
            "{}",
            stderr(&o)
        );
    }
    // And runc's form itself, as engines and lifecycle.rs use it, with its options before or
    // after the id as runc takes them.
    let o = f.run_clean(&["-b", &b, "it-fe-runcmode"]);
    assert!(probe(&o).contains_key("uid"), "{}", stderr(&o));
    let o = f.run_clean(&["it-fe-runcmode", "--bundle", &b, "--no-new-keyring"]);
    assert!(probe(&o).contains_key("uid"), "{}", stderr(&o));
    let o = f.run_clean(&["it-fe-runcmode", "-b", &b, "-e", "A=1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("such as --env"), "{}", stderr(&o));
}

#[test]
fn negative_numbers_are_values() {
    require_root!();
    let f = Front::new("negative");
    let script = "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then cat /sys/fs/cgroup/pids.max; else cat /sys/fs/cgroup/pids/pids.max; fi";
    let o = f.run_clean(&[
        "-m",
        "64m",
        "--memory-swap",
        "-1",
        "--pids-limit",
        "-1",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    assert_eq!(out(&o), "max\n");
    // kill(1)'s `-9`.
    let mut env = Env::new("fe-kill9");
    env.args(&["/bin/sleep", "600"]);
    env.write_config();
    let id = env.id("k9");
    let b = env.bundle.to_string_lossy().into_owned();
    assert!(env.husk(&["run", "-d", "-b", &b, &id]).status.success());
    let o = env.husk(&["kill", &id, "-9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_until(PATIENCE, "the container is stopped", || {
        stdout(&env.husk(&["state", &id])).contains("\"stopped\"")
    });
    assert!(env.husk(&["delete", &id]).status.success());
}

#[test]
fn help_completions_and_man_pages() {
    let husk = |args: &[&str]| {
        let o = Command::new(HUSK).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let rules = "everything after the first positional argument is the command";
    assert!(husk(&["run", "--help"]).contains(rules));
    assert!(husk(&["help", "run"]).contains(rules));
    assert!(husk(&["help"]).contains("completion"));
    assert!(husk(&["kill", "--help"]).contains("-9 as kill(1)"));
    for shell in ["bash", "zsh", "fish"] {
        let script = husk(&["completion", shell]);
        assert!(
            script.contains("rootfs") && script.contains("cap-add") && script.contains("exec"),
            "{shell}"
        );
    }
    let page = husk(&["man", "run"]);
    assert!(
        page.contains(".TH husk-run 1") && page.contains("rootfs"),
        "{page}"
    );
    assert!(husk(&["man"]).contains(".TH husk 1"));
    let o = Command::new(HUSK).args(["man", "nope"]).output().unwrap();
    assert!(!o.status.success() && stderr(&o).contains("man nope: no such command"));
}

/// `husk run` with `args`, checking that it fails with docker's 125 and says `what`.
fn refused(f: &Front, args: &[&str], what: &str) {
    let o = f.run_clean(args);
    assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(what), "{args:?}: {}", stderr(&o));
}

#[test]
fn capabilities_follow_dockers_rules() {
    require_root!();
    let f = Front::new("caps");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let eff = |extra: &[&str]| {
        let mut a = extra.to_vec();
        a.extend(["--rootfs", &rootfs, "/bin/probe"]);
        u64::from_str_radix(&probe(&f.run_clean(&a))["CapEff"], 16).unwrap()
    };
    let net_raw = 1 << 13;
    let all = eff(&["--cap-add", "ALL"]);
    assert_ne!(all & net_raw, 0);
    assert_eq!(
        eff(&["--cap-add", "ALL", "--cap-drop", "NET_RAW"]),
        all & !net_raw,
        "ALL, then the dropped one taken away (podman: 000001fffeffdfff)"
    );
    assert_eq!(eff(&["--cap-drop", "ALL", "--cap-add", "NET_RAW"]), net_raw);
    refused(
        &f,
        &[
            "--cap-add",
            "NET_RAW",
            "--cap-drop",
            "net_raw",
            "--",
            "true",
        ],
        "capability \"CAP_NET_RAW\" cannot be dropped and added",
    );
}

#[test]
fn numeric_users_take_group_groups_and_home_from_passwd() {
    require_root!();
    let f = Front::new("uidhome");
    let root = private_rootfs("fe-uidhome");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1001:u:/home/u:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\ng:x:1001:\nextra:x:2000:u\nadd:x:3000:\n",
    )
    .unwrap();
    let r = root.to_string_lossy().into_owned();
    let p = probe(&f.run_clean(&["-u", "1000", "--rootfs", &r, "/bin/probe"]));
    assert_eq!((p["uid"].as_str(), p["gid"].as_str()), ("1000", "1001"));
    assert_eq!(p["groups"], "2000");
    assert_eq!(p["env.HOME"], "/home/u");
    let p = probe(&f.run_clean(&[
        "-u",
        "1000",
        "--group-add",
        "add",
        "--group-add",
        "7",
        "--rootfs",
        &r,
        "/bin/probe",
    ]));
    assert_eq!(
        p["groups"], "7,2000,3000",
        "--group-add, by name and number (the kernel sorts them)"
    );
    // A uid without an entry: gid 0 and HOME=/ (docker); root's home from passwd.
    let p = probe(&f.run_clean(&["-u", "4242", "--rootfs", &r, "/bin/probe"]));
    assert_eq!((p["gid"].as_str(), p["env.HOME"].as_str()), ("0", "/"));
    assert_eq!(
        probe(&f.run_clean(&["--rootfs", &r, "/bin/probe"]))["env.HOME"],
        "/root"
    );
    refused(
        &f,
        &["--group-add", "nogroup", "--rootfs", &r, "true"],
        "unable to find group nogroup",
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn values_docker_refuses_are_refused() {
    require_root!();
    let f = Front::new("refuse");
    let rootfs = rootfs().to_string_lossy().into_owned();
    refused(
        &f,
        &["-e", "=x", "--", "true"],
        "invalid environment variable: \"=x\"",
    );
    refused(
        &f,
        &["-v", "/etc:/", "--", "true"],
        "the destination cannot be /",
    );
    refused(
        &f,
        &["--tmpfs", "/", "--", "true"],
        "the destination cannot be /",
    );
    refused(
        &f,
        &["--userns", "keep-id", "--", "true"],
        "--userns keep-id: only when an ordinary user runs husk (rootless)",
    );
    refused(
        &f,
        &["--pid", "container:x", "--", "true"],
        "--pid container:x: only host is supported",
    );
    refused(
        &f,
        &["--cpus", "1", "--cpu-quota", "50000", "--", "true"],
        "--cpus cannot be given with --cpu-quota",
    );
    refused(
        &f,
        &["--mount", "type=volume,target=/v", "--", "true"],
        "volumes are not supported yet",
    );
    refused(
        &f,
        &["--add-host", "db:10.0.0.2", "--", "true"],
        "--add-host and --dns* need --rootfs",
    );
    refused(
        &f,
        &["--stop-signal", "NOPE", "--", "true"],
        "--stop-signal NOPE: unknown signal",
    );
    // Values the host cannot take: said before anything is made, with what it allows.
    refused(
        &f,
        &["--cpus", "0.001", "--", "true"],
        "--cpus 0.001: the minimum is 0.01",
    );
    refused(
        &f,
        &["--cpus", "4096", "--", "true"],
        "--cpus 4096: the range is 0.01 to",
    );
    refused(
        &f,
        &["--cpuset-cpus", "4095", "--", "true"],
        "--cpuset-cpus 4095: CPU 4095 is not available; this host has ",
    );
    // -it from a pipe: docker's refusal, not a hang after EOF.
    let o = f
        .cmd(&["-it", "--rootfs", &rootfs, "/bin/cat"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("the input device is not a TTY"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn memory_flags_as_docker() {
    require_root!();
    let f = Front::new("memory");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (limit, swap) = if v2 {
        (
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory.swap.max",
        )
    } else {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        )
    };
    let swap_accounting = if v2 {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .any(|e| e.path().join("memory.swap.max").exists())
    } else {
        std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    };
    if !swap_accounting {
        skip(
            Skip::HostFeature,
            "no swap accounting (memory.memsw.* / memory.swap.max) on this host",
        );
        return;
    }
    let cat = |args: &[&str]| {
        let mut a = args.to_vec();
        let script = format!("cat {limit} {swap}");
        a.extend(["--", "/bin/sh", "-c", &script]);
        out(&f.run_clean(&a))
    };
    // -m alone: as much swap as memory (v1 memsw = 2 × memory; v2 swap.max = memory).
    let text = cat(&["-m", "64m"]);
    let expect_swap = if v2 { 64 << 20 } else { 128 << 20 };
    assert_eq!(text, format!("{}\n{expect_swap}\n", 64 << 20));
    // -m 0 is no limit.
    let text = cat(&["-m", "0"]);
    let first = text.lines().next().unwrap();
    assert!(
        first == "max" || first.parse::<u64>().unwrap() > 1 << 50,
        "{text}"
    );
    let script = "cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes; grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us";
    if !v2 {
        let o = f.run_clean(&[
            "--memory-reservation",
            "32m",
            "--oom-kill-disable",
            "-m",
            "64m",
            "--cpu-quota",
            "20000",
            "--cpu-period",
            "50000",
            "--",
            "/bin/sh",
            "-c",
            script,
        ]);
        assert_eq!(
            out(&o),
            format!("{}\noom_kill_disable 1\n20000\n50000\n", 32 << 20)
        );
    }
}

#[test]
fn read_only_rootfs_gets_writable_tmp_and_run() {
    require_root!();
    let f = Front::new("rotmp");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let o = f.run_clean(&[
        "--read-only",
        "--rootfs",
        &rootfs,
        "/bin/sh",
        "-c",
        "touch /tmp/a /run/b && echo tmp-run-rw; touch /etc/x 2>/dev/null || echo root-ro",
    ]);
    assert_eq!(out(&o), "tmp-run-rw\nroot-ro\n");
}

#[test]
fn the_embedded_default_sees_the_callers_dir_and_binds_sys_with_host_network() {
    require_root!();
    let f = Front::new("cwdtmp");
    let dir = std::env::temp_dir().join(format!("husk-fe-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("here"), "").unwrap();
    let o = f
        .cmd(&["--", "/bin/sh", "-c", "pwd; ls"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out(&o), format!("{}\nhere\n", dir.display()));
    let o = f.run_clean(&[
        "--network",
        "host",
        "--",
        "/bin/sh",
        "-c",
        "cat /sys/class/net/lo/operstate; touch /sys/x 2>/dev/null || echo sys-ro",
    ]);
    assert_eq!(out(&o), "unknown\nsys-ro\n");
}

#[test]
fn namespaces_sysctl_shm_and_entrypoint() {
    require_root!();
    let f = Front::new("ns");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let p = probe(&f.run_clean(&[
        "--pid",
        "host",
        "--ipc",
        "host",
        "--uts",
        "host",
        "--cgroupns",
        "host",
        "--userns",
        "host",
        "--rootfs",
        &rootfs,
        "/bin/probe",
    ]));
    for ns in ["pid", "ipc", "uts", "cgroup", "user"] {
        assert_eq!(p[&format!("ns.{ns}")], host_ns(ns), "{ns}");
    }
    assert_ne!(p["ns.net"], host_ns("net"));
    let p = probe(&f.run_clean(&["--rootfs", &rootfs, "/bin/probe"]));
    for ns in ["pid", "ipc", "uts", "cgroup", "net"] {
        assert_ne!(p[&format!("ns.{ns}")], host_ns(ns), "{ns}");
    }
    let o = f.run_clean(&["--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "1m", "--rootfs", &rootfs,
        "/bin/sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9a-z]*'"]);
    assert_eq!(out(&o), "1\nsize=1024k\n");
    let o = f.run_clean(&[
        "--entrypoint",
        "/bin/echo",
        "--rootfs",
        &rootfs,
        "--",
        "-n",
        "from",
        "entrypoint",
    ]);
    assert_eq!(out(&o), "from entrypoint");
}

#[test]
fn etc_files_labels_cidfile_and_stop_settings() {
    require_root!();
    let f = Front::new("etc");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let o = f.run_clean(&["--add-host", "db:10.0.0.2", "-h", "box", "--rootfs", &rootfs, "/bin/sh", "-c",
        "grep -c box /etc/hosts; grep db /etc/hosts; cat /etc/hostname; test -f /etc/resolv.conf && echo resolv; echo x >> /etc/hosts && echo writable"]);
    assert_eq!(out(&o), "1\n10.0.0.2\tdb\nbox\nresolv\nwritable\n");
    // Bound from the state dir, not written into the rootfs: nothing of it is left there.
    let hosts = std::fs::read_to_string(std::path::Path::new(&rootfs).join("etc/hosts"))
        .unwrap_or_default();
    assert!(!hosts.contains("db"), "{hosts}");
    // A relative --root works: husk makes it absolute (the bind sources live under it).
    let cwd = std::env::temp_dir().join(format!("husk-fe-relroot-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    let o = Command::new(HUSK)
        .args([
            "--root",
            "state",
            "run",
            "--rootfs",
            &rootfs,
            "/bin/cat",
            "/etc/hostname",
        ])
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let left = std::fs::read_dir(cwd.join("state"))
        .map(|d| d.count())
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&cwd);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(left, 0);

    let cid = std::env::temp_dir().join(format!("husk-fe-cid-{}", std::process::id()));
    let _ = std::fs::remove_file(&cid);
    let labels = std::env::temp_dir().join(format!("husk-fe-labels-{}", std::process::id()));
    std::fs::write(&labels, "from=file\n").unwrap();
    let mut child = f
        .cmd(&[
            "--name",
            "it-fe-labels",
            "--cidfile",
            &cid.to_string_lossy(),
            "-l",
            "a=1",
            "--label-file",
            &labels.to_string_lossy(),
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "5",
            "--rootfs",
            &rootfs,
            "/bin/sleep",
            "600",
        ])
        .spawn()
        .unwrap();
    let state = || {
        let o = Command::new(HUSK)
            .arg("--root")
            .arg(&f.root)
            .args(["state", "it-fe-labels"])
            .output()
            .unwrap();
        stdout(&o)
    };
    wait_until(PATIENCE, "the container runs", || {
        state().contains("\"running\"")
    });
    let st: serde_json::Value = serde_json::from_str(&state()).unwrap();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), "it-fe-labels");
    let o = Command::new(HUSK)
        .arg("--root")
        .arg(&f.root)
        .args(["kill", "it-fe-labels", "KILL"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = child.wait();
    let ann = &st["annotations"];
    assert_eq!(
        (ann["a"].as_str(), ann["from"].as_str()),
        (Some("1"), Some("file")),
        "{st}"
    );
    assert_eq!(
        (
            ann["husk.stop-signal"].as_str(),
            ann["husk.stop-timeout"].as_str()
        ),
        (Some("2"), Some("5"))
    );
    // An existing cidfile is refused, as docker does, and left alone.
    refused(
        &f,
        &[
            "--cidfile",
            &cid.to_string_lossy(),
            "--rootfs",
            &rootfs,
            "true",
        ],
        "write --cidfile",
    );
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), "it-fe-labels");
    let _ = std::fs::remove_file(&cid);
    let _ = std::fs::remove_file(&labels);
}

#[test]
fn explain_writes_whole_lines() {
    require_root!();
    let f = Front::new("explain");
    let rootfs = rootfs().to_string_lossy().into_owned();
    for _ in 0..5 {
        let o = Command::new(HUSK)
            .arg("--root")
            .arg(&f.root)
            .args(["--explain", "run", "--rootfs", &rootfs, "true"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        for l in stderr(&o).lines() {
            let ok = l.starts_with('[')
                && l.contains(" µs] +")
                && (l.contains(" µs  husk: ") || l.contains(" µs  init: "));
            assert!(ok, "a torn line: {l:?}\n{}", stderr(&o));
        }
    }
}

#[test]
fn devices_privileged_and_more_docker_flags() {
    require_root!();
    let f = Front::new("devices");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let o = f.run_clean(&["--device", "/dev/zero:/dev/myzero:r", "--rootfs", &rootfs, "/bin/sh", "-c",
        "head -c 3 /dev/myzero | od -An -tx1 | tr -d ' '; test -e /dev/loop-control || echo no-loop-control"]);
    assert_eq!(out(&o), "000000\nno-loop-control\n");
    if std::path::Path::new("/dev/loop-control").exists() {
        // --privileged: the host's devices are there and allowed (docker).
        let o = f.run_clean(&[
            "--privileged",
            "--rootfs",
            &rootfs,
            "/bin/sh",
            "-c",
            "test -c /dev/loop-control && echo present; exec 3<>/dev/loop-control && echo opened",
        ]);
        assert_eq!(out(&o), "present\nopened\n");
    }
    let o = f.run_clean(&[
        "--dns",
        "192.0.2.1",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:2",
        "--oom-score-adj",
        "500",
        "--domainname",
        "dom.example",
        "--rootfs",
        &rootfs,
        "/bin/sh",
        "-c",
        "cat /etc/resolv.conf; cat /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname",
    ]);
    assert_eq!(
        out(&o),
        "nameserver 192.0.2.1\nsearch example.org\noptions ndots:2\n500\ndom.example\n"
    );
    let o = f.run_clean(&[
        "--cgroup-parent",
        "husk-fe-parent",
        "--cgroupns",
        "host",
        "--name",
        "it-fe-cgparent",
        "--rootfs",
        &rootfs,
        "/bin/sh",
        "-c",
        "grep -c /husk-fe-parent/it-fe-cgparent /proc/self/cgroup",
    ]);
    assert_ne!(out(&o), "0\n");
    // The container's cgroup went with it; the parent stays, as with docker: the test removes it.
    let mut parents = vec![std::path::PathBuf::from("/sys/fs/cgroup/husk-fe-parent")];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        parents.push(h.path().join("husk-fe-parent"));
    }
    for p in parents.iter().filter(|p| p.exists()) {
        assert!(!p.join("it-fe-cgparent").exists(), "{}", p.display());
        std::fs::remove_dir(p).unwrap();
    }
    refused(
        &f,
        &["--device", "/etc/passwd", "--", "true"],
        "is not a character or block device",
    );
    refused(&f, &["--dns", "1.1.1.1", "--", "true"], "need --rootfs");
}

#[test]
fn missing_mount_points_on_the_embedded_default_get_a_scaffold() {
    require_root!();
    let f = Front::new("scaffold");
    let src = std::env::temp_dir().join(format!("husk-fe-scaffold-{}", std::process::id()));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "data").unwrap();
    let miss = format!("/husk-fe-missing-{}", std::process::id());
    // /usr becomes a scaffold: the host's entries (bound) and the new mount point.
    let mut usr: Vec<String> = std::fs::read_dir("/usr")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .chain(["husk-fe-scratch".to_string()])
        .collect();
    usr.sort();
    let usr: String = usr.iter().map(|n| format!("{n}\n")).collect();
    let o = f.run_clean(&[
        "-v", &format!("{}:{miss}/vol:ro", src.display()),
        "--tmpfs", "/usr/husk-fe-scratch",
        "-w", &format!("{miss}/work"),
        "--", "/bin/sh", "-c",
        "pwd; cat vol/f 2>/dev/null || cat ../vol/f; echo; touch /usr/husk-fe-scratch/x && echo tmpfs-rw; \
         touch /etc/husk-x 2>/dev/null || echo etc-ro; test -d /proc/self && echo proc; ls /usr",
    ]);
    let _ = std::fs::remove_dir_all(&src);
    assert_eq!(
        out(&o),
        format!("{miss}/work\ndata\ntmpfs-rw\netc-ro\nproc\n{usr}")
    );
    assert!(
        !std::path::Path::new(&miss).exists(),
        "nothing made on the host"
    );
    assert!(!std::path::Path::new("/usr/husk-fe-scratch").exists());
}

/// The README's front-end examples, as written there (CMD and DIR filled in).
#[test]
fn readme_examples_run() {
    require_root!();
    let f = Front::new("readme");
    // Compiled in: the cgroup v2 guest has the test binary, not the source tree.
    let readme = include_str!("../../../README.md");
    let section = &readme[readme.find("## The daemonless front end").unwrap()..];
    let block = section.split("```").nth(1).unwrap();
    let rootfs = rootfs().to_string_lossy().into_owned();
    let cwd = std::env::temp_dir().join(format!("husk-fe-readme-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    let mut ran = 0;
    for line in block.lines().filter(|l| l.starts_with("husk run")) {
        let line = line.split(" #").next().unwrap();
        let line = line
            .replace("CMD [ARGS...]", "/bin/echo ok")
            .replace("CMD", "/bin/echo ok")
            .replace("DIR", &rootfs)
            .replace("$PWD", &cwd.to_string_lossy());
        let words: Vec<&str> = line.split_whitespace().skip(2).collect();
        let o = f.cmd(&words).current_dir(&cwd).output().unwrap();
        assert!(o.status.success(), "{line}: {}", stderr(&o));
        ran += 1;
    }
    let _ = std::fs::remove_dir_all(&cwd);
    assert_eq!(ran, 3, "{block}");
}

#[test]
fn a_killed_husk_run_takes_its_container_along() {
    require_root!();
    let f = Front::new("pdeath");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let name = "it-fe-pdeath";
    let mut child = f
        .cmd(&["--name", name, "--rootfs", &rootfs, "/bin/sleep", "600"])
        .spawn()
        .unwrap();
    let state = || {
        let o = Command::new(HUSK)
            .arg("--root")
            .arg(&f.root)
            .args(["state", name])
            .output()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap_or_default()
    };
    wait_until(PATIENCE, "the container runs", || {
        state()["status"] == "running"
    });
    let pid = state()["pid"].as_i64().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    wait_until(PATIENCE, "the container's init is gone", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    // Its name is free again: the next run removes what the killed one left.
    let o = f.run_clean(&["--name", name, "--rootfs", &rootfs, "/bin/echo", "again"]);
    assert_eq!(out(&o), "again\n");
    assert_no_cgroup(name);
}

#[test]
fn tty_without_interactive_gets_the_window_size_and_single_carriage_returns() {
    require_root!();
    require!(has_script(), "no script(1) (util-linux) to provide a pty");
    let f = Front::new("ttysize");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let inner = format!(
        "stty rows 33 cols 77; {HUSK} --root {} run -t --rootfs {rootfs} /bin/sh -c 'stty size; echo a; echo b'",
        f.root.display()
    );
    let o = in_a_pty(&inner);
    let text = stdout(&o);
    assert!(
        text.contains("33 77\r\na\r\nb\r\n"),
        "{text:?}\n{}",
        stderr(&o)
    );
    assert!(!text.contains("\r\r"), "{text:?}");
}

#[test]
fn env_globs_copy_the_callers_variables() {
    require_root!();
    let f = Front::new("envglob");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let o = f
        .cmd(&["-e", "HUSK_GLOB_*", "--rootfs", &rootfs, "/bin/probe"])
        .env("HUSK_GLOB_A", "1")
        .env("HUSK_GLOB_B", "two")
        .env("HUSK_OTHER", "x")
        .output()
        .unwrap();
    let p = probe(&o);
    assert_eq!(
        (p["env.HUSK_GLOB_A"].as_str(), p["env.HUSK_GLOB_B"].as_str()),
        ("1", "two")
    );
    assert!(!p.contains_key("env.HUSK_OTHER"));
}
