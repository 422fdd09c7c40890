//! `husk exec`: runc's flags for a new process in a running container.

use clap::Args;
use husk_runtime::exec::ExecOpts;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone, Default)]
pub struct ExecArgs {
    /// A runtime-spec process JSON to run (the flags that shape the process are then ignored)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Give the process a pty (sent to --console-socket)
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket to send the pty master to
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process: print nothing, exit once it was executed
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process' pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Add or replace an environment variable (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// UID[:GID] to run as (numbers)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Supplementary group ids (repeat the flag or separate with commas)
    #[arg(short = 'g', long = "additional-gids", value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets (never inheritable)
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass this many extra fds (from 3 on) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even into a paused container (the process stays frozen until resume)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// AppArmor profile for the process (default: the container's)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (default: the container's)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl ExecArgs {
    pub fn opts(&self, root: &Path) -> ExecOpts {
        ExecOpts {
            root: root.to_path_buf(),
            id: self.id.clone(),
            process: self.process.clone(),
            args: self.command.clone(),
            tty: self.tty,
            console_socket: self.console_socket.clone(),
            detach: self.detach,
            pid_file: self.pid_file.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            additional_gids: self.additional_gids.clone(),
            caps: self
                .cap
                .iter()
                .map(|c| {
                    let c = c.to_ascii_uppercase();
                    if c.starts_with("CAP_") {
                        c
                    } else {
                        format!("CAP_{c}")
                    }
                })
                .collect(),
            no_new_privs: self.no_new_privs,
            preserve_fds: self.preserve_fds,
            ignore_paused: self.ignore_paused,
            apparmor: self.apparmor.clone(),
            process_label: self.process_label.clone(),
        }
    }
}
