//! sea-orm entities of cnh-hub: one module per table. These are storage shapes; the GraphQL types in `api` are
//! separate so that a table change never silently changes the published contract.

pub mod academie;
pub mod annex_printed_figure;
pub mod audit_head;
pub mod audit_record;
pub mod campaign;
pub mod co_financing_event;
pub mod collectivite;
pub mod collectivite_departement;
pub mod commitment;
pub mod commitment_revision;
pub mod departement;
pub mod envelope_allocation;
pub mod financing_rule;
pub mod idempotency_record;
pub mod institution;
pub mod measure;
pub mod measure_co_financing;
pub mod measure_revision;
pub mod national_target;
pub mod needs_indicator;
pub mod needs_indicator_revision;
pub mod orientation_code;
pub mod pull_run;
pub mod pull_source;
pub mod reconciliation_region;
pub mod region;
pub mod revoked_token;
pub mod school_plan;
pub mod school_plan_revision;
pub mod seen_token;
pub mod structure_category;
pub mod submission;
pub mod webhook_delivery;
pub mod webhook_subscription;
