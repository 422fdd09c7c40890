//! Processes: clone3 with a pidfd, waiting, signals, namespaces, exec.

use crate::{cstr, cvt, cvt_i};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` and `fork` need: proof that this process had one thread when it was made. The
/// child of a fork continues with a copy of the calling thread only, and a lock another thread
/// held (the allocator's, stdio's) would never be released there. Neither `Send` nor `Sync`, so
/// it stays on the thread that checked; husk starts no threads, so the check still holds at the
/// clone that follows it.
pub struct SingleThreaded(std::marker::PhantomData<*const ()>);

impl SingleThreaded {
    /// `None` when another thread runs.
    pub fn check() -> io::Result<Option<SingleThreaded>> {
        Ok((thread_count()? == 1).then_some(SingleThreaded(std::marker::PhantomData)))
    }

    /// Without a /proc to count threads in (husk's `--init` in a root that mounts none): taken
    /// on trust from a program that was just executed (execve leaves one thread) and has
    /// started none. Only for that case; `check` wherever /proc can tell.
    pub fn trusted_after_exec() -> SingleThreaded {
        SingleThreaded(std::marker::PhantomData)
    }
}

/// clone3 without CLONE_VM (fork semantics) with `ns_flags`, returning a pidfd to the parent.
/// With `cgroup`, the child starts inside that cgroup v2 directory (CLONE_INTO_CGROUP), so it
/// never runs a single instruction outside its limits.
pub fn clone3(
    _one: &SingleThreaded,
    ns_flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: ns_flags
            | CLONE_PIDFD
            | if cgroup.is_some() {
                CLONE_INTO_CGROUP
            } else {
                0
            },
        pidfd: &mut pidfd as *mut RawFd as u64,
        // clone3 refuses an exit signal with CLONE_PARENT: the child takes the caller's.
        exit_signal: if ns_flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: fork-like clone3 (no CLONE_VM, no stack): the child gets a copy of the address
    // space, so Rust state stays consistent as long as the caller is single-threaded, which
    // `_one` proves. `args` and `pidfd` are valid for the kernel to read and write.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match cvt(r)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: CLONE_PIDFD stored a fresh descriptor in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Number of threads of this process (from /proc/self/stat is slower; /proc/self/task is exact).
pub fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // rustix has no Pid for 0 or less; the kernel's answer to those is EINVAL too.
    let pid = Some(pid)
        .filter(|&p| p > 0)
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall, null siginfo is allowed.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// Shell convention: the code, or 128 + signal.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// Waits for (and reaps) the process behind `pidfd`. `nohang`: return None if still running.
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<Exit>> {
    // SAFETY: siginfo_t is plain data; zeroed is valid and lets us detect "no child yet" (si_pid 0).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: P_PIDFD with a valid fd; `info` is writable.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        match cvt_i(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    // SAFETY: the kernel filled `info` for a waitid that returned 0.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if info.si_code == libc::CLD_EXITED {
        Exit::Code(status)
    } else {
        Exit::Signal(status)
    }))
}

pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt_i(unsafe { libc::kill(pid, sig) }).map(drop)
}

pub fn getpid() -> i32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

/// Signals that cannot be caught or blocked (KILL, STOP), the synchronous faults, and the two
/// glibc keeps for itself: never forwarded, never blocked.
const UNFORWARDABLE: [i32; 9] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    32,
    33,
];

fn forwardable_signals() -> impl Iterator<Item = i32> {
    (1..=64).filter(|s| !UNFORWARDABLE.contains(s))
}

/// A set of signals (sigset_t).
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn empty() -> SigSet {
        // SAFETY: sigemptyset initialises the set.
        unsafe {
            let mut s = std::mem::zeroed();
            libc::sigemptyset(&mut s);
            SigSet(s)
        }
    }

    /// Every signal a runtime forwards or must not die from (all but KILL/STOP, which cannot be
    /// blocked anyway, and the synchronous fault signals).
    pub fn forwardable() -> SigSet {
        let mut s = SigSet::empty();
        forwardable_signals().for_each(|sig| s.add(sig));
        s
    }

    pub fn add(&mut self, sig: i32) {
        // SAFETY: the set is initialised; an invalid signal number only returns EINVAL.
        unsafe { libc::sigaddset(&mut self.0, sig) };
    }
}

/// Blocks `set`, returning the previous mask to restore later.
pub fn block_signals(set: &SigSet) -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: both sets are valid sigset_t.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, &mut old.0) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(old)
}

pub fn set_signal_mask(set: &SigSet) -> io::Result<()> {
    // SAFETY: valid sigset_t.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set.0, std::ptr::null_mut()) };
    if r != 0 {
        Err(io::Error::from_raw_os_error(r))
    } else {
        Ok(())
    }
}

/// Resets every signal disposition to default (a container must not inherit ignored signals).
pub fn reset_signal_dispositions() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL is always sound; invalid numbers just fail.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: valid sigset; a new fd is returned.
    let fd = cvt_i(unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC) })?;
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal number from a signalfd.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let sz = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is writable for `sz` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), &mut info as *mut _ as *mut libc::c_void, sz) };
    cvt(n as libc::c_long)?;
    Ok(info.ssi_signo as i32)
}

pub fn setns(fd: BorrowedFd<'_>, nstype: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt_i(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt_i(unsafe { libc::unshare(flags) }).map(drop)
}

/// execve: only returns on error.
pub fn execve(path: &std::path::Path, args: &[String], env: &[String]) -> io::Error {
    let (Ok(p), Some((a, e))) = (cstr(path), CArgs::new(args, env)) else {
        return io::Error::from_raw_os_error(libc::EINVAL);
    };
    let (ap, ep) = (a.ptrs(), e.ptrs());
    // SAFETY: argv/envp are NUL-terminated arrays of valid C strings that live across the call.
    unsafe { libc::execve(p.as_ptr(), ap.as_ptr(), ep.as_ptr()) };
    io::Error::last_os_error()
}

/// argv or envp as C strings, for the exec calls.
pub(crate) struct CArgs(Vec<CString>);

impl CArgs {
    /// None when a string holds a NUL byte.
    fn new(args: &[String], env: &[String]) -> Option<(CArgs, CArgs)> {
        let conv = |v: &[String]| CArgs::from_bytes(v.iter().map(|s| s.as_bytes()));
        Some((conv(args)?, conv(env)?))
    }

    /// None when a string holds a NUL byte.
    pub(crate) fn from_bytes<'a>(v: impl Iterator<Item = &'a [u8]>) -> Option<CArgs> {
        v.map(|s| CString::new(s).ok())
            .collect::<Option<Vec<_>>>()
            .map(CArgs)
    }

    /// The NULL-terminated pointer array; borrows `self`, which must outlive its use.
    fn ptrs(&self) -> Vec<*const libc::c_char> {
        let mut v: Vec<_> = self.0.iter().map(|c| c.as_ptr()).collect();
        v.push(std::ptr::null());
        v
    }
}

/// execveat(fd, "", AT_EMPTY_PATH) of the file `fd` refers to, with strings that may not be
/// UTF-8 (this process' own argv and environment). Returns only on failure.
pub fn execveat_bytes(fd: BorrowedFd<'_>, args: &[&[u8]], env: &[&[u8]]) -> io::Error {
    match (
        CArgs::from_bytes(args.iter().copied()),
        CArgs::from_bytes(env.iter().copied()),
    ) {
        (Some(a), Some(e)) => execveat_c(fd, &a, &e),
        _ => io::Error::from_raw_os_error(libc::EINVAL),
    }
}

/// The file name this program was executed as (AT_EXECFN): "/dev/fd/N" after
/// execveat(fd, "", AT_EMPTY_PATH).
pub fn exec_fn_name() -> Option<&'static std::ffi::CStr> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave this process.
    let execfn = unsafe { libc::getauxval(libc::AT_EXECFN) };
    // SAFETY: AT_EXECFN points to the NUL-terminated file name the kernel copied onto the
    // initial stack, which lives as long as the process.
    (execfn != 0).then(|| unsafe { std::ffi::CStr::from_ptr(execfn as *const libc::c_char) })
}

/// `execveat_bytes` with the strings converted already.
pub(crate) fn execveat_c(fd: BorrowedFd<'_>, a: &CArgs, e: &CArgs) -> io::Error {
    let (ap, ep) = (a.ptrs(), e.ptrs());
    // SAFETY: an empty path with AT_EMPTY_PATH executes `fd` itself; argv/envp are
    // NUL-terminated arrays of valid C strings that live across the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            ap.as_ptr(),
            ep.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// An execve or execveat with its strings converted already, so that from the moment it is
/// made to the exec nothing is allocated and no syscall is made: the container's seccomp
/// filter goes in between, and it need only allow the exec itself.
pub struct PreparedExec<'a> {
    target: ExecTarget<'a>,
    // Kept for the pointers below (a CString's bytes do not move with it).
    _strings: (CArgs, CArgs),
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

enum ExecTarget<'a> {
    Path(CString),
    Fd(BorrowedFd<'a>),
}

impl<'a> PreparedExec<'a> {
    /// execve(path, ...). EINVAL when a string holds a NUL byte.
    pub fn path(path: &std::path::Path, args: &[String], env: &[String]) -> io::Result<Self> {
        let p = cstr(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        Self::new(ExecTarget::Path(p), args, env)
    }

    /// execveat(fd, "", AT_EMPTY_PATH): the file `fd` refers to.
    pub fn fd(fd: BorrowedFd<'a>, args: &[String], env: &[String]) -> io::Result<Self> {
        Self::new(ExecTarget::Fd(fd), args, env)
    }

    fn new(target: ExecTarget<'a>, args: &[String], env: &[String]) -> io::Result<Self> {
        let (a, e) =
            CArgs::new(args, env).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let (argv, envp) = (a.ptrs(), e.ptrs());
        Ok(PreparedExec {
            target,
            _strings: (a, e),
            argv,
            envp,
        })
    }

    /// Executes; returns only on failure.
    pub fn exec(&self) -> io::Error {
        // SAFETY: argv/envp are NUL-terminated arrays of C strings owned by `self._strings`;
        // with AT_EMPTY_PATH an empty path executes `fd` itself.
        unsafe {
            match &self.target {
                ExecTarget::Path(p) => {
                    libc::execve(p.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
                }
                ExecTarget::Fd(fd) => {
                    libc::syscall(
                        libc::SYS_execveat,
                        fd.as_raw_fd(),
                        c"".as_ptr(),
                        self.argv.as_ptr(),
                        self.envp.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    );
                }
            }
        }
        io::Error::last_os_error()
    }
}

/// Exits without running destructors or atexit handlers (the child of a fork-like clone must not
/// flush the parent's buffers).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

pub fn sethostname(name: &str) -> io::Result<()> {
    Ok(rustix::system::sethostname(name.as_bytes())?)
}

pub fn setdomainname(name: &str) -> io::Result<()> {
    Ok(rustix::system::setdomainname(name.as_bytes())?)
}

pub fn setsid() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}

pub fn umask(mask: u32) {
    rustix::process::umask(rustix::fs::Mode::from_bits_retain(mask));
}

/// Process start time (field 22 of /proc/PID/stat) and state letter: together with the pid they
/// identify one process even after pid reuse.
pub fn proc_stat(pid: i32) -> io::Result<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().and_then(|f| f.chars().next()).unwrap_or('?');
    let start = fields
        .get(19)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok((start, state))
}

/// Whether `pid` is still the process that started at `start` (its proc_stat start time) and
/// has not exited: a reused pid, a zombie and a dead process are all not alive.
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Ok((s, state)) if s == start && !matches!(state, 'Z' | 'X'))
}

/// Sets the kernel's name of this process (`comm`), which `ps` shows.
pub fn set_name(name: &str) {
    if let Ok(c) = CString::new(name) {
        let _ = rustix::thread::set_name(&c);
    }
}

pub fn set_pdeathsig(sig: i32) -> io::Result<()> {
    // SAFETY: plain prctl.
    cvt_i(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(drop)
}

pub fn set_dumpable(on: bool) -> io::Result<()> {
    use rustix::process::DumpableBehavior;
    let b = if on {
        DumpableBehavior::Dumpable
    } else {
        DumpableBehavior::NotDumpable
    };
    Ok(rustix::process::set_dumpable_behavior(b)?)
}

/// Terminal: make `fd` the controlling terminal of this (new session) process.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::process::ioctl_tiocsctty(fd)?)
}

/// waitpid(-1, WNOHANG): reaps any one exited child. None when none has exited (or none left).
pub fn reap_any() -> Option<(i32, Exit)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is writable; WNOHANG never blocks.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let exit = if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    };
    Some((pid, exit))
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Installs a handler that does nothing for every forwardable signal. A pid namespace's init
/// never receives a signal whose disposition is the default (the kernel drops it at send time,
/// even when blocked), so the `--init` reaper needs a handler to get them through its signalfd.
pub fn install_noop_handlers() {
    for sig in forwardable_signals() {
        // SAFETY: sigaction with a zeroed struct plus a valid extern "C" handler; the handler
        // touches nothing, so it is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = noop_handler as *const () as usize;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// fork(2) (the classic syscall, which seccomp profiles that refuse clone3 still allow).
/// `None` in the child.
pub fn fork(_one: &SingleThreaded) -> io::Result<Option<i32>> {
    // SAFETY: the caller is single-threaded (`_one` proves it), so the child's copy of the
    // address space has no lock held by another thread.
    let pid = cvt_i(unsafe { libc::fork() })?;
    Ok((pid != 0).then_some(pid))
}

/// Drops this process's executable file pages from its resident set and turns off fault-around
/// and read-ahead for them (MADV_RANDOM): a long-lived process that runs a small loop (the
/// per-container monitor) then keeps only the pages of code it runs, not the ~1 MiB its
/// start-up faulted in, 16 pages at a time. Only `r-xp` file mappings are touched: code is
/// never written, so the file holds exactly what is dropped and it faults back in unchanged.
pub fn trim_code_pages() -> io::Result<()> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    for l in maps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || f[1] != "r-xp" || !f[5].starts_with('/') {
            continue;
        }
        let Some((a, b)) = f[0].split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        // SAFETY: [start, end) is a whole private, read-only, executable file mapping of this
        // process (from /proc/self/maps): MADV_RANDOM changes only paging hints, and
        // MADV_DONTNEED on a mapping never written (no copy-on-write page exists) only unmaps
        // pages that fault back in from the same file with the same contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
            cvt_i(libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_DONTNEED,
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The test harness runs each test on a thread of its own, so this process is never
    /// single-threaded here: no proof can be had.
    /// A pid with another start time is a reused pid: not the process recorded.
    #[test]
    fn alive_is_this_pid_at_this_start() {
        let me = getpid();
        let (start, _) = proc_stat(me).unwrap();
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
        assert!(!alive(0, start));
        assert!(!alive(-1, start));
    }

    /// A zombie keeps its pid and start time but is no longer running.
    #[test]
    fn zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Until reaped the child stays a zombie; wait for it to get there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let start = loop {
            let (start, state) = proc_stat(pid).unwrap();
            if state == 'Z' {
                break start;
            }
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(!alive(pid, start));
        child.wait().unwrap();
    }

    #[test]
    fn no_single_threaded_proof_with_threads_running() {
        assert!(thread_count().unwrap() > 1);
        assert!(SingleThreaded::check().unwrap().is_none());
    }

    #[test]
    fn exec_fn_name_is_how_this_test_was_started() {
        let name = exec_fn_name().expect("AT_EXECFN");
        let exe = std::env::args().next().unwrap();
        assert_eq!(name.to_str().unwrap(), exe);
    }

    /// rustix has no Pid for 0 or less: those are EINVAL (the kernel's answer), not a panic.
    #[test]
    fn pidfd_open_of_no_pid_is_einval() {
        for pid in [0, -1] {
            let e = pidfd_open(pid).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{pid}");
        }
        let me = pidfd_open(getpid()).unwrap();
        assert!(waitid_pidfd(me.as_fd(), true).is_err(), "not our child");
    }
}
