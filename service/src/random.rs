//! Unpredictable values (nonces, bearer tokens, event ids) from the operating system's
//! generator. There is deliberately no fallback to a seeded generator: a predictable
//! nonce or token is worse than a loud error.

pub use getrandom::Error;

/// `N` random bytes.
///
/// # Errors
/// When the OS generator is unavailable.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// `n` random bytes as lowercase hex (`2n` characters).
///
/// # Errors
/// When the OS generator is unavailable.
pub fn hex(n: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random (version 4, RFC 4122 variant) UUID, e.g. for CloudEvent ids.
///
/// # Errors
/// When the OS generator is unavailable.
pub fn uuid_v4() -> Result<String, Error> {
    let mut b = bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_and_have_their_shape() {
        let (a, b) = (hex(16).unwrap(), hex(16).unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        let u = uuid_v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4().unwrap());
    }
}
