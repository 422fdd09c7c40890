//! `linux.resources.devices` → a BPF_PROG_TYPE_CGROUP_DEVICE program, for cgroup v2 (which has
//! no devices.allow/deny files). Pure: the instructions are computed here and golden-tested;
//! `apply.rs` loads and attaches them through `husk_sys::bpf`.
//!
//! Meaning (the same as the v1 files and runc):
//! - type `a` (or no type) means every device and every access, whatever major, minor and
//!   access say; it resets everything before it and sets the default. Without one the default
//!   is deny (runc's fresh rule set is an allow list).
//! - The rules after the last `a` rule, then the container's `linux.devices` (always allowed,
//!   `rwm`), are checked last one first: the last rule that matches decides.
//! - An allow rule matches a request when it grants every access asked for; a deny rule matches
//!   when it covers any of them (so `deny c 1:5 r` also refuses opening /dev/zero read-write).
//!
//! The program (the kernel calls it with `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }`, access_type = access << 16 | type; it returns 1 to allow, 0 for
//! EPERM) loads the context into r2 (type), r3 (access), r4 (major), r5 (minor), then has one
//! block per rule that jumps to the next block on the first field that does not match, or
//! returns the rule's answer; the last instructions return the default.

use crate::resources::DeviceRule;
use std::fmt;

/// One eBPF instruction, with the fields of the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | operation | source), from linux/bpf_common.h and linux/bpf.h.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// linux/bpf.h: BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_*.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

impl fmt::Display for Insn {
    /// The kernel verifier's notation (as `bpftool prog dump xlated` prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, s, off, imm) = (self.dst, self.src, self.off, self.imm);
        match self.code {
            LDX_MEM_W => write!(f, "r{d} = *(u32 *)(r{s} + {off})"),
            ALU32_AND_K => write!(f, "w{d} &= {imm:#x}"),
            ALU32_RSH_K => write!(f, "w{d} >>= {imm}"),
            ALU32_MOV_K => write!(f, "w{d} = {imm}"),
            ALU32_MOV_X => write!(f, "w{d} = w{s}"),
            JNE_K => write!(f, "if r{d} != {imm} goto {off:+}"),
            JNE_X => write!(f, "if r{d} != r{s} goto {off:+}"),
            JEQ_K => write!(f, "if r{d} == {imm} goto {off:+}"),
            EXIT => write!(f, "exit"),
            c => write!(f, "(code {c:#04x} r{d} r{s} {off} {imm})"),
        }
    }
}

/// One rule as the program checks it; `None` is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// None: type `a`.
    kind: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
}

fn number(n: Option<i64>, what: &str, i: usize) -> Result<Option<i32>, String> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => i32::try_from(n).map(Some).map_err(|_| {
            format!("linux.resources.devices[{i}].{what}: {n} is not a device number")
        }),
    }
}

fn rule(i: usize, r: &DeviceRule) -> Result<Rule, String> {
    let kind = match r.kind.as_deref().unwrap_or("a") {
        "a" => None,
        "c" => Some(DEV_CHAR),
        "b" => Some(DEV_BLOCK),
        k => {
            return Err(format!(
                "linux.resources.devices[{i}].type: \"{k}\" is not a, b or c"
            ));
        }
    };
    let mut access = 0;
    for c in r.access.as_deref().unwrap_or("").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(format!(
                    "linux.resources.devices[{i}].access: \"{}\" is not made of r, w and m",
                    r.access.as_deref().unwrap_or("")
                ));
            }
        };
    }
    Ok(Rule {
        allow: r.allow,
        kind,
        major: number(r.major, "major", i)?,
        minor: number(r.minor, "minor", i)?,
        // No access given means all of them (as the v1 files take it).
        access: if access == 0 { ACC_ALL } else { access },
    })
}

