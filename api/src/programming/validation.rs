//! Validation of measures and commitments (pure): every rule of DOMAIN.md that can be checked on input.

use std::collections::BTreeSet;

use crate::territory::service::Catalog;
use crate::validation::Violations;
use crate::validation::identifiers::{FinessCheck, finess_check, finess_departement};
use crate::vocabulary::{MeasureCompartment, MeasureNature, MeasureStatus};

use super::types::{CommitmentInput, MeasureInput};

pub const MAX_SOLUTIONS: i64 = 100_000;
pub const MAX_CAPACITY: i64 = 100_000;

/// Kinds of structure each compartment may finance (to confirm with the CNSA: DOMAIN.md §1 names them by example).
fn compartment_accepts(compartment: MeasureCompartment, category_code: &str, public: &str) -> bool {
    match compartment {
        MeasureCompartment::SocleEnfants | MeasureCompartment::SocleAse => matches!(public, "ENFANTS" | "TOUS"),
        MeasureCompartment::SocleAdultes => matches!(public, "ADULTES" | "TOUS"),
        MeasureCompartment::Precoce => matches!(category_code, "190" | "PCO" | "182" | "EQUIPE_MOBILE" | "370"),
        MeasureCompartment::Ecole => {
            matches!(category_code, "PAS" | "UEE" | "EQUIPE_MOBILE" | "182" | "183" | "186" | "370")
        }
    }
}

/// Checks a measure submitted by the ARS of `region`. `previous_status` is the stored status on an update.
/// Returns the warnings (accepted, but flagged) when nothing is wrong.
pub fn check_measure(
    input: &MeasureInput,
    region: &str,
    previous_status: Option<MeasureStatus>,
    catalog: &Catalog,
    v: &mut Violations,
) -> Violations {
    let mut warnings = Violations::new();
    v.text("reference", &input.reference, 1, 100);
    v.text("label", &input.label, 1, 300);
    match catalog.departement(&input.departement_code) {
        None => v.add(
            "departementCode",
            "UNKNOWN_DEPARTEMENT",
            format!("département « {} » inconnu", input.departement_code),
        ),
        Some(d) => {
            v.check(
                d.region_code == region,
                "departementCode",
                "DEPARTEMENT_OUTSIDE_REGION",
                format!("le département {} n'est pas dans la région {region} de l'ARS", d.code),
            );
        }
    }
    let category = catalog.category(&input.category_code);
    match category {
        None => v.add(
            "categoryCode",
            "UNKNOWN_CATEGORY",
            format!("« {} » n'est ni une catégorie FINESS ni un dispositif connu", input.category_code),
        ),
        Some(category) => {
            v.check(
                compartment_accepts(input.compartment, &category.code, &category.public),
                "compartment",
                "CATEGORY_NOT_IN_COMPARTMENT",
                format!(
                    "la catégorie {} ({}) ne relève pas du compartiment {}",
                    category.code,
                    category.label,
                    input.compartment.as_str()
                ),
            );
            if category.legacy && input.nature == MeasureNature::Creation {
                warnings.add(
                    "categoryCode",
                    "LEGACY_CATEGORY_ON_CREATION",
                    format!(
                        "catégorie {} fermée en 2018 : une création devrait utiliser {}",
                        category.code,
                        category.successor_code.as_deref().unwrap_or("son successeur")
                    ),
                );
            }
        }
    }
    match &input.finess {
        None => {
            v.check(
                input.nature != MeasureNature::Transformation,
                "finess",
                "FINESS_REQUIRED",
                "une transformation porte sur un établissement existant : son FINESS est obligatoire",
            );
        }
        Some(finess) => match finess_check(finess) {
            FinessCheck::Malformed => {
                v.add("finess", "FINESS_MALFORMED", format!("« {finess} » n'est pas un numéro FINESS (9 caractères)"))
            }
            FinessCheck::BadCheckDigit => {
                v.add("finess", "FINESS_CHECK_DIGIT", format!("la clé du FINESS « {finess} » est fausse"))
            }
            FinessCheck::CorsicaUnverified => warnings.add(
                "finess",
                "FINESS_CORSICA_UNVERIFIED",
                format!("clé du FINESS corse « {finess} » non vérifiable avec certitude"),
            ),
            FinessCheck::Valid => {
                if let Some(departement) = finess_departement(finess)
                    && departement != input.departement_code
                {
                    warnings.add(
                        "finess",
                        "FINESS_OUTSIDE_DEPARTEMENT",
                        format!(
                            "le FINESS {finess} relève du département {departement}, la mesure du {}",
                            input.departement_code
                        ),
                    );
                }
            }
        },
    }
    check_cofinancing_territory(input, catalog, v);
    v.check(!input.publics.is_empty(), "publics", "REQUIRED", "au moins un public");
    let distinct: BTreeSet<_> = input.publics.iter().collect();
    v.check(distinct.len() == input.publics.len(), "publics", "DUPLICATE_PUBLIC", "un public figure deux fois");
    v.check(
        (1..=MAX_SOLUTIONS).contains(&input.solutions),
        "solutions",
        "SOLUTIONS_OUT_OF_RANGE",
        format!("le nombre de solutions doit être compris entre 1 et {MAX_SOLUTIONS}"),
    );
    v.date_in_plan("plannedInstallation", input.planned_installation);
    if let Some(previous) = previous_status {
        v.check(
            previous.may_become(input.status),
            "status",
            "STATUS_TRANSITION",
            format!("une mesure {} ne peut pas devenir {}", previous.as_str(), input.status.as_str()),
        );
    } else {
        v.check(
            matches!(input.status, MeasureStatus::Programmee | MeasureStatus::Autorisee),
            "status",
            "STATUS_TRANSITION",
            "une nouvelle mesure est programmée ou autorisée",
        );
    }
    warnings
}

