//! An escalation's states and the steps between them: pure, unit-tested.
//!
//! OPEN → ANSWERED (a first answer from another institution than the ARS) → NATIONAL_INTERVENTION_REQUESTED (the
//! ARS asks) → RESOLVED (the CNSA settles); the ARS may withdraw it until it is closed. Messages go on while it is
//! open; a closed escalation takes none.

use async_graphql::Enum;
use serde::Serialize;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EscalationState {
    Open,
    /// Another institution than the ARS has answered.
    Answered,
    /// The ARS asks the national level to intervene.
    NationalInterventionRequested,
    /// Settled by the CNSA.
    Resolved,
    /// Withdrawn by the ARS.
    Withdrawn,
}

impl EscalationState {
    /// The states of an escalation still open.
    pub const OPEN: [EscalationState; 3] =
        [EscalationState::Open, EscalationState::Answered, EscalationState::NationalInterventionRequested];

    pub fn as_str(self) -> &'static str {
        match self {
            EscalationState::Open => "OPEN",
            EscalationState::Answered => "ANSWERED",
            EscalationState::NationalInterventionRequested => "NATIONAL_INTERVENTION_REQUESTED",
            EscalationState::Resolved => "RESOLVED",
            EscalationState::Withdrawn => "WITHDRAWN",
        }
    }

    pub fn from_stored(text: &str) -> Option<EscalationState> {
        [Self::Open, Self::Answered, Self::NationalInterventionRequested, Self::Resolved, Self::Withdrawn]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    pub fn is_closed(self) -> bool {
        !Self::OPEN.contains(&self)
    }
}

/// What someone does to an escalation.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Step {
    Open,
    Message,
    RequestIntervention,
    Withdraw,
    Resolve,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Open => "OPEN",
            Step::Message => "MESSAGE",
            Step::RequestIntervention => "REQUEST_INTERVENTION",
            Step::Withdraw => "WITHDRAW",
            Step::Resolve => "RESOLVE",
        }
    }

    /// The operation it is audited as.
    pub fn operation(self) -> &'static str {
        match self {
            Step::Open => "escalate",
            Step::Message => "postEscalationMessage",
            Step::RequestIntervention => "requestNationalIntervention",
            Step::Withdraw => "withdrawEscalation",
            Step::Resolve => "resolveEscalation",
        }
    }
}

/// The state after `step`, taken by the institution that opened the escalation (`by_opener`) or another; or why the
/// step is refused, in French.
pub fn next(current: EscalationState, step: Step, by_opener: bool) -> Result<EscalationState, String> {
    use EscalationState::*;
    if current.is_closed() {
        return Err(format!("l'escalade est close ({}) : plus rien n'y est ajouté", current.as_str()));
    }
    match step {
        Step::Open => Err("l'escalade est déjà ouverte".into()),
        Step::Message if current == Open && !by_opener => Ok(Answered),
        Step::Message => Ok(current),
        Step::RequestIntervention if !by_opener => {
            Err("seule l'ARS qui a ouvert l'escalade demande une intervention nationale".into())
        }
        Step::RequestIntervention if current == NationalInterventionRequested => {
            Err("une intervention nationale est déjà demandée".into())
        }
        Step::RequestIntervention => Ok(NationalInterventionRequested),
        Step::Withdraw if !by_opener => Err("seule l'ARS qui a ouvert l'escalade la retire".into()),
        Step::Withdraw => Ok(Withdrawn),
        Step::Resolve => Ok(Resolved),
    }
}

#[cfg(test)]
mod tests {
    use super::EscalationState::*;
    use super::*;

    #[test]
    fn an_escalation_goes_from_open_to_answered_to_intervention_to_resolved() {
        assert_eq!(next(Open, Step::Message, true), Ok(Open), "the ARS adding to its own report");
        assert_eq!(next(Open, Step::Message, false), Ok(Answered));
        assert_eq!(next(Answered, Step::Message, false), Ok(Answered));
        assert_eq!(next(Answered, Step::RequestIntervention, true), Ok(NationalInterventionRequested));
        assert_eq!(next(NationalInterventionRequested, Step::Message, false), Ok(NationalInterventionRequested));
        assert_eq!(next(NationalInterventionRequested, Step::Resolve, false), Ok(Resolved));
    }

    #[test]
    fn only_the_opener_asks_for_intervention_or_withdraws_and_nothing_follows_a_close() {
        assert!(next(Open, Step::RequestIntervention, false).is_err());
        assert!(next(NationalInterventionRequested, Step::RequestIntervention, true).is_err());
        assert!(next(Answered, Step::Withdraw, false).is_err());
        assert_eq!(next(Answered, Step::Withdraw, true), Ok(Withdrawn));
        for closed in [Resolved, Withdrawn] {
            for step in [Step::Message, Step::RequestIntervention, Step::Withdraw, Step::Resolve] {
                assert!(next(closed, step, true).is_err(), "{closed:?} {step:?}");
            }
        }
        assert!(next(Open, Step::Open, true).is_err());
        assert!(Resolved.is_closed() && !Answered.is_closed());
        let open: Vec<&str> = EscalationState::OPEN.iter().map(|s| s.as_str()).collect();
        assert_eq!(open, crate::vocabulary::OPEN_ESCALATION_STATES, "the reconciliation counts the same states");
        assert_eq!(
            EscalationState::from_stored("NATIONAL_INTERVENTION_REQUESTED"),
            Some(NationalInterventionRequested)
        );
    }
}
