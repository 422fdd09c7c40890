//! Where an ordinary user's husk keeps things, as podman's rootless mode does: state (`--root`)
//! in `$XDG_RUNTIME_DIR/husk`, front-end containers and images in `$XDG_DATA_HOME/husk`
//! (`~/.local/share/husk`). The real root keeps /run/husk and /var/lib/husk.

use crate::Error;
use crate::caller::Caller;
use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const SYSTEM_ROOT: &str = "/run/husk";

/// The caller's environment, read once (pure functions below take it).
pub struct Env {
    pub xdg_runtime: Option<OsString>,
    pub xdg_data: Option<OsString>,
    pub home: Option<OsString>,
    pub user: Option<OsString>,
    pub tmpdir: Option<OsString>,
}

impl Env {
    pub fn current() -> Env {
        let var = |k| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            xdg_runtime: var("XDG_RUNTIME_DIR"),
            xdg_data: var("XDG_DATA_HOME"),
            home: var("HOME"),
            user: var("USER"),
            tmpdir: var("TMPDIR"),
        }
    }
}

/// Whether `--root` defaults to the user's runtime dir: a non-root euid, or root of a user
/// namespace when USER is not root (rootless podman runs the runtime so, without `--root`, and
/// only its user can write there). The real root keeps /run/husk even with XDG_RUNTIME_DIR set,
/// as runc does.
fn user_scoped(env: &Env, who: &Caller) -> bool {
    who.euid != 0 || (!who.initial_userns && env.user.as_deref().is_none_or(|u| u != "root"))
}

/// runc's default `--root`, with husk's name. Without XDG_RUNTIME_DIR an ordinary user gets
/// what podman falls back to: `/run/user/UID` when that is the user's own, else
/// `$TMPDIR/husk-run-UID` (checked by `ensure_private`). `own_run_user` says whether
/// /run/user/UID exists and belongs to the caller.
pub fn default_root(env: &Env, who: &Caller, own_run_user: bool) -> PathBuf {
    if !user_scoped(env, who) {
        return PathBuf::from(SYSTEM_ROOT);
    }
    match &env.xdg_runtime {
        Some(x) => Path::new(x).join("husk"),
        None if who.euid == 0 => PathBuf::from(SYSTEM_ROOT),
        None if own_run_user => PathBuf::from(format!("/run/user/{}/husk", who.euid)),
        None => tmp_root(env, who.euid),
    }
}

fn tmp_root(env: &Env, uid: u32) -> PathBuf {
    Path::new(env.tmpdir.as_deref().unwrap_or("/tmp".as_ref())).join(format!("husk-run-{uid}"))
}

/// `default_root` for this process.
pub fn current_root() -> PathBuf {
    let who = Caller::current();
    let own = std::fs::metadata(format!("/run/user/{}", who.euid))
        .is_ok_and(|m| m.is_dir() && m.uid() == who.euid);
    default_root(&Env::current(), &who, own)
}

/// The `$TMPDIR/husk-run-UID` fallback lives in a directory anyone may create things in: it is
/// made 0700 here, and one that is not a directory of the caller's own (another user made it
/// first, or a symlink) is refused rather than used.
pub fn ensure_private(root: &Path) -> Result<(), Error> {
    let who = Caller::current();
    if !who.unprivileged() || root != tmp_root(&Env::current(), who.euid) {
        return Ok(());
    }
    match std::fs::DirBuilder::new().mode(0o700).create(root) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::io("create state root", root)(e));
        }
        _ => {}
    }
    let m = std::fs::symlink_metadata(root).map_err(Error::io("stat state root", root))?;
    if !m.is_dir() || m.uid() != who.euid || m.mode() & 0o022 != 0 {
        return Err(Error::Msg(format!(
            "state root {}: not a directory of uid {} writable only by it (set XDG_RUNTIME_DIR to a private directory, or pass --root)",
            root.display(),
            who.euid
        )));
    }
    Ok(())
}

