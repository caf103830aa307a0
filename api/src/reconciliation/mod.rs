//! Reconciliation: what disagrees between institutions, and why. The engine is pure; its GraphQL surface
//! (`coFinancingStatus`, `reconciliation`, the live subscription) is still to come (issue 5).

pub mod engine;
