//! Credentials the hub must read back — webhook signing secrets, pull sources' bearer tokens and OAuth2 client
//! secrets — are stored sealed: AES-256-GCM under the operator's key (`CNH_SECRETS_KEY`), so that a copy of the
//! database (a backup, a replica, a dump sent for support) does not hand out the keys to the institutions' systems.
//!
//! A sealed value reads `enc:v1:<hex of nonce, ciphertext and tag>`; its nonce is random (96 bits, from the
//! operating system), and the column it belongs to is bound as associated data, so a sealed value copied into another
//! column does not open. Without a key (development) values are stored as given; a value stored so is read as is,
//! and sealed at the next start with a key (`SecretBox::resealed`). The production profile refuses to start
//! without a key.
//!
//! Rotating the key: start with the new key in `CNH_SECRETS_KEY` and the old one in `CNH_SECRETS_PREVIOUS_KEY`.
//! Values sealed with the old key still open, and are sealed again with the new one at that start; once every
//! instance runs with the new key, the old one can be dropped.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "enc:v1:";

/// The sealing of stored credentials: with the operator's key, or none.
pub struct SecretBox {
    key: Option<LessSafeKey>,
    /// The key being rotated away from: it still opens, never seals.
    previous: Option<LessSafeKey>,
    random: SystemRandom,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("CNH_SECRETS_KEY must be 64 hexadecimal digits (a 256-bit key, e.g. `openssl rand -hex 32`)")]
    MalformedKey,
    #[error("un secret enregistré est scellé mais le hub n'a pas de clé (CNH_SECRETS_KEY)")]
    NoKey,
    #[error("un secret enregistré ne s'ouvre pas avec la clé du hub (CNH_SECRETS_KEY changée, ou valeur altérée)")]
    Unreadable,
}

impl SecretBox {
    /// No key: values are stored as given.
    pub fn without_key() -> SecretBox {
        SecretBox { key: None, previous: None, random: SystemRandom::new() }
    }

    /// The key as `CNH_SECRETS_KEY` gives it: 64 hexadecimal digits.
    pub fn from_hex(hex: &str) -> Result<SecretBox, SecretError> {
        Ok(SecretBox { key: Some(key_from_hex(hex)?), previous: None, random: SystemRandom::new() })
    }

    /// This box, also opening what `previous` (`CNH_SECRETS_PREVIOUS_KEY`) sealed.
    pub fn with_previous_hex(mut self, previous: &str) -> Result<SecretBox, SecretError> {
        self.previous = Some(key_from_hex(previous)?);
        Ok(self)
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The value to store for `plain`, a credential of `column` (`"webhook_subscription.secret"`).
    pub fn seal(&self, column: &str, plain: &str) -> String {
        let Some(key) = &self.key else { return plain.to_owned() };
        let mut nonce = [0u8; NONCE_LEN];
        // The system's generator does not fail on the platforms the hub runs on; if it did, no credential could be
        // stored safely, so the write fails loudly rather than reusing a nonce.
        self.random.fill(&mut nonce).expect("the operating system's random generator");
        let mut sealed = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(column.as_bytes()), &mut sealed)
            .expect("AES-GCM seals any length the hub stores");
        let mut out = String::with_capacity(PREFIX.len() + 2 * (NONCE_LEN + sealed.len()));
        out.push_str(PREFIX);
        for byte in nonce.iter().chain(&sealed) {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// The credential a stored value of `column` holds.
    pub fn open(&self, column: &str, stored: &str) -> Result<String, SecretError> {
        let key = self.key.as_ref().ok_or(SecretError::NoKey);
        match (open_with(key, column, stored), &self.previous) {
            (Err(SecretError::Unreadable), Some(previous)) => open_with(Ok(previous), column, stored),
            (opened, _) => opened,
        }
    }

    /// What to store instead of `stored` now: its credential sealed with the current key, when it is in clear or
    /// sealed with the previous key; None when it is right as it is (or the hub has no key).
    pub fn resealed(&self, column: &str, stored: &str) -> Result<Option<String>, SecretError> {
        let Some(key) = &self.key else { return Ok(None) };
        if !is_sealed(stored) {
            return Ok(Some(self.seal(column, stored)));
        }
        match open_with(Ok(key), column, stored) {
            Ok(_) => Ok(None),
            Err(_) => self.open(column, stored).map(|plain| Some(self.seal(column, &plain))),
        }
    }
}

fn key_from_hex(hex: &str) -> Result<LessSafeKey, SecretError> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SecretError::MalformedKey);
    }
    let bytes = decode_hex(hex).ok_or(SecretError::MalformedKey)?;
    let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretError::MalformedKey)?;
    Ok(LessSafeKey::new(key))
}

