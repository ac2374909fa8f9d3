//! API keys: random secrets shown once, stored only as a hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

const PREFIX: &str = "eye_";
/// Read keys start with this; ingest keys never do (they start with `eye_`).
const READ_PREFIX: &str = "eyr_";

/// A freshly generated key. Its `Display` is the secret: show it once, then drop it.
pub struct ApiKey(String);

impl ApiKey {
    /// 256 random bits from the OS-seeded generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A read key for analysts: its own prefix tells it apart from ingest keys without a lookup.
    pub fn generate_read() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{READ_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Whether a presented key has the shape of a read key (it may still be unknown or revoked).
    pub fn looks_like_read_key(presented: &str) -> bool {
        presented.starts_with(READ_PREFIX)
    }

    /// The secret, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// A short, non-secret prefix that helps people tell keys apart.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(PREFIX.len() + 6).collect()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.display_prefix())
    }
}

/// SHA-256 of a presented key, hex encoded. A slow password hash buys nothing for 256-bit random secrets
/// and would cost on every request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    /// Hashes a key as presented by a client.
    pub fn of(presented: &str) -> Self {
        let digest = Sha256::digest(presented.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_carry_256_bits() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), PREFIX.len() + 43);
    }

    #[test]
    fn the_hash_of_the_presented_key_matches_the_stored_one() {
        let key = ApiKey::generate();
        assert_eq!(KeyHash::of(key.expose()), key.hash());
        assert_eq!(key.hash().as_str().len(), 64);
    }

    #[test]
    fn read_keys_are_told_apart_from_ingest_keys_by_their_prefix() {
        assert!(ApiKey::looks_like_read_key(
            ApiKey::generate_read().expose()
        ));
        assert!(!ApiKey::looks_like_read_key(ApiKey::generate().expose()));
    }

    #[test]
    fn debug_output_does_not_leak_the_secret() {
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(key.expose()));
    }
}
