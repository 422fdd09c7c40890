//! Time as the store keeps it (nanoseconds since the epoch) and as people read it: RFC 3339 in
//! logs and `inspect`, docker's "3 seconds" in `ps`. Formatting into a caller's buffer, so the
//! monitor's loop never allocates.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The inverse of husk_runtime's `civil_from_days`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Writes `2026-12-01T23:08:13.123456789Z` (30 bytes) into `out`; returns the length.
pub fn rfc3339_into(ns: u64, out: &mut [u8; 30]) -> usize {
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as u32;
    let (y, mo, d) = husk_runtime::state::civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400) as u32;
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y.clamp(0, 9999) as u32, 4);
    put(5, mo, 2);
    put(8, d, 2);
    put(11, rem / 3600, 2);
    put(14, rem / 60 % 60, 2);
    put(17, rem % 60, 2);
    put(20, nanos, 9);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (29, b'Z'),
    ] {
        out[at] = c;
    }
    30
}

pub fn rfc3339(ns: u64) -> String {
    let mut b = [0u8; 30];
    let n = rfc3339_into(ns, &mut b);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = i64::from(num(i + 1..i + 3)?) * 3600 + i64::from(num(i + 4..i + 6)?) * 60;
            if *c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(i64::from(y), mo, d) * 86400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(se)
        - offset;
    u64::try_from(secs).ok().map(|s| s * 1_000_000_000 + nanos)
}

/// docker's `--since`/`--until`: an RFC 3339 time, a Unix time in seconds (`1700000000[.5]`), or
/// a duration before now (`10s`, `5m`, `2h`, `1h30m`).
pub fn parse_since(s: &str, now: u64) -> Option<u64> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs >= 0.0
    {
        return Some((secs * 1e9) as u64);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (n, tail) = rest.split_at(split);
        let n: f64 = n.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        total += n * match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = tail;
    }
    Some(now.saturating_sub(total as u64))
}

/// docker's units.HumanDuration: "Less than a second", "3 seconds", "About a minute", ...
pub fn human(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ns = 1_796_166_493_123_456_789;
        let s = rfc3339(ns);
        assert_eq!(s, "2026-12-01T23:08:13.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(ns));
        assert_eq!(
            parse_rfc3339("2026-12-01T23:08:13Z"),
            Some(1_796_166_493_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-02T01:08:13.5+02:00"),
            Some(1_796_166_493_500_000_000)
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-12-01",
            "2026-12-01T23:08:13",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_forms() {
        let now = 1_000 * 1_000_000_000;
        assert_eq!(parse_since("10s", now), Some(990 * 1_000_000_000));
        assert_eq!(parse_since("1m30s", now), Some(910 * 1_000_000_000));
        assert_eq!(parse_since("500", now), Some(500 * 1_000_000_000));
        assert_eq!(parse_since("10x", now), None);
        assert_eq!(parse_since("", now), None);
    }

    #[test]
    fn human_durations() {
        let s = 1_000_000_000;
        assert_eq!(human(0), "Less than a second");
        assert_eq!(human(3 * s), "3 seconds");
        assert_eq!(human(61 * s), "About a minute");
        assert_eq!(human(150 * s), "2 minutes");
        assert_eq!(human(3 * 3600 * s), "3 hours");
        assert_eq!(human(3 * 86400 * s), "3 days");
    }
}
