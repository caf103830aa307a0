//! Identifier and territory hygiene, and campaign deadlines (pure). Writes through the hub are validated already;
//! these checks also catch what came in before a rule existed, by bulk loads, or when reference data changed since.

use super::{FigureValue, Finding, Report, Severity, Snapshot, SubjectKind};
use crate::validation::identifiers::{FinessCheck, finess_check, finess_departement};

pub(super) fn check(snapshot: &Snapshot, report: &mut Report) {
    let territory = &snapshot.territory;
    for m in &snapshot.measures {
        let finding = |code, severity, message: String| Finding {
            code,
            severity,
            subject_kind: SubjectKind::Measure,
            subject: m.id.clone(),
            region: m.region.clone(),
            departements: vec![m.departement.clone()],
            figures: vec![],
            message: format!("Mesure {} : {message}", m.reference),
        };
        if territory.departements_of_region.get(&m.region).is_some_and(|d| !d.contains(&m.departement)) {
            report.findings.push(finding(
                "DEPARTEMENT_OUTSIDE_REGION",
                Severity::Error,
                format!("le département {} n'appartient pas à la région {}", m.departement, m.region),
            ));
        }
        let Some(finess) = &m.finess else { continue };
        match finess_check(finess) {
            FinessCheck::Valid => {}
            FinessCheck::CorsicaUnverified => report.findings.push(finding(
                "FINESS_KEY_UNVERIFIED",
                Severity::Info,
                format!("la clé du FINESS corse {finess} n'a pu être vérifiée (convention 2A/2B à confirmer)"),
            )),
            FinessCheck::Malformed | FinessCheck::BadCheckDigit => report.findings.push(finding(
                "FINESS_INVALID",
                Severity::Error,
                format!("le numéro FINESS {finess} n'est pas valide"),
            )),
        }
        if let Some(prefix) = finess_departement(finess)
            && prefix != m.departement
        {
            report.findings.push(finding(
                "FINESS_DEPARTEMENT_MISMATCH",
                Severity::Warning,
                format!(
                    "le FINESS {finess} relève du département {prefix}, la mesure du département {}",
                    m.departement
                ),
            ));
        }
    }
    for plan in &snapshot.school_plans {
        let academie_of_departement = territory.academie_of.get(&plan.departement);
        if academie_of_departement.is_some_and(|a| *a != plan.academie) {
            report.findings.push(Finding {
                code: "SCHOOL_PLAN_OUTSIDE_ACADEMIE",
                severity: Severity::Error,
                subject_kind: SubjectKind::Academie,
                subject: plan.id.clone(),
                region: territory.region_of_academie.get(&plan.academie).cloned().unwrap_or_default(),
                departements: vec![plan.departement.clone()],
                figures: vec![("annee", FigureValue::Year(plan.year))],
                message: format!(
                    "Plan d'appui {} : le département {} ne relève pas de l'académie {}",
                    plan.id, plan.departement, plan.academie
                ),
            });
        }
    }
}

/// Institutions expected by a campaign whose deadline has passed: missing (nothing received) or late.
pub(super) fn campaign_deadlines(snapshot: &Snapshot, report: &mut Report) {
    for standing in &snapshot.campaigns {
        if snapshot.now <= standing.deadline_end {
            continue;
        }
        let deadline = standing.deadline.format("%d/%m/%Y");
        let (code, severity, message) = match standing.first_submission {
            None => (
                "CAMPAIGN_SUBMISSION_MISSING",
                Severity::Warning,
                format!(
                    "Campagne « {} » : {} n'a rien transmis, l'échéance était le {deadline}",
                    standing.campaign_name, standing.institution_name
                ),
            ),
            Some(first) if first > standing.deadline_end => (
                "CAMPAIGN_SUBMISSION_LATE",
                Severity::Info,
                format!(
                    "Campagne « {} » : {} a transmis le {}, après l'échéance du {deadline}",
                    standing.campaign_name,
                    standing.institution_name,
                    first
                        .with_timezone(&crate::exchange::paris_offset_at_end_of(first.date_naive()))
                        .format("%d/%m/%Y")
                ),
            ),
            Some(_) => continue,
        };
        report.findings.push(Finding {
            code,
            severity,
            subject_kind: SubjectKind::Institution,
            subject: format!("{}/{}", standing.campaign_id, standing.institution_code),
            region: standing.region.clone(),
            departements: standing.departements.clone(),
            figures: vec![],
            message,
        });
    }
}
