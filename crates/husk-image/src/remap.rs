//! An image's layers for an ordinary user's container whose user namespace maps ids otherwise
//! than the one its store unpacks in (`--userns keep-id`: the user's uid is itself inside, not
//! 0). A layer unpacked for the default map holds an image file of uid 0 as the user's own uid;
//! under keep-id's map that uid is the user inside, so the image's root files would look like
//! the user's and its uid 1 like root.
//!
//! Idmapped mounts cannot present those files otherwise for a user (measured on Linux 6.18):
//! overlayfs refuses MOUNT_ATTR_IDMAP (EINVAL, even for root: not FS_ALLOW_IDMAP), and
//! idmapping a mount of the layers' own filesystem (ext4 here) needs CAP_SYS_ADMIN over its
//! superblock, which only the host's root has (EPERM). So, as podman's containers/storage does
//! without idmapped mounts (its "mapped top layers"), each layer is unpacked once more for that
//! map and kept beside the default one: `layers/<chain>/map-<hash of the maps>/diff`. It is
//! unpacked from the stored blob, as root of a namespace with the container's map, by the same
//! hostile-safe unpack: owners, file capabilities' root id, whiteouts and opaque marks come out
//! as that map needs them. Once per image and map; later runs mount it like the default one. It
//! goes with its layer (`gc` removes the layer's directory whole).

use crate::store::{Image, Store};
use husk_runtime::Error;
use husk_spec::config::IdMapping;

/// The name of a layer's unpacking for the container maps `uid` and `gid`: a change of the
/// user's /etc/subuid or /etc/subgid ranges makes a new one rather than reusing a stale one.
pub fn variant(uid: &[IdMapping], gid: &[IdMapping]) -> String {
    let text = |m: &[IdMapping]| {
        m.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect::<String>()
    };
    let d = crate::digest::of(format!("uid\n{}gid\n{}", text(uid), text(gid)).as_bytes());
    format!("map-{}", &d[7..19])
}

/// Unpacks each layer of `img` missing as `variant`, under the store's exclusive lock; to be
/// called as root of a user namespace with that variant's map (husk_runtime::mapped).
pub fn ensure(store: &Store, img: &Image, variant: &str) -> Result<(), Error> {
    for l in &img.layers {
        let dest = store.layer_dir(&l.chain_id)?.join(variant);
        if !dest.join("diff").is_dir() {
            crate::import::unpack_layer(store, &l.blob, &l.diff_id, &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_names_its_maps() {
        let m = |c, h, s| IdMapping {
            container_id: c,
            host_id: h,
            size: s,
        };
        let keep = variant(&[m(0, 100000, 1000), m(1000, 1000, 1)], &[m(0, 1000, 1)]);
        assert!(keep.starts_with("map-") && keep.len() == 16, "{keep}");
        assert_eq!(
            keep,
            variant(&[m(0, 100000, 1000), m(1000, 1000, 1)], &[m(0, 1000, 1)])
        );
        // Other ranges, or the same ranges for gids instead of uids, are another unpacking.
        assert_ne!(
            keep,
            variant(&[m(0, 200000, 1000), m(1000, 1000, 1)], &[m(0, 1000, 1)])
        );
        assert_ne!(
            variant(&[m(0, 1, 1)], &[m(0, 2, 1)]),
            variant(&[m(0, 2, 1)], &[m(0, 1, 1)])
        );
    }
}
