//! The user-mode networks an ordinary user's container can have (pasta, slirp4netns): which
//! one `--network` names, checked before anything exists, and started for init's namespaces.
//! What the two helpers share underneath is `helper`'s.

use crate::helper::Running;
use husk_runtime::Error;
use std::path::Path;

/// The user-mode network a container asked for, checked before anything of it exists.
#[derive(Debug, Clone, PartialEq)]
pub enum UserNet {
    Pasta(crate::pasta::Pasta),
    Slirp(crate::slirp::Slirp),
}

impl UserNet {
    /// The helper of `network` with these `-p` values (None for a network of another kind),
    /// or what it lacks.
    pub fn prepare(network: &str, publish: &[String]) -> Result<Option<UserNet>, Error> {
        Ok(match network {
            "pasta" => Some(UserNet::Pasta(crate::pasta::prepare(publish)?)),
            n if crate::slirp::named(n) => Some(UserNet::Slirp(crate::slirp::prepare(n, publish)?)),
            _ => None,
        })
    }

    /// Starts the helper for init's namespaces, its pid file in the container's `state_dir`.
    /// `tied`: slirp4netns ends with this process, however it ends (a foreground run's husk);
    /// a monitor executes its watcher, which keeps no fd of it, and stops it by the pid file.
    pub fn attach(
        &self,
        ns: &husk_runtime::launch::InitNamespaces,
        state_dir: &Path,
        tied: bool,
    ) -> Result<Running, Error> {
        match self {
            UserNet::Pasta(p) => p.attach(ns, state_dir),
            UserNet::Slirp(s) => s.attach(ns, state_dir, tied),
        }
    }
}

/// What init must send a container's runtime step: pasta and slirp4netns join its user
/// namespace too; a bridge attach needs only the network's.
pub fn step_needs(user_net: Option<&UserNet>) -> husk_runtime::launch::StepNamespaces {
    match user_net {
        Some(_) => husk_runtime::launch::StepNamespaces::UserAndNet,
        None => husk_runtime::launch::StepNamespaces::Net,
    }
}
