//! Measures and commitments as the API shows them and as each revision keeps them (JSON), built from their stored
//! rows. Beneath the reconciled state, which holds these records (and answers a measure's `commitments` field), and
//! every capability that shows them.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, FixedOffset, NaiveDate};
use entities::{commitment, measure};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, stored};
use crate::money::Euros;
use crate::vocabulary::{
    CommitmentStatus, CostComponent, MeasureCompartment, MeasureNature, MeasurePublic, MeasureStatus, Payer, Procedure,
    SolutionUnit,
};

/// A programming measure as it stands at one version: what the API shows and what each revision keeps.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Measure", complex)]
pub struct MeasureRecord {
    pub id: String,
    pub region_code: String,
    pub departement_code: String,
    /// The ARS's own reference of the line (its SEPPIA line), unique in its region.
    pub reference: String,
    pub label: String,
    /// FINESS of the establishment transformed or extended; absent for a new creation.
    pub finess: Option<String>,
    /// INSEE code of the measure's commune, where it decides which collectivité co-finances (the Métropole de
    /// Lyon's 59 communes against the rest of the Rhône).
    pub commune_code: Option<String>,
    /// The collectivité the ARS designates as the expected co-financer (null: the one covering the measure's
    /// territory, when there is only one).
    pub expected_cofinancer_code: Option<String>,
    /// FINESS category ("183") or dispositif ("PCO").
    pub category_code: String,
    pub publics: Vec<MeasurePublic>,
    /// Number of solutions, in `unit`.
    pub solutions: i64,
    pub unit: SolutionUnit,
    pub nature: MeasureNature,
    pub procedure: Procedure,
    pub compartment: MeasureCompartment,
    pub planned_installation: NaiveDate,
    pub status: MeasureStatus,
    /// Incremented by every change; give it back as `expectedVersion` to update.
    pub version: i32,
    pub updated_at: DateTime<FixedOffset>,
    /// Institution and agent of the last change.
    pub updated_by: String,
}

impl MeasureRecord {
    /// New solutions, not the transformation of an establishment or service.
    pub fn is_creation(&self) -> bool {
        self.nature == MeasureNature::Creation
    }
}

impl TryFrom<&measure::Model> for MeasureRecord {
    type Error = ApiError;

    fn try_from(m: &measure::Model) -> Result<Self, ApiError> {
        let publics = m
            .publics
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| stored(MeasurePublic::from_stored(p), "public", p))
            .collect::<Result<_, _>>()?;
        Ok(MeasureRecord {
            id: m.id.clone(),
            region_code: m.region_code.clone(),
            departement_code: m.departement_code.clone(),
            reference: m.reference.clone(),
            label: m.label.clone(),
            finess: m.finess.clone(),
            commune_code: m.commune_code.clone(),
            expected_cofinancer_code: m.expected_cofinancer_code.clone(),
            category_code: m.category_code.clone(),
            publics,
            solutions: m.solutions,
            unit: stored(SolutionUnit::from_stored(&m.unit), "unit", &m.unit)?,
            nature: stored(MeasureNature::from_stored(&m.nature), "nature", &m.nature)?,
            procedure: stored(Procedure::from_stored(&m.procedure), "procedure", &m.procedure)?,
            compartment: stored(MeasureCompartment::from_stored(&m.compartment), "compartment", &m.compartment)?,
            planned_installation: m.planned_installation,
            status: stored(MeasureStatus::from_stored(&m.status), "status", &m.status)?,
            version: m.version,
            updated_at: m.updated_at,
            updated_by: m.updated_by.clone(),
        })
    }
}

