//! bpf(2) for cgroup v2 device filters: load a BPF_PROG_TYPE_CGROUP_DEVICE program, attach it
//! to a cgroup directory, list and detach the programs already there. No libbpf: the attribute
//! layouts below are the prefixes of `union bpf_attr` (linux/bpf.h) each command reads; the
//! kernel takes a shorter attribute as long as every byte it does read is ours.

use crate::cvt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// One instruction, laid out as the kernel's `struct bpf_insn` (8 bytes: opcode, dst and src
/// register nibbles, 16-bit offset, 32-bit immediate).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    pub fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The register fields are C bitfields `dst_reg:4, src_reg:4`: dst is the low nibble on
        // little-endian targets and the high nibble on big-endian ones.
        let regs = if cfg!(target_endian = "little") {
            (dst & 0xf) | (src << 4)
        } else {
            (dst << 4) | (src & 0xf)
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The 8 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] attribute of the layout the
    // command reads (and, for queries, writes), and the size passed is exactly its size.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    })
}

fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this new descriptor to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// BPF_PROG_LOAD of a cgroup device program. When the verifier refuses it, the load is done
/// again with a log, and the error carries the log's last lines.
pub fn prog_load_cgroup_device(insns: &[Insn]) -> io::Result<OwnedFd> {
    // Device programs use no GPL-only helpers; the license string is only recorded.
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"husk_devices");
    let count =
        u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let attr = |log: &mut [u8]| LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: count,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..LoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr(&mut [])) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EACCES)) => {
            let mut log = vec![0u8; 64 * 1024];
            let again = bpf(BPF_PROG_LOAD, &mut attr(&mut log));
            let text =
                String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)])
                    .into_owned();
            match again {
                Ok(fd) => Ok(owned_fd(fd)),
                Err(e2) if text.trim().is_empty() => Err(e2),
                Err(e2) => {
                    let tail: Vec<&str> = text.trim().lines().rev().take(4).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    Err(io::Error::new(
                        e2.kind(),
                        format!("{e2}; verifier log: {}", tail.join(" | ")),
                    ))
                }
            }
        }
        Err(e) => Err(e),
    }
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn device_attach_attr(prog: BorrowedFd<'_>, cgroup_dir_fd: BorrowedFd<'_>) -> AttachAttr {
    AttachAttr {
        target_fd: cgroup_dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..AttachAttr::default()
    }
}

/// BPF_PROG_ATTACH (BPF_CGROUP_DEVICE) of `prog` to the cgroup2 directory `cgroup_dir_fd`, with
/// BPF_F_ALLOW_MULTI so it runs beside (not instead of) programs attached above; kernels without
/// multi-attach (EINVAL) get a plain attach.
pub fn prog_attach_cgroup_device(
    prog: BorrowedFd<'_>,
    cgroup_dir_fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut attr = device_attach_attr(prog, cgroup_dir_fd);
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    match bpf(BPF_PROG_ATTACH, &mut attr) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            attr.attach_flags = 0;
            bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
        }
        r => r.map(drop),
    }
}

/// BPF_PROG_DETACH (BPF_CGROUP_DEVICE) of `prog` from the cgroup2 directory.
pub fn prog_detach_cgroup_device(
    prog: BorrowedFd<'_>,
    cgroup_dir_fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut attr = device_attach_attr(prog, cgroup_dir_fd);
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

/// BPF_PROG_QUERY: the ids of the device programs attached to this cgroup directory itself
/// (not those inherited from its parents).
pub fn prog_query_cgroup_device(cgroup_dir_fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    for _ in 0..10 {
        let mut attr = QueryAttr {
            target_fd: cgroup_dir_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..QueryAttr::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // prog_cnt now says how many there are.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                ids = vec![0u32; attr.prog_cnt as usize + 8];
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOSPC))
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// BPF_PROG_GET_FD_BY_ID.
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..GetFdAttr::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned_fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_linux_bpf_h() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::offset_of!(LoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(LoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(AttachAttr, replace_bpf_fd), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_cnt), 24);
        assert_eq!(std::mem::offset_of!(GetFdAttr, open_flags), 8);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn insn_bytes() {
        // r2 = *(u32 *)(r1 + 4)
        assert_eq!(
            Insn::new(0x61, 2, 1, 4, 0).to_bytes(),
            [0x61, 0x12, 4, 0, 0, 0, 0, 0]
        );
        // if r4 != 259 goto +3
        assert_eq!(
            Insn::new(0x55, 4, 0, 3, 259).to_bytes(),
            [0x55, 0x04, 3, 0, 3, 1, 0, 0]
        );
    }
}
