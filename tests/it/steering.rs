//! Escalations to the national level: an ARS reports a difficulty with a collectivité on a measure; the
//! collectivité concerned and the CNSA answer; the ARS asks for a national intervention; the CNSA settles it. Each
//! step audited, pushed to subscribers and queued for webhooks; each party sees only its territory's threads.

use std::time::Duration;

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::programming::{COMMIT, UPSERT};
use crate::support::error_codes;

const ESCALATE: &str = "mutation ($input: EscalationInput!) { escalate(input: $input) { id state regionCode departementCode findingCode openedBy messages { text stateAfter institutionCode } } }";
const POST: &str = "mutation ($id: ID!, $text: String!) { postEscalationMessage(id: $id, text: $text) { state messages { text stateAfter institutionCode } } }";
const INTERVENE: &str =
    "mutation ($id: ID!, $text: String!) { requestNationalIntervention(id: $id, reason: $text) { state } }";
const RESOLVE: &str = "mutation ($id: ID!, $text: String!) { resolveEscalation(id: $id, resolution: $text) { state closedAt messages { stateAfter } } }";
const WITHDRAW: &str = "mutation ($id: ID!, $text: String!) { withdrawEscalation(id: $id, reason: $text) { state } }";

fn eam() -> Value {
    json!({ "reference": "ESC-69-01", "label": "EAM escaladé", "departementCode": "69", "categoryCode": "448",
        "publics": ["ADULTES"], "solutions": 30, "unit": "PLACES_INSTALLEES", "nature": "CREATION",
        "procedure": "APPEL_A_PROJETS", "compartment": "SOCLE_ADULTES", "plannedInstallation": "2026-09-01" })
}

