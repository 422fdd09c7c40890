//! The little of D-Bus the systemd driver needs, over systemd's private socket: EXTERNAL
//! authentication, method calls with the marshalled types systemd's Manager takes, and replies
//! read until the one answering the call (signals in between are skipped). Synchronous and
//! little-endian only (the byte order every Linux host husk runs on sends).
//!
//! Why not a crate: zbus and dbus-rs bring an async runtime or libdbus (C, not in a static musl
//! build); the calls made here are five, so the wire format is written out (see the
//! "Message Protocol" of the D-Bus specification).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A marshalled value. Arrays carry their element signature so an empty one still has a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    ObjPath(String),
    Sig(String),
    Variant(Box<Value>),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::ObjPath(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Variant(_) => "v".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                format!(
                    "({})",
                    fields.iter().map(Value::signature).collect::<String>()
                )
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjPath(s) | Value::Sig(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }
}

fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b't' | b'x' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// Offsets are from the start of the message (a body starts 8-aligned, so aligning within it
/// is the same).
struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn fixed<const N: usize>(&mut self, bytes: [u8; N]) {
        self.pad(N);
        self.buf.extend_from_slice(&bytes);
    }

    fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(n.to_le_bytes()),
            Value::U16(n) => self.fixed(n.to_le_bytes()),
            Value::I32(n) => self.fixed(n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(n.to_le_bytes()),
            Value::U64(n) => self.fixed(n.to_le_bytes()),
            Value::Double(n) => self.fixed(n.to_le_bytes()),
            Value::Str(s) | Value::ObjPath(s) => {
                self.u32(s.len() as u32);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Variant(inner) => {
                self.put(&Value::Sig(inner.signature()));
                self.put(inner);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(align_of(elem.as_bytes()[0]));
                let start = self.buf.len();
                for i in items {
                    self.put(i);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                fields.iter().for_each(|f| self.put(f));
            }
        }
    }
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The length of the first complete type in `sig`.
fn one_type(sig: &[u8]) -> io::Result<usize> {
    match sig.first() {
        Some(b'a') => Ok(1 + one_type(&sig[1..])?),
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut i = 1;
            while sig.get(i) != Some(&close) {
                if i >= sig.len() {
                    return Err(bad("unbalanced signature"));
                }
                i += one_type(&sig[i..])?;
            }
            Ok(i + 1)
        }
        Some(_) => Ok(1),
        None => Err(bad("empty signature")),
    }
}

