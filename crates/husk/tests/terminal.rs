//! process.terminal with --console-socket: the pty master arrives over the socket, the process
//! has the pty as its controlling terminal and stdio, consoleSize is applied; for create/start
//! and for exec.

mod common;
use common::*;
use serde_json::json;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Accepts one connection on `sock` in a thread and returns the fd it carries.
fn receive_master(sock: &Path) -> std::thread::JoinHandle<OwnedFd> {
    let listener = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let (_, fd) = husk_sys::sock::recv_fd(conn.as_fd(), &mut buf).unwrap();
        fd.expect("no fd with the console message")
    })
}

/// Reads from the master until `want` shows up (or PATIENCE runs out); returns what was read.
fn read_until(master: &OwnedFd, want: &str) -> String {
    let mut out = Vec::new();
    let end = Instant::now() + PATIENCE;
    while Instant::now() < end && !String::from_utf8_lossy(&out).contains(want) {
        let ready = husk_sys::sock::poll_in(&[master.as_fd()], 200).unwrap();
        if ready[0] == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match husk_sys::fs::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_all(master: &OwnedFd, s: &str) {
    let f = std::fs::File::from(master.try_clone().unwrap());
    std::io::Write::write_all(&mut &f, s.as_bytes()).unwrap();
}

#[test]
fn create_sends_the_pty_master() {
    require_root!();
    let mut env = Env::new("t-create");
    env.args(&["/bin/sh"]);
    env.config["process"]["terminal"] = json!(true);
    env.config["process"]["consoleSize"] = json!({"height": 33, "width": 99});
    let id = env.id("tc");
    let sock = env.dir.join("console.sock");
    let got = receive_master(&sock);
    let b = env.bundle.to_string_lossy().into_owned();
    let s = sock.to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, "--console-socket", &s, &id]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let master = got.join().unwrap();
    assert!(env.husk(&["start", &id]).status.success());
    write_all(
        &master,
        "stty size; tty; readlink /proc/self/fd/0; echo sid=$(cut -d' ' -f6 /proc/self/stat) end-$((6*7))\n",
    );
    let out = read_until(&master, "end-42");
    assert!(out.contains("33 99"), "consoleSize not applied: {out}");
    assert!(out.contains("/dev/pts/0"), "not the container's pts: {out}");
    assert!(out.contains("end-42"), "{out}");
    write_all(&master, "exit 5\n");
    wait_until(PATIENCE, "the shell has exited", || {
        let st: serde_json::Value =
            serde_json::from_slice(&env.husk(&["state", &id]).stdout).unwrap();
        st["status"] == "stopped"
    });
    assert!(env.husk(&["delete", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn terminal_without_a_socket_is_a_clear_error() {
    require_root!();
    let mut env = Env::new("t-nosock");
    env.config["process"]["terminal"] = json!(true);
    let id = env.id("ns");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--console-socket"), "{}", stderr(&o));
    assert_no_state(&env, &id);
    let s = env.dir.join("nobody.sock").to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, "--console-socket", &s, &id]);
    assert!(
        stderr(&o).contains("connect console socket") && stderr(&o).contains("ENOENT"),
        "{}",
        stderr(&o)
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn exec_tty_gets_its_own_pty() {
    require_root!();
    let mut env = Env::new("t-exec");
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("te");
    let b = env.bundle.to_string_lossy().into_owned();
    assert!(env.husk(&["run", "-d", "-b", &b, &id]).status.success());
    let sock = env.dir.join("exec.sock");
    let got = receive_master(&sock);
    let s = sock.to_string_lossy().into_owned();
    let mut child = Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["exec", "-t", "--console-socket", &s, &id, "/bin/sh"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.join("exec.err")).unwrap())
        .spawn()
        .unwrap();
    let master = got.join().unwrap();
    write_all(
        &master,
        "tty; echo pid1=$(cat /proc/1/cmdline) end-$((6*7))\n",
    );
    let out = read_until(&master, "end-42");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(
        out.contains("pid1=/bin/sleep"),
        "not in the container: {out}"
    );
    write_all(&master, "exit 6\n");
    let code = wait_code(&mut child);
    assert_eq!(
        code,
        Some(6),
        "{}",
        std::fs::read_to_string(env.dir.join("exec.err")).unwrap_or_default()
    );
    // Without a socket, a foreground exec gets a pty that husk copies through itself...
    let o = env.husk(&["exec", "-t", &id, "/bin/sh", "-c", "tty; exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).contains("/dev/pts/"), "{}", stdout(&o));
    // ...but a detached one would leave nobody holding the terminal.
    let o = env.husk(&["exec", "-t", "-d", &id, "/bin/true"]);
    assert!(stderr(&o).contains("--console-socket"), "{}", stderr(&o));
}
