//! `husk run`'s front end: docker's options (`RunArgs`) and the OCI spec and plan they build,
//! in memory (`build`). The binary decides between runc's `run` and this, and launches.
#![forbid(unsafe_code)]

pub mod build;
mod seccomp_default;
pub mod size;
mod user;

use std::path::PathBuf;

pub use build::{Host, build, generated_id};

#[derive(clap::Args, Debug, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    // --- runc's `run` (any of these selects it) ---
    /// runc mode: bundle directory
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// runc mode: write init's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// runc mode: unix socket to send the pty master to
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// runc mode: return once the container runs
    #[arg(short, long)]
    pub detach: bool,
    /// runc mode: keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// runc mode: pass this many extra fds (from 3 on)
    #[arg(long = "preserve-fds")]
    pub preserve_fds: Option<u32>,
    /// runc mode: MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// runc mode: do not create a session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,

    // --- the front end (docker's names) ---
    /// Root directory (default: the host's filesystem, read-only)
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Container name (default: generated)
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (K=V, or K to copy it from here)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read K=V lines from a file
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// uid[:gid] or name[:group] (names from the root's /etc/passwd and /etc/group)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount SRC:DST[:ro|rw]
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: DST[:opts]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Make the root read-only (--rootfs; the host root is always read-only)
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Resource limit: name=soft[:hard], e.g. nofile=1024:2048
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add a capability (or ALL)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// All capabilities, no masked or read-only paths
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges | seccomp=unconfined | seccomp=FILE
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// none (own network namespace with loopback) or host
    #[arg(long, default_value = "none")]
    pub network: String,
    /// Keep stdin attached (without it the container reads /dev/null)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run a tiny init as pid 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,
    /// Memory limit (b, k, m, g: bytes, KiB, MiB, GiB)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// CPUs (fractional), e.g. 1.5
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs allowed, e.g. 0-1
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// runc mode: the container id. Front end: the command, after `--`
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
