//! The checked-in `schema.graphql` is the contract other systems build against: it must be the server's schema.

#[test]
fn checked_in_schema_matches_the_server() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    let current = api::graphql::sdl();
    if checked_in != current {
        let first_difference = checked_in
            .lines()
            .zip(current.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  checked in: {a}\n  server:     {b}", i + 1))
            .unwrap_or_else(|| "one file is a prefix of the other".to_owned());
        panic!(
            "schema.graphql differs from the server's schema ({first_difference}).\n\
             Regenerate it with: cargo run -- export-schema --output schema.graphql"
        );
    }
}

#[test]
fn every_documented_error_code_is_in_the_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap_or_default();
    for code in api::error::code::ALL {
        assert!(readme.contains(&format!("`{code}`")), "README.md does not document the error code {code}");
    }
}
