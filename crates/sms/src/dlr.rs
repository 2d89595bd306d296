//! Signed delivery-report URLs. Each attempt is sent with a `dlr-url` that names the outbox id,
//! the attempt number and an HMAC-SHA-256 token over both, so a report resolves its message even
//! if the worker died before recording the attempt, and nobody can forge a report without the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signs and checks delivery-report parameters with the deployment's key.
#[derive(Clone)]
pub struct DlrSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for DlrSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DlrSigner(..)")
    }
}

/// The query Kannel appends its substitutions to: `%d` report type, `%F` the SMS centre's id,
/// `%I` Kannel's own id, `%T` the time.
pub const KANNEL_PLACEHOLDERS: &str = "type=%d&fid=%F&kid=%I&ts=%T";

impl DlrSigner {
    /// A signer over `key` (at least 16 bytes are expected; the configuration checks it).
    pub fn new(key: &[u8]) -> DlrSigner {
        DlrSigner { key: key.to_vec() }
    }

    fn mac(&self, id: i64, attempt: i64) -> Hmac<Sha256> {
        // new_from_slice never fails for HMAC (any key length is allowed).
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        };
        mac.update(format!("anxin-dlr-v1:{id}:{attempt}").as_bytes());
        mac
    }

    /// The token for attempt `attempt` of message `id` (32 hex characters).
    pub fn token(&self, id: i64, attempt: i64) -> String {
        let tag = self.mac(id, attempt).finalize().into_bytes();
        hex::encode(&tag[..16])
    }

    /// Checks a token in constant time.
    pub fn verify(&self, id: i64, attempt: i64, token: &str) -> bool {
        let Ok(given) = hex::decode(token) else {
            return false;
        };
        if given.len() != 16 {
            return false;
        }
        self.mac(id, attempt).verify_truncated_left(&given).is_ok()
    }

    /// The delivery-report URL of an attempt under `base` (e.g. `http://127.0.0.1:8080`), with
    /// Kannel's placeholders left for Kannel to fill in.
    pub fn url(&self, base: &str, id: i64, attempt: i64) -> String {
        format!(
            "{}/api/v1/sms/dlr?id={id}&a={attempt}&t={}&{KANNEL_PLACEHOLDERS}",
            base.trim_end_matches('/'),
            self.token(id, attempt)
        )
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> ! {
    panic!("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_id_and_attempt() {
        let s = DlrSigner::new(b"0123456789abcdef0123");
        let t = s.token(42, 1);
        assert_eq!(t.len(), 32);
        assert!(s.verify(42, 1, &t));
        assert!(!s.verify(42, 2, &t));
        assert!(!s.verify(43, 1, &t));
        assert!(!s.verify(42, 1, "zz"));
        assert!(!s.verify(42, 1, &t[..30]));
        assert!(!DlrSigner::new(b"another-key-entirely").verify(42, 1, &t));
        let u = s.url("http://127.0.0.1:8080/", 42, 1);
        assert!(u.starts_with("http://127.0.0.1:8080/api/v1/sms/dlr?id=42&a=1&t="));
        assert!(u.ends_with("&type=%d&fid=%F&kid=%I&ts=%T"));
    }
}
