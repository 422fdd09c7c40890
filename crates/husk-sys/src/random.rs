//! Random bytes for names and ids (container ids, volume names, SELinux MCS levels).

use std::io::{self, Read};

/// Where the bytes come from; callers name it in their errors.
pub const SOURCE: &str = "/dev/urandom";

pub fn bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open(SOURCE)?.read_exact(&mut b)?;
    Ok(b)
}

/// `N` random bytes as 2*N lower-case hex digits (docker's ids and volume names: N = 32).
pub fn hex<const N: usize>() -> io::Result<String> {
    Ok(bytes::<N>()?.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_digits_a_byte_and_differs() {
        let a = hex::<32>().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, hex::<32>().unwrap());
    }
}