/// A measure of region 84 (Rhône, 30 adult places created in September 2026) for the engine's tests.
#[cfg(test)]
pub(crate) fn test_measure(id: &str, category: &str, compartment: MeasureCompartment) -> MeasureRecord {
    MeasureRecord {
        id: id.into(),
        region_code: "84".into(),
        departement_code: "69".into(),
        reference: format!("REF-{id}"),
        label: format!("Mesure {id}"),
        finess: None,
        commune_code: None,
        expected_cofinancer_code: None,
        category_code: category.into(),
        publics: vec![MeasurePublic::Adultes],
        solutions: 30,
        unit: SolutionUnit::PlacesInstallees,
        nature: MeasureNature::Creation,
        procedure: Procedure::AppelAProjets,
        compartment,
        planned_installation: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default(),
        status: MeasureStatus::Programmee,
        version: 1,
        updated_at: DateTime::UNIX_EPOCH.fixed_offset(),
        updated_by: "ARS-84".into(),
    }
}

/// An amount for one year of a commitment's schedule.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(input_name = "YearAmountInput")]
pub struct YearAmount {
    pub year: i32,
    pub amount: Euros,
}

/// One funder's commitment on a measure, as that funder sees it.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Commitment")]
pub struct CommitmentRecord {
    pub id: String,
    pub measure_id: String,
    pub funder: Payer,
    /// The committing institution ("ARS-84", "CD-69").
    pub funder_code: String,
    pub cost_component: CostComponent,
    /// Full-year recurring amount (the AE for assurance maladie).
    pub full_year_amount: Euros,
    /// Yearly amounts (payment credits for assurance maladie).
    pub schedule: Vec<YearAmount>,
    /// Deliberation, CPOM, decision reference.
    pub decision_ref: String,
    /// Capacity as this funder sees it.
    pub capacity: i64,
    /// Installation date as this funder sees it.
    pub installation_date: NaiveDate,
    pub status: CommitmentStatus,
    pub withdrawal_reason: Option<String>,
    pub version: i32,
    pub updated_at: DateTime<FixedOffset>,
    pub updated_by: String,
}

impl TryFrom<&commitment::Model> for CommitmentRecord {
    type Error = ApiError;

    fn try_from(c: &commitment::Model) -> Result<Self, ApiError> {
        let schedule: Vec<YearAmount> = serde_json::from_str(&c.schedule)
            .map_err(|e| ApiError::Internal(format!("stored schedule unreadable: {e}").into()))?;
        Ok(CommitmentRecord {
            id: c.id.clone(),
            measure_id: c.measure_id.clone(),
            funder: stored(Payer::from_stored(&c.funder), "funder", &c.funder)?,
            funder_code: c.funder_code.clone(),
            cost_component: stored(CostComponent::from_stored(&c.cost_component), "cost component", &c.cost_component)?,
            full_year_amount: Euros(c.full_year_amount_cents),
            schedule,
            decision_ref: c.decision_ref.clone(),
            capacity: c.capacity,
            installation_date: c.installation_date,
            status: stored(CommitmentStatus::from_stored(&c.status), "commitment status", &c.status)?,
            withdrawal_reason: c.withdrawal_reason.clone(),
            version: c.version,
            updated_at: c.updated_at,
            updated_by: c.updated_by.clone(),
        })
    }
}

/// Measures and commitments on the fast read path (`selection`): the same fields as their GraphQL types, written
/// straight to JSON. `history` (read from the database) is not among them: a query asking for it takes the general
/// executor.
pub mod fast {
    use super::{CommitmentRecord, MeasureRecord};
    use crate::selection::Fallback;
    use crate::selection::json::{self, Fields, Out};
    use crate::selection::plan::{FieldDef, Planned, TypeDef};

    pub static MEASURE: TypeDef = TypeDef {
        name: "Measure",
        fields: &[
            FieldDef::leaf("categoryCode"),
            FieldDef::object("commitments", "Commitment"),
            FieldDef::leaf("communeCode"),
            FieldDef::leaf("compartment"),
            FieldDef::leaf("departementCode"),
            FieldDef::leaf("expectedCofinancerCode"),
            FieldDef::leaf("finess"),
            FieldDef::leaf("id"),
            FieldDef::leaf("label"),
            FieldDef::leaf("nature"),
            FieldDef::leaf("plannedInstallation"),
            FieldDef::leaf("procedure"),
            FieldDef::leaf("publics"),
            FieldDef::leaf("reference"),
            FieldDef::leaf("regionCode"),
            FieldDef::leaf("solutions"),
            FieldDef::leaf("status"),
            FieldDef::leaf("unit"),
            FieldDef::leaf("updatedAt"),
            FieldDef::leaf("updatedBy"),
            FieldDef::leaf("version"),
        ],
    };

