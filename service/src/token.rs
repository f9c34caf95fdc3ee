//! [`TokenGuard`]: how every fedge service checks a secret token.
//!
//! The token is compared as a SHA-256 digest, in constant time over those fixed 32 bytes, so
//! neither a differing byte nor a differing length shows in the timing. Failures are
//! rate-limited by a token bucket (a burst of [`FAILURE_BURST`], then
//! [`FAILURES_PER_SECOND`]): once it is empty every check is refused *before* any
//! comparison, so guessing gets no answer at all.

use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// Failures accepted at once before the rate limit applies.
pub const FAILURE_BURST: f64 = 10.0;
/// Failures accepted per second once the burst is spent.
pub const FAILURES_PER_SECOND: f64 = 1.0;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or wrong.
    Invalid,
    /// Too many recent failures: not even compared; retry after this many seconds.
    RateLimited {
        /// Seconds until the next attempt is compared.
        retry_after: u64,
    },
}

/// A secret token, checked in constant time with failures rate-limited.
#[derive(Debug)]
pub struct TokenGuard {
    digest: [u8; 32],
    bucket: Mutex<(f64, Instant)>,
}

impl TokenGuard {
    /// A guard accepting `token`.
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
            bucket: Mutex::new((FAILURE_BURST, Instant::now())),
        }
    }

    /// Checks the value of an `Authorization` header (`Bearer <token>`).
    pub fn check_header(&self, authorization: Option<&str>) -> Result<(), Refusal> {
        let token = authorization.and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
        self.check(token)
    }

    /// Checks `given` (`None`: no token presented).
    pub fn check(&self, given: Option<&str>) -> Result<(), Refusal> {
        let Ok(mut bucket) = self.bucket.lock() else {
            return Err(Refusal::Invalid);
        };
        let now = Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * FAILURES_PER_SECOND)
            .min(FAILURE_BURST);
        *bucket = (tokens, now);
        if tokens < 1.0 {
            let retry_after = ((1.0 - tokens) / FAILURES_PER_SECOND).ceil().max(1.0) as u64;
            return Err(Refusal::RateLimited { retry_after });
        }
        let digest: [u8; 32] = Sha256::digest(given.unwrap_or_default().as_bytes()).into();
        let same = digest
            .iter()
            .zip(&self.digest)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
        if given.is_some() && same {
            Ok(())
        } else {
            bucket.0 = tokens - 1.0;
            Err(Refusal::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_digests_and_rate_limits_failures() {
        let guard = TokenGuard::new("secret");
        assert_eq!(guard.check_header(Some("Bearer secret")), Ok(()));
        assert_eq!(guard.check_header(Some("bearer  secret ")), Ok(()));
        assert_eq!(guard.check(Some("secre")), Err(Refusal::Invalid));
        assert_eq!(guard.check(None), Err(Refusal::Invalid));
        assert_eq!(guard.check(Some("")), Err(Refusal::Invalid));
        // The burst is spent: every attempt, even the right token, waits.
        for _ in 3..FAILURE_BURST as usize {
            assert_eq!(guard.check(Some("guess")), Err(Refusal::Invalid));
        }
        assert!(matches!(
            guard.check(Some("secret")),
            Err(Refusal::RateLimited { retry_after: 1.. })
        ));
        let empty = TokenGuard::new("");
        assert_eq!(
            empty.check(None),
            Err(Refusal::Invalid),
            "no header is no token"
        );
    }
}
