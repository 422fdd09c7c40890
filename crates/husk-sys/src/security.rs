//! Credentials, capabilities and per-process limits and scheduling.

use crate::{cvt, cvt_i};
use rustix::process::{Gid, Uid};
use rustix::thread::{CapabilitySet, CapabilitySets};
use std::io;

// The id changes are the raw per-thread syscalls (not libc's broadcast to every thread):
// husk's init is single-threaded.
pub fn setresuid(uid: u32) -> io::Result<()> {
    let u = Uid::from_raw_unchecked(uid);
    Ok(rustix::thread::set_thread_res_uid(u, u, u)?)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    let g = Gid::from_raw_unchecked(gid);
    Ok(rustix::thread::set_thread_res_gid(g, g, g)?)
}

pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    let gids: Vec<Gid> = gids.iter().map(|&g| Gid::from_raw_unchecked(g)).collect();
    Ok(rustix::thread::set_thread_groups(&gids)?)
}

pub fn set_keepcaps(on: bool) -> io::Result<()> {
    Ok(rustix::thread::set_keep_capabilities(on)?)
}

pub fn set_no_new_privs() -> io::Result<()> {
    Ok(rustix::thread::set_no_new_privs(true)?)
}

/// Highest capability this kernel knows.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// One capability as rustix's one-bit set (rustix takes the bit's index back out); a number past
/// 63 is EINVAL, as the kernel says for one it does not know.
fn one_cap(cap: u8) -> io::Result<CapabilitySet> {
    1u64.checked_shl(cap.into())
        .map(CapabilitySet::from_bits_retain)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

pub fn drop_bounding(cap: u8) -> io::Result<()> {
    Ok(rustix::thread::remove_capability_from_bounding_set(
        one_cap(cap)?,
    )?)
}

pub fn raise_ambient(cap: u8) -> io::Result<()> {
    Ok(rustix::thread::configure_capability_in_ambient_set(
        one_cap(cap)?,
        true,
    )?)
}

pub fn clear_ambient() -> io::Result<()> {
    Ok(rustix::thread::clear_ambient_capability_set()?)
}

/// capset: effective, permitted and inheritable in one call (64-bit masks).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let sets = CapabilitySets {
        effective: CapabilitySet::from_bits_retain(effective),
        permitted: CapabilitySet::from_bits_retain(permitted),
        inheritable: CapabilitySet::from_bits_retain(inheritable),
    };
    Ok(rustix::thread::set_capabilities(None, sets)?)
}

/// capget: (effective, permitted, inheritable).
pub fn capget() -> io::Result<(u64, u64, u64)> {
    let s = rustix::thread::capabilities(None)?;
    Ok((s.effective.bits(), s.permitted.bits(), s.inheritable.bits()))
}

pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit; prlimit on ourselves (pid 0).
    cvt_i(unsafe { libc::prlimit(0, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
}

pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt_i(unsafe { libc::personality(persona as libc::c_ulong) }).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

#[allow(clippy::too_many_arguments)]
pub fn sched_setattr(
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
) -> io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority,
        sched_runtime: runtime,
        sched_deadline: deadline,
        sched_period: period,
        ..Default::default()
    };
    // SAFETY: `attr` is a sched_attr with its size filled in.
    cvt(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map(drop)
}

pub fn ioprio_set(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    let prio = (class << 13) | level;
    // SAFETY: plain syscall.
    cvt(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

/// Pins this process to `cpus`; `None` means every CPU the kernel has (the runtime's own
/// affinity must not leak into the container).
pub fn set_affinity(cpus: Option<&[u32]>) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within its fixed size (we bound the index).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        match cpus {
            Some(list) => list
                .iter()
                .filter(|c| (**c as usize) < max)
                .for_each(|c| libc::CPU_SET(*c as usize, &mut set)),
            None => (0..max).for_each(|c| libc::CPU_SET(c, &mut set)),
        }
        cvt_i(libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        ))
        .map(drop)
    }
}

/// The CPUs this process may run on, to put them back after a temporary `set_affinity`.
pub fn get_affinity() -> io::Result<Vec<u32>> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel up to its size; CPU_ISSET reads
    // within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        cvt_i(libc::sched_getaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        ))?;
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        Ok((0..max)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .map(|c| c as u32)
            .collect())
    }
}

pub fn set_mempolicy(mode: i32, nodes: &[u32]) -> io::Result<()> {
    let mut mask = [0u64; 16];
    for n in nodes {
        if (*n as usize) < 1024 {
            mask[*n as usize / 64] |= 1 << (n % 64);
        }
    }
    let maxnode = if nodes.is_empty() { 0 } else { 1025 };
    let ptr = if nodes.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `mask` holds 1024 bits, matching maxnode.
    cvt(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// Joins a new session keyring named `name` (keyctl KEYCTL_JOIN_SESSION_KEYRING), so the
/// container does not share the caller's session keys.
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let n = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: keyctl reads the NUL-terminated name only.
    cvt(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, n.as_ptr()) })
        .map(drop)
}

/// A classic-BPF seccomp program (struct sock_filter array, as libseccomp exports it), loaded
/// with one syscall and no allocation: husk loads it as the very last step before execve.
pub struct SeccompProgram(Vec<libc::sock_filter>);

pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
pub const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;
pub const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: u32 = 16;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 32;

impl SeccompProgram {
    /// From the exported bytes (native byte order, 8 per instruction); None if torn.
    pub fn from_bytes(b: &[u8]) -> Option<SeccompProgram> {
        if !b.len().is_multiple_of(8) {
            return None;
        }
        Some(SeccompProgram(
            b.chunks_exact(8)
                .map(|c| libc::sock_filter {
                    code: u16::from_ne_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        ))
    }

    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// seccomp(SECCOMP_SET_MODE_FILTER, flags, program). The notify listener (close-on-exec)
    /// when `flags` asks for one.
    pub fn load(&self, flags: u32) -> io::Result<Option<std::os::fd::OwnedFd>> {
        use std::os::fd::FromRawFd;
        const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
        let len =
            u16::try_from(self.0.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let prog = libc::sock_fprog {
            len,
            filter: self.0.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` describes `self.0`, which outlives the call; the kernel copies it.
        let r = cvt(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                flags as libc::c_long,
                &prog as *const libc::sock_fprog,
            )
        })?;
        if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
            return Ok(None);
        }
        // SAFETY: with NEW_LISTENER the kernel returns a fresh descriptor, ours to own.
        Ok(Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// capset of what capget said changes nothing (rustix's v3 halves joined back to 64 bits);
    /// a capability past the mask is EINVAL before any syscall.
    #[test]
    fn capabilities_round_trip() {
        let sets = capget().unwrap();
        capset(sets.0, sets.1, sets.2).unwrap();
        assert_eq!(capget().unwrap(), sets);
        for e in [drop_bounding(64), raise_ambient(200)] {
            assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        }
    }
}
