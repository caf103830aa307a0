//! What a pull source answers, read into the rows the writes take: pure, no HTTP and no database.
//!
//! The hub's JSON exchange format (`format: JSON`):
//!
//! ```json
//! { "format": "cnh-hub/1", "kind": "NEEDS", "asOf": "2026-11-30T18:00:00+01:00", "data": { … } }
//! ```
//!
//! `data` is exactly what the GraphQL write of that kind takes, in its JSON form (enum names, amounts as decimal
//! strings): `NeedsSubmissionInput` for NEEDS, `SchoolPlansInput` for SCHOOL_PLANS, and for MEASURES and
//! COMMITMENTS a list of `MeasureInput` / `CommitmentInput`, each item optionally with its `expectedVersion`.
//! `asOf` (optional) says when the data was true at the source.
//!
//! A GraphQL source (`format: GRAPHQL`) answers `{ "data": { "<one field>": <data> } }` to the registered query
//! (aliases make its names fit); `errors` in the answer refuse it.

use async_graphql::{InputType, Pos};
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::error::Violation;
use crate::files::import::Batch;
use crate::kernel::write::content_hash;
use crate::steering::figures::SteeringBatch;
use crate::vocabulary::DataKind;

/// The `format` tag of the JSON exchange format's current version.
pub const EXCHANGE_FORMAT: &str = "cnh-hub/1";
/// Most items a MEASURES or COMMITMENTS document may hold (the writes bound their own batches too).
pub const MAX_ITEMS: usize = 5_000;

/// A document read from a source.
#[derive(Debug)]
pub struct Document {
    pub batch: Batch,
    /// When its data was true at the source, if it says.
    pub as_of: Option<DateTime<FixedOffset>>,
    /// SHA-256 of its kind and data: the same data fetched again is recognised, however it was laid out.
    pub content_hash: String,
}

fn violation(path: impl Into<String>, code: &str, message: impl Into<String>) -> Violation {
    Violation { path: path.into(), code: code.to_owned(), message: message.into() }
}

/// The input type `T` read from its JSON form, as GraphQL would read it from variables.
fn input<T: InputType>(value: Value, path: &str) -> Result<T, Violation> {
    let value = async_graphql::Value::from_json(value)
        .map_err(|e| violation(path, "INVALID_ROW", format!("{path} : valeur illisible ({e})")))?;
    T::parse(Some(value)).map_err(|e| {
        let message = e.into_server_error(Pos::default()).message;
        violation(path, "INVALID_ROW", format!("{path} : {message}"))
    })
}

