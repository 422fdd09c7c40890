//! The container lifecycle: state directory, create (parent side in `launch`, child side in
//! `init`), start, kill, delete, and the hooks. See docs/architecture.md for the data flow.
#![forbid(unsafe_code)]

pub mod caller;
mod cgroup_ops;
pub mod exec;
pub mod explain;
pub mod fault;
pub mod hooks;
mod idmap;
mod init;
pub use cgroup_ops::{events, pause, pids, resume, update};
pub mod launch;
pub mod log;
pub mod lsm;
pub mod mapped;
pub mod ops;
mod process;
mod propagation;
mod rootfs;
pub mod seccomp;
pub mod seccomp_probe;
mod shared;
pub mod state;
mod sync;
mod trampoline;
pub use trampoline::{
    installed_binary, installed_binary_env, protect_binary, protect_for,
    reexec_from_readonly_binary,
};
mod tty;
pub mod userdirs;

use std::io;
use std::path::{Path, PathBuf};

/// A runtime error. Every I/O failure carries the step and the path, so the one line a user sees
/// says what husk was doing, to what, and the errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step} {}: {}", path.display(), errno_text(source))]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Config(#[from] husk_spec::ConfigError),
    #[error(transparent)]
    Cgroup(#[from] husk_cgroup::CgroupError),
    /// The container's command cannot be executed (`not_found`: no such file in $PATH).
    #[error("{msg}")]
    Exec { msg: String, not_found: bool },
    #[error("container \"{0}\" does not exist")]
    NotExist(String),
    #[error("{0}")]
    Msg(String),
}

impl Error {
    /// A command that needs a live container found it `status`. The words `container not
    /// running` are what containerd's shim, CRI-O and podman look for to take the error as
    /// "already gone" (docs/clients.md, "Errors engines parse").
    pub fn not_running(action: &str, id: &str, status: state::Status) -> Error {
        Error::Msg(format!(
            "cannot {action} container \"{id}\": container not running (it is {})",
            status.as_str()
        ))
    }

    pub fn io<'a>(
        step: &'static str,
        path: impl AsRef<Path> + 'a,
    ) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Io {
            step,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// `ENOENT (No such file or directory)`: the symbolic name first, since that is what people search for.
pub fn errno_text(e: &io::Error) -> String {
    husk_sys::errno::text(e)
}