/// Checks a commitment's figures.
pub fn check_commitment(input: &CommitmentInput, v: &mut Violations) {
    v.amount("fullYearAmount", input.full_year_amount.0);
    v.text("decisionRef", &input.decision_ref, 1, 200);
    v.check(
        (1..=MAX_CAPACITY).contains(&input.capacity),
        "capacity",
        "CAPACITY_OUT_OF_RANGE",
        format!("la capacité doit être comprise entre 1 et {MAX_CAPACITY}"),
    );
    v.date_in_plan("installationDate", input.installation_date);
    let mut years = BTreeSet::new();
    for (i, entry) in input.schedule.iter().enumerate() {
        let path = format!("schedule[{i}]");
        v.year(&format!("{path}.year"), entry.year);
        v.amount(&format!("{path}.amount"), entry.amount.0);
        v.check(
            years.insert(entry.year),
            format!("{path}.year"),
            "DUPLICATE_YEAR",
            format!("l'année {} figure deux fois", entry.year),
        );
    }
}

/// The commune, if given, belongs to the measure's département; the designated co-financer is a collectivité that
/// covers the measure's département and, where two collectivités share it (the Rhône and the Métropole de Lyon), its
/// commune.
fn check_cofinancing_territory(input: &MeasureInput, catalog: &Catalog, v: &mut Violations) {
    let departement = input.departement_code.as_str();
    if let Some(commune) = &input.commune_code
        && !crate::territory::communes::commune_code_fits(commune, departement)
    {
        v.add(
            "communeCode",
            "COMMUNE_OUTSIDE_DEPARTEMENT",
            format!("« {commune} » n'est pas un code INSEE de commune du département {departement} (5 caractères)"),
        );
        return;
    }
    let Some(code) = &input.expected_cofinancer_code else { return };
    if catalog.collectivite(code).is_none() {
        v.add("expectedCofinancerCode", "UNKNOWN_COLLECTIVITE", format!("collectivité « {code} » inconnue"));
        return;
    }
    let covering: Vec<&str> = catalog.cofinancers_of_departement(departement).map(|c| c.code.as_str()).collect();
    let parts = catalog.commune_parts();
    let here = parts.covering(&covering, input.commune_code.as_deref());
    if !here.contains(&code.as_str()) {
        let place = match &input.commune_code {
            Some(commune) => format!("la commune {commune} du département {departement}"),
            None => format!("le département {departement}"),
        };
        v.add(
            "expectedCofinancerCode",
            "COFINANCER_OUTSIDE_TERRITORY",
            format!("{code} ne couvre pas {place} : co-financeur attendu parmi {}", here.join(", ")),
        );
    }
}
