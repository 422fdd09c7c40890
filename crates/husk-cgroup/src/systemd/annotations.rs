//! `org.systemd.property.NAME` annotations: unit properties of the container's scope, given
//! by whoever wrote config.json (runc's feature, docs/systemd-properties.md there). The value
//! is in GVariant text format (`uint64 123456789`, `'inactive-or-failed'`, `['a', 'b']`,
//! `@as []`); a NAME ending in a lowercase letter and `Sec` is a time in seconds that
//! systemd takes as NAMEUSec in microseconds, as runc converts it.

use super::dbus::Value;
use super::props::Prop;
use std::collections::BTreeMap;

pub const PREFIX: &str = "org.systemd.property.";

/// Properties husk sets to find the container's cgroup and init again: changed by an
/// annotation, the scope would be where husk does not look.
const OWN: [&str; 3] = ["Slice", "PIDs", "Delegate"];

/// The properties the annotations ask for, in name order; an annotation that is not one
/// (bad name, value or type) refuses the container with the annotation named.
pub fn properties(annotations: &BTreeMap<String, String>) -> Result<Vec<Prop>, String> {
    let mut out = Vec::new();
    for (key, text) in annotations {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let bad = |why: String| format!("annotation {key}={text:?}: {why}");
        // systemd's property names are letters only; runc asks for 3 at least.
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad("a property name is 3 or more ASCII letters".into()));
        }
        if OWN.contains(&name) {
            return Err(bad(format!(
                "{name} is set by husk itself (the scope must stay where husk finds it)"
            )));
        }
        let value = parse(text).map_err(bad)?;
        let seconds = name
            .strip_suffix("Sec")
            .filter(|base| base.ends_with(|c: char| c.is_ascii_lowercase()));
        match seconds {
            Some(base) => {
                let usec = to_usec(&value)
                    .ok_or_else(|| bad(format!("{name} is a time in seconds: give a number")))?;
                out.push((format!("{base}USec"), Value::U64(usec)));
            }
            None => out.push((name.to_string(), value)),
        }
    }
    Ok(out)
}

/// Seconds as microseconds (runc's convertSecToUSec: negative integers wrap as in Go's
/// uint64 conversion are refused here instead).
fn to_usec(v: &Value) -> Option<u64> {
    const M: u64 = 1_000_000;
    let whole = |n: i64| u64::try_from(n).ok()?.checked_mul(M);
    match *v {
        Value::Byte(n) => whole(n.into()),
        Value::I16(n) => whole(n.into()),
        Value::U16(n) => whole(n.into()),
        Value::I32(n) => whole(n.into()),
        Value::U32(n) => whole(n.into()),
        Value::I64(n) => whole(n),
        Value::U64(n) => n.checked_mul(M),
        Value::Double(d) if d >= 0.0 && (d * M as f64) < u64::MAX as f64 => {
            Some((d * M as f64) as u64)
        }
        _ => None,
    }
}

