//! The fast read path's reading of a request: a parser for the documents dashboards send (`parse`), their checking
//! and planning against the part of the schema answered from memory (`plan`), and the JSON writing of the answer
//! (`json`). Pure: no HTTP, no database. The GraphQL channel (`graphql::fast`) runs it, the capabilities write their
//! own types' fields; whatever it does not read takes the general executor, so it can only be faster, never answer
//! differently (tests/it/fast_reads.rs compares the two paths).

pub mod json;
pub mod parse;
pub mod plan;

/// The fast path does not answer this request: the general executor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback;