/// Items of a list kind, each with its optional `expectedVersion`; every unreadable item reported.
fn items<T: InputType>(data: Value) -> Result<Vec<(T, Option<i32>)>, Vec<Violation>> {
    let Value::Array(list) = data else {
        return Err(vec![violation(
            "data",
            "INVALID_DOCUMENT",
            "data : une liste est attendue pour ce type de données",
        )]);
    };
    if list.len() > MAX_ITEMS {
        return Err(vec![violation(
            "data",
            "BATCH_TOO_LARGE",
            format!("data : {} éléments, {MAX_ITEMS} au plus par document", list.len()),
        )]);
    }
    let mut rows = Vec::with_capacity(list.len());
    let mut errors = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        let path = format!("data[{i}]");
        let Value::Object(mut fields) = item else {
            errors.push(violation(&path, "INVALID_ROW", format!("{path} : un objet est attendu")));
            continue;
        };
        let version = match fields.remove("expectedVersion") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| (0..=i32::MAX as i64).contains(&v)) => {
                n.as_i64().map(|v| v as i32)
            }
            Some(other) => {
                errors.push(violation(
                    format!("{path}.expectedVersion"),
                    "INVALID_ROW",
                    format!("{path}.expectedVersion : un entier positif est attendu, pas {other}"),
                ));
                continue;
            }
        };
        match input::<T>(Value::Object(fields), &path) {
            Ok(row) => rows.push((row, version)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// The rows of `data` for a kind.
fn batch(kind: DataKind, data: Value) -> Result<Batch, Vec<Violation>> {
    Ok(match kind {
        DataKind::Needs => Batch::Needs(input(data, "data").map_err(|e| vec![e])?),
        DataKind::SchoolPlans => Batch::SchoolPlans(input(data, "data").map_err(|e| vec![e])?),
        DataKind::Measures => Batch::Measures(items(data)?),
        DataKind::Commitments => Batch::Commitments(items(data)?),
        // The JSON exchange format carries the GraphQL write's arguments: a list of points or rights, a forecast.
        DataKind::Trajectory => Batch::Steering(SteeringBatch::Trajectory(input(data, "data").map_err(|e| vec![e])?)),
        DataKind::DrawingRights => {
            Batch::Steering(SteeringBatch::DrawingRights(input(data, "data").map_err(|e| vec![e])?))
        }
        DataKind::InstallationForecast => {
            Batch::Steering(SteeringBatch::InstallationForecast(input(data, "data").map_err(|e| vec![e])?))
        }
    })
}

fn hash_of(kind: DataKind, data: &Value) -> String {
    content_hash(&(kind.as_str(), data))
}

/// Reads a document of the JSON exchange format, expected to hold `kind`.
pub fn read_exchange(kind: DataKind, bytes: &[u8]) -> Result<Document, Vec<Violation>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![violation("", "MALFORMED_DOCUMENT", format!("le document n'est pas du JSON valide ({e})"))]
    })?;
    let Value::Object(mut document) = value else {
        return Err(vec![violation("", "INVALID_DOCUMENT", "un objet JSON est attendu à la racine")]);
    };
    let mut errors = Vec::new();
    match document.get("format").and_then(Value::as_str) {
        Some(EXCHANGE_FORMAT) => {}
        other => errors.push(violation(
            "format",
            "INVALID_DOCUMENT",
            format!(
                "format : « {EXCHANGE_FORMAT} » attendu, reçu {}",
                other.map_or("rien".into(), |f| format!("« {f} »"))
            ),
        )),
    }
    match document.get("kind").and_then(Value::as_str) {
        Some(k) if k == kind.as_str() => {}
        other => errors.push(violation(
            "kind",
            "INVALID_DOCUMENT",
            format!(
                "kind : la source est déclarée pour {}, le document dit {}",
                kind.as_str(),
                other.map_or("rien".into(), |k| format!("« {k} »"))
            ),
        )),
    }
    let as_of = match document.get("asOf") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at),
            Err(_) => {
                errors.push(violation(
                    "asOf",
                    "INVALID_DOCUMENT",
                    format!("asOf : « {text} » n'est pas une date et heure RFC 3339"),
                ));
                None
            }
        },
        Some(other) => {
            errors.push(violation("asOf", "INVALID_DOCUMENT", format!("asOf : une chaîne est attendue, pas {other}")));
            None
        }
    };
    let Some(data) = document.remove("data") else {
        errors.push(violation("data", "INVALID_DOCUMENT", "data : absent"));
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let content_hash = hash_of(kind, &data);
    Ok(Document { batch: batch(kind, data)?, as_of, content_hash })
}