/// Compiles the rules plus the always-allowed `linux.devices` entries `(type, major, minor)`.
pub fn compile(
    rules: &[DeviceRule],
    extra_devices: &[(char, i64, i64)],
) -> Result<Vec<Insn>, String> {
    let parsed: Vec<Rule> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(i, r))
        .collect::<Result<_, _>>()?;
    // An `a` rule resets what came before it and sets the default.
    let (default_allow, mut rest) = match parsed.iter().rposition(|r| r.kind.is_none()) {
        Some(p) => (parsed[p].allow, parsed[p + 1..].to_vec()),
        None => (false, parsed),
    };
    for &(kind, major, minor) in extra_devices {
        let kind = match kind {
            'c' => DEV_CHAR,
            'b' => DEV_BLOCK,
            _ => continue,
        };
        let num = |n: i64, what: &str| {
            i32::try_from(n)
                .map_err(|_| format!("linux.devices: {what} {n} is not a device number"))
        };
        rest.push(Rule {
            allow: true,
            kind: Some(kind),
            major: Some(num(major, "major")?),
            minor: Some(num(minor, "minor")?),
            access: ACC_ALL,
        });
    }
    let mut prog = Vec::new();
    // Rules that all say what the default says change nothing.
    if rest.iter().any(|r| r.allow != default_allow) {
        prog.extend([
            insn(LDX_MEM_W, 2, 1, 0, 0),
            insn(ALU32_AND_K, 2, 0, 0, 0xffff),
            insn(LDX_MEM_W, 3, 1, 0, 0),
            insn(ALU32_RSH_K, 3, 0, 0, 16),
            insn(LDX_MEM_W, 4, 1, 4, 0),
            insn(LDX_MEM_W, 5, 1, 8, 0),
        ]);
        for r in rest.iter().rev() {
            prog.extend(block(r));
        }
    }
    prog.extend([
        insn(ALU32_MOV_K, 0, 0, 0, default_allow.into()),
        insn(EXIT, 0, 0, 0, 0),
    ]);
    Ok(prog)
}

