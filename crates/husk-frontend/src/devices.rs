//! `--device HOST[:CONTAINER][:rwm]` and `--privileged`'s devices: nodes made in the container's
//! /dev with the host's numbers, and device-cgroup rules that allow them.

use husk_runtime::Error;
use husk_spec::config::Device;
use serde_json::{Value, json};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// glibc's major()/minor() on a dev_t.
fn numbers(rdev: u64) -> (i64, i64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as i64, minor as i64)
}

fn node(host: &Path, dest: &str) -> Result<Option<Device>, Error> {
    let md = std::fs::metadata(host).map_err(Error::io("stat --device", host))?;
    let kind = match md.file_type() {
        t if t.is_char_device() => "c",
        t if t.is_block_device() => "b",
        _ => return Ok(None),
    };
    let (major, minor) = numbers(md.rdev());
    Ok(Some(Device {
        kind: kind.into(),
        path: dest.into(),
        major,
        minor,
        file_mode: Some(md.mode() & 0o7777),
        uid: Some(md.uid()),
        gid: Some(md.gid()),
    }))
}

/// One `--device` flag: the node and its cgroup rule.
pub fn device(v: &str) -> Result<(Device, Value), Error> {
    let bad = |why: &str| Error::Msg(format!("invalid --device \"{v}\": {why}"));
    let parts: Vec<&str> = v.split(':').collect();
    let is_mode = |s: &str| !s.is_empty() && s.chars().all(|c| "rwm".contains(c));
    let (host, dest, access) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, m] if is_mode(m) => (*h, *h, *m),
        [h, d] => (*h, *d, "rwm"),
        [h, d, m] if is_mode(m) => (*h, *d, *m),
        _ => return Err(bad("want HOST[:CONTAINER][:rwm]")),
    };
    if !host.starts_with('/') || !dest.starts_with('/') {
        return Err(bad("paths must be absolute"));
    }
    let d = node(Path::new(host), dest)?
        .ok_or_else(|| bad(&format!("{host} is not a character or block device")))?;
    let rule = json!({"allow": true, "type": d.kind, "major": d.major, "minor": d.minor, "access": access});
    Ok((d, rule))
}

/// Every device node under the host's /dev, as docker's --privileged gives them (the pty, shm
/// and mqueue file systems are the container's own).
pub fn host_devices() -> Vec<Device> {
    let mut out = vec![];
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                if !["/dev/pts", "/dev/shm", "/dev/mqueue"].contains(&path.to_str().unwrap_or("")) {
                    dirs.push(path);
                }
            } else if (t.is_char_device() || t.is_block_device())
                && let Ok(Some(d)) = node(&path, &path.to_string_lossy())
            {
                out.push(d);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flags() {
        let (d, rule) = device("/dev/null:/dev/mynull:r").unwrap();
        assert_eq!(
            (d.kind.as_str(), d.path.as_str(), d.major, d.minor),
            ("c", "/dev/mynull", 1, 3)
        );
        assert_eq!(rule["access"], "r");
        assert_eq!(device("/dev/zero").unwrap().0.minor, 5);
        assert_eq!(device("/dev/zero:rw").unwrap().1["access"], "rw");
        for bad in ["/etc/passwd", "dev/null", "/dev/null:/x:q", "/nonexistent"] {
            assert!(device(bad).is_err(), "{bad}");
        }
        assert_eq!(numbers(0x0103), (1, 3));
        assert!(host_devices().iter().any(|d| d.path == "/dev/null"));
    }
}
