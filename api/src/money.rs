//! Money is integer euro cents (`i64`), never floating point. The API shows amounts as exact decimals with two
//! decimals (`"70520000.00"`), because GraphQL's `Int` is 32-bit and floats lose cents.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// An amount in euro cents, shown in GraphQL as the `Euros` scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Euros(pub i64);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "« {0} » n'est pas un montant en euros : attendu un décimal exact avec au plus deux décimales, ex. \"1250.50\""
    )]
    Malformed(String),
    #[error("« {0} » dépasse le montant maximal représentable")]
    Overflow(String),
}

impl Euros {
    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses `"1250"`, `"1250.5"`, `"-30000.00"`; refuses floats' exponents, separators and a third decimal.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed(text.to_owned());
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) || frac_part.len() > 2 {
            return Err(malformed());
        }
        if unsigned.contains('.') && frac_part.is_empty() {
            return Err(malformed());
        }
        let overflow = || MoneyError::Overflow(text.to_owned());
        let euros: i64 = int_part.parse().map_err(|_| overflow())?;
        let frac: i64 = match frac_part.len() {
            0 => 0,
            1 => frac_part.parse::<i64>().map_err(|_| malformed())? * 10,
            _ => frac_part.parse().map_err(|_| malformed())?,
        };
        let cents = euros.checked_mul(100).and_then(|c| c.checked_add(frac)).ok_or_else(overflow)?;
        Ok(Euros(if negative { -cents } else { cents }))
    }

    /// The API form: `"-30000.00"`.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// The form a programming officer reads in a message: `"984,97 M€"`, `"-0,03 M€"`, `"1 250,50 €"`.
    pub fn to_french(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        if abs >= 1_000_000 {
            // Millions of euros, with as many decimals as needed to stay exact (at least two).
            let whole = abs / 100_000_000;
            let mut frac = format!("{:08}", abs % 100_000_000);
            while frac.len() > 2 && frac.ends_with('0') {
                frac.pop();
            }
            format!("{sign}{},{frac} M€", group_thousands(whole))
        } else {
            format!("{sign}{},{:02} €", group_thousands(abs / 100), abs % 100)
        }
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// An exact amount in euros, as a decimal string with two decimals (`"70520000.00"`). Inputs accept zero to two
/// decimals (`"1250"`, `"1250.5"`); floats, exponents and fractions of a cent are refused.
#[Scalar(name = "Euros", use_type_description)]
impl ScalarType for Euros {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Euros::parse(&text).map_err(|e| InputValueError::custom(e.to_string())),
            other => Err(InputValueError::custom(format!(
                "un montant en euros s'écrit comme une chaîne décimale (\"1250.50\"), pas {other}"
            ))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_decimal_string())
    }
}

impl async_graphql::Description for Euros {
    fn description() -> &'static str {
        "An exact amount in euros: a decimal string with two decimals (\"70520000.00\"). Inputs accept zero to two \
         decimals; floats, exponents and fractions of a cent are refused."
    }
}

// Stored forms (revisions, idempotent answers) keep cents as an integer.
impl serde::Serialize for Euros {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Euros {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <i64 as serde::Deserialize>::deserialize(deserializer).map(Euros)
    }
}

/// A share in basis points (8000 = 80 %), shown as a percentage with two decimals ("80.00").
pub fn basis_points_to_percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_with_exactly_two_decimals() {
        assert_eq!(Euros(7_052_000_000).to_decimal_string(), "70520000.00");
        assert_eq!(Euros(-3_000_000).to_decimal_string(), "-30000.00");
        assert_eq!(Euros(5).to_decimal_string(), "0.05");
        assert_eq!(Euros(i64::MIN).to_decimal_string(), "-92233720368547758.08");
    }

    #[test]
    fn exact_decimals_parse_to_cents() {
        assert_eq!(Euros::parse("70520000.00"), Ok(Euros(7_052_000_000)));
        assert_eq!(Euros::parse("1250.5"), Ok(Euros(125_050)));
        assert_eq!(Euros::parse("12"), Ok(Euros(1_200)));
        assert_eq!(Euros::parse("-0.03"), Ok(Euros(-3)));
    }

    #[test]
    fn floats_exponents_and_fractions_of_a_cent_are_refused() {
        for text in ["1e6", "12.345", "12,50", " 12", "", ".5", "5.", "--1", "1 000", "NaN"] {
            assert!(matches!(Euros::parse(text), Err(MoneyError::Malformed(_))), "{text:?} accepted");
        }
        assert!(matches!(Euros::parse("999999999999999999999"), Err(MoneyError::Overflow(_))));
    }

    #[test]
    fn french_rendering_keeps_every_cent() {
        assert_eq!(Euros(98_497_000_000).to_french(), "984,97 M€");
        assert_eq!(Euros(-3_000_000).to_french(), "-0,03 M€");
        assert_eq!(Euros(149_497_000_001).to_french(), "1\u{202f}494,97000001 M€");
        assert_eq!(Euros(125_050).to_french(), "1\u{202f}250,50 €");
    }

    #[test]
    fn basis_points_print_as_percentages() {
        assert_eq!(basis_points_to_percent(8000), "80.00");
        assert_eq!(basis_points_to_percent(2319), "23.19");
    }
}