/// Opens a stored value with one key (a value in clear is returned as is).
fn open_with(key: Result<&LessSafeKey, SecretError>, column: &str, stored: &str) -> Result<String, SecretError> {
    let Some(hex) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_owned()) };
    let key = key?;
    let mut nonce = decode_hex(hex)
        .filter(|bytes| bytes.len() >= NONCE_LEN + AES_256_GCM.tag_len())
        .ok_or(SecretError::Unreadable)?;
    let mut sealed = nonce.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| SecretError::Unreadable)?;
    let plain =
        key.open_in_place(nonce, Aad::from(column.as_bytes()), &mut sealed).map_err(|_| SecretError::Unreadable)?;
    String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Unreadable)
}

/// Hexadecimal digits as bytes; None for an odd length or a character that is not a digit.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()
}

/// Whether a stored value is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const COLUMN: &str = "webhook_subscription.secret";

    #[test]
    fn sealed_values_open_with_their_key_and_column_only() {
        let secrets = SecretBox::from_hex(KEY).unwrap();
        let sealed = secrets.seal(COLUMN, "whsec_abc");
        assert!(is_sealed(&sealed) && !sealed.contains("whsec_abc"), "{sealed}");
        assert_ne!(secrets.seal(COLUMN, "whsec_abc"), sealed, "a fresh nonce each time");
        assert_eq!(secrets.open(COLUMN, &sealed).as_deref(), Ok("whsec_abc"));
        assert_eq!(secrets.open("pull_source.bearer_token", &sealed), Err(SecretError::Unreadable));
        let other = SecretBox::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert_eq!(other.open(COLUMN, &sealed), Err(SecretError::Unreadable));
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(secrets.open(COLUMN, &tampered), Err(SecretError::Unreadable));
        assert_eq!(secrets.open(COLUMN, "enc:v1:zz"), Err(SecretError::Unreadable));
        assert_eq!(SecretBox::without_key().open(COLUMN, &sealed), Err(SecretError::NoKey));
        assert_eq!(secrets.open(COLUMN, "").as_deref(), Ok(""));
        assert_eq!(secrets.open(COLUMN, &secrets.seal(COLUMN, "")).as_deref(), Ok(""));
    }

    #[test]
    fn without_a_key_values_stay_as_given_and_clear_values_are_sealed_once_a_key_is_set() {
        let clear = SecretBox::without_key();
        assert_eq!(clear.seal(COLUMN, "whsec_abc"), "whsec_abc");
        assert_eq!(clear.open(COLUMN, "whsec_abc").as_deref(), Ok("whsec_abc"));
        assert_eq!(clear.resealed(COLUMN, "whsec_abc"), Ok(None));
        let keyed = SecretBox::from_hex(KEY).unwrap();
        let sealed = keyed.resealed(COLUMN, "whsec_abc").unwrap().expect("a clear value is sealed");
        assert_eq!(keyed.open(COLUMN, &sealed).as_deref(), Ok("whsec_abc"));
        assert_eq!(keyed.resealed(COLUMN, &sealed), Ok(None));
        assert_eq!(keyed.open(COLUMN, "whsec_abc").as_deref(), Ok("whsec_abc"), "a value stored in clear reads as is");
    }

    #[test]
    fn a_key_is_rotated_through_the_previous_one() {
        let old = SecretBox::from_hex(KEY).unwrap();
        let sealed_with_old = old.seal(COLUMN, "whsec_abc");
        const NEW: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
        let rotating = SecretBox::from_hex(NEW).unwrap().with_previous_hex(KEY).unwrap();
        assert_eq!(rotating.open(COLUMN, &sealed_with_old).as_deref(), Ok("whsec_abc"));
        let resealed = rotating.resealed(COLUMN, &sealed_with_old).unwrap().expect("sealed again with the new key");
        let new_only = SecretBox::from_hex(NEW).unwrap();
        assert_eq!(new_only.open(COLUMN, &resealed).as_deref(), Ok("whsec_abc"));
        assert_eq!(new_only.open(COLUMN, &sealed_with_old), Err(SecretError::Unreadable));
        assert_eq!(rotating.resealed(COLUMN, &resealed), Ok(None), "already under the new key");
        // Neither key: it cannot be sealed again, and says why.
        let stranger = SecretBox::from_hex(&NEW.replace('f', "e")).unwrap().with_previous_hex(NEW).unwrap();
        assert_eq!(stranger.resealed(COLUMN, &sealed_with_old), Err(SecretError::Unreadable));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for key in ["", "abc", &KEY[..62], &format!("{}zz", &KEY[..62]), &format!("{KEY}00")] {
            assert!(SecretBox::from_hex(key).is_err(), "{key}");
        }
        assert!(SecretBox::from_hex(&KEY.to_uppercase()).is_ok());
    }
}