/// `$XDG_DATA_HOME/husk`, else `$HOME/.local/share/husk`: an ordinary user's images and
/// front-end containers. None for root (its stores are under /var/lib/husk).
pub fn data_dir(env: &Env, who: &Caller) -> Result<Option<PathBuf>, Error> {
    if !who.unprivileged() {
        return Ok(None);
    }
    match (&env.xdg_data, &env.home) {
        (Some(x), _) => Ok(Some(Path::new(x).join("husk"))),
        (None, Some(h)) => Ok(Some(Path::new(h).join(".local/share/husk"))),
        (None, None) => Err(Error::Msg(
            "neither XDG_DATA_HOME nor HOME is set: an ordinary user's images and containers live in $XDG_DATA_HOME/husk or ~/.local/share/husk; set one of them".into(),
        )),
    }
}

/// `data_dir` for this process.
pub fn current_data_dir() -> Result<Option<PathBuf>, Error> {
    data_dir(&Env::current(), &Caller::current())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = "         0          0 4294967295\n";
    const PODMAN_NS: &str = "         0       1001          1\n         1     200000      65536\n";

    fn env(xdg: Option<&str>, user: Option<&str>) -> Env {
        Env {
            xdg_runtime: xdg.map(Into::into),
            xdg_data: None,
            home: Some("/home/u".into()),
            user: user.map(Into::into),
            tmpdir: None,
        }
    }

    fn who(euid: u32, map: &str) -> Caller {
        Caller::parse(
            &format!("Name:\thusk\nUid:\t{euid}\t{euid}\t{euid}\t{euid}\n"),
            map,
        )
    }

    fn root(xdg: Option<&str>, user: Option<&str>, euid: u32, map: &str, own: bool) -> PathBuf {
        default_root(&env(xdg, user), &who(euid, map), own)
    }

    #[test]
    fn default_root_as_runc_and_podman_pick_it() {
        let sys = PathBuf::from("/run/husk");
        let xdg = PathBuf::from("/run/user/1001/husk");
        // the real root keeps /run/husk whatever XDG_RUNTIME_DIR says
        assert_eq!(
            root(Some("/run/user/0"), Some("root"), 0, INITIAL, true),
            sys
        );
        assert_eq!(root(Some("/run/user/0"), None, 0, INITIAL, false), sys);
        // an ordinary user
        assert_eq!(
            root(Some("/run/user/1001"), Some("u"), 1001, INITIAL, false),
            xdg
        );
        // root in rootless podman's user namespace
        assert_eq!(
            root(Some("/run/user/1001"), Some("u"), 0, PODMAN_NS, false),
            xdg
        );
        assert_eq!(root(Some("/run/user/1001"), None, 0, PODMAN_NS, false), xdg);
        assert_eq!(
            root(Some("/run/user/1001"), Some("root"), 0, PODMAN_NS, false),
            sys
        );
        assert_eq!(root(None, Some("u"), 0, PODMAN_NS, false), sys);
        // no XDG_RUNTIME_DIR (`su user`): podman's fallbacks
        assert_eq!(root(None, Some("u"), 1001, INITIAL, true), xdg);
        assert_eq!(
            root(None, Some("u"), 1001, INITIAL, false),
            PathBuf::from("/tmp/husk-run-1001")
        );
    }

    #[test]
    fn data_dir_follows_xdg_then_home() {
        let user = who(1001, INITIAL);
        let mut e = env(None, Some("u"));
        assert_eq!(
            data_dir(&e, &user).unwrap(),
            Some(PathBuf::from("/home/u/.local/share/husk"))
        );
        e.xdg_data = Some("/data".into());
        assert_eq!(
            data_dir(&e, &user).unwrap(),
            Some(PathBuf::from("/data/husk"))
        );
        assert_eq!(data_dir(&e, &who(0, INITIAL)).unwrap(), None);
        e.xdg_data = None;
        e.home = None;
        assert!(data_dir(&e, &user).is_err());
    }
}
