//! GraphQL inputs and payloads of programming. The measure and commitment records themselves (what the API shows and
//! what revisions keep) are `crate::records`, beneath the reconciled state that holds them.

use async_graphql::{InputObject, SimpleObject};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use crate::records::{CommitmentRecord, MeasureRecord, YearAmount};

use crate::error::Violation;
use crate::money::Euros;
use crate::vocabulary::{
    CostComponent, MeasureCompartment, MeasureNature, MeasurePublic, MeasureStatus, Procedure, SolutionUnit,
};

/// A programming measure as the ARS submits it.
#[derive(InputObject, Serialize, Clone, Debug)]
pub struct MeasureInput {
    /// The ARS's own reference of the line: the measure is created the first time, updated afterwards.
    pub reference: String,
    pub label: String,
    pub departement_code: String,
    pub finess: Option<String>,
    /// INSEE code of the commune (5 characters: "69123" for Lyon, "2A004" for Ajaccio). Needed where two
    /// collectivités share the département (the Rhône and the Métropole de Lyon) to tell which one co-finances.
    pub commune_code: Option<String>,
    /// The collectivité expected to co-finance (its hub code, e.g. "METROPOLE-LYON"), checked against the
    /// collectivités covering the measure's département and commune.
    pub expected_cofinancer_code: Option<String>,
    pub category_code: String,
    pub publics: Vec<MeasurePublic>,
    pub solutions: i64,
    pub unit: SolutionUnit,
    pub nature: MeasureNature,
    pub procedure: Procedure,
    pub compartment: MeasureCompartment,
    pub planned_installation: NaiveDate,
    #[graphql(default_with = "MeasureStatus::Programmee")]
    pub status: MeasureStatus,
}

/// The answer to `upsertMeasure`.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug)]
pub struct MeasurePayload {
    pub measure: MeasureRecord,
    /// True when this call created the measure.
    pub created: bool,
    /// Accepted, but worth a look (a legacy FINESS category on a creation, a Corsican FINESS key not verifiable…).
    pub warnings: Vec<ViolationView>,
}

/// A rule broken (or a warning), with the field it concerns.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Violation")]
pub struct ViolationView {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl From<Violation> for ViolationView {
    fn from(v: Violation) -> Self {
        ViolationView { path: v.path, code: v.code, message: v.message }
    }
}

/// A funder's view of a measure.
#[derive(InputObject, Serialize, Clone, Debug)]
pub struct CommitmentInput {
    pub measure_id: async_graphql::ID,
    pub cost_component: CostComponent,
    pub full_year_amount: Euros,
    #[graphql(default)]
    pub schedule: Vec<YearAmount>,
    pub decision_ref: String,
    pub capacity: i64,
    pub installation_date: NaiveDate,
}

/// The answer to `commit` and `withdrawCommitment`.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug)]
pub struct CommitmentPayload {
    pub commitment: CommitmentRecord,
    pub created: bool,
}

/// Filters of `measures`.
#[derive(InputObject, Default, Clone, Debug)]
pub struct MeasureFilter {
    pub region_code: Option<String>,
    pub departement_code: Option<String>,
    pub category_code: Option<String>,
    pub compartment: Option<MeasureCompartment>,
    pub status: Option<MeasureStatus>,
    /// Year of the planned installation.
    pub year: Option<i32>,
}
