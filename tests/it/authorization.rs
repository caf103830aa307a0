//! The authorization matrix, generated from the policy table and the list of operations: every role × every
//! operation × own territory, another territory and national reach. A new operation without a policy entry or
//! without a sample here makes it fail.

use api::access::policy::{self, OPERATIONS, Reach};
use api::access::principal::Role;
use serde_json::{Value, json};

use crate::support::{Caller, TestHub, TestResult, error_codes};

/// What a sample call reaches: a list (filtered to the caller's territory), one object (outside the territory: not
/// found), or a write (outside the territory: refused, by validation or as not found).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sample {
    List,
    Object,
    Write,
    /// A subscription over WebSocket: a refusal comes at once, a permitted one stays open and silent.
    Subscribe,
}

const MEASURE_INPUT: &str = r#"{ reference: "MATRIX-1", label: "Matrice", departementCode: "69", categoryCode: "182",
    publics: [ENFANTS], solutions: 10, unit: PLACES_INSTALLEES, nature: CREATION, procedure: APPEL_A_PROJETS,
    compartment: SOCLE_ENFANTS, plannedInstallation: "2026-09-01" }"#;

/// A sample call of each operation, targeting Auvergne-Rhône-Alpes (region 84), the Rhône (69) or the académie of
/// Lyon. `$measure` and `$campaign` are the ids of objects created before the matrix runs.
fn sample(field: &str) -> Option<(Sample, String)> {
    use Sample::*;
    Some(match field {
        "regions" => (List, "{ regions { code } }".into()),
        "region" => (List, r#"{ region(code: "84") { code } }"#.into()),
        "departement" => (List, r#"{ departement(code: "69") { code } }"#.into()),
        "departements" => (List, r#"{ departements(regionCode: "84") { code } }"#.into()),
        "academies" => (List, "{ academies { code } }".into()),
        "academie" => (List, r#"{ academie(code: "lyon") { code } }"#.into()),
        "collectivites" => (List, r#"{ collectivites(departementCode: "69") { code } }"#.into()),
        "envelopes" => (List, r#"{ envelopes(regionCode: "84") { notified } }"#.into()),
        "annexIntegrity" => (List, "{ annexIntegrity { gap } }".into()),
        "annexWeightIntegrity" => (List, "{ annexWeightIntegrity { gap } }".into()),
        "categories" => (List, "{ categories { code } }".into()),
        "financingRules" => (List, r#"{ financingRules(categoryCode: "190") { payer } }"#.into()),
        "orientationCodes" => (List, "{ orientationCodes { code } }".into()),
        "me" => (List, "{ me { role } }".into()),
        "measures" => (List, "{ measures { totalCount } }".into()),
        "measure" => (Object, r#"{ measure(id: "$measure") { id } }"#.into()),
        "needs" => (List, "{ needs { totalCount } }".into()),
        "schoolPlans" => (List, "{ schoolPlans { totalCount } }".into()),
        "campaigns" => (List, "{ campaigns { id } }".into()),
        "campaignStatus" => (List, r#"{ campaignStatus(campaignId: "$campaign") { standing } }"#.into()),
        "auditTrail" => (List, "{ auditTrail { totalCount } }".into()),
        "coFinancingStatusChanged" => (Subscribe, "subscription { coFinancingStatusChanged { measureId status } }".into()),
        "verifyAuditChain" => (List, "{ verifyAuditChain { ok } }".into()),
        "revokeToken" => (Write, r#"mutation { revokeToken(tokenId: "matrix-token", reason: "matrice") { tokenId } }"#.into()),
        "suspendInstitution" => {
            (Write, r#"mutation { suspendInstitution(code: "MDPH-976", reason: "matrice") { suspended } }"#.into())
        }
        "reinstateInstitution" => (Write, r#"mutation { reinstateInstitution(code: "MDPH-976") { suspended } }"#.into()),
        "setInstitutionSiret" => (Write, r#"mutation { setInstitutionSiret(code: "MDPH-976", siret: null) { siret } }"#.into()),
        "upsertMeasure" => {
            (Write, format!(r#"mutation {{ upsertMeasure(input: {MEASURE_INPUT}, idempotencyKey: "matrix") {{ created }} }}"#))
        }
        "commit" => (
            Write,
            r#"mutation { commit(input: { measureId: "$measure", costComponent: GLOBAL, fullYearAmount: "1000.00",
                decisionRef: "M", capacity: 10, installationDate: "2026-09-01" }, idempotencyKey: "matrix") { created } }"#
                .into(),
        ),
        "withdrawCommitment" => (
            Write,
            r#"mutation { withdrawCommitment(id: "00000000-0000-7000-8000-000000000000", reason: "matrice", expectedVersion: 1) { created } }"#.into(),
        ),
        "submitNeeds" => (
            Write,
            r#"mutation { submitNeeds(input: { departementCode: "69", referenceDate: "2026-06-30", indicators: [
                { orientationCode: "7.1", ageBand: "TOUS", indicator: EN_ATTENTE_ADMISSION, value: 12 } ] }, idempotencyKey: "matrix") { accepted } }"#.into(),
        ),
        "submitSchoolPlans" => (
            Write,
            r#"mutation { submitSchoolPlans(input: { academieCode: "lyon", plans: [ { reference: "M1", departementCode: "69",
                kind: PAS, uai: "0690001B", etpEducationNationale: "1", etpMedicoSocial: "1.5", medicoSocialCost: "90000", year: 2026 } ] },
                idempotencyKey: "matrix") { accepted } }"#.into(),
        ),
        "declareCampaign" => (
            Write,
            r#"mutation { declareCampaign(input: { name: "Matrice", dataKind: MEASURES, opensOn: "2026-01-01", deadline: "2026-12-31" },
                idempotencyKey: "matrix") { id } }"#.into(),
        ),
        "coFinancingStatus" => (List, "{ coFinancingStatus { totalCount } }".into()),
        "reconciliation" => (List, "{ reconciliation { envelopes { headroom } } }".into()),
        // Without a multipart body the upload is missing: the policy answers first, then the resolver.
        "importFile" => (Write, r#"mutation { importFile(kind: NEEDS, file: "0") { rows } }"#.into()),
        // Federation: the router's entity lookup, each entity under its own resource's policy.
        "_entities" => (List, r#"{ _entities(representations: [{ __typename: "Region", code: "84" }]) { __typename } }"#.into()),
        "webhookSubscriptions" => (List, "{ webhookSubscriptions { id } }".into()),
        // An institution's own subscriptions only: any other is not found, as a write's target would be.
        "webhookDeliveries" => {
            (Write, r#"{ webhookDeliveries(subscriptionId: "00000000-0000-7000-8000-000000000000") { id } }"#.into())
        }
        "subscribeWebhook" => (
            Write,
            r#"mutation { subscribeWebhook(input: { url: "https://matrix.example.org/hook", events: [SUBMISSION_RECEIPT] }) { secret } }"#.into(),
        ),
        "cancelWebhookSubscription" => (
            Write,
            r#"mutation { cancelWebhookSubscription(id: "00000000-0000-7000-8000-000000000000") { active } }"#.into(),
        ),
        "replayWebhookDeliveries" => {
            (Write, r#"mutation { replayWebhookDeliveries(subscriptionId: "00000000-0000-7000-8000-000000000000") }"#.into())
        }
        "pullSources" => (List, "{ pullSources { id } }".into()),
        // An institution's own sources only: any other is not found, as a write's target would be.
        "pullRuns" => (Write, r#"{ pullRuns(sourceId: "00000000-0000-7000-8000-000000000000") { id } }"#.into()),
        // An unusable URL: every role the policy lets through gets the input's refusal.
        "registerPullSource" => (
            Write,
            r#"mutation { registerPullSource(input: { name: "Matrice", url: "ftp://matrix.example.org/x", kind: NEEDS }) { id } }"#.into(),
        ),
        "pullSourceNow" => (Write, r#"mutation { pullSourceNow(id: "00000000-0000-7000-8000-000000000000") { id } }"#.into()),
        "pausePullSource" => (Write, r#"mutation { pausePullSource(id: "00000000-0000-7000-8000-000000000000") { id } }"#.into()),
        "resumePullSource" => {
            (Write, r#"mutation { resumePullSource(id: "00000000-0000-7000-8000-000000000000") { id } }"#.into())
        }
        "escalations" => (List, "{ escalations { id } }".into()),
        "escalation" => (Write, r#"{ escalation(id: "00000000-0000-7000-8000-000000000000") { id } }"#.into()),
        "escalationChanged" => (Subscribe, "subscription { escalationChanged { escalationId } }".into()),
        "escalate" => (
            Write,
            r#"mutation { escalate(input: { measureId: "$measure", reason: "matrice" }) { id } }"#.into(),
        ),
        "postEscalationMessage" => (
            Write,
            r#"mutation { postEscalationMessage(id: "00000000-0000-7000-8000-000000000000", text: "matrice") { id } }"#.into(),
        ),
        "requestNationalIntervention" => (
            Write,
            r#"mutation { requestNationalIntervention(id: "00000000-0000-7000-8000-000000000000", reason: "matrice") { id } }"#.into(),
        ),
        "withdrawEscalation" => (
            Write,
            r#"mutation { withdrawEscalation(id: "00000000-0000-7000-8000-000000000000", reason: "matrice") { id } }"#.into(),
        ),
        "resolveEscalation" => (
            Write,
            r#"mutation { resolveEscalation(id: "00000000-0000-7000-8000-000000000000", resolution: "matrice") { id } }"#.into(),
        ),
        "steeringFigures" => (List, "{ steeringFigures { year } }".into()),
        "steeringReport" => (List, "{ steeringReport { regions } }".into()),
        "submitTrajectory" => (
            Write,
            r#"mutation { submitTrajectory(points: [{ regionCode: "84", compartment: SOCLE, year: 2026, ae: "1000", cp: "500" }],
                idempotencyKey: "matrix") { accepted } }"#.into(),
        ),
        "setDrawingRights" => (
            Write,
            r#"mutation { setDrawingRights(rights: [{ regionCode: "84", year: 2026, cp: "500" }], idempotencyKey: "matrix") { accepted } }"#.into(),
        ),
        "submitInstallationForecast" => (
            Write,
            r#"mutation { submitInstallationForecast(input: { regionCode: "84", lines: [{ compartment: SOCLE, year: 2027, solutions: 3, cp: "500" }] },
                idempotencyKey: "matrix") { accepted } }"#.into(),
        ),
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
    /// The policy let the call through (whatever the operation then answered).
    Permitted,
    Forbidden,
    /// Outside the caller's territory: indistinguishable from missing.
    NotFound,
}

/// Every principal the matrix tries, with how its territory relates to the samples' target (region 84, the Rhône).
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

fn expected(role: Role, relation: Relation, op: &policy::Operation, sample: Sample) -> Outcome {
    match policy::reach(role, op.resource, op.action) {
        None => Outcome::Forbidden,
        Some(Reach::OwnTerritory) if sample == Sample::Object && relation == Relation::Other => Outcome::NotFound,
        Some(_) => Outcome::Permitted,
    }
}

/// One sample call: POST, or a WebSocket subscription whose first answer (if any comes quickly) is the outcome.
async fn call(
    caller: &Caller<'_>,
    kind: Sample,
    document: &str,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    if kind != Sample::Subscribe {
        return Ok(caller.graphql(document, json!({})).await?);
    }
    let mut subscription = caller.subscribe(document).await?;
    Ok(subscription.next(std::time::Duration::from_millis(300)).await?.unwrap_or(json!({})))
}

fn outcome(answer: &Value) -> Outcome {
    let codes = error_codes(answer);
    assert!(!codes.iter().any(|c| c == "UNAUTHENTICATED" || c == "INTERNAL_SERVER_ERROR"), "{answer}");
    if codes.iter().any(|c| c == "FORBIDDEN") {
        Outcome::Forbidden
    } else if codes.iter().any(|c| c == "NOT_FOUND") {
        Outcome::NotFound
    } else {
        Outcome::Permitted
    }
}

db_test! {
    async fn every_role_reaches_exactly_what_the_policy_grants(hub) {
        let created = hub.as_role(Role::Ars, Some("84")).data(&format!(
            r#"mutation {{ upsertMeasure(input: {}) {{ measure {{ id }} }} }}"#,
            MEASURE_INPUT.replace("MATRIX-1", "MATRIX-SETUP")
        )).await?;
        let measure = created["upsertMeasure"]["measure"]["id"].as_str().unwrap().to_owned();
        let campaign = hub.as_cnsa().data(r#"mutation { declareCampaign(input: { name: "Setup", dataKind: NEEDS, opensOn: "2026-01-01", deadline: "2026-12-31" }) { id } }"#).await?;
        let campaign = campaign["declareCampaign"]["id"].as_str().unwrap().to_owned();
        let mut checked = 0;
        for op in OPERATIONS {
            let (kind, document) =
                sample(op.field).unwrap_or_else(|| panic!("no sample call for the operation {}: add one", op.field));
            let document = document.replace("$measure", &measure).replace("$campaign", &campaign);
            if kind == Sample::Subscribe {
                // A WebSocket without a token is refused at connection_init, before any operation.
                let code = crate::support::websocket_init_close_code(&hub, json!({})).await?;
                assert_eq!(code, Some(4403), "{} without a token", op.field);
            } else {
                let anonymous = call(&hub.anonymous(), kind, &document).await?;
                assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"], "{} without a token", op.field);
            }
            for (role, relation, caller) in principals(&hub) {
                let answer = call(&caller, kind, &document).await?;
                let mut actual = outcome(&answer);
                // A write that passes the policy may then find nothing of the caller's own to change (another
                // territory's measure, another funder's commitment): that is the service's answer, not the policy's.
                if kind == Sample::Write && actual == Outcome::NotFound {
                    actual = Outcome::Permitted;
                }
                assert_eq!(
                    actual,
                    expected(role, relation, op, kind),
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
        config.secrets_key = Some(api::config::Secret::new(crate::webhooks::SECRETS_KEY));
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
    use api::access::policy::{Action, Reach::*, Resource};
    const EVERY_ROLE: [Role; 7] = [Cnsa, Ars, Collectivite, Mdph, Rectorat, Dashboard, Admin];
    let institutions = [Ars, Collectivite, Mdph, Rectorat];
    let expected = |role: Role, resource: Resource, action: Action| -> Option<Reach> {
        match (resource, action) {
            // Reference data: readable by every authenticated principal (CONTRACT.md), written by no API call yet.
            (Resource::ReferenceData, Action::Read) => Some(Everything),
            (Resource::OwnIdentity, Action::Read) => Some(OwnTerritory),
            // "Hub operator (admin): institutions, tokens' trust".
            (Resource::AccessControl, Action::Write) if role == Admin => Some(Everything),
            // Measures: written by the ARS (its region), read by the CNSA (all) and by each institution in its
            // territory; dashboards get aggregates elsewhere, the operator none.
            (Resource::Measure, Action::Write) if role == Ars => Some(OwnTerritory),
            (Resource::Measure, Action::Read) if role == Cnsa => Some(Everything),
            (Resource::Measure, Action::Read) if institutions.contains(&role) => Some(OwnTerritory),
            // "The ARS's and the collectivité's views of the same measure are entered by each side".
            (Resource::Commitment, Action::Write) if role == Ars || role == Collectivite => Some(OwnTerritory),
            // Needs: the MDPH writes and reads its own; the CNSA reads all; counts of people go nowhere else in detail.
            (Resource::Needs, Action::Write) if role == Mdph => Some(OwnTerritory),
            (Resource::Needs, Action::Read) if role == Mdph => Some(OwnTerritory),
            (Resource::Needs, Action::Read) if role == Cnsa => Some(Everything),
            // School plans: the rectorat submits "with the ARS"; both read their territory's, the CNSA all.
            (Resource::SchoolPlan, Action::Write) if role == Rectorat => Some(OwnTerritory),
            (Resource::SchoolPlan, Action::Read) if role == Rectorat || role == Ars => Some(OwnTerritory),
            (Resource::SchoolPlan, Action::Read) if role == Cnsa => Some(Everything),
            // Campaigns: declared by the CNSA, seen by everyone concerned.
            (Resource::Campaign, Action::Write) if role == Cnsa => Some(Everything),
            (Resource::Campaign, Action::Read) if role == Cnsa || role == Admin => Some(Everything),
            (Resource::Campaign, Action::Read) if institutions.contains(&role) => Some(OwnTerritory),
            // Audit: "Hub operator (admin): operations, audit"; the CNSA reads everything; each institution its own.
            (Resource::AuditTrail, Action::Read) if role == Cnsa || role == Admin => Some(Everything),
            (Resource::AuditTrail, Action::Read) if institutions.contains(&role) => Some(OwnTerritory),
            (Resource::AuditIntegrity, Action::Read) if role == Cnsa || role == Admin => Some(Everything),
            // "CNSA and dashboards query progress and co-financing status": the funders see their territory's,
            // dashboards the aggregates only.
            (Resource::CoFinancing, Action::Read) if role == Cnsa => Some(Everything),
            (Resource::CoFinancing, Action::Read) if role == Ars || role == Collectivite => Some(OwnTerritory),
            (Resource::Reconciliation, Action::Read) if role == Cnsa => Some(Everything),
            (Resource::Reconciliation, Action::Read) if role == Ars || role == Collectivite => Some(OwnTerritory),
            // "MDPH: its département's needs and coverage"; "Rectorat: its académie" (school matching).
            (Resource::Reconciliation, Action::Read) if role == Mdph || role == Rectorat => Some(OwnTerritory),
            (Resource::Reconciliation, Action::Read) if role == Dashboard => Some(AggregatesOnly),
            // Each institution that submits data may send it as a spreadsheet.
            (Resource::FileImport, Action::Write) if institutions.contains(&role) => Some(OwnTerritory),
            // The CNSA sends its trajectory and drawing rights as sheets.
            (Resource::FileImport, Action::Write) if role == Cnsa => Some(Everything),
            // Webhooks are each institution's own settings; the operator sees every one and replays dead deliveries.
            (Resource::Webhook, Action::Read) if role == Admin => Some(Everything),
            (Resource::Webhook, _) if role == Cnsa || institutions.contains(&role) => Some(OwnTerritory),
            (Resource::WebhookReplay, Action::Write) if role == Admin => Some(Everything),
            // Pull sources: each institution that submits data registers its own systems; the operator any, for one.
            (Resource::PullSource, _) if role == Admin => Some(Everything),
            (Resource::PullSource, _) if institutions.contains(&role) => Some(OwnTerritory),
            // Escalations: the ARS and the collectivité within their territory, the CNSA everywhere; the ARS opens,
            // the CNSA settles; the operator reads.
            (Resource::Escalation, _) if role == Ars || role == Collectivite => Some(OwnTerritory),
            (Resource::Escalation, _) if role == Cnsa => Some(Everything),
            (Resource::Escalation, Action::Read) if role == Admin => Some(Everything),
            (Resource::EscalationRaise, Action::Write) if role == Ars => Some(OwnTerritory),
            (Resource::EscalationDecision, Action::Write) if role == Cnsa => Some(Everything),
            // Circular §5: the CNSA projects the trajectory and sets the drawing rights; each ARS forecasts its
            // installations; the committee's pack is the CNSA's, an ARS its region's; the operator reads figures.
            (Resource::SteeringFigures, Action::Read) if role == Cnsa || role == Admin => Some(Everything),
            (Resource::SteeringFigures, Action::Read) if role == Ars => Some(OwnTerritory),
            (Resource::NationalCredits, Action::Write) if role == Cnsa => Some(Everything),
            (Resource::InstallationForecast, Action::Write) if role == Ars => Some(OwnTerritory),
            (Resource::SteeringReport, Action::Read) if role == Cnsa => Some(Everything),
            (Resource::SteeringReport, Action::Read) if role == Ars => Some(OwnTerritory),
            _ => None,
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

/// Whether the policy lets `role` call the read `field` at all.
fn may_read(role: Role, field: &str) -> bool {
    let op = OPERATIONS.iter().find(|op| op.field == field).unwrap_or_else(|| panic!("{field} is an operation"));
    policy::reach(role, op.resource, op.action).is_some()
}

db_test! {
    async fn a_filter_naming_another_territory_is_refused_by_name_everywhere(hub) {
        // Reads and the territory filters they take; `$C` is the code asked for.
        let reads: &[(&str, &str, &str)] = &[
            ("measures", "region", r#"{ measures(filter: { regionCode: "$C" }) { totalCount } }"#),
            ("measures", "departement", r#"{ measures(filter: { departementCode: "$C" }) { totalCount } }"#),
            ("coFinancingStatus", "region", r#"{ coFinancingStatus(filter: { regionCode: "$C" }) { totalCount } }"#),
            ("coFinancingStatus", "departement", r#"{ coFinancingStatus(filter: { departementCode: "$C" }) { totalCount } }"#),
            ("needs", "region", r#"{ needs(filter: { regionCode: "$C" }) { totalCount } }"#),
            ("needs", "departement", r#"{ needs(filter: { departementCode: "$C" }) { totalCount } }"#),
            ("schoolPlans", "region", r#"{ schoolPlans(filter: { regionCode: "$C" }) { totalCount } }"#),
            ("schoolPlans", "departement", r#"{ schoolPlans(filter: { departementCode: "$C" }) { totalCount } }"#),
            ("schoolPlans", "academie", r#"{ schoolPlans(filter: { academieCode: "$C" }) { totalCount } }"#),
            ("reconciliation", "region", r#"{ reconciliation(regionCode: "$C") { envelopes { headroom } } }"#),
            ("reconciliation", "departement", r#"{ reconciliation(departementCode: "$C") { envelopes { headroom } } }"#),
        ];
        // Territorial principals of Auvergne-Rhône-Alpes, the Rhône and Lyon; the others' codes are Île-de-France's.
        let (own, other) = (
            [("region", "84"), ("departement", "69"), ("academie", "lyon")],
            [("region", "11"), ("departement", "75"), ("academie", "paris")],
        );
        let code_of = |codes: &[(&'static str, &'static str)], kind: &str| codes.iter().find(|(k, _)| *k == kind).unwrap().1;
        for (role, territory) in [(Role::Ars, "84"), (Role::Collectivite, "69"), (Role::Mdph, "69"), (Role::Rectorat, "lyon"), (Role::Dashboard, "84")] {
            let caller = hub.as_role(role, Some(territory));
            for (field, kind, document) in reads {
                let answer = caller.graphql(&document.replace("$C", code_of(&other, kind)), json!({})).await?;
                assert_eq!(error_codes(&answer), ["FORBIDDEN"], "{role:?} {field} with another {kind}: {answer}");
                if may_read(role, field) {
                    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
                    assert!(message.contains(code_of(&other, kind)), "{role:?} {field}: the refusal names the code: {message}");
                    // Its own territory passes the same filter.
                    let mine = caller.graphql(&document.replace("$C", code_of(&own, kind)), json!({})).await?;
                    assert!(!error_codes(&mine).contains(&"FORBIDDEN".to_owned()), "{role:?} {field} with its own {kind}: {mine}");
                }
            }
            // An unknown code is bad input, not a refusal.
            if may_read(role, "measures") {
                let unknown = caller.graphql(r#"{ measures(filter: { regionCode: "99" }) { totalCount } }"#, json!({})).await?;
                assert_eq!(error_codes(&unknown), ["BAD_USER_INPUT"], "{unknown}");
            }
            // Exports, the file channel: 403 naming the code.
            let token = caller.token.clone().unwrap();
            for (list, parameter, code) in [("measures", "regionCode", "11"), ("needs", "departementCode", "75"), ("school-plans", "academieCode", "paris")] {
                let response = hub.client.get(hub.url(&format!("/exports/{list}.csv?{parameter}={code}"))).bearer_auth(&token).send().await?;
                assert_eq!(response.status(), 403, "{role:?} exporting {list} of {code}");
                let answer: Value = response.json().await?;
                assert_eq!(error_codes(&answer), ["FORBIDDEN"]);
            }
            // Subscriptions.
            let mut subscription = caller.subscribe(r#"subscription { coFinancingStatusChanged(regionCode: "11") { measureId } }"#).await?;
            let refused = subscription.next(std::time::Duration::from_secs(5)).await?.unwrap_or(json!({}));
            assert_eq!(error_codes(&refused), ["FORBIDDEN"], "{role:?} subscribing to another region: {refused}");
        }
        // The audit trail of another institution.
        let ars = hub.as_role(Role::Ars, Some("84"));
        if may_read(Role::Ars, "auditTrail") {
            let answer = ars.graphql(r#"{ auditTrail(filter: { institutionCode: "ARS-11" }) { totalCount } }"#, json!({})).await?;
            assert_eq!(error_codes(&answer), ["FORBIDDEN"], "{answer}");
            assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("ARS-11"));
        }
        // National readers may name any territory.
        let cnsa = hub.as_cnsa();
        for (_, kind, document) in reads {
            let answer = cnsa.graphql(&document.replace("$C", code_of(&other, kind)), json!({})).await?;
            assert!(answer.get("errors").is_none(), "the CNSA reads {kind} {}: {answer}", code_of(&other, kind));
        }
        Ok(())
    }
}