db_test! {
    async fn an_escalation_goes_from_an_ars_to_the_cnsa_and_back_with_every_step_audited_and_pushed(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let cd = hub.as_role(Role::Collectivite, Some("69"));
        let cnsa = hub.as_cnsa();
        let answer = ars.graphql(UPSERT, json!({ "input": eam() })).await?;
        let measure = answer["data"]["upsertMeasure"]["measure"]["id"].as_str().ok_or(format!("{answer}"))?.to_owned();
        ars.graphql(COMMIT, json!({ "input": { "measureId": measure, "costComponent": "SOINS", "fullYearAmount": "450000",
            "decisionRef": "Arrêté ARS", "capacity": 30, "installationDate": "2026-09-01" } })).await?;
        // The CNSA is told by webhook (queued in the outbox), the collectivité by the subscription.
        let subscribed = cnsa.graphql("mutation { subscribeWebhook(input: { url: \"http://127.0.0.1:9/hook\", events: [ESCALATION_CHANGED] }) { subscription { id } } }", json!({})).await?;
        let subscription = subscribed["data"]["subscribeWebhook"]["subscription"]["id"].as_str().ok_or(format!("{subscribed}"))?.to_owned();
        let mut live = cd.subscribe("subscription { escalationChanged { escalationId state step institutionCode } }").await?;
        let mut elsewhere = hub.as_role(Role::Collectivite, Some("75")).subscribe("subscription { escalationChanged { escalationId } }").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Opened by the ARS, about the finding that blocks.
        let opened = ars.graphql(ESCALATE, json!({ "input": { "measureId": measure, "findingCode": "AWAITING_COFINANCER",
            "reason": "Le département ne répond pas sur l'hébergement depuis six mois." } })).await?;
        let escalation = &opened["data"]["escalate"];
        assert_eq!(escalation["state"], "OPEN", "{opened}");
        assert_eq!((&escalation["regionCode"], &escalation["departementCode"], &escalation["openedBy"]), (&json!("84"), &json!("69"), &json!("ARS-84")));
        let id = escalation["id"].as_str().unwrap().to_owned();
        // It shows in the measure's reconciliation, for the ARS and the collectivité.
        for reader in [&ars, &cd] {
            let status = reader.data("{ coFinancingStatus { nodes { measure { reference } openEscalations } } }").await?;
            assert_eq!(status["coFinancingStatus"]["nodes"], json!([{ "measure": { "reference": "ESC-69-01" }, "openEscalations": 1 }]));
        }
        let event = live.next(Duration::from_secs(5)).await?.ok_or("the collectivité is told")?;
        assert_eq!(event["data"]["escalationChanged"], json!({ "escalationId": id, "state": "OPEN", "step": "OPEN", "institutionCode": "ARS-84" }));

        // The collectivité concerned answers: ANSWERED.
        let answered = cd.graphql(POST, json!({ "id": id, "text": "La délibération passe en commission le 15 janvier." })).await?;
        assert_eq!(answered["data"]["postEscalationMessage"]["state"], "ANSWERED", "{answered}");
        assert_eq!(answered["data"]["postEscalationMessage"]["messages"][1]["institutionCode"], "CD-69");
        // Another collectivité, a dashboard, an MDPH: not theirs.
        let other = hub.as_role(Role::Collectivite, Some("75"));
        assert_eq!(error_codes(&other.graphql(POST, json!({ "id": id, "text": "?" })).await?), ["NOT_FOUND"]);
        assert_eq!(other.data("{ escalations { id } }").await?["escalations"], json!([]));
        assert_eq!(error_codes(&hub.as_role(Role::Dashboard, None).graphql("{ escalations { id } }", json!({})).await?), ["FORBIDDEN"]);
        assert_eq!(error_codes(&hub.as_role(Role::Mdph, Some("69")).graphql("{ escalations { id } }", json!({})).await?), ["FORBIDDEN"]);
        // Only an ARS opens one, only the one that opened it asks for intervention or withdraws.
        assert_eq!(error_codes(&cd.graphql(ESCALATE, json!({ "input": { "measureId": measure, "reason": "x" } })).await?), ["FORBIDDEN"]);
        assert_eq!(error_codes(&hub.as_role(Role::Ars, Some("11")).graphql(ESCALATE, json!({ "input": { "measureId": measure, "reason": "x" } })).await?), ["NOT_FOUND"]);
        assert_eq!(error_codes(&cnsa.graphql(WITHDRAW, json!({ "id": id, "text": "x" })).await?), ["FORBIDDEN"]);
        assert_eq!(error_codes(&ars.graphql(RESOLVE, json!({ "id": id, "text": "x" })).await?), ["FORBIDDEN"]);
        assert_eq!(error_codes(&ars.graphql(POST, json!({ "id": id, "text": "  " })).await?), ["BAD_USER_INPUT"]);

        // The ARS asks for a national intervention; the CNSA answers, then settles it.
        let asked = ars.graphql(INTERVENE, json!({ "id": id, "text": "Sans arbitrage national, l'ouverture glisse en 2028." })).await?;
        assert_eq!(asked["data"]["requestNationalIntervention"]["state"], "NATIONAL_INTERVENTION_REQUESTED", "{asked}");
        let told = cnsa.graphql(POST, json!({ "id": id, "text": "Réunion tripartite proposée le 20 janvier." })).await?;
        assert_eq!(told["data"]["postEscalationMessage"]["state"], "NATIONAL_INTERVENTION_REQUESTED");
        let resolved = cnsa.graphql(RESOLVE, json!({ "id": id, "text": "Accord : le CD finance l'hébergement dès 2027." })).await?;
        assert_eq!(resolved["data"]["resolveEscalation"]["state"], "RESOLVED", "{resolved}");
        assert!(resolved["data"]["resolveEscalation"]["closedAt"].is_string());
        let states: Vec<Value> = resolved["data"]["resolveEscalation"]["messages"].as_array().unwrap().iter().map(|m| m["stateAfter"].clone()).collect();
        assert_eq!(states, [json!("OPEN"), json!("ANSWERED"), json!("NATIONAL_INTERVENTION_REQUESTED"), Value::Null, json!("RESOLVED")]);
        let status = cnsa.data("{ coFinancingStatus(filter: { regionCode: \"84\" }) { nodes { openEscalations } } }").await?;
        assert_eq!(status["coFinancingStatus"]["nodes"], json!([{ "openEscalations": 0 }]), "a resolved one is not open");
        // Closed: nothing more.
        assert_eq!(error_codes(&cd.graphql(POST, json!({ "id": id, "text": "encore" })).await?), ["BAD_USER_INPUT"]);
        assert_eq!(error_codes(&ars.graphql(WITHDRAW, json!({ "id": id, "text": "x" })).await?), ["BAD_USER_INPUT"]);

        // Pushed: every step to the collectivité's subscription, none to another département's.
        let mut steps = vec!["OPEN".to_owned()];
        while let Some(event) = live.next(Duration::from_secs(2)).await? {
            steps.push(event["data"]["escalationChanged"]["step"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(steps, ["OPEN", "MESSAGE", "REQUEST_INTERVENTION", "MESSAGE", "RESOLVE"]);
        assert_eq!(elsewhere.next(Duration::from_millis(300)).await?, None, "another département hears nothing");
        // Queued for the CNSA's webhook, once per step.
        let deliveries = cnsa.graphql("query ($s: ID!) { webhookDeliveries(subscriptionId: $s, first: 50) { event eventKey } }", json!({ "s": subscription })).await?;
        let escalation_events = deliveries["data"]["webhookDeliveries"].as_array().ok_or(format!("{deliveries}"))?
            .iter().filter(|d| d["event"] == "ESCALATION_CHANGED").count();
        assert_eq!(escalation_events, 5, "{deliveries}");
        // Audited, each step as its operation.
        let audit = cnsa.data("{ auditTrail(first: 200) { nodes { operation objectIds } } }").await?;
        let operations: Vec<&str> = audit["auditTrail"]["nodes"].as_array().unwrap().iter()
            .filter(|n| n["objectIds"].as_array().is_some_and(|ids| ids.iter().any(|i| i == id.as_str())))
            .filter_map(|n| n["operation"].as_str()).collect();
        for operation in ["escalate", "postEscalationMessage", "requestNationalIntervention", "resolveEscalation"] {
            assert!(operations.contains(&operation), "{operation} in {operations:?}");
        }
        // Listed: open ones and closed ones apart; the collectivité sees its thread.
        assert_eq!(cnsa.data("{ escalations(filter: { open: true }) { id } }").await?["escalations"], json!([]));
        let closed = cd.data(&format!(r#"{{ escalations(filter: {{ measureId: "{measure}" }}) {{ id state }} }}"#)).await?;
        assert_eq!(closed["escalations"], json!([{ "id": id, "state": "RESOLVED" }]));

        // Another one, withdrawn by the ARS.
        let second = ars.graphql(ESCALATE, json!({ "input": { "measureId": measure, "reason": "Doublon de calendrier." } })).await?;
        let second = second["data"]["escalate"]["id"].as_str().unwrap().to_owned();
        let withdrawn = ars.graphql(WITHDRAW, json!({ "id": second, "text": "Réglé localement." })).await?;
        assert_eq!(withdrawn["data"]["withdrawEscalation"]["state"], "WITHDRAWN", "{withdrawn}");
        Ok(())
    }
}
