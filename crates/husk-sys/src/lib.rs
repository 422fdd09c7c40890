//! Thin, typed wrappers over the syscalls husk needs. This is the only crate with `unsafe`;
//! every block says why it is sound. Functions return `io::Result` and take/return `OwnedFd`
//! / `BorrowedFd` so ownership of descriptors is checked by the compiler.

pub mod alloc;
pub mod bpf;
pub mod errno;
pub mod fs;
pub mod mount;
pub mod net;
pub mod process;
pub mod random;
pub mod security;
pub mod sock;
pub mod tty;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) fn cstr(p: impl AsRef<Path>) -> io::Result<CString> {
    CString::new(p.as_ref().as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub(crate) fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn cvt_i(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}