/// One value in GVariant text format, all of it.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser { s: text, at: 0 };
    let v = p.value(None)?;
    p.ws();
    if p.at != text.len() {
        return Err(p.err("trailing text"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

/// GVariant's type keywords and the D-Bus type each one gives.
const KEYWORDS: [(&str, &str); 12] = [
    ("boolean", "b"),
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
    ("string", "s"),
    ("objectpath", "o"),
    ("signature", "g"),
];

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at offset {} of the GVariant text", self.at)
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.at += r.len() - r.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        let hit = self.rest().starts_with(c);
        if hit {
            self.at += c.len_utf8();
        }
        hit
    }

    fn word(&mut self) -> &'a str {
        let r = self.rest();
        let n = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_+-.".contains(c)))
            .unwrap_or(r.len());
        self.at += n;
        &r[..n]
    }

    /// A value of type `want` (a single complete D-Bus signature), or of the type its text
    /// gives when `want` is None.
    fn value(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.ws();
        if self.eat('@') {
            let n = complete_type_len(self.rest().as_bytes())
                .ok_or_else(|| self.err("a type after '@'"))?;
            let ty = self.rest()[..n].to_string();
            self.at += n;
            if want.is_some_and(|w| w != ty) {
                return Err(self.err(&format!("@{ty} where {} is wanted", want.unwrap())));
            }
            return self.value(Some(&ty));
        }
        let r = self.rest();
        if r.starts_with('[') {
            return self.array(want);
        }
        if r.starts_with('(') {
            return self.tuple(want);
        }
        if r.starts_with(['\'', '"']) {
            let s = self.string()?;
            return match want.unwrap_or("s") {
                "s" => Ok(Value::Str(s)),
                "o" => Ok(Value::ObjPath(s)),
                "g" => Ok(Value::Sig(s)),
                w => Err(self.err(&format!("a string where type {w} is wanted"))),
            };
        }
        let start = self.at;
        let word = self.word().to_string();
        if let Some((_, ty)) = KEYWORDS.iter().find(|(k, _)| *k == word) {
            if want.is_some_and(|w| w != *ty) {
                return Err(self.err(&format!("{word} where type {} is wanted", want.unwrap())));
            }
            return self.value(Some(ty));
        }
        match word.as_str() {
            "true" | "false" => match want.unwrap_or("b") {
                "b" => Ok(Value::Bool(word == "true")),
                w => Err(self.err(&format!("{word} where type {w} is wanted"))),
            },
            "" => Err(self.err("no value")),
            _ => {
                let ty = want.unwrap_or(
                    if word.contains(['.', 'e', 'E']) && !word.starts_with("0x") {
                        "d"
                    } else {
                        "i"
                    },
                );
                self.at = start;
                number(&word, ty)
                    .ok_or_else(|| self.err(&format!("\"{word}\" is not a value of type {ty}")))
                    .inspect(|_| self.at += word.len())
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.rest().chars().next().expect("checked by the caller");
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('\\' | '\'' | '"')) => out.push(c),
                    _ => return Err(self.err("an escape other than \\n \\t \\\\ \\' \\\"")),
                },
                c => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }

    fn array(&mut self, want: Option<&str>) -> Result<Value, String> {
        let mut elem = match want {
            Some(w) => Some(
                w.strip_prefix('a')
                    .ok_or_else(|| self.err(&format!("an array where type {w} is wanted")))?
                    .to_string(),
            ),
            None => None,
        };
        self.eat('[');
        let mut items = Vec::new();
        if !self.eat(']') {
            loop {
                let v = self.value(elem.as_deref())?;
                elem.get_or_insert_with(|| v.signature());
                items.push(v);
                if self.eat(']') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.err("',' or ']' expected"));
                }
            }
        }
        let elem = elem.ok_or_else(|| self.err("an empty array needs its type (e.g. @as [])"))?;
        Ok(Value::Array(elem, items))
    }

    fn tuple(&mut self, want: Option<&str>) -> Result<Value, String> {
        let fields: Option<Vec<String>> = match want {
            Some(w) => Some(
                split_struct(w)
                    .ok_or_else(|| self.err(&format!("a tuple where type {w} is wanted")))?,
            ),
            None => None,
        };
        self.eat('(');
        let mut items = Vec::new();
        if !self.eat(')') {
            loop {
                let ty = fields.as_ref().map(|f| f.get(items.len()).cloned());
                let ty = match ty {
                    Some(None) => return Err(self.err("more fields than the tuple's type has")),
                    Some(Some(t)) => Some(t),
                    None => None,
                };
                items.push(self.value(ty.as_deref())?);
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.err("',' or ')' expected"));
                }
            }
        }
        if fields.is_some_and(|f| f.len() != items.len()) {
            return Err(self.err("fewer fields than the tuple's type has"));
        }
        Ok(Value::Struct(items))
    }
}

/// The complete types inside a struct signature "(...)".
fn split_struct(sig: &str) -> Option<Vec<String>> {
    let inner = sig.strip_prefix('(')?.strip_suffix(')')?;
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let n = complete_type_len(rest.as_bytes())?;
        out.push(rest[..n].to_string());
        rest = &rest[n..];
    }
    Some(out)
}

fn complete_type_len(sig: &[u8]) -> Option<usize> {
    match sig.first()? {
        b'a' => Some(1 + complete_type_len(&sig[1..])?),
        b'(' => {
            let mut i = 1;
            while *sig.get(i)? != b')' {
                i += complete_type_len(&sig[i..])?;
            }
            Some(i + 1)
        }
        _ => Some(1),
    }
}

