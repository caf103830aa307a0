//! Campaign deadlines (pure): once a campaign's deadline has passed (the end of its day, Paris time), each
//! institution it expected and that has submitted nothing, or submitted only after the deadline.

use super::{Finding, Report, Severity, Snapshot, SubjectKind};
use std::sync::Arc;

/// Institutions expected by a campaign whose deadline has passed: missing (nothing received) or late.
pub(super) fn campaign_deadlines(snapshot: &Snapshot, report: &mut Report) {
    for standing in snapshot.campaigns.iter() {
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
                        .with_timezone(&crate::calendar::paris_offset_at_end_of(first.date_naive()))
                        .format("%d/%m/%Y")
                ),
            ),
            Some(_) => continue,
        };
        report.findings.push(Arc::new(Finding {
            code,
            severity,
            subject_kind: SubjectKind::Institution,
            subject: format!("{}/{}", standing.campaign_id, standing.institution_code),
            region: standing.region.clone(),
            departements: standing.departements.clone(),
            figures: vec![],
            message,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciled::engine::reconcile;
    use crate::reconciled::engine::test_support::*;

    #[test]
    fn campaign_deadlines_report_missing_and_late_submissions_once_passed() {
        let mut snapshot = Snapshot { now: "2026-05-20T10:00:00Z".parse().unwrap(), ..Default::default() };
        *Arc::make_mut(&mut snapshot.campaigns) = vec![standing(None)];
        assert!(codes_of(&reconcile(&snapshot)).is_empty(), "not due yet");
        snapshot.now = "2026-06-02T10:00:00Z".parse().unwrap();
        assert_eq!(codes_of(&reconcile(&snapshot)), vec!["CAMPAIGN_SUBMISSION_MISSING"]);
        *Arc::make_mut(&mut snapshot.campaigns) = vec![standing(Some("2026-05-31T21:00:00Z".parse().unwrap()))];
        assert!(codes_of(&reconcile(&snapshot)).is_empty(), "on time, Paris time");
        *Arc::make_mut(&mut snapshot.campaigns) = vec![standing(Some("2026-06-01T08:00:00Z".parse().unwrap()))];
        let report = reconcile(&snapshot);
        assert_eq!(codes_of(&report), vec!["CAMPAIGN_SUBMISSION_LATE"]);
        assert!(report.findings[0].message.contains("01/06/2026"), "{}", report.findings[0].message);
    }
}
