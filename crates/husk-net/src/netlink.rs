//! Netlink as husk speaks it to the kernel (rtnetlink for links, addresses and routes;
//! nfnetlink for nftables): messages built into one buffer, one write(2) per transaction, and
//! every request acked, so a failure comes back as the errno (and the kernel's own text, when
//! it gives one) of the step that failed. The socket is non-blocking: rtnetlink and nfnetlink
//! answer inside the write, so an answer that is not there when read never comes.

use husk_runtime::Error;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_NETFILTER: i32 = 12;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// In an NLMSG_ERROR: TLVs (the kernel's message) follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLA_F_NESTED: u16 = 1 << 15;
const HDR: usize = 16;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One request: header, the family's fixed header, then attributes (4-byte aligned).
pub struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
    /// What it does, for errors ("create veth hk0a590002").
    pub step: String,
}

impl Msg {
    pub fn new(ty: u16, flags: u16, fixed: &[u8], step: impl Into<String>) -> Msg {
        let mut buf = vec![0; HDR];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(fixed);
        buf.resize(align(buf.len()), 0);
        Msg {
            buf,
            nests: vec![],
            step: step.into(),
        }
    }

    fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.buf[6], self.buf[7]])
    }

    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// Bytes that are not an attribute (a nested fixed header, as a veth peer's ifinfomsg).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    pub fn u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    /// Opens a nested attribute; `end` closes the innermost.
    pub fn begin(&mut self, ty: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.attr(ty | NLA_F_NESTED, &[])
    }

    pub fn end(&mut self) -> &mut Msg {
        let at = self.nests.pop().expect("end() after begin()");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn seal(&mut self, seq: u32) {
        debug_assert!(self.nests.is_empty());
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }
}

/// One reply message: its type and what follows the netlink header.
pub struct Reply {
    pub ty: u16,
    pub body: Vec<u8>,
}

/// The attributes in `data` (after a fixed header the caller skipped): (type without flags,
/// payload).
pub fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & !(NLA_F_NESTED | 0x4000);
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

/// A failed transaction: the error in husk's words and, when the kernel refused a request,
/// its errno (EEXIST, ENODEV: what callers may handle).
#[derive(Debug)]
pub struct Failure {
    pub errno: Option<i32>,
    pub error: Error,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        f.error
    }
}

pub struct Socket {
    file: std::fs::File,
    seq: u32,
}

impl Socket {
    /// A socket of `protocol` in the calling thread's network namespace.
    pub fn open(protocol: i32) -> Result<Socket, Error> {
        let fd =
            husk_sys::net::netlink_socket(protocol).map_err(Error::io("socket", "AF_NETLINK"))?;
        Self::from_fd(fd)
    }

    pub fn from_fd(fd: OwnedFd) -> Result<Socket, Error> {
        husk_sys::fs::set_nonblocking(std::os::fd::AsFd::as_fd(&fd), true)
            .map_err(Error::io("fcntl O_NONBLOCK", "AF_NETLINK"))?;
        Ok(Socket {
            file: std::fs::File::from(fd),
            seq: std::process::id().wrapping_mul(1000),
        })
    }

