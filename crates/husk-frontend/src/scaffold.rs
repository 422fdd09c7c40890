//! The embedded default's root when a mount point or the working directory is missing on the
//! host: the host's root is read-only, so husk cannot make `/data` in it. Instead (as docker makes
//! mount points in a container's writable layer), the root becomes a scaffold in the container's
//! state dir: the host's directories on the way to each missing path are recreated there as empty
//! directories, everything else in them is bound from the host read-only (symlinks recreated),
//! and the missing paths are made as empty directories. Only used when something is missing:
//! one bind of `/` is cheaper than a bind per entry.

use husk_runtime::launch::StateEntry;
use husk_spec::config::Mount;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where the scaffold lives in the state dir.
pub const DIR: &str = "root";

/// Top-level directories the container gets fresh (its own mounts): made empty, never bound.
const OWN: &[&str] = &["/proc", "/sys", "/dev", "/tmp", "/run"];

/// Paths (absolute, normalized) that the embedded default needs and the host lacks; under the
/// container's own fresh file systems anything can be made, so those never count.
pub fn missing(paths: &[&str]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| normalize(p))
        .filter(|p| !OWN.iter().any(|o| p.starts_with(o)))
        .filter(|p| std::fs::symlink_metadata(p).is_err())
        .collect()
}

fn normalize(p: &str) -> PathBuf {
    Path::new("/").join(husk_spec::plan::clean_in_root(p))
}

/// The state-dir entries and the mounts (to go first) that build the scaffold for `missing`.
pub fn build(missing: &[PathBuf]) -> (Vec<(String, StateEntry)>, Vec<Mount>) {
    // Every ancestor of a missing path becomes a scaffold directory; the missing ones are made.
    let mut scaffold: BTreeSet<PathBuf> = BTreeSet::new();
    for m in missing {
        for a in m.ancestors() {
            scaffold.insert(a.to_path_buf());
        }
    }
    let rel = |p: &Path| -> String {
        let r = p.strip_prefix("/").unwrap_or(p);
        if r.as_os_str().is_empty() {
            DIR.to_string()
        } else {
            format!("{DIR}/{}", r.display())
        }
    };
    let mut entries = vec![];
    let mut mounts = vec![];
    // BTreeSet order puts parents before children.
    for dir in &scaffold {
        entries.push((rel(dir), StateEntry::Dir));
        if !dir.is_dir() {
            continue;
        }
        let Ok(list) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut list: Vec<_> = list.flatten().collect();
        list.sort_by_key(|e| e.file_name());
        for e in list {
            let path = e.path();
            if scaffold.contains(&path) {
                continue;
            }
            let Ok(t) = e.file_type() else { continue };
            if t.is_symlink() {
                if let Ok(to) = std::fs::read_link(&path) {
                    entries.push((rel(&path), StateEntry::Symlink(to)));
                }
            } else if t.is_dir() {
                entries.push((rel(&path), StateEntry::Dir));
                if !OWN.iter().any(|o| Path::new(o) == path) {
                    let p = path.to_string_lossy();
                    mounts.push(super::mounts::mount(&p, "bind", &p, &["rbind", "rro"]));
                }
            } else {
                entries.push((rel(&path), StateEntry::File(vec![])));
                let p = path.to_string_lossy();
                mounts.push(super::mounts::mount(&p, "bind", &p, &["bind", "ro"]));
            }
        }
    }
    (entries, mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffold_for_missing_paths() {
        let miss = missing(&[
            "/husk-no-such/a/b",
            "/etc",
            "/tmp/x",
            "/run/y/../z",
            "/usr/husk-no",
        ]);
        assert_eq!(
            miss,
            vec![
                PathBuf::from("/husk-no-such/a/b"),
                PathBuf::from("/usr/husk-no")
            ]
        );
        let (entries, mounts) = build(&miss);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "root",
            "root/husk-no-such",
            "root/husk-no-such/a/b",
            "root/usr",
            "root/usr/husk-no",
            "root/etc",
            "root/proc",
            "root/usr/bin",
        ] {
            assert!(names.contains(&want), "{want}: {names:?}");
        }
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("root") < pos("root/usr") && pos("root/usr") < pos("root/usr/husk-no"));
        let dests: Vec<&str> = mounts.iter().map(|m| m.destination.as_str()).collect();
        assert!(
            dests.contains(&"/etc") && dests.contains(&"/usr/bin"),
            "{dests:?}"
        );
        assert!(!dests.contains(&"/usr") && !dests.contains(&"/proc") && !dests.contains(&"/tmp"));
    }
}
