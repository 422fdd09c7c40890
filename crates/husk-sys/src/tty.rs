//! Pseudo-terminals: unlocking a master, opening its peer by fd, window sizes, raw mode.

use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, OutputModes, Winsize};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Unlocks the peer of a freshly opened ptmx (unlockpt(3)).
pub fn unlock(master: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::pty::unlockpt(master)?)
}

/// Opens the peer of `master` through the master itself (TIOCGPTPEER), never by a path under
/// /dev/pts that something else could have replaced. O_NOCTTY: the caller decides when it
/// becomes a controlling terminal.
pub fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    Ok(rustix::pty::ioctl_tiocgptpeer(master, flags)?)
}

pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, ws)?)
}

/// (rows, cols) of a terminal; an error if `fd` is not one.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(fd)?;
    Ok((ws.ws_row, ws.ws_col))
}

pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    rustix::termios::isatty(fd)
}

/// Saved terminal attributes, to restore after raw mode.
pub struct Termios(rustix::termios::Termios);

/// Puts a terminal in raw mode (cfmakeraw) and returns what to restore.
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    let mut t = rustix::termios::tcgetattr(fd)?;
    let saved = Termios(t.clone());
    t.make_raw();
    rustix::termios::tcsetattr(fd, OptionalActions::Now, &t)?;
    Ok(saved)
}

/// Turns off output processing only (OPOST: no `\n` → `\r\n`), leaving input and signals as
/// they are; returns the settings to restore.
pub fn no_output_processing(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    let mut t = rustix::termios::tcgetattr(fd)?;
    let saved = Termios(t.clone());
    t.output_modes.remove(OutputModes::OPOST);
    rustix::termios::tcsetattr(fd, OptionalActions::Now, &t)?;
    Ok(saved)
}

pub fn restore(fd: BorrowedFd<'_>, saved: &Termios) -> io::Result<()> {
    Ok(rustix::termios::tcsetattr(
        fd,
        OptionalActions::Now,
        &saved.0,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;

    /// A pty pair opened the way husk does (peer by TIOCGPTPEER), its window size set and read
    /// back, and raw mode undone by restore.
    #[test]
    fn pty_peer_winsize_and_raw_mode() {
        let master = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/ptmx")
            .unwrap();
        unlock(master.as_fd()).unwrap();
        let peer = open_peer(master.as_fd()).unwrap();
        assert!(is_tty(peer.as_fd()));
        set_winsize(master.as_fd(), 33, 101).unwrap();
        assert_eq!(get_winsize(peer.as_fd()).unwrap(), (33, 101));
        let cooked = rustix::termios::tcgetattr(&peer).unwrap();
        let saved = make_raw(peer.as_fd()).unwrap();
        let raw = rustix::termios::tcgetattr(&peer).unwrap();
        assert!(
            !raw.local_modes
                .contains(rustix::termios::LocalModes::ICANON)
        );
        assert!(!raw.output_modes.contains(OutputModes::OPOST));
        restore(peer.as_fd(), &saved).unwrap();
        let back = rustix::termios::tcgetattr(&peer).unwrap();
        assert_eq!(
            (back.local_modes, back.output_modes, back.input_modes),
            (cooked.local_modes, cooked.output_modes, cooked.input_modes)
        );
    }
}
