//! Submissions as files: a sheet of measures, commitments, needs indicators or school plans becomes exactly the
//! input the GraphQL writes take, then goes through the same validation, idempotency and audit path. The import is
//! all-or-nothing; every problem is reported with its spreadsheet line.

use std::collections::BTreeSet;

use async_graphql::SimpleObject;
use chrono::NaiveDate;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::tabular::{Columns, FileFormat, Table, normalize, parse_french_date, parse_french_decimal, read_table};
use crate::access::policy::{self, Action, Resource};
use crate::access::principal::Principal;
use crate::error::{ApiError, Violation};
use crate::kernel::audit_log::Actor;
use crate::kernel::receipts::{Channel, SubmissionReceipt, record_submission};
use crate::kernel::write::{Begun, Write, content_hash};
use crate::money::Euros;
use crate::needs::{NeedsIndicatorInput, NeedsSubmissionInput, submit_needs};
use crate::programming::service::{
    AppliedCommitment, apply_commitment, apply_measure, measure_scope, programming_region,
};
use crate::programming::types::{CommitmentInput, MeasureInput, ViolationView, YearAmount};
use crate::reconciled::live::Reconciled;
use crate::school::{SchoolPlanInput, SchoolPlansInput, submit_school_plans};
use crate::steering::figures::{
    DrawingRightInput, InstallationForecastInput, InstallationForecastLineInput, SteeringBatch, TrajectoryPointInput,
};
use crate::territory::service::Catalog;
use crate::validation::{FIRST_YEAR, LAST_YEAR, Violations};
use crate::vocabulary::{
    Compartment, CostComponent, DataKind, MeasureCompartment, MeasureNature, MeasurePublic, MeasureStatus,
    NeedsIndicatorKind, Procedure, SchoolSupportKind, SolutionUnit,
};
use std::sync::Arc;

/// What an import did.
#[derive(SimpleObject, Serialize, Deserialize, Clone, Debug)]
pub struct ImportReport {
    pub kind: DataKind,
    pub format: FileFormat,
    /// Data rows read (blank lines aside).
    pub rows: i64,
    /// Objects this import created and updated (measures, commitments, plans); for needs, the indicators stored.
    /// Both 0 when the import is a replay (`replayed`).
    pub created: i64,
    pub updated: i64,
    pub receipt: SubmissionReceipt,
    /// Accepted, but worth a look.
    pub warnings: Vec<ViolationView>,
    /// Columns the hub does not know, left aside (check them for a misspelt header), and cells beyond the headers
    /// or under an empty header, named by their column letter.
    pub ignored_columns: Vec<String>,
    /// True when the idempotency key and the content repeat an earlier import: nothing was written this time; the
    /// receipt is the first import's.
    pub replayed: bool,
}

/// Spreadsheet line of a data row (line 1 holds the headers).
fn line(row: usize) -> usize {
    row + 2
}

/// Words left out when comparing labels ("En attente d'admission" = EN_ATTENTE_ADMISSION).
fn label_key(text: &str) -> String {
    const SMALL: [&str; 10] = ["d", "de", "du", "des", "l", "la", "le", "les", "en", "a"];
    normalize(&text.replace('_', " ")).split(' ').filter(|w| !SMALL.contains(w)).collect::<Vec<_>>().join(" ")
}

/// A closed value written as its code or its French label.
fn vocabulary<T: Copy>(text: &str, all: &[T], code: impl Fn(T) -> &'static str, extra: &[(&str, T)]) -> Option<T> {
    let key = label_key(text);
    all.iter()
        .copied()
        .find(|v| label_key(code(*v)) == key)
        .or_else(|| extra.iter().find(|(label, _)| label_key(label) == key).map(|(_, v)| *v))
}

/// Collects the problems of a file's rows, each with its line.
struct RowErrors {
    violations: Violations,
}

impl RowErrors {
    fn new() -> Self {
        RowErrors { violations: Violations::new() }
    }

    fn add(&mut self, row: usize, field: &str, code: &str, message: impl std::fmt::Display) {
        self.violations.add(format!("rows[{row}].{field}"), code, format!("ligne {} : {message}", line(row)));
    }

    fn required<'a>(&mut self, row: usize, field: &str, value: &'a str) -> Option<&'a str> {
        if value.is_empty() {
            self.add(row, field, "REQUIRED", format!("colonne « {field} » vide"));
            None
        } else {
            Some(value)
        }
    }

    fn parsed<T>(&mut self, row: usize, field: &str, value: &str, parsed: Option<T>, expected: &str) -> Option<T> {
        if value.is_empty() {
            self.add(row, field, "REQUIRED", format!("colonne « {field} » vide"));
            return None;
        }
        if parsed.is_none() {
            self.add(row, field, "UNREADABLE", format!("« {value} » : {expected} attendu"));
        }
        parsed
    }
}

fn missing_columns(columns: &Columns, required: &[(usize, &str)]) -> Result<(), ApiError> {
    let mut v = Violations::new();
    for (index, name) in required {
        if !columns.has(*index) {
            v.add("columns", "MISSING_COLUMN", format!("colonne « {name} » introuvable dans l'en-tête"));
        }
    }
    v.into_result()
}