/// Reads a GraphQL endpoint's answer to the registered query: its one top-level field holds `data`.
pub fn read_graphql_answer(kind: DataKind, bytes: &[u8]) -> Result<Document, Vec<Violation>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![violation("", "MALFORMED_DOCUMENT", format!("la réponse GraphQL n'est pas du JSON valide ({e})"))]
    })?;
    if let Some(errors) = value.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()) {
        return Err(errors
            .iter()
            .take(20)
            .map(|e| {
                let message = e.get("message").and_then(Value::as_str).unwrap_or("erreur sans message");
                violation("errors", "SOURCE_ERROR", format!("la source répond par une erreur : {message}"))
            })
            .collect());
    }
    let fields = match value.get("data") {
        Some(Value::Object(fields)) => fields,
        _ => return Err(vec![violation("data", "INVALID_DOCUMENT", "la réponse GraphQL n'a pas de data")]),
    };
    if fields.len() != 1 {
        return Err(vec![violation(
            "data",
            "INVALID_DOCUMENT",
            format!("la requête doit avoir un seul champ de premier niveau ({} reçus)", fields.len()),
        )]);
    }
    let data = fields.values().next().cloned().unwrap_or(Value::Null);
    let content_hash = hash_of(kind, &data);
    Ok(Document { batch: batch(kind, data)?, as_of: None, content_hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs_document(value: i64) -> String {
        format!(
            r#"{{ "format": "cnh-hub/1", "kind": "NEEDS", "asOf": "2026-11-30T18:00:00+01:00",
              "data": {{ "departementCode": "69", "referenceDate": "2026-06-30",
                "indicators": [ {{ "orientationCode": "7.1", "ageBand": "TOUS", "indicator": "EN_ATTENTE_ADMISSION", "value": {value} }} ] }} }}"#
        )
    }

    #[test]
    fn a_needs_document_reads_as_the_graphql_input() {
        let document = read_exchange(DataKind::Needs, needs_document(12).as_bytes()).unwrap();
        let Batch::Needs(input) = &document.batch else { panic!("needs expected") };
        assert_eq!(input.departement_code, "69");
        assert_eq!(input.indicators.len(), 1);
        assert_eq!(input.indicators[0].value, 12);
        assert_eq!(document.as_of.unwrap().to_rfc3339(), "2026-11-30T18:00:00+01:00");
    }

    #[test]
    fn the_hash_follows_the_data_not_its_layout_nor_its_as_of() {
        let a = read_exchange(DataKind::Needs, needs_document(12).as_bytes()).unwrap();
        let relaid = needs_document(12).replace("\n", " ").replace("2026-11-30T18", "2026-12-01T09");
        let b = read_exchange(DataKind::Needs, relaid.as_bytes()).unwrap();
        let c = read_exchange(DataKind::Needs, needs_document(13).as_bytes()).unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        assert_ne!(a.content_hash, c.content_hash);
    }

    #[test]
    fn malformed_json_wrong_kind_and_bad_fields_are_named() {
        let err = read_exchange(DataKind::Needs, b"{ not json").unwrap_err();
        assert_eq!(err[0].code, "MALFORMED_DOCUMENT");
        let err = read_exchange(DataKind::SchoolPlans, needs_document(1).as_bytes()).unwrap_err();
        assert_eq!(err[0].path, "kind");
        let err =
            read_exchange(DataKind::Needs, br#"{ "format": "csv", "kind": "NEEDS", "asOf": "hier", "data": {} }"#)
                .unwrap_err();
        let paths: Vec<&str> = err.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["format", "asOf"]);
        let err = read_exchange(
            DataKind::Needs,
            needs_document(-1).replace("\"value\": -1", "\"value\": \"beaucoup\"").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err[0].code, "INVALID_ROW");
        assert!(err[0].message.contains("data"), "{}", err[0].message);
    }

    #[test]
    fn list_items_carry_their_expected_version_and_every_bad_item_is_reported() {
        let text = r#"{ "format": "cnh-hub/1", "kind": "COMMITMENTS", "data": [
            { "measureId": "m1", "costComponent": "GLOBAL", "fullYearAmount": "1000.00", "decisionRef": "D1",
              "capacity": 10, "installationDate": "2026-09-01", "expectedVersion": 2 },
            { "measureId": "m2", "costComponent": "NOPE", "fullYearAmount": "1000.00", "decisionRef": "D2",
              "capacity": 10, "installationDate": "2026-09-01" },
            "not an object" ] }"#;
        let err = read_exchange(DataKind::Commitments, text.as_bytes()).unwrap_err();
        let paths: Vec<&str> = err.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["data[1]", "data[2]"]);
        let mut good: Value = serde_json::from_str(text).unwrap();
        good["data"][1]["costComponent"] = Value::from("HEBERGEMENT");
        good["data"].as_array_mut().unwrap().pop();
        let document = read_exchange(DataKind::Commitments, good.to_string().as_bytes()).unwrap();
        let Batch::Commitments(rows) = document.batch else { panic!() };
        assert_eq!(rows.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [Some(2), None]);
    }

    #[test]
    fn a_graphql_answer_gives_its_one_field_and_its_errors_refuse_it() {
        let answer =
            r#"{ "data": { "needs": { "departementCode": "69", "referenceDate": "2026-06-30", "indicators": [] } } }"#;
        let document = read_graphql_answer(DataKind::Needs, answer.as_bytes()).unwrap();
        assert!(matches!(document.batch, Batch::Needs(_)));
        let err = read_graphql_answer(DataKind::Needs, br#"{ "errors": [ { "message": "boom" } ], "data": null }"#)
            .unwrap_err();
        assert!(err[0].message.contains("boom"));
        let err = read_graphql_answer(DataKind::Needs, br#"{ "data": { "a": 1, "b": 2 } }"#).unwrap_err();
        assert_eq!(err[0].code, "INVALID_DOCUMENT");
    }
}
