//! Property tests of what reads untrusted input without a database: the CSV/XLSX readers, the `Euros` scalar, the
//! identifier checks, and the GraphQL entry point's checks before execution (document limits, parse, expansion,
//! refused characters, media-type negotiation). Whatever the input: no panic, and every refusal is a typed error.

use api::files::tabular::{FileError, read_table};
use api::graphql::document_guard::guard;
use api::graphql::limits::DocumentLimits;
use api::money::{Euros, MoneyError};
use api::validation::identifiers::{finess_check, finess_departement, luhn_valid, siren_valid, siret_valid, uai_valid};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    // Enough cases to find the usual slicing and overflow mistakes in the suite's time on two cores.
    ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text that looks like what the readers and checks meet: digits, letters, separators, accents, control characters.
fn messy_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('A', 'Z'),
            Just(';'),
            Just(','),
            Just('.'),
            Just('-'),
            Just('\n'),
            Just('\t'),
            Just('"'),
            Just('é'),
            Just('€'),
            Just('\0'),
            Just('\u{202f}'),
            any::<char>(),
        ],
        0..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_a_table_or_a_file_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = read_table(&bytes);
    }

    #[test]
    fn any_zip_looking_bytes_are_a_workbook_or_a_file_error(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.extend(tail);
        match read_table(&bytes) {
            Ok(_) | Err(FileError::Xlsx(_)) | Err(FileError::Empty) => {}
            Err(other) => prop_assert!(false, "an XLSX failure is reported as such: {other:?}"),
        }
    }

    #[test]
    fn any_csv_text_reads_whatever_its_encoding(text in messy_text(), utf16 in any::<bool>()) {
        let bytes = if utf16 {
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            bytes
        } else {
            text.clone().into_bytes()
        };
        match read_table(&bytes) {
            Ok((_, table)) => {
                prop_assert!(!table.headers.iter().chain(table.rows.iter().flatten()).any(|c| c.contains('\0')));
                let _ = table.unnamed_columns();
            }
            Err(FileError::RefusedCharacter { .. }) => prop_assert!(text.contains('\0')),
            Err(_) => {}
        }
    }

    #[test]
    fn euros_parse_or_refuse_and_round_trip(text in messy_text()) {
        match Euros::parse(&text) {
            Ok(euros) => {
                let again = Euros::parse(&euros.to_decimal_string());
                prop_assert_eq!(again, Ok(euros));
                let _ = euros.to_french();
            }
            Err(MoneyError::Malformed(_) | MoneyError::Overflow(_)) => {}
        }
    }

    #[test]
    fn every_amount_in_cents_prints_and_parses_back(cents in any::<i64>()) {
        let euros = Euros(cents);
        prop_assert_eq!(Euros::parse(&euros.to_decimal_string()), Ok(euros));
        let _ = euros.to_french();
    }

    #[test]
    fn identifier_checks_answer_for_any_text(text in messy_text()) {
        let _ = finess_check(&text);
        let _ = finess_departement(&text);
        let _ = uai_valid(&text);
        let _ = siren_valid(&text);
        let _ = siret_valid(&text);
        let _ = luhn_valid(&text);
    }

    #[test]
    fn identifier_checks_answer_for_nine_bytes_of_anything(text in "[0-9A-Za-zéè€ ]{1,9}") {
        let _ = finess_check(&text);
        let _ = finess_departement(&text);
        let _ = uai_valid(&text);
    }

    #[test]
    fn any_document_is_guarded_without_panic(document in graphql_like(), variables in messy_text()) {
        let mut request = async_graphql::Request::new(document)
            .variables(async_graphql::Variables::from_json(serde_json::json!({ "v": variables })));
        let _ = guard(&mut request, &DocumentLimits::default());
    }

    #[test]
    fn any_accept_header_negotiates(accept in "[a-z/+*;=.0-9, ]{0,60}") {
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(value) = axum::http::HeaderValue::from_str(&accept) {
            headers.insert(axum::http::header::ACCEPT, value);
        }
        let _ = api::graphql::media::negotiate(&headers);
    }
}

/// Documents built from GraphQL's own pieces, so that many parse and reach the later checks.
fn graphql_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just("...".to_owned()),
        Just("query Q".to_owned()),
        Just("mutation".to_owned()),
        Just("fragment F on Query".to_owned()),
        Just("...F".to_owned()),
        Just("$v".to_owned()),
        Just("@skip(if: true)".to_owned()),
        Just("measures".to_owned()),
        Just("measure(id: ".to_owned()),
        Just("regions".to_owned()),
        Just("code".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"\"\"block\"\"\"".to_owned()),
        Just("#comment\n".to_owned()),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
        "[a-z]{1,8}".prop_map(|s| s),
        messy_text().prop_map(|s| format!("\"{}\"", s.replace('"', ""))),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.join(" "))
}
