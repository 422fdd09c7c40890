//! husk's images: a content-addressed store under /var/lib/husk (blobs by digest, each layer
//! unpacked once by chain id and shared read-only), import of `docker save` / OCI archives and
//! OCI layout directories, hostile-layer unpacking by fd, and the overlayfs root of a container
//! run from an image with the image's config applied as docker does.
//!
//! Nothing here is on runc's `create`/`run -b` path: only the front end's image verbs and
//! `husk run IMAGE` reach this crate.
#![forbid(unsafe_code)]

pub mod apply;
pub mod auth;
pub mod certs;
pub mod decompress;
pub mod digest;
pub mod export;
pub mod import;
pub mod overlay;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod readahead;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod remap;
pub mod store;
pub mod unpack;
pub mod volumes;

pub use store::Store;
