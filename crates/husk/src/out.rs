//! husk's stdout (and docker's y/N prompt, `confirm`). A reader that goes away (`husk list |
//! head -1`) ends husk quietly with 128 + SIGPIPE, as SIGPIPE ends runc and coreutils there. Rust ignores SIGPIPE, so the write
//! gets EPIPE, which `println!` turns into a panic; SIGPIPE's default action is no option,
//! since it would also kill husk when a hook leaves its stdin unread.

use husk_runtime::Error;
use std::io::{self, Write};

/// The exit status of a process that SIGPIPE ended, as shells report it.
pub const BROKEN_PIPE: i32 = 128 + libc::SIGPIPE;

fn quiet(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE);
    }
    e
}

/// Standard output, ending husk quietly when its reader is gone.
pub struct Stdout(io::Stdout);

pub fn stdout() -> Stdout {
    Stdout(io::stdout())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(quiet)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(quiet)
    }
}

/// `text` and a newline on stdout.
pub fn line(text: impl std::fmt::Display) -> Result<(), Error> {
    let mut out = stdout();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .map_err(Error::io("write", "stdout"))
}

/// docker's prompt before a prune without -f (containers' and images'): only "y" or "yes" goes
/// on.
pub fn confirm(what: &str) -> bool {
    eprint!("WARNING! {what}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
