//! Viewer ids the server issues and can check: a random token and an
//! HMAC-SHA256 tag of it under a secret the server draws at start. A viewer
//! echoes its id (`X-Backset-Client`, `?client=` or CMCD `sid`); an id the
//! server did not issue cannot carry a valid tag, so facts sent under it go
//! to a record of its own and never into an issued viewer's history.
//! Randomness is passed in, so issuing is deterministic under test.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the random token and of the tag kept.
const TOKEN: usize = 12;
const TAG: usize = 12;
/// Issued ids start with this, so they never collide with the names of
/// unissued records.
const MARK: char = 'v';

pub struct Issuer {
    key: [u8; 32],
}

impl Issuer {
    pub fn new(key: [u8; 32]) -> Issuer {
        Issuer { key }
    }

    fn mac(&self, token: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(token);
        mac
    }

    /// A new id for the random `token`.
    pub fn issue(&self, token: [u8; TOKEN]) -> String {
        let tag = self.mac(&token).finalize().into_bytes();
        format!("{MARK}{}{}", hex(&token), hex(&tag[..TAG]))
    }

    /// Whether `id` is one this issuer gave out.
    pub fn verify(&self, id: &str) -> bool {
        let Some(body) = id.strip_prefix(MARK) else {
            return false;
        };
        let Some(bytes) = unhex(body).filter(|b| b.len() == TOKEN + TAG) else {
            return false;
        };
        let (token, tag) = bytes.split_at(TOKEN);
        self.mac(token).verify_truncated_left(tag).is_ok()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_id_verifies_and_a_forged_or_foreign_one_does_not() {
        let issuer = Issuer::new([7; 32]);
        let id = issuer.issue([1; TOKEN]);
        assert_eq!(id.len(), 1 + 2 * (TOKEN + TAG));
        assert!(issuer.verify(&id));
        assert!(!Issuer::new([8; 32]).verify(&id), "another server's secret");
        let mut forged = id.clone();
        forged.replace_range(1..3, "ff");
        assert!(!issuer.verify(&forged));
        for junk in ["", "v", "viewer-42", "vzz", &id[..id.len() - 2], "vé"] {
            assert!(!issuer.verify(junk), "{junk:?}");
        }
    }
}
