//! sea-orm entities of cnh-hub: one module per table. These are storage shapes; the GraphQL types in `api` are
//! separate so that a table change never silently changes the published contract.

pub mod academie;
pub mod annex_printed_figure;
pub mod collectivite;
pub mod collectivite_departement;
pub mod departement;
pub mod envelope_allocation;
pub mod financing_rule;
pub mod institution;
pub mod national_target;
pub mod orientation_code;
pub mod region;
pub mod revoked_token;
pub mod structure_category;