fn number(word: &str, ty: &str) -> Option<Value> {
    let int = || -> Option<i128> {
        let (neg, digits) = match word.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, word.strip_prefix('+').unwrap_or(word)),
        };
        // As runc reads them (godbus: strconv.ParseInt(s, 0, …)): 0x hex, 0o or a leading 0
        // octal, 0b binary, else decimal.
        let (radix, body) = if let Some(h) = digits.strip_prefix("0x").or(digits.strip_prefix("0X"))
        {
            (16, h)
        } else if let Some(o) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
            (8, o)
        } else if let Some(b) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
            (2, b)
        } else if digits.len() > 1 && digits.starts_with('0') {
            (8, &digits[1..])
        } else {
            (10, digits)
        };
        if body.is_empty() || body.starts_with(['+', '-']) {
            return None;
        }
        let n = i128::from_str_radix(body, radix).ok()?;
        Some(if neg { -n } else { n })
    };
    Some(match ty {
        "y" => Value::Byte(int()?.try_into().ok()?),
        "n" => Value::I16(int()?.try_into().ok()?),
        "q" => Value::U16(int()?.try_into().ok()?),
        "i" => Value::I32(int()?.try_into().ok()?),
        "u" => Value::U32(int()?.try_into().ok()?),
        "x" => Value::I64(int()?.try_into().ok()?),
        "t" => Value::U64(int()?.try_into().ok()?),
        "d" => Value::Double(word.parse::<f64>().ok().filter(|d| d.is_finite())?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Result<Vec<Prop>, String> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        properties(&map)
    }

    #[test]
    fn runcs_documented_examples_become_these_properties() {
        let p = props(&[
            ("org.systemd.property.TimeoutStopUSec", "uint64 123456789"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("other.annotation", "not looked at"),
        ])
        .unwrap();
        assert_eq!(
            p,
            vec![
                (
                    "CollectMode".into(),
                    Value::Str("inactive-or-failed".into())
                ),
                ("TimeoutStopUSec".into(), Value::U64(123456789)),
            ]
        );
    }

    #[test]
    fn a_sec_name_is_converted_to_usec() {
        let p = props(&[
            ("org.systemd.property.TimeoutStopSec", "5"),
            ("org.systemd.property.RuntimeMaxSec", "double 1.5"),
            ("org.systemd.property.CPUQuotaPerSecUSec", "uint64 200000"),
        ])
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("CPUQuotaPerSecUSec".into(), Value::U64(200000)),
                ("RuntimeMaxUSec".into(), Value::U64(1_500_000)),
                ("TimeoutStopUSec".into(), Value::U64(5_000_000)),
            ]
        );
        let e = props(&[("org.systemd.property.TimeoutStopSec", "'5'")]).unwrap_err();
        assert!(e.contains("give a number"), "{e}");
        let e = props(&[("org.systemd.property.TimeoutStopSec", "-1")]).unwrap_err();
        assert!(e.contains("give a number"), "{e}");
    }

    #[test]
    fn untyped_numbers_are_int32_or_double_as_gvariant_reads_them() {
        assert_eq!(parse("42").unwrap(), Value::I32(42));
        assert_eq!(parse(" -3 ").unwrap(), Value::I32(-3));
        assert_eq!(parse("0.25").unwrap(), Value::Double(0.25));
        assert_eq!(parse("true").unwrap(), Value::Bool(true));
        assert_eq!(parse("@t 7").unwrap(), Value::U64(7));
        assert_eq!(parse("uint32 0x10").unwrap(), Value::U32(16));
        // godbus reads numbers as strconv.ParseInt(s, 0, …) does: runc's 0755 is 493.
        assert_eq!(parse("uint32 0755").unwrap(), Value::U32(0o755));
        assert_eq!(parse("uint32 0o17").unwrap(), Value::U32(15));
        assert_eq!(parse("uint32 0b101").unwrap(), Value::U32(5));
        assert_eq!(parse("int32 -010").unwrap(), Value::I32(-8));
        assert_eq!(parse("uint32 0").unwrap(), Value::U32(0));
        assert!(parse("uint32 08").is_err() && parse("uint32 0x").is_err());
        assert_eq!(parse("int16 -5").unwrap(), Value::I16(-5));
        assert_eq!(parse("byte 255").unwrap(), Value::Byte(255));
        assert_eq!(parse("\"a\\\"b\"").unwrap(), Value::Str("a\"b".into()));
        assert_eq!(
            parse("objectpath '/x'").unwrap(),
            Value::ObjPath("/x".into())
        );
        // Out of range for the type, or for int32 when no type is given.
        for bad in [
            "byte 256",
            "uint64 -1",
            "3000000000",
            "int32 1.5",
            "",
            "'open",
            "1 2",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arrays_and_tuples_take_their_type_from_the_text_or_the_annotation() {
        assert_eq!(
            parse("['a', 'b']").unwrap(),
            Value::Array(
                "s".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            )
        );
        assert_eq!(parse("@as []").unwrap(), Value::Array("s".into(), vec![]));
        assert_eq!(
            parse("@a(ss) [('/dev/null', 'rw')]").unwrap(),
            Value::Array(
                "(ss)".into(),
                vec![Value::Struct(vec![
                    Value::Str("/dev/null".into()),
                    Value::Str("rw".into())
                ])]
            )
        );
        assert_eq!(
            parse("@at [1, 2]").unwrap(),
            Value::Array("t".into(), vec![Value::U64(1), Value::U64(2)])
        );
        for bad in [
            "[]",
            "['a', 1]",
            "[1 2]",
            "@(ss) ('a')",
            "@(s) ('a', 'b')",
            "@as 'x'",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_names_and_husks_own_properties_are_refused_with_the_annotation() {
        for (name, why) in [
            ("Ab", "3 or more ASCII letters"),
            ("Memory_Max", "3 or more ASCII letters"),
            ("Slice", "set by husk itself"),
            ("PIDs", "set by husk itself"),
        ] {
            let key = format!("{PREFIX}{name}");
            let e = props(&[(&key, "'x'")]).unwrap_err();
            assert!(e.contains(&key) && e.contains(why), "{e}");
        }
        let e = props(&[("org.systemd.property.CollectMode", "inactive")]).unwrap_err();
        assert!(
            e.contains("CollectMode") && e.contains("\"inactive\""),
            "{e}"
        );
    }
}
