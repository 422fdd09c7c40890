//! docker's size strings: `256m` is 256 MiB (binary units, case-insensitive, optional `b`).

pub fn parse(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some((i, 't')) => (&t[..i], 1 << 40),
        Some((i, 'p')) => (&t[..i], 1 << 50),
        Some((i, 'b')) => (&t[..i], 1),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size \"{s}\" (use a number with b, k, m or g)"))?;
    if n.is_nan() || n < 0.0 || !n.is_finite() {
        return Err(format!("invalid size \"{s}\""));
    }
    let bytes = n * mult as f64;
    // `as` would saturate: 1e30 must not become a limit of i64::MAX bytes.
    if bytes >= i64::MAX as f64 {
        return Err(format!("invalid size \"{s}\": too large"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn docker_units() {
        assert_eq!(parse("256m"), Ok(256 << 20));
        assert_eq!(parse("256M"), Ok(256 << 20));
        assert_eq!(parse("1g"), Ok(1 << 30));
        assert_eq!(parse("1gb"), Ok(1 << 30));
        assert_eq!(parse("512k"), Ok(512 << 10));
        assert_eq!(parse("1000"), Ok(1000));
        assert_eq!(parse("10b"), Ok(10));
        assert_eq!(parse("1.5g"), Ok(3 << 29));
        assert!(parse("12x").is_err());
        assert!(parse("").is_err());
        assert!(parse("-1m").is_err());
        assert_eq!(
            parse("1e30"),
            Err("invalid size \"1e30\": too large".into())
        );
        assert!(parse("8192p").is_err());
        assert_eq!(parse("8191p"), Ok(8191 << 50));
    }
}
