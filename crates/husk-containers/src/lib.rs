//! Front-end containers that outlive the shell, without a daemon: `husk run -d` and docker's
//! verbs (`ps`, `logs`, `stop`, `kill`, `start`, `restart`, `rm`, `wait`, `inspect`, `attach`,
//! `container prune`). The store (`store`) keeps each container's config, state and logs on
//! disk; a small monitor per running container (`monitor`, husk's own binary) reaps it and
//! records its exit. docs/architecture.md ("Detached containers") has the design.
#![forbid(unsafe_code)]

pub mod attach;
pub mod foreground;
pub mod format;
pub mod logs;
pub mod monitor;
pub mod net;
pub mod store;
pub mod time;
pub mod verbs;
pub mod watch;

pub use store::{Meta, Restart, Store};
