//! Pseudo-terminals: unlocking a master, opening its peer by fd, window sizes, raw mode.

use crate::cvt_i;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Unlocks the peer of a freshly opened ptmx (unlockpt(3)).
pub fn unlock(master: BorrowedFd<'_>) -> io::Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which lives across the call.
    cvt_i(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero) }).map(drop)
}

/// Opens the peer of `master` through the master itself (TIOCGPTPEER), never by a path under
/// /dev/pts that something else could have replaced. O_NOCTTY: the caller decides when it
/// becomes a controlling terminal.
pub fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as its integer argument and returns a new fd.
    let fd = cvt_i(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer, valid across the call.
    cvt_i(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// (rows, cols) of a terminal; an error if `fd` is not one.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: winsize is plain data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer.
    cvt_i(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only queries the fd.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Saved terminal attributes, to restore after raw mode.
pub struct Termios(libc::termios);

/// Puts a terminal in raw mode (cfmakeraw) and returns what to restore.
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is writable.
    cvt_i(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    let saved = Termios(t);
    // SAFETY: cfmakeraw only edits the struct.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: `t` is a valid termios.
    cvt_i(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) })?;
    Ok(saved)
}

/// Turns off output processing only (OPOST: no `\n` → `\r\n`), leaving input and signals as
/// they are; returns the settings to restore.
pub fn no_output_processing(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is writable.
    cvt_i(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    let saved = Termios(t);
    t.c_oflag &= !libc::OPOST;
    // SAFETY: `t` is a valid termios.
    cvt_i(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) })?;
    Ok(saved)
}

pub fn restore(fd: BorrowedFd<'_>, saved: &Termios) -> io::Result<()> {
    // SAFETY: a termios obtained from tcgetattr.
    cvt_i(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &saved.0) }).map(drop)
}
