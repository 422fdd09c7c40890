//! A foreground container with a terminal and no console socket: husk receives the pty master
//! from init and copies between it and its own stdio, with the caller's terminal in raw mode
//! and window-size changes passed on (what runc does for `run -t` without a socket).

use crate::Error;
use husk_sys::process::{self as sp, Exit};
use husk_sys::{fs as sfs, tty};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

fn copy_once(
    from: BorrowedFd<'_>,
    to: &mut dyn Write,
    tee: &mut dyn FnMut(&[u8]),
) -> std::io::Result<usize> {
    let mut buf = [0u8; 8192];
    let n = sfs::read(from, &mut buf)?;
    if n > 0 {
        tee(&buf[..n]);
        to.write_all(&buf[..n])?;
        to.flush()?;
    }
    Ok(n)
}

/// Init sent the master before `Ready`, so it is already queued on the socket.
pub(crate) fn receive_master(sock: BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd, Error> {
    let mut tag = [0u8; 64];
    let (_, master) = husk_sys::sock::recv_fd(sock, &mut tag)
        .map_err(Error::io("receive pty master", "console"))?;
    master.ok_or_else(|| Error::Msg("console: init sent no pty master".into()))
}

/// `tee` sees every byte of the container's screen as it is copied to husk's stdout (a named
/// run's log keeps them).
pub(crate) fn wait_with_terminal(
    pidfd: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
    tee: &mut dyn FnMut(&[u8]),
) -> Result<Exit, Error> {
    let master = receive_master(sock)?;
    let stdin = std::io::stdin();
    let stdin_fd = stdin.as_fd();
    let stdout = std::io::stdout();
    // The caller's terminal: stdin's, or with stdin not one (`-t` without `-i` reads /dev/null)
    // stdout's, for the window size and so that the pty's `\r\n` is not made `\r\r\n` by a
    // second output processing there (raw mode only with input: without it ^C stays a signal).
    let (term, saved) = if tty::is_tty(stdin_fd) {
        (Some(stdin_fd), tty::make_raw(stdin_fd).ok())
    } else if tty::is_tty(stdout.as_fd()) {
        let fd = stdout.as_fd();
        (Some(fd), tty::no_output_processing(fd).ok())
    } else {
        (None, None)
    };
    if let Some(Ok((rows, cols))) = term.map(tty::get_winsize) {
        let _ = tty::set_winsize(master.as_fd(), rows, cols);
    }
    let result = copy_loop(pidfd, master.as_fd(), stdin_fd, term, tee);
    if let (Some(fd), Some(t)) = (term, &saved) {
        let _ = tty::restore(fd, t);
    }
    result
}

fn copy_loop(
    pidfd: BorrowedFd<'_>,
    master: BorrowedFd<'_>,
    stdin: BorrowedFd<'_>,
    term: Option<BorrowedFd<'_>>,
    tee: &mut dyn FnMut(&[u8]),
) -> Result<Exit, Error> {
    let sigfd =
        sp::signalfd(&sp::SigSet::forwardable()).map_err(Error::io("signalfd", "terminal"))?;
    // Input goes to the master through a second handle on the same open file.
    let mut to_master = std::fs::File::from(
        master
            .try_clone_to_owned()
            .map_err(Error::io("dup", "pty master"))?,
    );
    let mut stdout = std::io::stdout();
    let (mut stdin_open, mut master_open) = (true, true);
    loop {
        // Fixed slots: 0 pidfd, 1 signals, 2 master, 3 stdin (closed ones are polled as pidfd
        // again, which only repeats slot 0's answer).
        let fds = [
            pidfd,
            sigfd.as_fd(),
            if master_open { master } else { pidfd },
            if stdin_open { stdin } else { pidfd },
        ];
        let ready = husk_sys::sock::poll_in(&fds, -1).map_err(Error::io("poll", "terminal"))?;
        if ready[1] != 0 {
            match sp::read_signalfd(sigfd.as_fd()).map_err(Error::io("read", "signalfd"))? {
                libc::SIGWINCH => {
                    if let Some(Ok((rows, cols))) = term.map(tty::get_winsize) {
                        let _ = tty::set_winsize(master, rows, cols);
                    }
                }
                libc::SIGCHLD => {}
                sig => {
                    let _ = sp::pidfd_send_signal(pidfd, sig);
                }
            }
        }
        if master_open && ready[2] != 0 {
            // 0 or EIO: every holder of the peer has closed it.
            master_open = matches!(copy_once(master, &mut stdout, tee), Ok(n) if n > 0);
        }
        if stdin_open && ready[3] != 0 {
            stdin_open = matches!(copy_once(stdin, &mut to_master, &mut |_| {}), Ok(n) if n > 0);
        }
        if ready[0] != 0 {
            // Drain what the process wrote before it exited.
            while master_open && husk_sys::sock::poll_in(&[master], 0).is_ok_and(|r| r[0] != 0) {
                master_open = matches!(copy_once(master, &mut stdout, tee), Ok(n) if n > 0);
            }
            let exit = sp::waitid_pidfd(pidfd, false).map_err(Error::io("wait", "init"))?;
            return Ok(exit.unwrap_or(Exit::Code(255)));
        }
    }
}
