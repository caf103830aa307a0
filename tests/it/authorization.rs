//! The authorization matrix, generated from the policy table and the list of operations: every role × every
//! operation × own territory, another territory and national reach. A new operation without a policy entry or
//! without a sample here makes it fail.

use api::auth::policy::{self, OPERATIONS, Reach};
use api::auth::principal::Role;
use serde_json::{Value, json};

use crate::support::{Caller, TestHub, TestResult, error_codes};

/// A sample call of each operation, targeting Auvergne-Rhône-Alpes (region 84) or one of its départements where the
/// operation takes a territory.
fn sample(field: &str) -> Option<(&'static str, Value)> {
    Some(match field {
        "regions" => ("{ regions { code } }", json!({})),
        "region" => (r#"{ region(code: "84") { code } }"#, json!({})),
        "departement" => (r#"{ departement(code: "69") { code } }"#, json!({})),
        "departements" => (r#"{ departements(regionCode: "84") { code } }"#, json!({})),
        "academies" => ("{ academies { code } }", json!({})),
        "academie" => (r#"{ academie(code: "lyon") { code } }"#, json!({})),
        "collectivites" => (r#"{ collectivites(departementCode: "69") { code } }"#, json!({})),
        "envelopes" => (r#"{ envelopes(regionCode: "84") { notified } }"#, json!({})),
        "annexIntegrity" => ("{ annexIntegrity { gap } }", json!({})),
        "annexWeightIntegrity" => ("{ annexWeightIntegrity { gap } }", json!({})),
        "categories" => ("{ categories { code } }", json!({})),
        "financingRules" => (r#"{ financingRules(categoryCode: "190") { payer } }"#, json!({})),
        "orientationCodes" => ("{ orientationCodes { code } }", json!({})),
        "me" => ("{ me { role } }", json!({})),
        "revokeToken" => {
            (r#"mutation { revokeToken(tokenId: "matrix-token", reason: "matrice") { tokenId } }"#, json!({}))
        }
        "suspendInstitution" => {
            (r#"mutation { suspendInstitution(code: "MDPH-976", reason: "matrice") { suspended } }"#, json!({}))
        }
        "reinstateInstitution" => (r#"mutation { reinstateInstitution(code: "MDPH-976") { suspended } }"#, json!({})),
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    /// The principal's territory contains the sample's target.
    Own,
    /// Another territory of the same kind.
    Other,
    /// A national principal.
    National,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Forbidden,
    /// Outside the caller's territory: indistinguishable from missing.
    NotFound,
}

/// Every principal the matrix tries, with how its territory relates to the samples' target (region 84).
fn principals(hub: &TestHub) -> Vec<(Role, Relation, Caller<'_>)> {
    vec![
        (Role::Cnsa, Relation::National, hub.as_role(Role::Cnsa, None)),
        (Role::Admin, Relation::National, hub.as_role(Role::Admin, None)),
        (Role::Dashboard, Relation::National, hub.as_role(Role::Dashboard, None)),
        (Role::Dashboard, Relation::Own, hub.as_role(Role::Dashboard, Some("84"))),
        (Role::Dashboard, Relation::Other, hub.as_role(Role::Dashboard, Some("11"))),
        (Role::Ars, Relation::Own, hub.as_role(Role::Ars, Some("84"))),
        (Role::Ars, Relation::Other, hub.as_role(Role::Ars, Some("11"))),
        (Role::Collectivite, Relation::Own, hub.as_role(Role::Collectivite, Some("69"))),
        (Role::Collectivite, Relation::Other, hub.as_role(Role::Collectivite, Some("75"))),
        (Role::Mdph, Relation::Own, hub.as_role(Role::Mdph, Some("69"))),
        (Role::Mdph, Relation::Other, hub.as_role(Role::Mdph, Some("75"))),
        (Role::Rectorat, Relation::Own, hub.as_role(Role::Rectorat, Some("lyon"))),
        (Role::Rectorat, Relation::Other, hub.as_role(Role::Rectorat, Some("paris"))),
    ]
}

fn expected(role: Role, relation: Relation, op: &policy::Operation) -> Outcome {
    match policy::reach(role, op.resource, op.action) {
        None => Outcome::Forbidden,
        Some(Reach::Everything) | Some(Reach::AggregatesOnly) => Outcome::Allowed,
        // Operations about the caller itself (me) have no other territory to reach.
        Some(Reach::OwnTerritory) if op.resource == policy::Resource::OwnIdentity => Outcome::Allowed,
        Some(Reach::OwnTerritory) => match relation {
            Relation::Own | Relation::National => Outcome::Allowed,
            Relation::Other => Outcome::NotFound,
        },
    }
}

fn outcome(answer: &Value) -> Outcome {
    let codes = error_codes(answer);
    if codes.iter().any(|c| c == "FORBIDDEN") {
        Outcome::Forbidden
    } else if codes.iter().any(|c| c == "NOT_FOUND") {
        Outcome::NotFound
    } else {
        assert!(codes.is_empty(), "unexpected errors: {answer}");
        Outcome::Allowed
    }
}

db_test! {
    async fn every_role_reaches_exactly_what_the_policy_grants(hub) {
        let mut checked = 0;
        for op in OPERATIONS {
            let (document, variables) =
                sample(op.field).unwrap_or_else(|| panic!("no sample call for the operation {}: add one", op.field));
            let anonymous = hub.anonymous().graphql(document, variables.clone()).await?;
            assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"], "{} without a token", op.field);
            assert!(anonymous["data"].is_null() || anonymous["data"].get(op.field).is_none_or(Value::is_null));
            for (role, relation, caller) in principals(&hub) {
                let answer = caller.graphql(document, variables.clone()).await?;
                assert_eq!(
                    outcome(&answer),
                    expected(role, relation, op),
                    "{:?} ({relation:?}) calling {}: {answer}",
                    role,
                    op.field
                );
                checked += 1;
            }
        }
        assert!(checked >= OPERATIONS.len() * 13);
        Ok(())
    }
}

db_test! {
    async fn a_field_outside_the_policy_table_is_denied_even_to_the_operator(hub) {
        // __typename is answered to anyone; every other root field must be in the table (checked by the unit test
        // every_root_field_of_the_schema_has_a_policy_entry_and_no_entry_is_stale).
        let answer = hub.anonymous().graphql("{ __typename }", json!({})).await?;
        assert_eq!(answer["data"]["__typename"], "Query");
        Ok(())
    }
}

db_test! {
    async fn introspection_is_open_in_development_for_graphiql(hub) {
        let answer = hub.anonymous().graphql("{ __schema { queryType { name } } }", json!({})).await?;
        assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query", "{answer}");
        Ok(())
    }
}

#[tokio::test]
async fn introspection_needs_a_token_in_production() -> TestResult {
    let hub = TestHub::start_configured(|config| {
        config.profile = api::Profile::Production;
        config.issuers_file = Some(crate::auth::write_issuers_file_for_unreachable_idp());
    })
    .await?;
    let answer = hub.anonymous().graphql("{ __schema { queryType { name } } }", json!({})).await?;
    assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"]);
    Ok(())
}

/// DOMAIN.md §2, written out independently of the policy table: who reaches what. The policy must say exactly this.
#[test]
fn the_policy_table_is_the_reach_of_domain_section_2() {
    use Role::*;
    use api::auth::policy::{Action, Reach::*, Resource};
    const EVERY_ROLE: [Role; 7] = [Cnsa, Ars, Collectivite, Mdph, Rectorat, Dashboard, Admin];
    let expected = |role: Role, resource: Resource, action: Action| -> Option<Reach> {
        match (resource, action) {
            // Reference data: readable by every authenticated principal (CONTRACT.md), written by no API call yet.
            (Resource::ReferenceData, Action::Read) => Some(Everything),
            (Resource::ReferenceData, Action::Write) => None,
            (Resource::OwnIdentity, Action::Read) => Some(OwnTerritory),
            (Resource::OwnIdentity, Action::Write) => None,
            // "Hub operator (admin): institutions, tokens' trust".
            (Resource::AccessControl, Action::Write) if role == Admin => Some(Everything),
            (Resource::AccessControl, _) => None,
        }
    };
    for role in EVERY_ROLE {
        for resource in Resource::ALL {
            for action in Action::ALL {
                assert_eq!(
                    policy::reach(role, *resource, *action),
                    expected(role, *resource, *action),
                    "{role:?} {action:?} {resource:?}"
                );
            }
        }
    }
}
