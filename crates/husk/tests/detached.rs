//! Front-end containers that outlive the shell (issue 14): `run -d`, the monitor, and docker's
//! verbs on them. Each test has its own --root, so its front-end store is `<root>-fe`.

mod common;

use common::{Env, PATIENCE, stderr, stdout, wait_until};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A test's front end: removes every container it made, also when the test fails.
struct Fe {
    env: Env,
}

impl Drop for Fe {
    fn drop(&mut self) {
        let ids = self.ok(&["ps", "-aq", "--no-trunc"]);
        for id in ids.lines() {
            let _ = self.env.husk(&["rm", "-f", id]);
        }
    }
}

impl Fe {
    fn new(name: &str) -> Fe {
        Fe {
            env: Env::new(name),
        }
    }

    fn store(&self) -> PathBuf {
        let mut s = self.env.root.clone().into_os_string();
        s.push("-fe");
        s.into()
    }

    /// husk with this --root; stdout, asserting success.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.env.husk(args);
        assert!(
            o.status.success(),
            "husk {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// husk with this --root and ARGS, stdin from /dev/null, to be spawned.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::HUSK);
        c.arg("--root")
            .arg(&self.env.root)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// `run -d --rootfs R ARGS...`: the id printed.
    fn run_d(&self, opts: &[&str], cmd: &[&str]) -> String {
        let r = common::rootfs();
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["--rootfs", r.to_str().unwrap()]);
        a.extend_from_slice(cmd);
        let id = self.ok(&a).trim().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "run -d prints a 64-hex id, got {id:?}"
        );
        id
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    fn status(&self, name: &str) -> String {
        self.inspect(name)["State"]["Status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn monitor_pid(&self, name: &str) -> i32 {
        self.inspect(name)["Monitor"]["Pid"].as_i64().unwrap() as i32
    }
}

/// Anonymous resident memory: what a leak grows (code pages come and go with what runs).
fn rss_anon_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn run_d_ps_logs_stop_escalates_rm() {
    require_root!();
    let fe = Fe::new("det-basic");
    // `exec sleep`: pid 1 with TERM at its default action ignores it, so stop must KILL.
    let id = fe.run_d(
        &["--name", "web1"],
        &[
            "sh",
            "-c",
            "echo out-line; echo err-line >&2; exec sleep 1000",
        ],
    );
    let ps = fe.ok(&["ps"]);
    let row = ps.lines().nth(1).unwrap_or_default();
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(
        row.starts_with(&id[..12]) && row.contains("Up ") && row.ends_with("web1"),
        "{ps}"
    );
    assert_eq!(fe.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(fe.ok(&["ps", "--format", "{{.Names}}"]).trim(), "web1");
    let j: Value = serde_json::from_str(fe.ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["State"], "running");
    // The output is in the log once the monitor copied it: both lines, each on its stream.
    wait_until(PATIENCE, "both lines are logged", || {
        let o = fe.env.husk(&["logs", "web1"]);
        stdout(&o) == "out-line\n" && stderr(&o) == "err-line\n"
    });
    let t = fe.ok(&["logs", "-t", "--tail", "1", "web1"]);
    assert!(
        t.is_empty() || t.ends_with("Z err-line\n") || t.contains("Z "),
        "{t}"
    );
    // The hostname is the short id, as docker's.
    assert_eq!(fe.ok(&["exec", "web1", "hostname"]).trim(), &id[..12]);
    // A unique prefix names it everywhere.
    let insp = fe.inspect(&id[..6]);
    assert_eq!(insp["Id"], id.as_str());
    assert_eq!(insp["Name"], "/web1");
    assert_eq!(insp["State"]["Running"], true);
    let pid = insp["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    // Names are unique.
    let r = common::rootfs();
    let dup = fe.env.husk(&[
        "run",
        "-d",
        "--name",
        "web1",
        "--rootfs",
        r.to_str().unwrap(),
        "true",
    ]);
    assert_eq!(dup.status.code(), Some(125));
    assert!(stderr(&dup).contains("already in use"), "{}", stderr(&dup));
    // rm of a running container is refused without -f.
    let o = fe.env.husk(&["rm", "web1"]);
    assert!(
        !o.status.success() && stderr(&o).contains("rm -f"),
        "{}",
        stderr(&o)
    );
    // Said once (a single name's error is the command's).
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = fe.env.husk(&["wait", "nosuch"]);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    // stop: TERM is ignored by this pid 1, so KILL after 1 s.
    fe.ok(&["stop", "-t", "1", "web1"]);
    assert_eq!(fe.ok(&["wait", "web1"]).trim(), "137");
    let insp = fe.inspect("web1");
    assert_eq!(insp["State"]["Status"], "exited");
    assert_eq!(insp["State"]["ExitCode"], 137);
    assert!(
        fe.ok(&["ps"]).lines().count() == 1,
        "ps without -a hides it"
    );
    let all = fe.ok(&["ps", "-a"]);
    assert!(all.contains("Exited (137) "), "{all}");
    // The logs outlive the process and the monitor.
    assert_eq!(fe.ok(&["logs", "web1"]), "out-line\n");
    common::assert_no_cgroup(&id);
    fe.ok(&["rm", "web1"]);
    assert!(!fe.store().join("containers").join(&id).exists());
    assert!(!fe.store().join("names/web1").exists());
    assert!(!fe.store().join("run").join(&id).exists());
    assert_eq!(fe.ok(&["ps", "-aq"]), "");
}

#[test]
fn logs_follow_a_running_container_then_wait() {
    require_root!();
    let fe = Fe::new("det-follow");
    let gate = fe.env.dir.join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let v = format!("{}:/gate", gate.display());
    fe.run_d(
        &["--name", "follow", "-v", &v],
        &[
            "sh",
            "-c",
            "echo first; while [ ! -e /gate/go ]; do sleep 0.05; done; echo second; exit 3",
        ],
    );
    let out = fe.env.dir.join("follow.out");
    let mut child = fe
        .cmd(&["logs", "-f", "follow"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(PATIENCE, "logs -f prints the first line", || {
        std::fs::read_to_string(&out).unwrap_or_default() == "first\n"
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "logs -f keeps following"
    );
    std::fs::write(gate.join("go"), "").unwrap();
    // logs -f ends by itself once the container stopped, with every line.
    assert_eq!(common::wait_code(&mut child), Some(0));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "first\nsecond\n");
    assert_eq!(fe.ok(&["wait", "follow"]).trim(), "3");
    assert!(fe.ok(&["ps", "-a"]).contains("Exited (3) "));
}

#[test]
fn start_again_restart_kill_and_rm_f() {
    require_root!();
    let fe = Fe::new("det-start");
    // --init: pid 1 forwards USR1 to the command (a pid 1 without a handler never gets it).
    let id = fe.run_d(
        &["--name", "again", "--init"],
        &["sh", "-c", "echo run; exec sleep 1000"],
    );
    let pid1 = fe.inspect("again")["State"]["Pid"].as_i64().unwrap();
    // docker's kill: KILL by default, -s for another signal.
    fe.ok(&["kill", "again"]);
    assert_eq!(fe.ok(&["wait", "again"]).trim(), "137");
    // start: the same config and rootfs run again; the log keeps both runs.
    fe.ok(&["start", "again"]);
    assert_eq!(fe.status("again"), "running");
    let pid2 = fe.inspect("again")["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid1, pid2);
    wait_until(PATIENCE, "the second run is logged", || {
        stdout(&fe.env.husk(&["logs", "again"])) == "run\nrun\n"
    });
    fe.ok(&["restart", "-t", "0", "again"]);
    assert_eq!(fe.status("again"), "running");
    assert_ne!(fe.inspect("again")["State"]["Pid"].as_i64().unwrap(), pid2);
    fe.ok(&["kill", "-s", "USR1", "again"]);
    assert_eq!(fe.ok(&["wait", "again"]).trim(), "138");
    // rm -f of a running one.
    fe.ok(&["start", "again"]);
    let mon = fe.monitor_pid("again");
    let pid3 = fe.inspect("again")["State"]["Pid"].as_i64().unwrap();
    fe.ok(&["rm", "-f", "again"]);
    assert!(!fe.store().join("containers").join(&id).exists());
    assert!(!fe.store().join("run").join(&id).exists());
    common::assert_no_cgroup(&id);
    // Nothing of it runs: its process, nor anything naming its id (the monitor).
    assert!(!common::alive(&pid3.to_string()));
    wait_until(PATIENCE, "nothing names the id", || {
        common::procs_naming(&id).is_empty()
    });
    wait_until(PATIENCE, "the monitor is gone", || {
        std::fs::read_to_string(format!("/proc/{mon}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    });
}

#[test]
fn start_a_waits_for_exit_code() {
    require_root!();
    let fe = Fe::new("det-start-a");
    fe.run_d(&["--name", "once"], &["sh", "-c", "echo hi; exit 5"]);
    assert_eq!(fe.ok(&["wait", "once"]).trim(), "5");
    let o = fe.env.husk(&["start", "-a", "once"]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(stdout(&o), "hi\n");
}

#[test]
fn rm_flag_removes_at_exit_and_prune() {
    require_root!();
    let fe = Fe::new("det-rm");
    let id = fe.run_d(&["--rm"], &["true"]);
    wait_until(PATIENCE, "--rm removed the container", || {
        !fe.store().join("containers").join(&id).exists()
    });
    common::assert_no_cgroup(&id);
    let a = fe.run_d(&[], &["true"]);
    let b = fe.run_d(&[], &["sleep", "1000"]);
    fe.ok(&["wait", &a]);
    let out = fe.ok(&["container", "prune", "-f"]);
    assert!(out.contains(&a) && !out.contains(&b), "{out}");
    assert_eq!(fe.ok(&["ps", "-aq", "--no-trunc"]).trim(), b);
}

/// How many processes hold a shared flock on `dir` (/proc/locks names its inode): `wait`s and
/// `attach`es holding a container's record.
fn shared_holders(dir: &std::path::Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(ino) = std::fs::metadata(dir).map(|m| m.ino()) else {
        return 0;
    };
    let tail = format!(":{ino}");
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.get(1) == Some(&"FLOCK") && f.get(3) == Some(&"READ"))
        .filter(|f| f.get(5).is_some_and(|d| d.ends_with(&tail)))
        .count()
}

#[test]
fn wait_and_attach_read_the_code_of_a_rm_container() {
    require_root!();
    let fe = Fe::new("det-rm-wait");
    // docker's `run -d --rm` then `wait`: the exit code, then the container is gone.
    let id = fe.run_d(&["--rm", "--name", "brief"], &["sleep", "1000"]);
    let dir = fe.store().join("containers").join(&id);
    let waiter = Attached::new(&fe, &["wait", "brief"]);
    let attacher = Attached::new(&fe, &["attach", "brief"]);
    wait_until(PATIENCE, "wait and attach hold the record", || {
        shared_holders(&dir) == 2
    });
    fe.ok(&["kill", "brief"]);
    let (code, out, err) = waiter.end();
    assert_eq!((code, out.trim()), (0, "137"), "{err}");
    let (code, _, err) = attacher.end();
    assert_eq!(code, 137, "{err}");
    wait_until(PATIENCE, "--rm removed the container", || !dir.exists());
    // A foreground `run --rm --name` too: `wait` from another shell gets its code; also where
    // a monitor runs the container and husk relays (detach keys, no sig-proxy).
    let r = common::rootfs();
    // (the relaying husk holds the record too, as `attach` does)
    for (opts, holders) in [
        (&[][..], 1),
        (&["--detach-keys", "ctrl-x,y"], 2),
        (&["--sig-proxy=false"], 2),
    ] {
        let mut args = vec!["run", "--rm", "-i", "--name", "fg"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[
            "--rootfs",
            r.to_str().unwrap(),
            "sh",
            "-c",
            "read x; exit 4",
        ]);
        let mut fg = Attached::new(&fe, &args);
        // It reads its stdin, which only this test ends.
        wait_until(PATIENCE, "the foreground run runs", || {
            fe.env.husk(&["inspect", "fg"]).status.success() && fe.status("fg") == "running"
        });
        let fg_dir = fe
            .store()
            .join("containers")
            .join(fe.inspect("fg")["Id"].as_str().unwrap());
        let waiter = Attached::new(&fe, &["wait", "fg"]);
        wait_until(PATIENCE, "wait holds the record", || {
            shared_holders(&fg_dir) == holders
        });
        // A line, not EOF: a relaying husk does not pass its stdin's EOF on.
        fg.send(b"\n");
        assert_eq!(fg.end().0, 4, "{opts:?}");
        let (code, out, err) = waiter.end();
        assert_eq!((code, out.trim()), (0, "4"), "{opts:?}: {err}");
        assert!(!fg_dir.exists(), "{opts:?}");
    }
}

#[test]
fn restart_on_failure_counts() {
    require_root!();
    let fe = Fe::new("det-restart");
    fe.run_d(
        &["--name", "flaky", "--restart", "on-failure:2"],
        &["sh", "-c", "echo try; exit 1"],
    );
    wait_until(PATIENCE, "two restarts, then exited", || {
        let i = fe.inspect("flaky");
        i["RestartCount"] == 2 && i["State"]["Status"] == "exited"
    });
    assert_eq!(fe.ok(&["wait", "flaky"]).trim(), "1");
    assert_eq!(fe.ok(&["logs", "flaky"]), "try\ntry\ntry\n");
    let r = common::rootfs();
    let o = fe.env.husk(&[
        "run",
        "-d",
        "--rm",
        "--restart",
        "always",
        "--rootfs",
        r.to_str().unwrap(),
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    // stop ends `always` for good.
    fe.run_d(
        &["--name", "always", "--restart", "always"],
        &["sleep", "1000"],
    );
    fe.ok(&["stop", "-t", "0", "always"]);
    assert_eq!(fe.status("always"), "exited");
}

#[test]
fn after_a_reboot_exited_then_start_then_rm() {
    require_root!();
    let fe = Fe::new("det-reboot");
    let id = fe.run_d(&["--name", "boot"], &["sleep", "1000"]);
    // And one with a terminal: its monitor's socket is left behind by the "reboot".
    let tid = fe.run_d(&["--name", "bootty", "-it"], &["sh"]);
    // The "reboot": every container process and every monitor killed.
    for name in ["boot", "bootty"] {
        let i = fe.inspect(name);
        // The monitor first: one that saw its container die would record the exit.
        for p in [
            i["Monitor"]["Pid"].as_i64().unwrap(),
            i["State"]["Pid"].as_i64().unwrap(),
        ] {
            Command::new("kill")
                .args(["-9", &p.to_string()])
                .status()
                .unwrap();
        }
    }
    wait_until(PATIENCE, "ps -a shows both exited", || {
        fe.ok(&["ps", "-a"]).matches("Exited (255)").count() == 2
    });
    fe.ok(&["start", "boot", "bootty"]);
    assert_eq!(fe.status("boot"), "running");
    // The terminal works again through a new socket.
    let mut a = Attached::new(&fe, &["attach", "bootty"]);
    a.send(b"exit 4\n");
    assert_eq!(a.end().0, 4);
    fe.ok(&["rm", "-f", "boot", "bootty"]);
    common::assert_no_cgroup(&tid);
    assert!(!fe.store().join("containers").join(&tid).exists());
    common::assert_no_cgroup(&id);
    assert!(!fe.store().join("run").join(&id).exists());
    assert!(!fe.store().join("containers").join(&id).exists());
}

#[test]
fn monitor_memory_stays_flat_and_logs_rotate() {
    require_root!();
    let fe = Fe::new("det-rss");
    let gate = fe.env.dir.join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let v = format!("{}:/gate", gate.display());
    // 400 000 lines of 40 bytes: about twice the rotation size once timestamped.
    let id = fe.run_d(
        &["--name", "chatty", "-v", &v],
        &[
            "sh",
            "-c",
            "while [ ! -e /gate/go ]; do sleep 0.05; done; yes 0123456789012345678901234567890123456789 | head -n 400000; echo done; exec sleep 1000",
        ],
    );
    let mon = fe.monitor_pid("chatty");
    let before = rss_anon_kib(mon);
    std::fs::write(gate.join("go"), "").unwrap();
    let log = fe.store().join("containers").join(&id).join("ctr.log");
    wait_until(PATIENCE, "the last line is logged", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.ends_with(" stdout F done\n"))
    });
    let after = rss_anon_kib(mon);
    // Its buffers (about 100 KiB) are touched for the first time; a leak of even one small
    // block per read would be megabytes here.
    assert!(
        after <= before + 256,
        "the monitor's anonymous memory grew from {before} KiB to {after} KiB copying 400 000 lines"
    );
    assert!(std::fs::metadata(&log).unwrap().len() <= 8 << 20);
    assert!(log.with_extension("log.1").exists(), "rotated");
    let tail = fe.ok(&["logs", "--tail", "2", "chatty"]);
    assert_eq!(tail, "0123456789012345678901234567890123456789\ndone\n");
}

#[test]
fn runc_verbs_keep_their_meaning_beside_front_end_containers() {
    require_root!();
    let fe = Fe::new("det-runc");
    fe.run_d(&["--name", "fe1"], &["sleep", "1000"]);
    let mut env = Env::new("det-runc-b");
    env.root = fe.env.root.clone();
    env.config["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    let rid = env.id("r");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", "--bundle", &b, &rid]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.husk(&["start", &rid]);
    let o = env.husk(&["ps", "--format", "json", &rid]);
    assert!(
        o.status.success() && stdout(&o).starts_with('['),
        "{}",
        stderr(&o)
    );
    // runc's `kill ID SIGNAL` and `list` see only the runc-mode container.
    assert!(env.husk(&["kill", &rid, "KILL"]).status.success());
    let list = stdout(&env.husk(&["list", "-q"]));
    assert_eq!(list.trim(), rid);
    wait_until(PATIENCE, "the runc-mode container stopped", || {
        stdout(&env.husk(&["state", &rid])).contains("\"stopped\"")
    });
    assert!(env.husk(&["delete", &rid]).status.success());
    // An unknown id keeps runc's error.
    let o = env.husk(&["kill", "nosuch", "KILL"]);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // docker's ps lists only the front end's.
    assert_eq!(fe.ok(&["ps", "--format", "{{.Names}}"]).trim(), "fe1");
}

/// `husk attach`-like verbs with piped stdio: what they print is collected as it comes, so the
/// test waits for output instead of sleeping.
struct Attached {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Attached {
    fn new(fe: &Fe, args: &[&str]) -> Attached {
        let mut child = fe
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut from, to) = (child.stdout.take().unwrap(), out.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut from, &mut buf) {
                if n == 0 {
                    break;
                }
                to.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Attached { child, out, reader }
    }

    fn send(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(self.child.stdin.as_mut().unwrap(), bytes).unwrap();
    }

    fn wait_for(&self, text: &str) {
        wait_until(PATIENCE, &format!("{text:?} is printed"), || {
            String::from_utf8_lossy(&self.out.lock().unwrap()).contains(text)
        });
    }

    /// Closes its stdin and waits: the exit code, stdout and stderr.
    fn end(mut self) -> (i32, String, String) {
        drop(self.child.stdin.take());
        let o = self.child.wait_with_output().unwrap();
        self.reader.join().unwrap();
        let out = String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned();
        (o.status.code().unwrap_or(-1), out, stderr(&o))
    }
}

#[test]
fn tty_attach_detach_keys_then_exit_code_and_start_ai() {
    require_root!();
    let fe = Fe::new("det-tty");
    // A shell without line editing (busybox ash's editor binds ctrl-p and asks the terminal for
    // its cursor position, which nothing answers here): lines as the terminal delivers them.
    let repl = "while read -r l; do eval \"$l\"; done";
    let id = fe.run_d(&["--name", "term", "-it"], &["sh", "-c", repl]);
    assert_eq!(fe.status("term"), "running");
    // Whoever can connect to the monitor types into the container: root's only.
    let sock = fe.store().join("containers").join(&id).join("attach.sock");
    wait_until(PATIENCE, "the monitor listens", || sock.exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The terminal is the container's: `tty` names its pty, input is echoed back.
    let mut a = Attached::new(&fe, &["attach", "term"]);
    a.send(b"tty; echo mark''ed\n");
    a.wait_for("/dev/pts/0");
    a.wait_for("marked");
    // ctrl-p ctrl-q: husk attach ends with docker's 1, the container goes on.
    a.send(b"\x10\x11");
    let (code, _, err) = a.end();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("read escape sequence"), "{err}");
    assert_eq!(fe.status("term"), "running");
    // ctrl-p then something else is passed on whole; the exit code comes back through attach.
    let mut a = Attached::new(&fe, &["attach", "term"]);
    a.send(b"echo rea''dy; od -c\n");
    a.wait_for("ready\r\n");
    a.send(b"a\x10b\n\x04");
    a.wait_for("a 020   b");
    a.send(b"exit 3\n");
    let (code, _, err) = a.end();
    assert_eq!(code, 3, "{err}");
    assert_eq!(fe.ok(&["wait", "term"]).trim(), "3");
    // The terminal's output is in the logs too.
    assert!(fe.ok(&["logs", "term"]).contains("marked"));
    // start -ai: the same terminal again, with the caller's input.
    let mut a = Attached::new(&fe, &["start", "-ai", "term"]);
    a.send(b"echo again''; exit 5\n");
    a.wait_for("again");
    assert_eq!(a.end().0, 5);
    // start -a without -i: output only; what the container wrote before the client connected
    // is not lost (the monitor replays it).
    fe.run_d(
        &["--name", "quick", "-t"],
        &["sh", "-c", "echo early-bird; exit 7"],
    );
    assert_eq!(fe.ok(&["wait", "quick"]).trim(), "7");
    let (code, out, err) = Attached::new(&fe, &["start", "-a", "quick"]).end();
    assert_eq!((code, out.as_str()), (7, "early-bird\r\n"), "{err}");
    fe.ok(&["rm", "term", "quick"]);
}

#[test]
fn d_i_keeps_stdin_open_for_attach() {
    require_root!();
    let fe = Fe::new("det-stdin");
    fe.run_d(
        &["--name", "reader", "-i"],
        &[
            "sh",
            "-c",
            "read x; echo got $x; read y; echo then $y; exit 4",
        ],
    );
    // The first attacher's input reaches the process; its EOF does not close the container's
    // stdin (docker's -d -i), and the detach keys leave it running.
    let mut a = Attached::new(&fe, &["attach", "reader"]);
    a.send(b"one\n");
    a.wait_for("got one");
    a.send(b"\x10\x11");
    let (code, _, err) = a.end();
    assert_eq!(code, 1, "{err}");
    assert_eq!(fe.status("reader"), "running");
    let mut a = Attached::new(&fe, &["attach", "reader"]);
    a.send(b"two\n");
    let (code, out, err) = a.end();
    assert_eq!((code, out.as_str()), (4, "then two\n"), "{err}");
    assert_eq!(fe.ok(&["logs", "reader"]), "got one\nthen two\n");
    // attach --no-stdin: output only, no input reaches it.
    fe.run_d(
        &["--name", "deaf", "-i"],
        &["sh", "-c", "read x; echo read $x"],
    );
    let mut a = Attached::new(&fe, &["attach", "--no-stdin", "deaf"]);
    a.send(b"ignored\n");
    fe.ok(&["kill", "deaf"]);
    let (code, out, _) = a.end();
    assert_eq!((code, out.as_str()), (137, ""));
}

/// `kill -s SIG PID` (the test's own child).
fn signal(pid: u32, sig: &str) {
    let o = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn foreground_detach_keys_and_sig_proxy() {
    require_root!();
    let fe = Fe::new("det-fgkeys");
    let r = common::rootfs();
    let r = r.to_str().unwrap();
    let run = |opts: &[&str], cmd: &str| -> Attached {
        let mut a = vec!["run"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["--rootfs", r, "sh", "-c", cmd]);
        Attached::new(&fe, &a)
    };
    let reader = "read x; echo got $x; read y; echo then $y; exit 4";
    // --detach-keys: the keys detach the foreground run (docker's run ends with 0), the
    // container goes on and is a -d container from then on.
    let mut a = run(&["-i", "--detach-keys", "ctrl-x,y", "--name", "dk"], reader);
    a.send(b"one\n");
    a.wait_for("got one");
    a.send(b"\x18y");
    let (code, out, err) = a.end();
    assert_eq!((code, out.as_str()), (0, "got one\n"), "{err}");
    assert!(err.contains("read escape sequence"), "{err}");
    assert_eq!(fe.status("dk"), "running");
    let mut a = Attached::new(&fe, &["attach", "dk"]);
    a.send(b"two\n");
    let (code, out, err) = a.end();
    assert_eq!((code, out.as_str()), (4, "then two\n"), "{err}");
    let rm_keys: &[&str] = &["-i", "--rm", "--detach-keys", "ctrl-p,ctrl-q"];
    // Without the keys typed it is an ordinary foreground run: output, exit code; --rm leaves
    // nothing once the code is read.
    let mut a = run(&[rm_keys, &["--name", "dkrm"]].concat(), reader);
    a.send(b"a\nb\n");
    let (code, out, err) = a.end();
    assert_eq!((code, out.as_str()), (4, "got a\nthen b\n"), "{err}");
    assert!(!fe.ok(&["ps", "-a"]).contains("dkrm"));
    // --rm and detached: removed at its exit by the monitor.
    let mut a = run(&[rm_keys, &["--name", "dkgone"]].concat(), reader);
    a.send(b"a\n");
    a.wait_for("got a");
    a.send(b"\x10\x11");
    assert_eq!(a.end().0, 0);
    let mut a = Attached::new(&fe, &["attach", "dkgone"]);
    a.send(b"b\n");
    a.wait_for("then b");
    // (its code goes with the record: as for `run -d --rm`, `attach` and `wait` cannot read it)
    a.end();
    wait_until(
        PATIENCE,
        "--rm removes the detached run at its exit",
        || !fe.ok(&["ps", "-a"]).contains("dkgone"),
    );
    // Refused rather than ignored: keys without -i (nothing reads them), either flag with -d.
    for (opts, says) in [
        (&["--detach-keys", "ctrl-p,ctrl-q"][..], "needs -i"),
        (
            &["-d", "-i", "--detach-keys", "ctrl-p,ctrl-q"][..],
            "husk attach --detach-keys",
        ),
        (&["-d", "--sig-proxy=false"][..], "for a foreground run"),
        (&["-i", "--detach-keys", "ctrl-1"][..], "ctrl-1"),
    ] {
        let (code, _, err) = run(opts, "true").end();
        assert_eq!(code, 125, "{opts:?}");
        assert!(err.contains(says), "{opts:?}: {err}");
    }
    assert!(!fe.ok(&["ps", "-a"]).contains("Created"));
    // sig-proxy (the default): a signal to husk reaches the container's process.
    let trap = "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.1; done";
    let a = run(
        &["-i", "--detach-keys", "ctrl-p,ctrl-q", "--name", "sp"],
        trap,
    );
    a.wait_for("ready");
    signal(a.child.id(), "TERM");
    let (code, out, err) = a.end();
    assert_eq!((code, out.as_str()), (9, "ready\ngot-term\n"), "{err}");
    // --sig-proxy=false: the signal ends husk alone; the container goes on (in its monitor).
    let a = run(&["--sig-proxy=false", "--name", "nsp"], trap);
    a.wait_for("ready");
    signal(a.child.id(), "TERM");
    let (code, _, err) = a.end();
    assert_eq!(code, -1, "husk ends by the signal: {err}");
    assert_eq!(fe.status("nsp"), "running");
    fe.ok(&["stop", "nsp"]);
    assert_eq!(fe.inspect("nsp")["State"]["ExitCode"], 9);
    // The caller's EOF reaches the container through the monitor, as docker's StdinOnce for a
    // foreground run -i (an `attach` later would find nothing more to read anyway).
    let mut a = run(
        &["-i", "--sig-proxy=false", "--name", "eof"],
        "cat; echo done",
    );
    a.send(b"hello\n");
    a.wait_for("hello");
    drop(a.child.stdin.take());
    wait_until(PATIENCE, "the container reads the caller's EOF", || {
        a.child.try_wait().unwrap().is_some()
    });
    let (code, out, err) = a.end();
    assert_eq!((code, out.as_str()), (0, "hello\ndone\n"), "{err}");
    fe.ok(&["rm", "dk", "sp", "nsp", "eof"]);
}

#[test]
fn logs_of_named_foreground_runs() {
    require_root!();
    let fe = Fe::new("det-fg");
    let r = common::rootfs();
    let r = r.to_str().unwrap();
    // The output still reaches the caller, and is kept.
    let sh = "echo out; echo err >&2; exit 3";
    let o = fe
        .env
        .husk(&["run", "--name", "fg", "--rootfs", r, "sh", "-c", sh]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    let o = fe.env.husk(&["logs", "fg"]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    let ps = fe.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("fg Exited (3) "), "{ps}");
    assert_eq!(fe.inspect("fg")["State"]["ExitCode"], 3);
    // The next run of the name replaces the record.
    let o = fe
        .env
        .husk(&["run", "--name", "fg", "--rootfs", r, "echo", "again"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fe.ok(&["logs", "fg"]), "again\n");
    // While it runs: `logs -f` follows, `ps` shows it up, `stop` reaches it in the runc root
    // its run uses (TERM ignored by this pid 1, then KILL).
    let mut child = fe
        .cmd(&["run", "--name", "fgl", "--rootfs", r])
        .args(["sh", "-c", "echo ready; exec sleep 1000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(PATIENCE, "the foreground run's output is logged", || {
        stdout(&fe.env.husk(&["logs", "fgl"])) == "ready\n"
    });
    assert_eq!(fe.status("fgl"), "running");
    fe.ok(&["stop", "-t", "1", "fgl"]);
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert_eq!(fe.inspect("fgl")["State"]["ExitCode"], 137);
    // A run whose husk was killed leaves a record that reads exited; the name is free again.
    let run_then_kill_husk = || {
        let mut child = fe
            .cmd(&["run", "--name", "fgk", "--rootfs", r, "sleep", "1000"])
            .spawn()
            .unwrap();
        wait_until(PATIENCE, "the killed run's container runs", || {
            fe.env.husk(&["inspect", "fgk"]).status.success() && fe.status("fgk") == "running"
        });
        child.kill().unwrap();
        let _ = child.wait();
    };
    run_then_kill_husk();
    assert_eq!(fe.status("fgk"), "exited");
    // rm -f of it removes what the killed run left in the runtime's root too (its state dir,
    // named after the container, as a foreground run's is).
    assert!(fe.env.root.join("fgk").exists());
    fe.ok(&["rm", "-f", "fgk"]);
    assert!(
        !fe.env.root.join("fgk").exists(),
        "the killed run's state dir"
    );
    run_then_kill_husk();
    let o = fe
        .env
        .husk(&["run", "--name", "fgk", "--rootfs", r, "echo", "back"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fe.ok(&["logs", "fgk"]), "back\n");
    // A name a detached container holds is refused; --rm keeps nothing.
    fe.run_d(&["--name", "held"], &["sleep", "1000"]);
    let o = fe
        .env
        .husk(&["run", "--name", "held", "--rootfs", r, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let o = fe
        .env
        .husk(&["run", "--rm", "--name", "gone", "--rootfs", r, "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!fe.ok(&["ps", "-a"]).contains("gone"));
    fe.ok(&["rm", "-f", "fg", "fgl", "fgk", "held"]);
}

/// `husk ARGS` with a new pty as its terminal (common::in_a_pty).
fn in_a_pty(fe: &Fe, args: &str) -> std::process::Output {
    let h = common::HUSK;
    common::in_a_pty(&format!("{h} --root {} {args}", fe.env.root.display()))
}

#[test]
fn logs_of_named_foreground_runs_with_a_terminal() {
    require_root!();
    require!(
        common::has_script(),
        "no script(1) (util-linux) to provide a pty"
    );
    let fe = Fe::new("det-fgtty");
    let r = common::rootfs();
    let r = r.to_str().unwrap();
    // -t and -it: the terminal shows the output as before, and the log keeps it as stdout
    // (the pty's line ends, as docker keeps them).
    for (flags, name) in [("-t", "tt"), ("-it", "tit")] {
        let o = in_a_pty(
            &fe,
            &format!("run {flags} --name {name} --rootfs {r} sh -c 'tty; echo on-{name}; exit 6'"),
        );
        assert_eq!(o.status.code(), Some(6), "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains(&format!("on-{name}")), "{}", stdout(&o));
        // With -i the pty also echoes (as ^@) the NUL script(1) types at its stdin's EOF,
        // wherever it falls.
        let l = fe.env.husk(&["logs", name]);
        let want = format!("/dev/pts/0\r\non-{name}\r\n");
        let logged = stdout(&l);
        let exact = flags == "-t" && logged == want;
        assert!(
            (exact || flags == "-it" && logged.replace("^@", "") == want) && stderr(&l).is_empty(),
            "{flags}: {:?} {:?}",
            stdout(&l),
            stderr(&l)
        );
        let ps = fe.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        assert!(ps.contains(&format!("{name} Exited (6) ")), "{ps}");
    }
    fe.ok(&["rm", "tt", "tit"]);
}

#[test]
fn the_small_monitor_binary_and_without_it_husk_itself() {
    require_root!();
    let fe = Fe::new("det-nosmall");
    // Beside husk (as cargo builds them), the small binary is the watcher.
    fe.run_d(&["--name", "paired"], &["sleep", "1000"]);
    let exe = std::fs::read_link(format!("/proc/{}/exe", fe.monitor_pid("paired"))).unwrap();
    assert_eq!(
        exe,
        std::path::Path::new(common::HUSK).with_file_name("husk-monitor")
    );
    fe.ok(&["rm", "-f", "paired"]);
    // husk alone, as someone who copied only the one binary would have it.
    let alone = fe.env.dir.join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let husk = alone.join("husk");
    std::fs::copy(common::HUSK, &husk).unwrap();
    let r = common::rootfs();
    let o = Command::new(&husk)
        .arg("--root")
        .arg(&fe.env.root)
        .args([
            "run",
            "-d",
            "--name",
            "solo",
            "--rootfs",
            r.to_str().unwrap(),
        ])
        .args(["sh", "-c", "echo from-solo; exec sleep 1000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mon = fe.monitor_pid("solo");
    let exe = std::fs::read_link(format!("/proc/{mon}/exe")).unwrap();
    assert_eq!(exe, husk, "the watcher is husk itself");
    wait_until(PATIENCE, "the output is logged", || {
        stdout(&fe.env.husk(&["logs", "solo"])) == "from-solo\n"
    });
    fe.ok(&["stop", "-t", "0", "solo"]);
    assert_eq!(fe.inspect("solo")["State"]["ExitCode"], 137);
    fe.ok(&["rm", "solo"]);
}

/// Whether process `pid` has `path` open: `logs` opens the copy lock (the container's
/// config.json) only to wait for the monitor on it.
fn has_open(pid: u32, path: &std::path::Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == path))
}

/// Found as an empty `logs` after a finished `run -d sh -c 'echo out'` under load: the
/// container's process can end before its monitor has copied its output (the monitor may be
/// between its launch and its loop, or descheduled), and `logs` read the log as it was. Held
/// here by stopping the monitor before the container writes: `logs` of the ended process must
/// wait for the monitor (the copy lock) and show the line, not return without it.
#[test]
fn logs_of_an_ended_process_wait_for_its_monitor_to_copy() {
    require_root!();
    let fe = Fe::new("det-copied");
    let gate = fe.env.dir.join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let fifo = gate.join("fifo");
    let o = Command::new("mkfifo").arg(&fifo).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = format!("{}:/gate", gate.display());
    fe.run_d(
        &["--name", "copied", "-v", &v],
        &["sh", "-c", "read x < /gate/fifo; echo out"],
    );
    let mon = fe.monitor_pid("copied") as u32;
    let pid = fe.inspect("copied")["State"]["Pid"]
        .as_i64()
        .unwrap()
        .to_string();
    // Continued however the test ends, so the cleanup's `rm -f` is not left waiting on it.
    struct Stopped(u32);
    impl Drop for Stopped {
        fn drop(&mut self) {
            signal(self.0, "CONT");
        }
    }
    signal(mon, "STOP");
    let stopped = Stopped(mon);
    // Opening blocks until the container has it open for reading.
    std::fs::write(&fifo, b"go\n").unwrap();
    wait_until(PATIENCE, "the container's process ends", || {
        !common::alive(&pid)
    });
    let mut logs = fe
        .cmd(&["logs", "copied"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = fe
        .store()
        .join("containers")
        .join(fe.inspect("copied")["Id"].as_str().unwrap())
        .join("config.json");
    wait_until(PATIENCE, "logs waits for the monitor or ends", || {
        has_open(logs.id(), &lock) || logs.try_wait().unwrap().is_some()
    });
    let early = logs.try_wait().unwrap();
    drop(stopped);
    let o = logs.wait_with_output().unwrap();
    assert!(
        early.is_none(),
        "logs ended before the monitor copied the output: {:?}",
        stdout(&o)
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(fe.ok(&["wait", "copied"]).trim(), "0");
    fe.ok(&["rm", "copied"]);
}

/// `run --rm` in the foreground (husk its record's monitor, and through a monitor with
/// `--sig-proxy=false`) while `rm -f` removes it: `rm -f` succeeds (it found the record gone
/// where it waited for the exit to be recorded, and failed on state.json), the run ends with the
/// kill, and nothing of either is left in the store, not even a directory the removal raced a
/// writer for.
#[test]
fn rm_f_during_a_run_rm_leaves_nothing() {
    require_root!();
    let fe = Fe::new("det-rmrace");
    let r = common::rootfs();
    for (name, opt) in [("fgrm", None), ("monrm", Some("--sig-proxy=false"))] {
        let mut run = fe.cmd(&["run", "--rm", "--name", name]);
        run.args(opt).arg("--rootfs").arg(&r);
        let mut child = run
            .args(["sh", "-c", "echo started; exec sleep 1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "started\n", "{name}");
        let o = fe.env.husk(&["rm", "-f", name]);
        assert!(o.status.success(), "{name}: rm -f: {}", stderr(&o));
        let o = child.wait_with_output().unwrap();
        assert_ne!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        for d in ["containers", "names"] {
            let left: Vec<_> = std::fs::read_dir(fe.store().join(d))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(left.is_empty(), "{name}: left in {d}: {left:?}");
        }
        assert_eq!(fe.ok(&["ps", "-aq"]), "", "{name}");
    }
}

/// `logs` of a process that has ended while its copier still holds the copy lock: with
/// `--pid host` a background writer outlives the container's process and keeps the monitor
/// draining its pipe (so holding the lock) for as long as it writes. `logs` waits a bounded
/// while, then prints what the log has, rather than block until the writer stops.
#[test]
fn logs_of_an_ended_process_do_not_wait_on_a_surviving_writer() {
    require_root!();
    let fe = Fe::new("det-survivor");
    let gate = fe.env.dir.join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    // Stops the writer however the test ends (it also ends by itself, after minutes).
    struct Open(PathBuf);
    impl Drop for Open {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, b"");
        }
    }
    let _open = Open(gate.join("stop"));
    let v = format!("{}:/gate", gate.display());
    // A line every 10 ms with no process started between them (`read -t` on a FIFO nobody
    // writes is the shell's own sleep): the monitor drains until nothing came for 200 ms, and
    // an external `sleep` per line could take that long to start in the TCG-emulated v2 guest.
    let writer = "mkfifo /gate/tick; exec 9<>/gate/tick; i=0; \
                  while [ ! -e /gate/stop ] && [ $i -lt 20000 ]; do \
                  echo y; read -t 0.01 -u 9 _; i=$((i+1)); done";
    fe.run_d(
        &["--name", "survivor", "--pid", "host", "-v", &v],
        &["sh", "-c", &format!("echo x; ({writer}) &")],
    );
    let pid = fe.inspect("survivor")["State"]["Pid"]
        .as_i64()
        .unwrap()
        .to_string();
    wait_until(PATIENCE, "the container's process ends", || {
        !common::alive(&pid)
    });
    // The record says running until the writer stops: the monitor is still copying.
    assert_eq!(fe.status("survivor"), "running");
    let mut logs = fe
        .cmd(&["logs", "survivor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(PATIENCE, "logs returns while the writer writes", || {
        logs.try_wait().unwrap().is_some()
    });
    let o = logs.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("x\n"), "{}", stdout(&o));
    assert_eq!(fe.status("survivor"), "running", "the writer still writes");
}