impl Dec<'_> {
    fn align(&mut self, a: usize) -> io::Result<()> {
        self.pos = self.pos.div_ceil(a) * a;
        if self.pos > self.buf.len() {
            return Err(bad("message too short"));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| bad("message too short"))?;
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> io::Result<u32> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn text(&mut self, len: usize) -> io::Result<String> {
        let s = String::from_utf8(self.take(len)?.to_vec()).map_err(|_| bad("string not UTF-8"))?;
        self.take(1)?;
        Ok(s)
    }

    /// Reads one value of the complete type `sig`.
    fn get(&mut self, sig: &[u8]) -> io::Result<Value> {
        Ok(match sig[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' | b'q' => {
                self.align(2)?;
                let b: [u8; 2] = self.take(2)?.try_into().expect("2");
                match sig[0] {
                    b'n' => Value::I16(i16::from_le_bytes(b)),
                    _ => Value::U16(u16::from_le_bytes(b)),
                }
            }
            b'u' | b'h' => Value::U32(self.u32()?),
            b'i' => Value::I32(self.u32()? as i32),
            b't' | b'x' | b'd' => {
                self.align(8)?;
                let b: [u8; 8] = self.take(8)?.try_into().expect("8");
                match sig[0] {
                    b'x' => Value::I64(i64::from_le_bytes(b)),
                    b'd' => Value::Double(f64::from_le_bytes(b)),
                    _ => Value::U64(u64::from_le_bytes(b)),
                }
            }
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if sig[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::ObjPath(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                Value::Variant(Box::new(self.get(inner.as_bytes())?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..1 + one_type(&sig[1..])?];
                self.align(align_of(elem[0]))?;
                let end = self.pos + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.get(elem)?);
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let inner = &sig[1..one_type(sig)? - 1];
                let mut fields = Vec::new();
                let mut i = 0;
                while i < inner.len() {
                    let n = one_type(&inner[i..])?;
                    fields.push(self.get(&inner[i..i + n])?);
                    i += n;
                }
                Value::Struct(fields)
            }
            c => return Err(bad(format!("unsupported D-Bus type {:?}", c as char))),
        })
    }

    fn all(&mut self, sig: &str) -> io::Result<Vec<Value>> {
        let sig = sig.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < sig.len() {
            let n = one_type(&sig[i..])?;
            out.push(self.get(&sig[i..i + n])?);
            i += n;
        }
        Ok(out)
    }
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// A method call, marshalled with `serial`.
pub fn call_message(serial: u32, path: &str, iface: &str, member: &str, args: &[Value]) -> Vec<u8> {
    let mut body = Enc { buf: Vec::new() };
    args.iter().for_each(|a| body.put(a));
    let sig: String = args.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::ObjPath(path.into())),
        field(2, Value::Str(iface.into())),
        field(3, Value::Str(member.into())),
    ];
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut m = Enc {
        buf: vec![b'l', METHOD_CALL, 0, 1],
    };
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.put(&Value::Array("(yv)".into(), fields));
    m.pad(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

/// A message read back: its type, the serial it answers, the error name, and the body.
#[derive(Debug)]
pub struct Reply {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub error: Option<String>,
    pub body: Vec<Value>,
}

pub fn parse_message(msg: &[u8]) -> io::Result<Reply> {
    if msg.first() != Some(&b'l') {
        return Err(bad("not a little-endian D-Bus message"));
    }
    let mut d = Dec { buf: msg, pos: 12 };
    let Value::Array(_, fields) = d.get(b"a(yv)")? else {
        unreachable!("an array signature gives an array")
    };
    d.align(8)?;
    let mut reply = Reply {
        kind: msg[1],
        reply_serial: None,
        error: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(f) = f else { continue };
        let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else {
            continue;
        };
        match (code, v.as_ref()) {
            (4, Value::Str(s)) => reply.error = Some(s.clone()),
            (5, Value::U32(n)) => reply.reply_serial = Some(*n),
            (8, Value::Sig(s)) => sig = s.clone(),
            _ => {}
        }
    }
    reply.body = d.all(&sig)?;
    Ok(reply)
}

/// A D-Bus error reply: its name (e.g. org.freedesktop.systemd1.NoSuchUnit) and message.
#[derive(Debug)]
pub struct CallError {
    pub name: String,
    pub message: String,
}

pub struct Conn {
    stream: BufReader<UnixStream>,
    serial: u32,
}

impl Conn {
    /// Connects and authenticates as our own uid (systemd checks it against the socket's peer
    /// credentials). The private socket talks to systemd directly: no bus, no Hello.
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Conn> {
        use std::os::unix::fs::MetadataExt;
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let uid = std::fs::metadata("/proc/self")?.uid().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let mut stream = BufReader::new(stream);
        stream
            .get_mut()
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(bad(format!(
                "authentication refused: {:?}",
                line.trim_end()
            )));
        }
        stream.get_mut().write_all(b"BEGIN\r\n")?;
        Ok(Conn { stream, serial: 0 })
    }

    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.get_ref().set_read_timeout(Some(timeout))?;
        self.stream.get_ref().set_write_timeout(Some(timeout))
    }

    fn read_message(&mut self) -> io::Result<Vec<u8>> {
        let mut head = [0u8; 16];
        self.stream.read_exact(&mut head)?;
        let body_len = u32::from_le_bytes(head[4..8].try_into().expect("4")) as usize;
        let fields_len = u32::from_le_bytes(head[12..16].try_into().expect("4")) as usize;
        let total = (16 + fields_len).div_ceil(8) * 8 + body_len;
        if total > 64 << 20 {
            return Err(bad(format!("message of {total} bytes")));
        }
        let mut msg = head.to_vec();
        msg.resize(total, 0);
        self.stream.read_exact(&mut msg[16..])?;
        Ok(msg)
    }

    /// Calls a method of systemd's and returns the reply's body, or the D-Bus error.
    pub fn call(
        &mut self,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> io::Result<Result<Vec<Value>, CallError>> {
        self.serial += 1;
        let msg = call_message(self.serial, path, iface, member, args);
        self.stream.get_mut().write_all(&msg)?;
        loop {
            let reply = parse_message(&self.read_message()?)?;
            if !matches!(reply.kind, METHOD_RETURN | ERROR)
                || reply.reply_serial != Some(self.serial)
            {
                continue;
            }
            if reply.kind == METHOD_RETURN {
                return Ok(Ok(reply.body));
            }
            return Ok(Err(CallError {
                name: reply.error.unwrap_or_default(),
                message: reply
                    .body
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_marshals_as_the_specification_lays_it_out() {
        let msg = call_message(
            7,
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "GetUnit",
            &[Value::Str("a.scope".into())],
        );
        // Header: little-endian, method call, no flags, version 1, body length, serial.
        assert_eq!(&msg[..4], &[b'l', 1, 0, 1]);
        assert_eq!(u32::from_le_bytes(msg[4..8].try_into().unwrap()), 4 + 7 + 1);
        assert_eq!(u32::from_le_bytes(msg[8..12].try_into().unwrap()), 7);
        let body_at = msg.len() - 12;
        assert_eq!(body_at % 8, 0, "the body starts 8-aligned");
        assert_eq!(&msg[body_at..], b"\x07\0\0\0a.scope\0");
        let back = parse_message(&msg).unwrap();
        assert_eq!(back.kind, METHOD_CALL);
        assert_eq!(back.body, vec![Value::Str("a.scope".into())]);
    }

    #[test]
    fn start_transient_unit_arguments_round_trip() {
        let prop = |n: &str, v: Value| {
            Value::Struct(vec![Value::Str(n.into()), Value::Variant(Box::new(v))])
        };
        let args = vec![
            Value::Str("husk-x.scope".into()),
            Value::Str("replace".into()),
            Value::Array(
                "(sv)".into(),
                vec![
                    prop("Delegate", Value::Bool(true)),
                    prop("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                    prop("MemoryMax", Value::U64(1 << 30)),
                    prop(
                        "AllowedCPUs",
                        Value::Array("y".into(), vec![Value::Byte(5)]),
                    ),
                    prop(
                        "DeviceAllow",
                        Value::Array(
                            "(ss)".into(),
                            vec![Value::Struct(vec![
                                Value::Str("/dev/char/1:3".into()),
                                Value::Str("rwm".into()),
                            ])],
                        ),
                    ),
                ],
            ),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let msg = call_message(1, "/", "i.f", "StartTransientUnit", &args);
        let back = parse_message(&msg).unwrap();
        assert_eq!(back.body, args);
        assert_eq!(
            args.iter().map(Value::signature).collect::<String>(),
            "ssa(sv)a(sa(sv))"
        );
    }

    #[test]
    fn every_number_type_keeps_its_size_alignment_and_sign() {
        // A byte first, so each number after it has to be padded to its own alignment.
        let args = vec![
            Value::Byte(1),
            Value::I16(-2),
            Value::Byte(3),
            Value::U16(65535),
            Value::Byte(4),
            Value::I32(-5),
            Value::Byte(6),
            Value::I64(-7),
            Value::Byte(8),
            Value::Double(2.5),
        ];
        let mut e = Enc { buf: Vec::new() };
        args.iter().for_each(|a| e.put(a));
        assert_eq!(
            e.buf,
            [
                &[1, 0][..],
                &(-2i16).to_le_bytes(),
                &[3, 0],
                &[0xff, 0xff],
                &[4, 0, 0, 0],
                &(-5i32).to_le_bytes(),
                &[6, 0, 0, 0, 0, 0, 0, 0],
                &(-7i64).to_le_bytes(),
                &[8, 0, 0, 0, 0, 0, 0, 0],
                &2.5f64.to_le_bytes(),
            ]
            .concat()
        );
        let sig: String = args.iter().map(Value::signature).collect();
        assert_eq!(sig, "ynyqyiyxyd");
        let mut d = Dec {
            buf: &e.buf,
            pos: 0,
        };
        assert_eq!(d.all(&sig).unwrap(), args);
    }

    #[test]
    fn an_error_reply_gives_its_name_and_reply_serial() {
        // An error message as systemd sends one (hand-built: type 3, ERROR_NAME, REPLY_SERIAL).
        let mut m = Enc {
            buf: vec![b'l', ERROR, 1, 1],
        };
        let body = {
            let mut b = Enc { buf: Vec::new() };
            b.put(&Value::Str("Unit x not loaded.".into()));
            b.buf
        };
        m.u32(body.len() as u32);
        m.u32(9);
        let f = |c: u8, v: Value| Value::Struct(vec![Value::Byte(c), Value::Variant(Box::new(v))]);
        m.put(&Value::Array(
            "(yv)".into(),
            vec![
                f(4, Value::Str("org.freedesktop.systemd1.NoSuchUnit".into())),
                f(5, Value::U32(3)),
                f(8, Value::Sig("s".into())),
            ],
        ));
        m.pad(8);
        m.buf.extend_from_slice(&body);
        let r = parse_message(&m.buf).unwrap();
        assert_eq!(r.kind, ERROR);
        assert_eq!(r.reply_serial, Some(3));
        assert_eq!(
            r.error.as_deref(),
            Some("org.freedesktop.systemd1.NoSuchUnit")
        );
        assert_eq!(r.body[0].as_str(), Some("Unit x not loaded."));
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let msg = call_message(1, "/", "i.f", "M", &[Value::Str("abc".into())]);
        for n in 13..msg.len() {
            let _ = parse_message(&msg[..n]);
        }
        assert!(parse_message(&msg[..msg.len() - 3]).is_err());
    }
}