/// One rule's block. Every rule here has a type (the `a` ones were folded into the default), so
/// the block always has a condition and the code after it stays reachable.
fn block(r: &Rule) -> Vec<Insn> {
    // Jumps are built with off = 0 and pointed at the end of the block below.
    let mut b = Vec::new();
    if let Some(k) = r.kind {
        b.push(insn(JNE_K, 2, 0, 0, k));
    }
    if r.access != ACC_ALL {
        b.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
        b.push(insn(ALU32_AND_K, 1, 0, 0, r.access));
        b.push(if r.allow {
            // Allow only when every access asked for is granted: (access & rule) == access.
            insn(JNE_X, 1, 3, 0, 0)
        } else {
            // Deny when any access asked for is covered: (access & rule) != 0.
            insn(JEQ_K, 1, 0, 0, 0)
        });
    }
    if let Some(m) = r.major {
        b.push(insn(JNE_K, 4, 0, 0, m));
    }
    if let Some(m) = r.minor {
        b.push(insn(JNE_K, 5, 0, 0, m));
    }
    b.push(insn(ALU32_MOV_K, 0, 0, 0, r.allow.into()));
    b.push(insn(EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, x) in b.iter_mut().enumerate() {
        if matches!(x.code, JNE_K | JNE_X | JEQ_K) {
            // The offset counts from the next instruction; the target is the next block.
            x.off = (len - i - 1) as i16;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<DeviceRule> {
        serde_json::from_str(json).unwrap()
    }

    fn text(p: &[Insn]) -> Vec<String> {
        p.iter().map(|i| i.to_string()).collect()
    }

    const PROLOGUE: [&str; 6] = [
        "r2 = *(u32 *)(r1 + 0)",
        "w2 &= 0xffff",
        "r3 = *(u32 *)(r1 + 0)",
        "w3 >>= 16",
        "r4 = *(u32 *)(r1 + 4)",
        "r5 = *(u32 *)(r1 + 8)",
    ];

    fn with_prologue(body: &[&str]) -> Vec<String> {
        PROLOGUE.iter().chain(body).map(|s| s.to_string()).collect()
    }

    /// Runs the program the way the kernel would for one access: (type, access, major, minor).
    fn run(p: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16 | kind) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            let jump = |taken: bool, pc: &mut usize| {
                if taken {
                    *pc = (*pc as i64 + i64::from(i.off)) as usize;
                }
            };
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1);
                    r[d] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => r[d] = u64::from(r[d] as u32 & i.imm as u32),
                ALU32_RSH_K => r[d] = u64::from((r[d] as u32) >> i.imm),
                ALU32_MOV_K => r[d] = u64::from(i.imm as u32),
                ALU32_MOV_X => r[d] = u64::from(r[s] as u32),
                JNE_K => jump(r[d] != i.imm as i64 as u64, &mut pc),
                JNE_X => jump(r[d] != r[s], &mut pc),
                JEQ_K => jump(r[d] == i.imm as i64 as u64, &mut pc),
                EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    const R: i32 = ACC_READ;
    const W: i32 = ACC_WRITE;
    const M: i32 = ACC_MKNOD;

    #[test]
    fn deny_all() {
        let p = compile(&rules(r#"[{"allow":false,"access":"rwm"}]"#), &[]).unwrap();
        assert_eq!(text(&p), vec!["w0 = 0", "exit"]);
        assert_eq!(run(&p, DEV_CHAR, R, 1, 3), 0);
        // Nothing at all: still an allow list (runc's default).
        assert_eq!(text(&compile(&[], &[]).unwrap()), vec!["w0 = 0", "exit"]);
    }

    #[test]
    fn deny_all_allow_dev_null() {
        let p = compile(
            &rules(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]"#),
            &[],
        )
        .unwrap();
        assert_eq!(
            text(&p),
            with_prologue(&[
                "if r2 != 2 goto +4",
                "if r4 != 1 goto +3",
                "if r5 != 3 goto +2",
                "w0 = 1",
                "exit",
                "w0 = 0",
                "exit",
            ])
        );
        assert_eq!(run(&p, DEV_CHAR, R | W, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, M, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, R, 1, 5), 0);
        assert_eq!(run(&p, DEV_BLOCK, R, 1, 3), 0);
        // The raw fields of two instructions, as the kernel reads them.
        assert_eq!(p[6], insn(JNE_K, 2, 0, 4, 2));
        assert_eq!(p[0], insn(LDX_MEM_W, 2, 1, 0, 0));
    }

    #[test]
    fn wildcard_major_minor_and_partial_access() {
        let p = compile(
            &rules(
                r#"[{"allow":false,"access":"rwm"},
                    {"allow":true,"type":"c","access":"m"},
                    {"allow":true,"type":"b","major":8,"access":"rw"},
                    {"allow":true,"type":"c","minor":7,"access":"rwm"}]"#,
            ),
            &[],
        )
        .unwrap();
        assert_eq!(
            text(&p),
            with_prologue(&[
                // c *:7 rwm (the last rule is checked first)
                "if r2 != 2 goto +3",
                "if r5 != 7 goto +2",
                "w0 = 1",
                "exit",
                // b 8:* rw
                "if r2 != 1 goto +6",
                "w1 = w3",
                "w1 &= 0x6",
                "if r1 != r3 goto +3",
                "if r4 != 8 goto +2",
                "w0 = 1",
                "exit",
                // c *:* m
                "if r2 != 2 goto +5",
                "w1 = w3",
                "w1 &= 0x1",
                "if r1 != r3 goto +2",
                "w0 = 1",
                "exit",
                "w0 = 0",
                "exit",
            ])
        );
        assert_eq!(run(&p, DEV_CHAR, M, 42, 1), 1);
        assert_eq!(run(&p, DEV_CHAR, R, 42, 1), 0);
        assert_eq!(run(&p, DEV_CHAR, R | W, 99, 7), 1);
        assert_eq!(run(&p, DEV_BLOCK, R | W, 8, 16), 1);
        assert_eq!(
            run(&p, DEV_BLOCK, R | M, 8, 16),
            0,
            "m is not granted for b 8:*"
        );
        assert_eq!(run(&p, DEV_BLOCK, R, 9, 0), 0);
    }

    #[test]
    fn type_a_resets_and_sets_the_default() {
        // A trailing allow-all wins over everything before it; linux.devices add nothing.
        let p = compile(
            &rules(
                r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3},
                    {"allow":true,"type":"a","major":5,"access":"r"}]"#,
            ),
            &[('c', 1, 5)],
        )
        .unwrap();
        assert_eq!(text(&p), vec!["w0 = 1", "exit"]);
        // No type is type a; deny rules then carve out of the allow-all.
        let p = compile(
            &rules(
                r#"[{"allow":true},{"allow":false,"type":"c","major":1,"minor":5,"access":"r"}]"#,
            ),
            &[],
        )
        .unwrap();
        assert_eq!(
            text(&p),
            with_prologue(&[
                "if r2 != 2 goto +7",
                "w1 = w3",
                "w1 &= 0x2",
                "if r1 == 0 goto +4",
                "if r4 != 1 goto +3",
                "if r5 != 5 goto +2",
                "w0 = 0",
                "exit",
                "w0 = 1",
                "exit",
            ])
        );
        assert_eq!(run(&p, DEV_CHAR, R, 1, 5), 0);
        assert_eq!(
            run(&p, DEV_CHAR, R | W, 1, 5),
            0,
            "a deny covers any access asked"
        );
        assert_eq!(run(&p, DEV_CHAR, W, 1, 5), 1);
        assert_eq!(run(&p, DEV_CHAR, R, 1, 3), 1);
    }

    #[test]
    fn last_match_wins_and_linux_devices_are_allowed() {
        let p = compile(
            &rules(
                r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"access":"rwm"},
                    {"allow":false,"type":"c","major":1,"minor":5,"access":"rwm"}]"#,
            ),
            &[('c', 10, 200), ('p', 0, 0)],
        )
        .unwrap();
        assert_eq!(run(&p, DEV_CHAR, R, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, R, 1, 5), 0);
        assert_eq!(run(&p, DEV_CHAR, R | W | M, 10, 200), 1);
        assert_eq!(run(&p, DEV_CHAR, R, 10, 201), 0);
        // A linux.devices entry overrides a deny rule for the same device.
        let p = compile(
            &rules(r#"[{"allow":true},{"allow":false,"type":"c","major":1,"minor":3}]"#),
            &[('c', 1, 3)],
        )
        .unwrap();
        assert_eq!(run(&p, DEV_CHAR, R, 1, 3), 1);
    }

    #[test]
    fn runc_defaults_after_podmans_deny_all() {
        // podman: deny all, then its own allows; husk appends runc's defaults (apply.rs).
        let mut rs = rules(r#"[{"allow":false,"access":"rwm"}]"#);
        rs.extend(crate::resources::runc_default_rules());
        let p = compile(&rs, &[]).unwrap();
        assert_eq!(run(&p, DEV_CHAR, R | W, 5, 2), 1, "ptmx");
        assert_eq!(run(&p, DEV_CHAR, R | W, 136, 7), 1, "a pts");
        assert_eq!(run(&p, DEV_CHAR, R | W, 10, 200), 1, "tun");
        assert_eq!(run(&p, DEV_CHAR, R | W, 5, 0), 1, "tty");
        for minor in [3, 5, 7, 8, 9] {
            assert_eq!(run(&p, DEV_CHAR, R | W, 1, minor), 1, "c 1:{minor}");
        }
        assert_eq!(run(&p, DEV_CHAR, M, 62, 7), 1, "mknod of anything");
        assert_eq!(run(&p, DEV_BLOCK, M, 8, 0), 1, "mknod of anything");
        assert_eq!(run(&p, DEV_CHAR, R, 62, 7), 0);
        assert_eq!(run(&p, DEV_CHAR, R | M, 62, 7), 0);
        assert_eq!(run(&p, DEV_BLOCK, R, 8, 0), 0);
        assert_eq!(
            run(&p, DEV_CHAR, R, 5, 1),
            0,
            "runc 1.1 has no /dev/console rule"
        );
        // Appended last, they outlive a config that denies them.
        let mut rs = rules(r#"[{"allow":true},{"allow":false,"type":"c","major":5,"minor":2}]"#);
        rs.extend(crate::resources::runc_default_rules());
        assert_eq!(run(&compile(&rs, &[]).unwrap(), DEV_CHAR, R | W, 5, 2), 1);
    }

    #[test]
    fn bad_rules_are_errors_naming_the_field() {
        let e = compile(&rules(r#"[{"allow":true,"type":"x"}]"#), &[]).unwrap_err();
        assert!(e.contains("devices[0].type"), "{e}");
        let e = compile(
            &rules(r#"[{"allow":true},{"allow":true,"type":"c","access":"rx"}]"#),
            &[],
        )
        .unwrap_err();
        assert!(e.contains("devices[1].access"), "{e}");
        let e = compile(
            &rules(r#"[{"allow":true,"type":"c","major":4294967296}]"#),
            &[],
        )
        .unwrap_err();
        assert!(e.contains("devices[0].major"), "{e}");
    }
}