    pub static COMMITMENT: TypeDef = TypeDef {
        name: "Commitment",
        fields: &[
            FieldDef::leaf("capacity"),
            FieldDef::leaf("costComponent"),
            FieldDef::leaf("decisionRef"),
            FieldDef::leaf("fullYearAmount"),
            FieldDef::leaf("funder"),
            FieldDef::leaf("funderCode"),
            FieldDef::leaf("id"),
            FieldDef::leaf("installationDate"),
            FieldDef::leaf("measureId"),
            FieldDef::object("schedule", "YearAmount"),
            FieldDef::leaf("status"),
            FieldDef::leaf("updatedAt"),
            FieldDef::leaf("updatedBy"),
            FieldDef::leaf("version"),
            FieldDef::leaf("withdrawalReason"),
        ],
    };

    pub static YEAR_AMOUNT: TypeDef =
        TypeDef { name: "YearAmount", fields: &[FieldDef::leaf("amount"), FieldDef::leaf("year")] };

    /// The types written here.
    pub static TYPES: [&TypeDef; 3] = [&MEASURE, &COMMITMENT, &YEAR_AMOUNT];

    /// A field of `Measure`, as a compiled selection names it.
    pub enum MeasureField {
        CategoryCode,
        Commitments(Fields<CommitmentField>),
        CommuneCode,
        Compartment,
        DepartementCode,
        ExpectedCofinancerCode,
        Finess,
        Id,
        Label,
        Nature,
        PlannedInstallation,
        Procedure,
        Publics,
        Reference,
        RegionCode,
        Solutions,
        Status,
        Unit,
        UpdatedAt,
        UpdatedBy,
        Version,
    }

    /// A field of `Commitment`.
    pub enum CommitmentField {
        Capacity,
        CostComponent,
        DecisionRef,
        FullYearAmount,
        Funder,
        FunderCode,
        Id,
        InstallationDate,
        MeasureId,
        Schedule(Fields<YearAmountField>),
        Status,
        UpdatedAt,
        UpdatedBy,
        Version,
        WithdrawalReason,
    }

    /// A field of `YearAmount`.
    pub enum YearAmountField {
        Amount,
        Year,
    }

