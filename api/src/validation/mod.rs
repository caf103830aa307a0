//! Input validation that explains: every rule broken by a write is reported (field path, stable code, French
//! message), not only the first. Pure: no HTTP or database inside.

pub mod identifiers;

use chrono::NaiveDate;

use crate::error::{ApiError, Violation};

/// The plan runs from 2024 to 2030; programming years outside it are refused.
pub const FIRST_YEAR: i32 = 2024;
pub const LAST_YEAR: i32 = 2030;
/// The largest amount accepted in one field: ten billion euros, far above any envelope.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;

#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Violations(Vec::new())
    }

    pub fn add(&mut self, path: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(Violation { path: path.into(), code: code.to_owned(), message: message.into() });
    }

    /// Records a violation when `ok` is false; returns `ok`.
    pub fn check(&mut self, ok: bool, path: impl Into<String>, code: &str, message: impl Into<String>) -> bool {
        if !ok {
            self.add(path, code, message);
        }
        ok
    }

    pub fn text(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let length = value.trim().chars().count();
        if length < min {
            self.add(path, "REQUIRED", "champ obligatoire");
        } else if length > max {
            self.add(path, "TOO_LONG", format!("{max} caractères au plus ({length} reçus)"));
        }
    }

    pub fn optional_text(&mut self, path: &str, value: Option<&str>, max: usize) {
        if let Some(value) = value {
            self.text(path, value, 0, max);
        }
    }

    pub fn amount(&mut self, path: &str, cents: i64) {
        if cents < 0 {
            self.add(path, "NEGATIVE_AMOUNT", "un montant ne peut pas être négatif");
        } else if cents > MAX_AMOUNT_CENTS {
            self.add(path, "AMOUNT_TOO_LARGE", "montant supérieur à 10 milliards d'euros");
        }
    }

    pub fn year(&mut self, path: &str, year: i32) -> bool {
        self.check(
            (FIRST_YEAR..=LAST_YEAR).contains(&year),
            path,
            "YEAR_OUT_OF_PLAN",
            format!("année {year} hors du plan ({FIRST_YEAR}-{LAST_YEAR})"),
        )
    }

    pub fn date_in_plan(&mut self, path: &str, date: NaiveDate) -> bool {
        use chrono::Datelike;
        self.check(
            (FIRST_YEAR..=LAST_YEAR).contains(&date.year()),
            path,
            "DATE_OUT_OF_PLAN",
            format!("date {date} hors du plan ({FIRST_YEAR}-{LAST_YEAR})"),
        )
    }

    /// Moves the violations of a batch row under its index: `rows[12].finess`.
    pub fn extend_at(&mut self, prefix: &str, other: Violations) {
        for v in other.0 {
            self.0.push(Violation { path: format!("{prefix}.{}", v.path), ..v });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::ValidationFailed(self.0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_violation_is_kept_with_its_path() {
        let mut v = Violations::new();
        v.text("label", "", 1, 10);
        v.amount("amount", -1);
        v.year("year", 2031);
        v.text("reference", "ok", 1, 10);
        let mut batch = Violations::new();
        batch.extend_at("rows[3]", v);
        let paths: Vec<String> = batch.into_vec().into_iter().map(|v| v.path).collect();
        assert_eq!(paths, ["rows[3].label", "rows[3].amount", "rows[3].year"]);
    }
}
