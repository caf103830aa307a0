//! Check characters of the identifiers the hub receives (pure). DOMAIN.md §8.

/// Luhn check over a string of digits (SIREN, SIRET, FINESS).
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// SIREN: 9 digits, Luhn.
pub fn siren_valid(text: &str) -> bool {
    text.len() == 9 && luhn_valid(text)
}

/// SIRET: 14 digits, Luhn (the SIREN followed by the establishment's NIC).
pub fn siret_valid(text: &str) -> bool {
    text.len() == 14 && luhn_valid(text)
}

#[derive(Debug, PartialEq, Eq)]
pub enum FinessCheck {
    Valid,
    /// Shape wrong: not 9 characters, letters where digits belong, unknown département prefix.
    Malformed,
    /// The Luhn key does not match.
    BadCheckDigit,
    /// Corsica: the key is computed with 2A/2B read as 21/22 by assumption (DOMAIN.md §8, *to confirm*), so a
    /// mismatch is a warning, not a rejection.
    CorsicaUnverified,
}

/// The département a FINESS number belongs to, from its first characters: "69" → "69", "2A" → "2A", "97" + third
/// digit → "971".."976" (Mayotte's older numbers start with 98: "985" → "976").
pub fn finess_departement(finess: &str) -> Option<String> {
    // ASCII first: a 9-byte text with a multi-byte character would be cut inside it below.
    if finess.len() != 9 || !finess.is_ascii() {
        return None;
    }
    match &finess[..2] {
        "97" => Some(finess[..3].to_owned()),
        "98" => Some("976".to_owned()),
        prefix => Some(prefix.to_owned()),
    }
}

/// FINESS: 9 characters, the first two the département (2A/2B for Corsica), the last a Luhn key.
pub fn finess_check(text: &str) -> FinessCheck {
    if text.len() != 9 || !text.is_ascii() {
        return FinessCheck::Malformed;
    }
    let (prefix, rest) = text.split_at(2);
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return FinessCheck::Malformed;
    }
    let corsica = match prefix {
        "2A" => Some("21"),
        "2B" => Some("22"),
        p if p.bytes().all(|b| b.is_ascii_digit()) => None,
        _ => return FinessCheck::Malformed,
    };
    if prefix == "00" || prefix == "20" || prefix == "96" || prefix == "99" {
        return FinessCheck::Malformed;
    }
    match corsica {
        Some(substitute) => {
            if luhn_valid(&format!("{substitute}{rest}")) {
                FinessCheck::Valid
            } else {
                FinessCheck::CorsicaUnverified
            }
        }
        None if luhn_valid(text) => FinessCheck::Valid,
        None => FinessCheck::BadCheckDigit,
    }
}

/// UAI (school): 7 digits then a letter of the 23-letter alphabet ABCDEFGHJKLMNPRSTUVWXYZ indexed by number mod 23.
pub fn uai_valid(text: &str) -> bool {
    const ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    if text.len() != 8 || !text.is_ascii() {
        return false;
    }
    let (digits, letter) = text.split_at(7);
    let Ok(number) = digits.parse::<u32>() else { return false };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    letter.as_bytes()[0] == ALPHABET[(number % 23) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends the Luhn key that makes `body` valid.
    fn with_key(body: &str) -> String {
        (0..10).map(|k| format!("{body}{k}")).find(|c| luhn_valid(c)).unwrap()
    }

    #[test]
    fn luhn_accepts_known_sirens_and_refuses_a_changed_digit() {
        assert!(siren_valid("732829320"));
        assert!(!siren_valid("732829321"));
        assert!(siret_valid("73282932000074"));
        assert!(!siret_valid("73282932000075"));
        assert!(!siret_valid("7328293200007"));
    }

    #[test]
    fn finess_numbers_are_checked_by_their_key() {
        let lyon = with_key("69000001");
        assert_eq!(finess_check(&lyon), FinessCheck::Valid);
        let wrong = format!("{}{}", &lyon[..8], (lyon.as_bytes()[8] - b'0' + 1) % 10);
        assert_eq!(finess_check(&wrong), FinessCheck::BadCheckDigit);
        assert_eq!(finess_check("69000001"), FinessCheck::Malformed);
        assert_eq!(finess_check("6900000A1"), FinessCheck::Malformed);
        assert_eq!(finess_check("2C0000011"), FinessCheck::Malformed);
    }

    #[test]
    fn corsican_finess_numbers_warn_rather_than_fail() {
        let key_as_21 = with_key("21000001");
        let corsican = format!("2A{}", &key_as_21[2..]);
        assert_eq!(finess_check(&corsican), FinessCheck::Valid);
        let other = format!("2A{}{}", &key_as_21[2..8], (key_as_21.as_bytes()[8] - b'0' + 1) % 10);
        assert_eq!(finess_check(&other), FinessCheck::CorsicaUnverified);
    }

    #[test]
    fn finess_numbers_name_their_departement() {
        assert_eq!(finess_departement("690000001").as_deref(), Some("69"));
        assert_eq!(finess_departement("2A0000001").as_deref(), Some("2A"));
        assert_eq!(finess_departement("970000001").as_deref(), Some("970"));
        assert_eq!(finess_departement("974000001").as_deref(), Some("974"));
        assert_eq!(finess_departement("980000001").as_deref(), Some("976"));
    }

    #[test]
    fn uai_letters_follow_the_number() {
        // 0690001 mod 23 = 1 → 'B' in ABCDEFGHJKLMNPRSTUVWXYZ.
        assert_eq!(690_001 % 23, 1);
        assert!(uai_valid("0690001B"));
        assert!(!uai_valid("0690001A"));
        assert!(!uai_valid("069001B"));
        assert!(!uai_valid("0690001b"));
    }
}