    /// A selection of `Measure`, compiled for the measures of one answer.
    pub fn measure_fields(selection: &[Planned<'_>]) -> Result<Fields<MeasureField>, Fallback> {
        use MeasureField as F;
        Fields::compile("Measure", selection, |field| {
            Ok(match field.name {
                "categoryCode" => F::CategoryCode,
                "commitments" => F::Commitments(commitment_fields(&field.selection)?),
                "communeCode" => F::CommuneCode,
                "compartment" => F::Compartment,
                "departementCode" => F::DepartementCode,
                "expectedCofinancerCode" => F::ExpectedCofinancerCode,
                "finess" => F::Finess,
                "id" => F::Id,
                "label" => F::Label,
                "nature" => F::Nature,
                "plannedInstallation" => F::PlannedInstallation,
                "procedure" => F::Procedure,
                "publics" => F::Publics,
                "reference" => F::Reference,
                "regionCode" => F::RegionCode,
                "solutions" => F::Solutions,
                "status" => F::Status,
                "unit" => F::Unit,
                "updatedAt" => F::UpdatedAt,
                "updatedBy" => F::UpdatedBy,
                "version" => F::Version,
                _ => return Err(Fallback),
            })
        })
    }

    /// A selection of `Commitment`.
    pub fn commitment_fields(selection: &[Planned<'_>]) -> Result<Fields<CommitmentField>, Fallback> {
        use CommitmentField as F;
        Fields::compile("Commitment", selection, |field| {
            Ok(match field.name {
                "capacity" => F::Capacity,
                "costComponent" => F::CostComponent,
                "decisionRef" => F::DecisionRef,
                "fullYearAmount" => F::FullYearAmount,
                "funder" => F::Funder,
                "funderCode" => F::FunderCode,
                "id" => F::Id,
                "installationDate" => F::InstallationDate,
                "measureId" => F::MeasureId,
                "schedule" => F::Schedule(Fields::compile("YearAmount", &field.selection, |f| {
                    Ok(match f.name {
                        "amount" => YearAmountField::Amount,
                        "year" => YearAmountField::Year,
                        _ => return Err(Fallback),
                    })
                })?),
                "status" => F::Status,
                "updatedAt" => F::UpdatedAt,
                "updatedBy" => F::UpdatedBy,
                "version" => F::Version,
                "withdrawalReason" => F::WithdrawalReason,
                _ => return Err(Fallback),
            })
        })
    }

    /// A measure; its commitments are the reconciled state's (`commitments`).
    pub fn measure(out: &mut Out, m: &MeasureRecord, commitments: &[CommitmentRecord], fields: &Fields<MeasureField>) {
        use MeasureField as F;
        fields.write(out, |out, field| match field {
            F::CategoryCode => json::string(out, &m.category_code),
            F::Commitments(fields) => json::array(out, commitments, |out, c| commitment(out, c, fields)),
            F::CommuneCode => json::optional_string(out, m.commune_code.as_deref()),
            F::Compartment => json::enum_item(out, m.compartment),
            F::DepartementCode => json::string(out, &m.departement_code),
            F::ExpectedCofinancerCode => json::optional_string(out, m.expected_cofinancer_code.as_deref()),
            F::Finess => json::optional_string(out, m.finess.as_deref()),
            F::Id => json::string(out, &m.id),
            F::Label => json::string(out, &m.label),
            F::Nature => json::enum_item(out, m.nature),
            F::PlannedInstallation => json::date(out, m.planned_installation),
            F::Procedure => json::enum_item(out, m.procedure),
            F::Publics => json::enum_items(out, &m.publics),
            F::Reference => json::string(out, &m.reference),
            F::RegionCode => json::string(out, &m.region_code),
            F::Solutions => json::int(out, m.solutions),
            F::Status => json::enum_item(out, m.status),
            F::Unit => json::enum_item(out, m.unit),
            F::UpdatedAt => json::date_time(out, &m.updated_at),
            F::UpdatedBy => json::string(out, &m.updated_by),
            F::Version => json::int(out, m.version.into()),
        })
    }

    pub fn commitment(out: &mut Out, c: &CommitmentRecord, fields: &Fields<CommitmentField>) {
        use CommitmentField as F;
        fields.write(out, |out, field| match field {
            F::Capacity => json::int(out, c.capacity),
            F::CostComponent => json::enum_item(out, c.cost_component),
            F::DecisionRef => json::string(out, &c.decision_ref),
            F::FullYearAmount => json::cents(out, c.full_year_amount.0),
            F::Funder => json::enum_item(out, c.funder),
            F::FunderCode => json::string(out, &c.funder_code),
            F::Id => json::string(out, &c.id),
            F::InstallationDate => json::date(out, c.installation_date),
            F::MeasureId => json::string(out, &c.measure_id),
            F::Schedule(fields) => json::array(out, &c.schedule, |out, year| {
                fields.write(out, |out, f| match f {
                    YearAmountField::Amount => json::cents(out, year.amount.0),
                    YearAmountField::Year => json::int(out, year.year.into()),
                })
            }),
            F::Status => json::enum_item(out, c.status),
            F::UpdatedAt => json::date_time(out, &c.updated_at),
            F::UpdatedBy => json::string(out, &c.updated_by),
            F::Version => json::int(out, c.version.into()),
            F::WithdrawalReason => json::optional_string(out, c.withdrawal_reason.as_deref()),
        })
    }
}
