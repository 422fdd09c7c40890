//! `husk run --init`: a tiny pid 1. husk's own binary, copied to /dev/init on the container's
//! own /dev tmpfs (`Rootfs::install_init`: a copy, never a bind of the host's binary), runs the
//! command as its child, forwards signals to it, reaps every orphan, and exits with the
//! command's status.

use husk_sys::process::{self as sp, Exit};
use std::os::fd::AsFd;

pub const PATH: &str = "/dev/init";

/// The command's path: as given when it has a `/`, else the first match in $PATH.
fn lookup(prog: &str) -> Option<std::path::PathBuf> {
    if prog.contains('/') {
        return Some(prog.into());
    }
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .map(|d| std::path::Path::new(d).join(prog))
        .find(|p| p.is_file())
}

pub fn main(args: &[String]) -> i32 {
    let cmd = match args.iter().position(|a| a == "--") {
        Some(i) => &args[i + 1..],
        None => &args[1..],
    };
    let Some(prog) = cmd.first() else {
        eprintln!("husk-init: no command");
        return 127;
    };
    // Signals are taken through a signalfd; the command gets an empty mask before its exec.
    let all = sp::SigSet::forwardable();
    sp::install_noop_handlers();
    // Already blocked by husk's init across the execve (see init.rs); blocking again is a no-op.
    if sp::block_signals(&all).is_err() {
        return 125;
    }
    let Ok(sigfd) = sp::signalfd(&all) else {
        return 125;
    };
    let Some(path) = lookup(prog) else {
        eprintln!("husk-init: {prog}: not found");
        return 127;
    };
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    // fork, not clone3: the default seccomp profile answers clone3 with ENOSYS, as docker's does.
    // husk-init starts no thread; a root without /proc cannot show it, so that is trusted.
    let one = match sp::SingleThreaded::check() {
        Ok(Some(one)) => one,
        Ok(None) => {
            eprintln!("husk-init: more than one thread at fork");
            return 125;
        }
        Err(_) => sp::SingleThreaded::trusted_after_exec(),
    };
    let pid = match sp::fork(&one) {
        Ok(None) => {
            // Default dispositions first: a signal forwarded between fork and execve must not
            // land in the reaper's no-op handler this copy still has. Then no signal blocked,
            // as after a plain exec.
            sp::reset_signal_dispositions();
            let _ = sp::set_signal_mask(&sp::SigSet::empty());
            let err = sp::execve(&path, cmd, &env);
            eprintln!("husk-init: {prog}: {}", husk_runtime::errno_text(&err));
            sp::exit_now(if err.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
        Ok(Some(pid)) => pid,
        Err(e) => {
            eprintln!("husk-init: fork: {}", husk_runtime::errno_text(&e));
            return 125;
        }
    };
    loop {
        while let Some((reaped, exit)) = sp::reap_any() {
            if reaped == pid {
                // Orphans still running die with the namespace when pid 1 exits.
                return match exit {
                    Exit::Code(c) => c,
                    Exit::Signal(s) => 128 + s,
                };
            }
        }
        let Ok(sig) = sp::read_signalfd(sigfd.as_fd()) else {
            return 125;
        };
        if sig != libc::SIGCHLD {
            let _ = sp::kill(pid, sig);
        }
    }
}
