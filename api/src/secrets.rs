//! Credentials the hub must read back — webhook signing secrets, pull sources' bearer tokens and OAuth2 client
//! secrets — are stored sealed: AES-256-GCM under the operator's key (`CNH_SECRETS_KEY`), so that a copy of the
//! database (a backup, a replica, a dump sent for support) does not hand out the keys to the institutions' systems.
//!
//! A sealed value reads `enc:v1:<hex of nonce, ciphertext and tag>`; its nonce is random (96 bits, from the
//! operating system), and the column it belongs to is bound as associated data, so a sealed value copied into another
//! column does not open. Without a key (development) values are stored as given; a value stored so is read as is,
//! and sealed at the next start with a key (`SecretBox::needs_sealing`). The production profile refuses to start
//! without a key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "enc:v1:";

/// The sealing of stored credentials: with the operator's key, or none.
pub struct SecretBox {
    key: Option<LessSafeKey>,
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
        SecretBox { key: None, random: SystemRandom::new() }
    }

    /// The key as `CNH_SECRETS_KEY` gives it: 64 hexadecimal digits.
    pub fn from_hex(hex: &str) -> Result<SecretBox, SecretError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SecretError::MalformedKey);
        }
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| SecretError::MalformedKey)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretError::MalformedKey)?;
        Ok(SecretBox { key: Some(LessSafeKey::new(key)), random: SystemRandom::new() })
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
        let Some(hex) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_owned()) };
        let key = self.key.as_ref().ok_or(SecretError::NoKey)?;
        if hex.len() % 2 != 0 || hex.len() < 2 * (NONCE_LEN + AES_256_GCM.tag_len()) {
            return Err(SecretError::Unreadable);
        }
        let mut bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| SecretError::Unreadable)?;
        let sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SecretError::Unreadable)?;
        let mut sealed = sealed;
        let plain =
            key.open_in_place(nonce, Aad::from(column.as_bytes()), &mut sealed).map_err(|_| SecretError::Unreadable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Unreadable)
    }

    /// Whether a stored value should be sealed now: it is in clear and the hub has a key.
    pub fn needs_sealing(&self, stored: &str) -> bool {
        self.key.is_some() && !stored.starts_with(PREFIX)
    }
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
        assert!(!clear.needs_sealing("whsec_abc"));
        let keyed = SecretBox::from_hex(KEY).unwrap();
        assert!(keyed.needs_sealing("whsec_abc"));
        assert!(!keyed.needs_sealing(&keyed.seal(COLUMN, "whsec_abc")));
        assert_eq!(keyed.open(COLUMN, "whsec_abc").as_deref(), Ok("whsec_abc"), "a value stored in clear reads as is");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for key in ["", "abc", &KEY[..62], &format!("{}zz", &KEY[..62]), &format!("{KEY}00")] {
            assert!(SecretBox::from_hex(key).is_err(), "{key}");
        }
        assert!(SecretBox::from_hex(&KEY.to_uppercase()).is_ok());
    }
}