/// Service violations (paths such as `indicators[4].ageBand`) gain the spreadsheet line of their row.
fn with_lines(err: ApiError, list: &str) -> ApiError {
    match err {
        ApiError::ValidationFailed(violations) => ApiError::ValidationFailed(
            violations
                .into_iter()
                .map(|v| {
                    let row = v
                        .path
                        .strip_prefix(&format!("{list}["))
                        .and_then(|rest| rest.split(']').next())
                        .and_then(|n| n.parse::<usize>().ok());
                    match row {
                        // A message naming the row by its index names it by its line instead.
                        Some(row) => match v.message.strip_prefix(&format!("{list}[{row}]")) {
                            Some(rest) => Violation { message: format!("ligne {}{rest}", line(row)), ..v },
                            None => Violation { message: format!("ligne {} : {}", line(row), v.message), ..v },
                        },
                        None => v,
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

fn integer(text: &str) -> Option<i64> {
    parse_french_decimal(text).filter(|h| h % 100 == 0).map(|h| h / 100)
}

fn optional(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// Measures

const M_REFERENCE: usize = 0;
const M_LABEL: usize = 1;
const M_DEPARTEMENT: usize = 2;
const M_FINESS: usize = 3;
const M_CATEGORY: usize = 4;
const M_PUBLICS: usize = 5;
const M_SOLUTIONS: usize = 6;
const M_UNIT: usize = 7;
const M_NATURE: usize = 8;
const M_PROCEDURE: usize = 9;
const M_COMPARTMENT: usize = 10;
const M_PLANNED: usize = 11;
const M_STATUS: usize = 12;
const M_VERSION: usize = 13;

/// The columns of a measures sheet, as exported by the hub and as programming officers name them.
pub const MEASURE_HEADERS: [&str; 14] = [
    "Référence",
    "Libellé",
    "Département",
    "FINESS",
    "Catégorie",
    "Publics",
    "Nombre de solutions",
    "Unité",
    "Nature",
    "Procédure",
    "Compartiment",
    "Date d'installation prévue",
    "Statut",
    "Version",
];

const MEASURE_SPEC: [&[&str]; 14] = [
    &["reference", "ref", "reference mesure", "reference ars", "ligne seppia", "n ligne seppia"],
    &["libelle", "intitule", "libelle mesure"],
    &["departement", "dept", "code departement"],
    &["finess", "n finess", "numero finess", "finess etablissement"],
    &["categorie", "categorie finess", "code categorie", "dispositif"],
    &["publics", "public", "publics cibles", "public cible"],
    &["nombre de solutions", "nb solutions", "solutions", "nombre", "places"],
    &["unite", "unite de compte"],
    &["nature"],
    &["procedure", "mode d autorisation"],
    &["compartiment", "enveloppe"],
    &["date d installation prevue", "date installation prevue", "date d installation", "installation prevue"],
    &["statut", "etat"],
    &["version"],
];

/// Rows read from a sheet, each with the version it was read at (to update), and the columns left aside.
type Rows<T> = (Vec<(T, Option<i32>)>, Vec<String>);

fn measure_rows(table: &Table) -> Result<Rows<MeasureInput>, ApiError> {
    let (columns, unknown) = Columns::locate(&table.headers, &MEASURE_SPEC);
    missing_columns(
        &columns,
        &[
            (M_REFERENCE, "Référence"),
            (M_LABEL, "Libellé"),
            (M_DEPARTEMENT, "Département"),
            (M_CATEGORY, "Catégorie"),
            (M_PUBLICS, "Publics"),
            (M_SOLUTIONS, "Nombre de solutions"),
            (M_UNIT, "Unité"),
            (M_NATURE, "Nature"),
            (M_PROCEDURE, "Procédure"),
            (M_COMPARTMENT, "Compartiment"),
            (M_PLANNED, "Date d'installation prévue"),
        ],
    )?;
    let mut errors = RowErrors::new();
    let mut rows = Vec::with_capacity(table.rows.len());
    let mut references = BTreeSet::new();
    for (i, row) in table.rows.iter().enumerate() {
        let cell = |c| columns.get(row, c);
        let reference = errors.required(i, "reference", cell(M_REFERENCE)).unwrap_or_default();
        if !reference.is_empty() && !references.insert(reference.to_owned()) {
            errors.add(i, "reference", "DUPLICATE_ROW", format!("la référence « {reference} » figure deux fois"));
        }
        let mut publics = Vec::new();
        for word in cell(M_PUBLICS).split([',', '/', '+']).map(str::trim).filter(|w| !w.is_empty()) {
            match vocabulary(
                word,
                MeasurePublic::ALL,
                MeasurePublic::as_str,
                &[("Personnes handicapées vieillissantes", MeasurePublic::Phv)],
            ) {
                Some(p) => publics.push(p),
                None => errors.add(i, "publics", "UNKNOWN_VALUE", format!("public « {word} » inconnu")),
            }
        }
        let unit = errors.parsed(
            i,
            "unit",
            cell(M_UNIT),
            vocabulary(
                cell(M_UNIT),
                SolutionUnit::ALL,
                SolutionUnit::as_str,
                &[("places", SolutionUnit::PlacesInstallees)],
            ),
            "une unité (places installées, file active, ETP, forfait)",
        );
        let nature = errors.parsed(
            i,
            "nature",
            cell(M_NATURE),
            vocabulary(cell(M_NATURE), MeasureNature::ALL, MeasureNature::as_str, &[]),
            "création ou transformation",
        );
        let procedure = errors.parsed(
            i,
            "procedure",
            cell(M_PROCEDURE),
            vocabulary(cell(M_PROCEDURE), Procedure::ALL, Procedure::as_str, &[("AAP", Procedure::AppelAProjets)]),
            "une procédure (appel à projets, extension, CPOM, autre)",
        );
        let compartment = errors.parsed(
            i,
            "compartment",
            cell(M_COMPARTMENT),
            vocabulary(cell(M_COMPARTMENT), MeasureCompartment::ALL, MeasureCompartment::as_str, &[]),
            "un compartiment (socle enfants, socle ASE, socle adultes, précoce, école)",
        );
        let solutions =
            errors.parsed(i, "solutions", cell(M_SOLUTIONS), integer(cell(M_SOLUTIONS)), "un nombre entier");
        let planned = errors.parsed(
            i,
            "plannedInstallation",
            cell(M_PLANNED),
            parse_french_date(cell(M_PLANNED)),
            "une date JJ/MM/AAAA",
        );
        let status = if cell(M_STATUS).is_empty() {
            Some(MeasureStatus::Programmee)
        } else {
            errors.parsed(
                i,
                "status",
                cell(M_STATUS),
                vocabulary(cell(M_STATUS), MeasureStatus::ALL, MeasureStatus::as_str, &[]),
                "un statut (programmée, autorisée, installée, abandonnée)",
            )
        };
        let version = if cell(M_VERSION).is_empty() {
            None
        } else {
            errors
                .parsed(
                    i,
                    "version",
                    cell(M_VERSION),
                    integer(cell(M_VERSION)).and_then(|v| i32::try_from(v).ok()),
                    "un numéro de version",
                )
                .map(Some)
                .unwrap_or(None)
        };
        if let (
            Some(unit),
            Some(nature),
            Some(procedure),
            Some(compartment),
            Some(solutions),
            Some(planned),
            Some(status),
        ) = (unit, nature, procedure, compartment, solutions, planned, status)
        {
            rows.push((
                MeasureInput {
                    reference: reference.to_owned(),
                    label: cell(M_LABEL).to_owned(),
                    departement_code: cell(M_DEPARTEMENT).to_owned(),
                    finess: optional(cell(M_FINESS)),
                    commune_code: None,
                    expected_cofinancer_code: None,
                    category_code: cell(M_CATEGORY).to_owned(),
                    publics,
                    solutions,
                    unit,
                    nature,
                    procedure,
                    compartment,
                    planned_installation: planned,
                    status,
                },
                version,
            ));
        }
    }
    errors.violations.into_result()?;
    Ok((rows, unknown))
}

#[derive(Serialize, Deserialize, Clone, Debug)]
/// What a batch of rows came to.
pub struct BatchOutcome {
    pub receipt: SubmissionReceipt,
    pub created: i64,
    pub updated: i64,
    pub warnings: Vec<ViolationView>,
}

/// Rows read from a document (a sheet, a pulled JSON document), exactly as the writes take them.
#[derive(Debug)]
pub enum Batch {
    /// Measures, each with the `expectedVersion` of an update.
    Measures(Vec<(MeasureInput, Option<i32>)>),
    /// Commitments, each with the `expectedVersion` of an update.
    Commitments(Vec<(CommitmentInput, Option<i32>)>),
    Needs(NeedsSubmissionInput),
    SchoolPlans(SchoolPlansInput),
    /// The CNSA's trajectory or drawing rights, an ARS's installation forecast.
    Steering(SteeringBatch),
}

impl Batch {
    pub fn kind(&self) -> DataKind {
        match self {
            Batch::Measures(_) => DataKind::Measures,
            Batch::Commitments(_) => DataKind::Commitments,
            Batch::Needs(_) => DataKind::Needs,
            Batch::SchoolPlans(_) => DataKind::SchoolPlans,
            Batch::Steering(batch) => batch.kind(),
        }
    }

    /// Rows it holds.
    pub fn rows(&self) -> usize {
        match self {
            Batch::Measures(rows) => rows.len(),
            Batch::Commitments(rows) => rows.len(),
            Batch::Needs(input) => input.indicators.len(),
            Batch::SchoolPlans(input) => input.plans.len(),
            Batch::Steering(batch) => batch.len(),
        }
    }
}

/// Submits a batch for the principal through the write of its kind: one transaction, all-or-nothing.
pub async fn submit_batch(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    batch: Batch,
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<BatchOutcome, ApiError> {
    check_file_policy(principal, batch.kind())?;
    let count = batch.rows() as i64;
    match batch {
        Batch::Measures(rows) => {
            import_measures(db, reconciled, catalog, principal, rows, idempotency_key, channel).await
        }
        Batch::Commitments(rows) => import_commitments(db, reconciled, principal, rows, idempotency_key, channel).await,
        Batch::Needs(input) => {
            let receipt = submit_needs(db, reconciled, catalog, principal, input, idempotency_key, channel).await?;
            let created = if receipt.replayed { 0 } else { count };
            Ok(BatchOutcome { receipt, created, updated: 0, warnings: Vec::new() })
        }
        Batch::SchoolPlans(input) => {
            let receipt =
                submit_school_plans(db, reconciled, catalog, principal, input, idempotency_key, channel).await?;
            let created = if receipt.replayed { 0 } else { count };
            Ok(BatchOutcome { receipt, created, updated: 0, warnings: Vec::new() })
        }
        Batch::Steering(batch) => {
            let receipt =
                crate::steering::figures::submit(db, reconciled, catalog, principal, batch, idempotency_key, channel)
                    .await?;
            let created = if receipt.replayed { 0 } else { count };
            Ok(BatchOutcome { receipt, created, updated: 0, warnings: Vec::new() })
        }
    }
}

impl BatchOutcome {
    /// The first import's outcome given again to a replay: nothing created or updated this time.
    fn replayed(first: BatchOutcome) -> BatchOutcome {
        BatchOutcome { receipt: first.receipt.as_replay(), created: 0, updated: 0, warnings: first.warnings }
    }
}

/// Applies every row in one transaction; any failing row fails the whole file, every failure reported.
async fn import_measures(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    rows: Vec<(MeasureInput, Option<i32>)>,
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<BatchOutcome, ApiError> {
    let region = programming_region(principal)?;
    let mut write = match Write::begin(db, Actor::of(principal), "importMeasures", idempotency_key, &rows).await? {
        Begun::Replayed(answer) => return Ok(BatchOutcome::replayed(answer)),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&rows);
    let receipt = record_submission(&mut write, DataKind::Measures, &hash, rows.len() as i64, channel).await?;
    let mut errors = RowErrors::new();
    let (mut created, mut updated, mut warnings, mut ids) = (0, 0, Vec::new(), Vec::new());
    for (i, (input, version)) in rows.iter().enumerate() {
        match apply_measure(&mut write, catalog, &region, input, *version, &receipt.submission_id).await {
            Ok(payload) => {
                if payload.created {
                    created += 1
                } else {
                    updated += 1
                }
                ids.push(payload.measure.id);
                warnings.extend(payload.warnings.into_iter().map(|w| ViolationView {
                    path: format!("rows[{i}].{}", w.path),
                    message: format!("ligne {} : {}", line(i), w.message),
                    ..w
                }));
            }
            Err(err) => row_failure(&mut errors, i, err)?,
        }
    }
    errors.violations.into_result()?;
    for id in &ids {
        write.touches_measure(reconciled, &region, id);
    }
    write.audit(ids, hash);
    let outcome = BatchOutcome { receipt, created, updated, warnings };
    write.commit(&outcome).await?;
    Ok(outcome)
}

/// A row refused by its service joins the file's violations; a failure of the hub itself stops the import.
fn row_failure(errors: &mut RowErrors, row: usize, err: ApiError) -> Result<(), ApiError> {
    match err {
        ApiError::ValidationFailed(violations) => {
            for v in violations {
                errors.add(row, &v.path, &v.code, v.message);
            }
        }
        ApiError::VersionConflict { message, .. } => errors.add(row, "version", "VERSION_CONFLICT", message),
        ApiError::BadUserInput(message) => errors.add(row, "version", "BAD_USER_INPUT", message),
        ApiError::NotFound(message) => errors.add(row, "measure", "NOT_FOUND", message),
        other => return Err(other),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Commitments

const C_MEASURE: usize = 0;
const C_MEASURE_REFERENCE: usize = 1;
const C_COMPONENT: usize = 2;
const C_AMOUNT: usize = 3;
const C_DECISION: usize = 4;
const C_CAPACITY: usize = 5;
const C_INSTALLATION: usize = 6;
const C_VERSION: usize = 7;
const C_FIRST_YEAR: usize = 8;

pub const COMMITMENT_HEADERS: [&str; 8] = [
    "Identifiant mesure",
    "Référence mesure",
    "Composante",
    "Montant annuel",
    "Référence décision",
    "Capacité",
    "Date d'installation",
    "Version",
];

fn commitment_spec() -> Vec<&'static [&'static str]> {
    let mut spec: Vec<&'static [&'static str]> = vec![
        &["identifiant mesure", "id mesure", "mesure"],
        &["reference mesure", "reference ars", "reference"],
        &["composante", "composante de cout"],
        &["montant annuel", "montant en annee pleine", "montant annee pleine", "montant"],
        &["reference decision", "decision", "deliberation", "reference de la decision"],
        &["capacite", "capacite financee", "places"],
        &["date d installation", "date installation", "installation"],
        &["version"],
    ];
    const YEARS: [&[&str]; 7] = [&["2024"], &["2025"], &["2026"], &["2027"], &["2028"], &["2029"], &["2030"]];
    spec.extend(YEARS);
    spec
}

/// Rows of commitments; a row names its measure by the hub's id or by the ARS's reference in the funder's territory.
async fn commitment_rows(
    db: &DatabaseConnection,
    principal: &Principal,
    table: &Table,
) -> Result<Rows<CommitmentInput>, ApiError> {
    let spec = commitment_spec();
    let (columns, unknown) = Columns::locate(&table.headers, &spec);
    missing_columns(
        &columns,
        &[
            (C_COMPONENT, "Composante"),
            (C_AMOUNT, "Montant annuel"),
            (C_DECISION, "Référence décision"),
            (C_CAPACITY, "Capacité"),
            (C_INSTALLATION, "Date d'installation"),
        ],
    )?;
    if !columns.has(C_MEASURE) && !columns.has(C_MEASURE_REFERENCE) {
        missing_columns(&columns, &[(C_MEASURE, "Identifiant mesure (ou Référence mesure)")])?;
    }
    let reach = policy::require(principal, Resource::Measure, Action::Read)?;
    let mut errors = RowErrors::new();
    let mut rows = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        let cell = |c| columns.get(row, c);
        let measure_id = if !cell(C_MEASURE).is_empty() {
            Some(cell(C_MEASURE).to_owned())
        } else if !cell(C_MEASURE_REFERENCE).is_empty() {
            let found = entities::measure::Entity::find()
                .filter(measure_scope(principal, reach))
                .filter(entities::measure::Column::Reference.eq(cell(C_MEASURE_REFERENCE)))
                .all(db)
                .await?;
            match found.as_slice() {
                [one] => Some(one.id.clone()),
                [] => {
                    errors.add(
                        i,
                        "measure",
                        "NOT_FOUND",
                        format!("aucune mesure de référence « {} » dans votre territoire", cell(C_MEASURE_REFERENCE)),
                    );
                    None
                }
                _ => {
                    errors.add(
                        i,
                        "measure",
                        "AMBIGUOUS",
                        format!(
                            "plusieurs mesures ont la référence « {} » : donnez l'identifiant",
                            cell(C_MEASURE_REFERENCE)
                        ),
                    );
                    None
                }
            }
        } else {
            errors.add(i, "measure", "REQUIRED", "mesure non indiquée");
            None
        };
        let component = errors.parsed(
            i,
            "costComponent",
            cell(C_COMPONENT),
            vocabulary(
                cell(C_COMPONENT),
                CostComponent::ALL,
                CostComponent::as_str,
                &[("hébergement", CostComponent::Hebergement), ("forfait soins", CostComponent::Soins)],
            ),
            "une composante (global, soins, hébergement, accompagnement…)",
        );
        let amount = errors.parsed(
            i,
            "fullYearAmount",
            cell(C_AMOUNT),
            parse_french_decimal(cell(C_AMOUNT)),
            "un montant en euros",
        );
        let capacity = errors.parsed(i, "capacity", cell(C_CAPACITY), integer(cell(C_CAPACITY)), "un nombre entier");
        let installation = errors.parsed(
            i,
            "installationDate",
            cell(C_INSTALLATION),
            parse_french_date(cell(C_INSTALLATION)),
            "une date JJ/MM/AAAA",
        );
        let decision = errors.required(i, "decisionRef", cell(C_DECISION)).unwrap_or_default().to_owned();
        let mut schedule = Vec::new();
        for (offset, year) in (FIRST_YEAR..=LAST_YEAR).enumerate() {
            let text = cell(C_FIRST_YEAR + offset);
            if !text.is_empty() {
                match parse_french_decimal(text) {
                    Some(cents) => schedule.push(YearAmount { year, amount: Euros(cents) }),
                    None => errors.add(
                        i,
                        &format!("schedule.{year}"),
                        "UNREADABLE",
                        format!("« {text} » : un montant en euros attendu"),
                    ),
                }
            }
        }
        let version = if cell(C_VERSION).is_empty() {
            None
        } else {
            integer(cell(C_VERSION)).and_then(|v| i32::try_from(v).ok())
        };
        if let (Some(measure_id), Some(component), Some(amount), Some(capacity), Some(installation)) =
            (measure_id, component, amount, capacity, installation)
        {
            rows.push((
                CommitmentInput {
                    measure_id: measure_id.into(),
                    cost_component: component,
                    full_year_amount: Euros(amount),
                    schedule,
                    decision_ref: decision,
                    capacity,
                    installation_date: installation,
                },
                version,
            ));
        }
    }
    errors.violations.into_result()?;
    Ok((rows, unknown))
}

async fn import_commitments(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    principal: &Principal,
    rows: Vec<(CommitmentInput, Option<i32>)>,
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<BatchOutcome, ApiError> {
    let reach = policy::require(principal, Resource::Measure, Action::Read)?;
    let mut write = match Write::begin(db, Actor::of(principal), "importCommitments", idempotency_key, &rows).await? {
        Begun::Replayed(answer) => return Ok(BatchOutcome::replayed(answer)),
        Begun::Fresh(write) => write,
    };
    let hash = content_hash(&rows);
    let receipt = record_submission(&mut write, DataKind::Commitments, &hash, rows.len() as i64, channel).await?;
    let mut errors = RowErrors::new();
    let (mut created, mut updated, mut ids) = (0, 0, Vec::new());
    for (i, (input, version)) in rows.iter().enumerate() {
        match apply_commitment(&mut write, principal, reach, input, *version).await {
            Ok(AppliedCommitment { payload, region }) => {
                if payload.created {
                    created += 1
                } else {
                    updated += 1
                }
                write.touches_measure(reconciled, &region, &payload.commitment.measure_id);
                ids.push(payload.commitment.id);
            }
            Err(err) => row_failure(&mut errors, i, err)?,
        }
    }
    errors.violations.into_result()?;
    write.audit(ids, hash);
    let outcome = BatchOutcome { receipt, created, updated, warnings: Vec::new() };
    write.commit(&outcome).await?;
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------------------------
// Needs

pub const NEEDS_HEADERS: [&str; 6] =
    ["Département", "Date de référence", "Code orientation", "Tranche d'âge", "Indicateur", "Nombre"];

const NEEDS_SPEC: [&[&str]; 6] = [
    &["departement", "dept", "code departement"],
    &["date de reference", "date reference", "date"],
    &["code orientation", "orientation", "decision d orientation"],
    &["tranche d age", "tranche age", "age"],
    &["indicateur"],
    &["nombre", "effectif", "valeur", "nombre de personnes"],
];

fn needs_input(principal: &Principal, table: &Table) -> Result<(NeedsSubmissionInput, Vec<String>), ApiError> {
    let (columns, unknown) = Columns::locate(&table.headers, &NEEDS_SPEC);
    missing_columns(
        &columns,
        &[(1, "Date de référence"), (2, "Code orientation"), (3, "Tranche d'âge"), (4, "Indicateur"), (5, "Nombre")],
    )?;
    let own = principal.scope.departement_codes.first().cloned().unwrap_or_default();
    let mut errors = RowErrors::new();
    let mut pictures: BTreeSet<(String, Option<NaiveDate>)> = BTreeSet::new();
    let mut indicators = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let cell = |c| columns.get(row, c);
        let departement = if cell(0).is_empty() { own.clone() } else { cell(0).to_owned() };
        let date = errors.parsed(i, "referenceDate", cell(1), parse_french_date(cell(1)), "une date JJ/MM/AAAA");
        pictures.insert((departement, date));
        let indicator = errors.parsed(
            i,
            "indicator",
            cell(4),
            vocabulary(
                cell(4),
                NeedsIndicatorKind::ALL,
                NeedsIndicatorKind::as_str,
                &[("Plans d'accompagnement global", NeedsIndicatorKind::Pag)],
            ),
            "un indicateur (en attente d'admission, admis non entrés…)",
        );
        let value = errors.parsed(i, "value", cell(5), integer(cell(5)), "un nombre entier de personnes");
        if let (Some(indicator), Some(value)) = (indicator, value) {
            indicators.push(NeedsIndicatorInput {
                orientation_code: cell(2).to_owned(),
                age_band: cell(3).to_owned(),
                indicator,
                value,
            });
        }
    }
    if pictures.len() > 1 {
        errors.violations.add(
            "rows",
            "SEVERAL_PICTURES",
            "un fichier porte sur un seul département à une seule date de référence",
        );
    }
    errors.violations.into_result()?;
    let (departement_code, date) = pictures.into_iter().next().unwrap_or_default();
    let reference_date = date.ok_or_else(|| ApiError::BadUserInput("le fichier ne contient aucune ligne".into()))?;
    Ok((NeedsSubmissionInput { departement_code, reference_date, indicators }, unknown))
}

// ---------------------------------------------------------------------------------------------------------------
// School plans

pub const SCHOOL_HEADERS: [&str; 9] = [
    "Référence",
    "Département",
    "Type",
    "UAI",
    "FINESS",
    "ETP Éducation nationale",
    "ETP médico-social",
    "Coût médico-social",
    "Année",
];

const SCHOOL_SPEC: [&[&str]; 9] = [
    &["reference", "ref"],
    &["departement", "dept", "code departement"],
    &["type", "type d appui", "nature"],
    &["uai", "code uai", "rne", "ecole"],
    &["finess", "n finess", "service support"],
    &["etp education nationale", "etp en"],
    &["etp medico social", "etp ms"],
    &["cout medico social", "cout", "montant"],
    &["annee"],
];

fn school_input(principal: &Principal, table: &Table) -> Result<(SchoolPlansInput, Vec<String>), ApiError> {
    let (columns, unknown) = Columns::locate(&table.headers, &SCHOOL_SPEC);
    missing_columns(
        &columns,
        &[
            (0, "Référence"),
            (1, "Département"),
            (2, "Type"),
            (5, "ETP Éducation nationale"),
            (6, "ETP médico-social"),
            (7, "Coût médico-social"),
            (8, "Année"),
        ],
    )?;
    let mut errors = RowErrors::new();
    let mut plans = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let cell = |c| columns.get(row, c);
        let kind = errors.parsed(
            i,
            "kind",
            cell(2),
            vocabulary(
                cell(2),
                SchoolSupportKind::ALL,
                SchoolSupportKind::as_str,
                &[
                    ("Pôle d'appui à la scolarité", SchoolSupportKind::Pas),
                    ("Unité d'enseignement externalisée", SchoolSupportKind::Uee),
                    ("SESSAD renforcé", SchoolSupportKind::SessadRenforce),
                    ("Unité d'autorégulation", SchoolSupportKind::UniteAutoregulation),
                ],
            ),
            "un type d'appui (PAS, UEE, équipe mobile…)",
        );
        let cost = errors.parsed(i, "medicoSocialCost", cell(7), parse_french_decimal(cell(7)), "un montant en euros");
        let year = errors.parsed(i, "year", cell(8), integer(cell(8)).and_then(|y| i32::try_from(y).ok()), "une année");
        if let (Some(kind), Some(cost), Some(year)) = (kind, cost, year) {
            plans.push(SchoolPlanInput {
                reference: cell(0).to_owned(),
                departement_code: cell(1).to_owned(),
                kind,
                uai: optional(cell(3)),
                finess: optional(cell(4)),
                etp_education_nationale: cell(5).replace(',', "."),
                etp_medico_social: cell(6).replace(',', "."),
                medico_social_cost: Euros(cost),
                year,
            });
        }
    }
    errors.violations.into_result()?;
    let academie_code = principal.scope.code.clone().unwrap_or_default();
    Ok((SchoolPlansInput { academie_code, plans }, unknown))
}

// ---------------------------------------------------------------------------------------------------------------
// Steering figures: the CNSA's trajectory and drawing rights, an ARS's installation forecast

pub const STEERING_HEADERS: [&str; 6] = ["Région", "Enveloppe", "Année", "AE", "CP", "Installations"];

const STEERING_SPEC: [&[&str]; 6] = [
    &["region", "code region"],
    &["enveloppe", "compartiment"],
    &["annee"],
    &["ae", "autorisations d engagement", "ae prevues"],
    &["cp", "credits de paiement", "droits de tirage", "cp prevus"],
    &["installations", "solutions", "nombre de solutions"],
];

/// A sheet of steering figures: one line per region (× compartment) × year. Drawing rights have no compartment;
/// a forecast concerns the ARS's own region (the column may be left empty).
fn steering_input(
    kind: DataKind,
    principal: &Principal,
    table: &Table,
) -> Result<(SteeringBatch, Vec<String>), ApiError> {
    let (columns, unknown) = Columns::locate(&table.headers, &STEERING_SPEC);
    let required: &[(usize, &str)] = match kind {
        DataKind::Trajectory => &[(0, "Région"), (1, "Enveloppe"), (2, "Année"), (3, "AE"), (4, "CP")],
        DataKind::DrawingRights => &[(0, "Région"), (2, "Année"), (4, "CP")],
        _ => &[(1, "Enveloppe"), (2, "Année"), (4, "CP"), (5, "Installations")],
    };
    missing_columns(&columns, required)?;
    let own = principal.scope.region_codes.first().cloned().unwrap_or_default();
    let mut errors = RowErrors::new();
    let (mut points, mut rights, mut lines) = (Vec::new(), Vec::new(), Vec::new());
    let mut regions = BTreeSet::new();
    for (i, row) in table.rows.iter().enumerate() {
        let cell = |c| columns.get(row, c);
        let region = if cell(0).is_empty() { own.clone() } else { cell(0).to_owned() };
        let year = errors.parsed(i, "year", cell(2), integer(cell(2)).and_then(|y| i32::try_from(y).ok()), "une année");
        let cp = errors.parsed(i, "cp", cell(4), parse_french_decimal(cell(4)), "un montant en euros");
        let compartment = || {
            vocabulary(
                cell(1),
                Compartment::ALL,
                Compartment::as_str,
                &[("précoce", Compartment::Precoce), ("école", Compartment::Ecole)],
            )
        };
        match kind {
            DataKind::Trajectory => {
                let compartment = errors.parsed(i, "compartment", cell(1), compartment(), "socle, précoce ou école");
                let ae = errors.parsed(i, "ae", cell(3), parse_french_decimal(cell(3)), "un montant en euros");
                if let (Some(compartment), Some(year), Some(ae), Some(cp)) = (compartment, year, ae, cp) {
                    points.push(TrajectoryPointInput {
                        region_code: region,
                        compartment,
                        year,
                        ae: Euros(ae),
                        cp: Euros(cp),
                    });
                }
            }
            DataKind::DrawingRights => {
                if let (Some(year), Some(cp)) = (year, cp) {
                    rights.push(DrawingRightInput { region_code: region, year, cp: Euros(cp) });
                }
            }
            _ => {
                regions.insert(region);
                let compartment = errors.parsed(i, "compartment", cell(1), compartment(), "socle, précoce ou école");
                let solutions =
                    errors.parsed(i, "solutions", cell(5), integer(cell(5)), "un nombre entier de solutions");
                if let (Some(compartment), Some(year), Some(solutions), Some(cp)) = (compartment, year, solutions, cp) {
                    lines.push(InstallationForecastLineInput { compartment, year, solutions, cp: Euros(cp) });
                }
            }
        }
    }
    if regions.len() > 1 {
        errors.violations.add("rows", "SEVERAL_REGIONS", "une prévision porte sur une seule région");
    }
    errors.violations.into_result()?;
    let batch = match kind {
        DataKind::Trajectory => SteeringBatch::Trajectory(points),
        DataKind::DrawingRights => SteeringBatch::DrawingRights(rights),
        _ => SteeringBatch::InstallationForecast(InstallationForecastInput {
            region_code: regions.into_iter().next().unwrap_or(own),
            lines,
        }),
    };
    Ok((batch, unknown))
}

// ---------------------------------------------------------------------------------------------------------------

/// The resource a kind of data is written as.
pub fn resource_of(kind: DataKind) -> Resource {
    match kind {
        DataKind::Measures => Resource::Measure,
        DataKind::Commitments => Resource::Commitment,
        DataKind::Needs => Resource::Needs,
        DataKind::SchoolPlans => Resource::SchoolPlan,
        DataKind::Trajectory | DataKind::DrawingRights => Resource::NationalCredits,
        DataKind::InstallationForecast => Resource::InstallationForecast,
    }
}

fn check_file_policy(principal: &Principal, kind: DataKind) -> Result<(), ApiError> {
    policy::require(principal, resource_of(kind), Action::Write).map(|_| ())
}

/// Imports a file of one kind of data for the principal.
#[expect(clippy::too_many_arguments, reason = "the write's stores, its caller and its request options")]
pub async fn import_file(
    db: &DatabaseConnection,
    reconciled: &Arc<Reconciled>,
    catalog: &Catalog,
    principal: &Principal,
    kind: DataKind,
    bytes: &[u8],
    idempotency_key: Option<String>,
    channel: Channel,
) -> Result<ImportReport, ApiError> {
    check_file_policy(principal, kind)?;
    let (format, table) = read_table(bytes).map_err(|e| ApiError::BadUserInput(e.to_string()))?;
    let rows = table.rows.len() as i64;
    let (batch, ignored_columns) = match kind {
        DataKind::Measures => {
            let (rows, unknown) = measure_rows(&table)?;
            (Batch::Measures(rows), unknown)
        }
        DataKind::Commitments => {
            let (rows, unknown) = commitment_rows(db, principal, &table).await?;
            (Batch::Commitments(rows), unknown)
        }
        DataKind::Needs => {
            let (input, unknown) = needs_input(principal, &table)?;
            (Batch::Needs(input), unknown)
        }
        DataKind::SchoolPlans => {
            let (input, unknown) = school_input(principal, &table)?;
            (Batch::SchoolPlans(input), unknown)
        }
        DataKind::Trajectory | DataKind::DrawingRights | DataKind::InstallationForecast => {
            let (batch, unknown) = steering_input(kind, principal, &table)?;
            (Batch::Steering(batch), unknown)
        }
    };
    // Needs and school plans name a failing row by its index in the list: the sheet's line says more.
    let listed = match &batch {
        Batch::Needs(_) => Some("indicators"),
        Batch::SchoolPlans(_) => Some("plans"),
        Batch::Steering(batch) => Some(batch.list_name()),
        _ => None,
    };
    let outcome =
        submit_batch(db, reconciled, catalog, principal, batch, idempotency_key, channel).await.map_err(|e| {
            match listed {
                Some(list) => with_lines(e, list),
                None => e,
            }
        })?;
    Ok(ImportReport {
        kind,
        format,
        rows,
        created: outcome.created,
        updated: outcome.updated,
        warnings: outcome.warnings,
        replayed: outcome.receipt.replayed,
        ignored_columns: ignored_columns.into_iter().chain(table.unnamed_columns()).collect(),
        receipt: outcome.receipt,
    })
}

/// `cnh-hub import`: a file submitted on behalf of an institution, straight to the database, through the same path.
pub async fn import_from_cli(
    database_url: &str,
    institution: &str,
    kind: DataKind,
    path: &std::path::Path,
    idempotency_key: Option<String>,
) -> Result<ImportReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let db = crate::db::connect(database_url).await.map_err(|e| e.to_string())?;
    crate::db::prepare(&db, database_url).await.map_err(|e| e.to_string())?;
    let catalog = Catalog::load(&db).await.map_err(|e| format!("cannot read the reference data: {e}"))?;
    let agent = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()));
    let principal = crate::access::authenticator::principal_for_institution(&db, &catalog, institution, &agent)
        .await
        .map_err(|e| format!("institution {institution}: {e}"))?;
    let reconciled = Reconciled::new(db.clone(), catalog.clone());
    import_file(&db, &reconciled, &catalog, &principal, kind, &bytes, idempotency_key, Channel::Cli).await.map_err(
        |err| match err {
            ApiError::ValidationFailed(violations) => {
                let lines: Vec<String> =
                    violations.iter().map(|v| format!("  {} [{}] {}", v.path, v.code, v.message)).collect();
                format!("the file was refused, nothing was stored:\n{}", lines.join("\n"))
            }
            other => other.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_codes() {
        assert_eq!(
            vocabulary("En attente d'admission", NeedsIndicatorKind::ALL, NeedsIndicatorKind::as_str, &[]),
            Some(NeedsIndicatorKind::EnAttenteAdmission)
        );
        assert_eq!(
            vocabulary("Départs en Belgique", NeedsIndicatorKind::ALL, NeedsIndicatorKind::as_str, &[]),
            Some(NeedsIndicatorKind::DepartsBelgique)
        );
        assert_eq!(
            vocabulary("Socle – enfants", MeasureCompartment::ALL, MeasureCompartment::as_str, &[]),
            Some(MeasureCompartment::SocleEnfants)
        );
        assert_eq!(
            vocabulary("Appel à projets", Procedure::ALL, Procedure::as_str, &[]),
            Some(Procedure::AppelAProjets)
        );
        assert_eq!(
            vocabulary("AAP", Procedure::ALL, Procedure::as_str, &[("AAP", Procedure::AppelAProjets)]),
            Some(Procedure::AppelAProjets)
        );
        assert_eq!(
            vocabulary("PLACES_INSTALLEES", SolutionUnit::ALL, SolutionUnit::as_str, &[]),
            Some(SolutionUnit::PlacesInstallees)
        );
        assert_eq!(vocabulary("n'importe quoi", SolutionUnit::ALL, SolutionUnit::as_str, &[]), None);
    }

    #[test]
    fn a_measures_sheet_reports_every_unreadable_cell_with_its_line() {
        let table = Table {
            headers: MEASURE_HEADERS.iter().map(|h| h.to_string()).chain(["Commentaire".to_owned()]).collect(),
            rows: vec![
                vec![
                    "R1",
                    "SESSAD",
                    "69",
                    "",
                    "182",
                    "Enfants, TND",
                    "30",
                    "Places installées",
                    "Création",
                    "AAP",
                    "Socle enfants",
                    "01/09/2026",
                    "",
                    "",
                    "ok",
                ],
                vec![
                    "R2",
                    "IME",
                    "69",
                    "",
                    "183",
                    "Marsiens",
                    "trente",
                    "Places",
                    "Création",
                    "AAP",
                    "Socle enfants",
                    "31/02/2026",
                    "",
                    "",
                    "",
                ],
            ]
            .into_iter()
            .map(|r| r.into_iter().map(str::to_owned).collect())
            .collect(),
        };
        let err = measure_rows(&table).unwrap_err();
        let ApiError::ValidationFailed(violations) = err else { panic!("validation expected") };
        let found: Vec<(String, String)> =
            violations.into_iter().map(|v| (v.path, v.message.split(" : ").next().unwrap().to_owned())).collect();
        assert_eq!(
            found,
            [
                ("rows[1].publics".to_owned(), "ligne 3".to_owned()),
                ("rows[1].solutions".to_owned(), "ligne 3".to_owned()),
                ("rows[1].plannedInstallation".to_owned(), "ligne 3".to_owned()),
            ]
        );
    }

    #[test]
    fn a_sheet_without_a_required_column_is_refused_by_name() {
        let table = Table { headers: vec!["Référence".into(), "Libellé".into()], rows: vec![] };
        let ApiError::ValidationFailed(v) = measure_rows(&table).unwrap_err() else { panic!() };
        assert!(v.iter().any(|v| v.code == "MISSING_COLUMN" && v.message.contains("Compartiment")));
    }
}
