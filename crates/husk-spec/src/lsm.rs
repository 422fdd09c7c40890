//! AppArmor and SELinux, the pure part: which labels are valid, and which mounts carry
//! `linux.mountLabel` as a `context=` option (runc's choice, through go-selinux's
//! FormatMountLabel). Where the labels are written and when is `husk_runtime::lsm`.

/// Filesystems that never take `context=`: procfs and sysfs cannot be labelled per mount (runc
/// leaves them alone), a bind keeps its source's labels (mount(2) ignores the data of a bind),
/// cgroup mounts are made by the runtime's own cgroup code, and mqueue is labelled apart
/// (`labelled_by_xattr`).
const NO_CONTEXT: &[&str] = &["proc", "sysfs", "bind", "cgroup", "cgroup2", "mqueue"];

/// Whether a mount of `fstype` gets `context="LABEL"` when the config has a mountLabel.
pub fn takes_context(fstype: &str) -> bool {
    !NO_CONTEXT.contains(&fstype)
}

/// Whether the mount's root is labelled with the `security.selinux` xattr after mounting
/// instead: an mqueue superblock belongs to the ipc namespace and exists before the mount, so
/// SELinux refuses a `context=` that differs from its settings (runc labels it this way too).
pub fn labelled_by_xattr(fstype: &str) -> bool {
    fstype == "mqueue"
}

/// `data` with `context="LABEL"` appended. The quotes keep the commas of an MCS range
/// (`s0:c1,c2`) inside the one option.
pub fn with_mount_label(data: &str, label: Option<&str>) -> String {
    match label {
        None => data.to_string(),
        Some(l) if data.is_empty() => format!("context=\"{l}\""),
        Some(l) => format!("{data},context=\"{l}\""),
    }
}

/// A label or profile name as the kernel takes it: one line of text. A quote would end the
/// mount option it goes into; a newline or NUL would cut the write to /proc short.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("empty".into());
    }
    if let Some(c) = label.chars().find(|c| c.is_control() || *c == '"') {
        return Err(format!("\"{}\" holds {c:?}", label.escape_debug()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_mounts_take_the_label() {
        for t in ["tmpfs", "devpts", "overlay", "securityfs"] {
            assert!(takes_context(t) && !labelled_by_xattr(t), "{t}");
        }
        for t in ["proc", "sysfs", "bind", "cgroup", "cgroup2"] {
            assert!(!takes_context(t) && !labelled_by_xattr(t), "{t}");
        }
        assert!(!takes_context("mqueue") && labelled_by_xattr("mqueue"));
    }

    #[test]
    fn the_label_is_one_quoted_option() {
        let l = Some("system_u:object_r:container_file_t:s0:c1,c2");
        assert_eq!(
            with_mount_label("mode=755,size=65536k", l),
            "mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            with_mount_label("", Some("a:b:c:s0")),
            "context=\"a:b:c:s0\""
        );
        assert_eq!(with_mount_label("mode=755", None), "mode=755");
    }

    #[test]
    fn labels_are_one_line_without_quotes() {
        assert!(check_label("system_u:system_r:container_t:s0:c1,c2").is_ok());
        assert!(check_label("docker-default").is_ok());
        for bad in ["", "a\"b", "a\nb", "a\0b"] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
    }
}
