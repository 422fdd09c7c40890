//! `husk run`: runc's `run ID` when a runc-only flag is given, else the daemonless front end.

use husk_runtime::Error;
use husk_runtime::launch::{self, CreateOpts, Mode};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    // --- runc's `run` ---
    /// Bundle directory (runc mode)
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// Write init's pid to this file (runc mode)
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (runc mode)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the container runs (runc mode)
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (runc mode)
    #[arg(long)]
    pub keep: bool,
    /// Pass this many extra fds (from 3 on) to the container (runc mode)
    #[arg(long = "preserve-fds")]
    pub preserve_fds: Option<u32>,
    /// MS_MOVE + chroot instead of pivot_root (runc mode)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a session keyring (runc mode)
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Container id (runc mode), or the command (front end)
    pub args: Vec<String>,
}

impl RunArgs {
    /// Any runc-only flag selects runc's `run ID`.
    pub fn is_oci(&self) -> bool {
        self.bundle.is_some()
            || self.pid_file.is_some()
            || self.console_socket.is_some()
            || self.detach
            || self.keep
            || self.preserve_fds.is_some()
            || self.no_pivot
            || self.no_new_keyring
    }
}

/// Exit code of the front end for husk's own errors (docker's convention).
pub fn error_code(_e: &Error) -> i32 {
    125
}

pub fn run(root: &Path, a: RunArgs) -> Result<i32, Error> {
    if !a.is_oci() {
        return Err(Error::Msg("the front end needs a runc-style flag for now: husk run -b BUNDLE ID".into()));
    }
    let [id] = a.args.as_slice() else {
        return Err(Error::Msg("runc mode: husk run [-b BUNDLE] ID takes exactly one container id".into()));
    };
    let opts = CreateOpts {
        root: root.to_path_buf(),
        id: id.clone(),
        bundle: a.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds.unwrap_or(0),
    };
    let mut c = launch::launch(&opts, Mode::Run)?;
    if let Err(e) = c.start() {
        // A failed poststart fails the run; the container is torn down with the state.
        let _ = c.wait_after_kill();
        return Err(e);
    }
    if a.detach {
        c.detach();
        return Ok(0);
    }
    c.wait(a.keep)
}