    /// Sends `msgs` in one write and collects the replies: an error ack ends it with that
    /// message's step, errno and the kernel's text. Replies other than acks (a dump's, an
    /// echo's) are returned in order.
    pub fn transact(&mut self, msgs: &mut [Msg]) -> Result<Vec<Reply>, Failure> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for m in msgs.iter_mut() {
            self.seq = self.seq.wrapping_add(1);
            m.seal(self.seq);
            out.extend_from_slice(&m.buf);
        }
        let step = |seq: u32| -> &str {
            msgs.get(seq.wrapping_sub(first) as usize)
                .map_or("netlink", |m| m.step.as_str())
        };
        let fail = |seq: u32, e: std::io::Error| Failure {
            errno: None,
            error: Error::Msg(format!(
                "network: {}: netlink: {}",
                step(seq),
                husk_runtime::errno_text(&e)
            )),
        };
        self.file.write_all(&out).map_err(|e| fail(first, e))?;
        // What must still come back: an ack per NLM_F_ACK request, the end of each dump.
        let mut pending: Vec<u32> = msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.flags() & (NLM_F_ACK | NLM_F_DUMP) != 0)
            .map(|(i, _)| first.wrapping_add(i as u32))
            .collect();
        let mut replies = vec![];
        let mut buf = vec![0u8; 64 * 1024];
        while !pending.is_empty() {
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => return Err(fail(pending[0], e)),
            };
            let mut data = &buf[..n];
            while data.len() >= HDR {
                let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
                if len < HDR || len > data.len() {
                    break;
                }
                let ty = u16::from_ne_bytes([data[4], data[5]]);
                let flags = u16::from_ne_bytes([data[6], data[7]]);
                let seq = u32::from_ne_bytes(data[8..12].try_into().expect("4 bytes"));
                let body = &data[HDR..len];
                data = &data[align(len).min(data.len())..];
                let ours = seq.wrapping_sub(first) < msgs.len() as u32;
                // A refusal of a request that wanted no ack (an nf_tables batch's begin, when
                // nf_tables is missing) ends the transaction too.
                let wanted = pending.contains(&seq) || (ours && ty == NLMSG_ERROR);
                if !wanted {
                    // A reply to an earlier transaction that already failed.
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(body[0..4].try_into().expect("4 bytes"));
                        pending.retain(|s| *s != seq);
                        if code != 0 {
                            return Err(Failure {
                                errno: Some(-code),
                                error: ack_error(step(seq), -code, flags, body),
                            });
                        }
                    }
                    NLMSG_DONE => pending.retain(|s| *s != seq),
                    _ => {
                        replies.push(Reply {
                            ty,
                            body: body.to_vec(),
                        });
                        if flags & NLM_F_MULTI == 0
                            && msgs[seq.wrapping_sub(first) as usize].flags() & NLM_F_ACK == 0
                        {
                            pending.retain(|s| *s != seq);
                        }
                    }
                }
            }
        }
        Ok(replies)
    }
}

/// An error ack in husk's words: the step, the errno, and the kernel's extended-ack message.
fn ack_error(step: &str, errno: i32, flags: u16, body: &[u8]) -> Error {
    let e = std::io::Error::from_raw_os_error(errno);
    let mut msg = format!("network: {step}: {}", husk_runtime::errno_text(&e));
    // The error code and the request's header (NETLINK_CAP_ACK: without its payload).
    if flags & NLM_F_ACK_TLVS != 0 && body.len() > 4 + HDR {
        for (ty, v) in attrs(&body[4 + HDR..]) {
            if ty == NLMSGERR_ATTR_MSG {
                let text = String::from_utf8_lossy(v);
                msg.push_str(&format!(" (kernel: {})", text.trim_end_matches('\0')));
            }
        }
    }
    Error::Msg(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_aligned_and_nested() {
        let mut m = Msg::new(16, NLM_F_ACK, &[0; 16], "test");
        m.str(3, "eth0").begin(18).str(1, "veth").end();
        m.seal(7);
        let b = &m.buf;
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        let a = attrs(&b[HDR + 16..]);
        assert_eq!(a[0], (3, &b"eth0\0"[..]));
        assert_eq!(a[1].0, 18);
        assert_eq!(attrs(a[1].1), [(1, &b"veth\0"[..])]);
        assert_eq!(m.flags(), NLM_F_ACK | NLM_F_REQUEST);
    }

    #[test]
    fn error_acks_name_the_step_errno_and_kernel_text() {
        let mut body = (-17i32).to_ne_bytes().to_vec();
        body.extend_from_slice(&[0; HDR]);
        body.extend_from_slice(&[12, 0, 1, 0]);
        body.extend_from_slice(b"exists\0\0");
        let e = ack_error("create veth hk1", 17, NLM_F_ACK_TLVS, &body).to_string();
        assert!(e.contains("network: create veth hk1: EEXIST"), "{e}");
        assert!(e.ends_with("(kernel: exists)"), "{e}");
    }
}
