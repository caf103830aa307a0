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

/// `numerator / denominator` rounded half away from zero (2.5 → 3, −2.5 → −3), exactly, in integers: the rounding
/// of every ratio the hub shows. None when the denominator is zero (or for `i128::MIN / -1`, which has no value).
pub fn divide_rounded(numerator: i128, denominator: i128) -> Option<i128> {
    let quotient = numerator.checked_div(denominator)?;
    let remainder = numerator.checked_rem(denominator)?;
    // |remainder| < |denominator| ≤ 2^127, so twice it fits in a u128.
    if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() {
        // The remainder has the numerator's sign; the exact quotient lies beyond the truncated one, away from zero.
        let away = if (numerator < 0) == (denominator < 0) { 1 } else { -1 };
        quotient.checked_add(away)
    } else {
        Some(quotient)
    }
}

/// The share `part / whole` in basis points (6667 = 66.67 %), rounded half away from zero to the basis point, the
/// precision every percentage is printed to: 2/3 → 6667, 400/985 → 4061, −2/3 → −6667, 1/20 000 → 1. Exact integer
/// arithmetic (i128 inside, so amounts of any i64 size neither overflow nor lose a cent); None when `whole` is zero.
/// A share beyond the i64 range (a part more than 10^14 times its whole) is clamped to it.
pub fn ratio_basis_points(part: i64, whole: i64) -> Option<i64> {
    let bp = divide_rounded(i128::from(part) * 10_000, i128::from(whole))?;
    Some(i64::try_from(bp).unwrap_or(if bp < 0 { i64::MIN } else { i64::MAX }))
}

/// A share in basis points (8000 = 80 %), shown as a percentage with two decimals ("80.00"): the API's form.
/// Round the share with `ratio_basis_points` first; this only prints it.
pub fn basis_points_to_percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The same percentage as a French message prints it, with a decimal comma ("66,67"; the message adds " %").
pub fn basis_points_to_french_percent(bp: i64) -> String {
    basis_points_to_percent(bp).replace('.', ",")
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
        assert_eq!(basis_points_to_percent(-6667), "-66.67");
        assert_eq!(basis_points_to_percent(1), "0.01");
        assert_eq!(basis_points_to_french_percent(6667), "66,67");
    }

    /// part / whole as the API prints it.
    fn printed(part: i64, whole: i64) -> Option<String> {
        ratio_basis_points(part, whole).map(basis_points_to_percent)
    }

    #[test]
    fn shares_round_half_away_from_zero_to_the_hundredth_of_a_percent() {
        // Truncation printed 66.66 and 40.60.
        assert_eq!(printed(2, 3), Some("66.67".into()));
        assert_eq!(printed(1, 3), Some("33.33".into()));
        assert_eq!(printed(400, 985), Some("40.61".into()));
        // Exact shares stay as they are.
        assert_eq!(printed(1, 8), Some("12.50".into()));
        assert_eq!(printed(4, 5), Some("80.00".into()));
        assert_eq!(printed(3, 3), Some("100.00".into()));
        assert_eq!(printed(7, 2), Some("350.00".into()));
        // Exactly half a basis point: away from zero.
        assert_eq!(printed(1, 20_000), Some("0.01".into()));
        assert_eq!(printed(3, 40_000), Some("0.01".into()), "0.0075 % is above the half");
        assert_eq!(printed(1, 40_000), Some("0.00".into()), "0.0025 % is below the half");
        assert_eq!(printed(-1, 20_000), Some("-0.01".into()));
        assert_eq!(printed(1, -20_000), Some("-0.01".into()));
        assert_eq!(printed(-1, -20_000), Some("0.01".into()));
        assert_eq!(printed(1, 16), Some("6.25".into()));
        assert_eq!(printed(1, 30_000), Some("0.00".into()));
        assert_eq!(printed(-1, 30_000), Some("0.00".into()), "no negative zero");
        assert_eq!(printed(333_335, 1_000_000), Some("33.33".into()), "33.3335 %: the half of the next digit only");
        assert_eq!(printed(66_665, 100_000), Some("66.67".into()), "66.665 % exactly: away from zero");
        assert_eq!(printed(-66_665, 100_000), Some("-66.67".into()));
        // Negative parts, away from zero.
        assert_eq!(printed(-2, 3), Some("-66.67".into()));
        assert_eq!(printed(2, -3), Some("-66.67".into()));
        assert_eq!(printed(-1, 3), Some("-33.33".into()));
        // Nothing of something; something of nothing.
        assert_eq!(printed(0, 985), Some("0.00".into()));
        assert_eq!(printed(0, -5), Some("0.00".into()));
        assert_eq!(printed(5, 0), None);
        assert_eq!(printed(0, 0), None);
    }

    #[test]
    fn shares_of_large_amounts_do_not_overflow() {
        // 66 666 666 666 667 cents of 100 000 000 000 000 cents (10^14, a thousand billion euros).
        assert_eq!(ratio_basis_points(66_666_666_666_667, 100_000_000_000_000), Some(6_667));
        assert_eq!(ratio_basis_points(9_999_999_999_999, 10_000_000_000_000), Some(10_000));
        assert_eq!(ratio_basis_points(4_000_000_000_000, 9_850_000_000_000), Some(4_061));
        assert_eq!(ratio_basis_points(-2 * 3_333_333_333_333, 9_999_999_999_999), Some(-6_667));
        assert_eq!(ratio_basis_points(i64::MAX, i64::MAX), Some(10_000));
        assert_eq!(ratio_basis_points(i64::MIN, i64::MIN), Some(10_000));
        assert_eq!(ratio_basis_points(i64::MAX / 2 + 1, i64::MAX), Some(5_000));
        assert_eq!(ratio_basis_points(i64::MIN, i64::MAX), Some(-10_000));
        // A share beyond the i64 range is clamped, not wrapped.
        assert_eq!(ratio_basis_points(i64::MAX, 1), Some(i64::MAX));
        assert_eq!(ratio_basis_points(i64::MIN, 1), Some(i64::MIN));
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        for (n, d, q) in [
            (5, 2, 3),
            (-5, 2, -3),
            (5, -2, -3),
            (-5, -2, 3),
            (7, 3, 2),
            (8, 3, 3),
            (-8, 3, -3),
            (0, 7, 0),
            (1, 1, 1),
            (i128::MAX, i128::MAX, 1),
            (i128::MAX, 2, i128::MAX / 2 + 1),
            (i128::MIN, 2, i128::MIN / 2),
            (i128::MIN + 1, i128::MIN, 1),
        ] {
            assert_eq!(divide_rounded(n, d), Some(q), "{n} / {d}");
        }
        assert_eq!(divide_rounded(1, 0), None);
        assert_eq!(divide_rounded(i128::MIN, -1), None);
    }
}
