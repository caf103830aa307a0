//! The fast read path (`graphql::fast`) answers the usual dashboard queries with exactly the bytes the general
//! executor gives. Each query is sent twice: as written (the fast path answers it), and with `@include(if: true)` on a
//! root field, a directive the fast path leaves to the general executor, which must give the same answer.

use std::time::Duration;

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::support::Caller;

const EVERYTHING: &str = r#"
query Everything($filter: CoFinancingFilter, $first: Int) {
  __typename
  page: coFinancingStatus(filter: $filter, first: $first) DIRECTIVE {
    __typename totalCount
    pageInfo { hasPreviousPage hasNextPage startCursor endCursor __typename }
    edges { cursor node { ...Node } }
    nodes { status ... on CoFinancing { awaitedCofinancerCode } }
  }
  me { ...Me }
}
fragment Node on CoFinancing {
  __typename status awaitedCofinancerCode
  measure {
    __typename id regionCode departementCode reference label finess communeCode expectedCofinancerCode categoryCode
    publics solutions unit nature procedure compartment plannedInstallation status version updatedAt updatedBy
    commitments {
      __typename id measureId funder funderCode costComponent fullYearAmount schedule { year amount __typename }
      decisionRef capacity installationDate status withdrawalReason version updatedAt updatedBy
    }
  }
  findings { __typename code severity subjectKind subject regionCode departementCodes message figures { name value unit __typename } }
}
fragment Me on PrincipalView {
  role issuer agentId tokenId serviceAccount
  institution { code kind name siret suspended suspensionReason territoryCode __typename }
  scope { level code regionCodes departementCodes __typename }
}"#;

/// The benchmark's dashboard query (benches/load/dashboard.graphql), under an alias.
const DASHBOARD: &str = r#"{ q1_2_3: coFinancingStatus(filter: { regionCode: "84" }, first: 50) DIRECTIVE { totalCount edges { node { status measure { id reference departementCode categoryCode solutions plannedInstallation commitments { id funder funderCode fullYearAmount capacity costComponent } } findings { code message } } } } }"#;

/// The answer's bytes, the request id of an error (which differs by request) left out.
async fn answer(caller: &Caller<'_>, query: &str, variables: &Value, general: bool) -> Result<String, reqwest::Error> {
    // Spaces as long as the directive, so that errors' locations are the same.
    let query = query.replace("DIRECTIVE", if general { "@include(if: true)" } else { "                  " });
    let text = caller.request(&query, variables.clone()).send().await?.text().await?;
    Ok(match text.find(",\"requestId\":\"") {
        Some(at) => {
            let end = text[at + 14..].find('"').map_or(text.len(), |e| at + 14 + e + 1);
            format!("{}{}", &text[..at], &text[end..])
        }
        None => text,
    })
}

db_test! {
    async fn the_fast_path_answers_the_usual_queries_as_the_general_executor_does(hub) {
        let catalog = api::territory::service::Catalog::load(&hub.db).await?;
        api::demo::load(&hub.db, catalog, 1).await?;
        let hub = hub.restart().await?;
        let callers = [
            ("ARS-84", hub.as_role(Role::Ars, Some("84"))),
            ("CNSA", hub.as_cnsa()),
            ("CD-69", hub.as_role(Role::Collectivite, Some("69"))),
            ("MDPH-69", hub.as_role(Role::Mdph, Some("69"))),
            ("dashboard of ARS-84", hub.with_token(mint("ARS-84", true, Duration::from_secs(600)))),
        ];
        let cases = [
            (EVERYTHING, json!({ "first": 100 })),
            (EVERYTHING, json!({ "filter": { "regionCode": "84" }, "first": 30 })),
            (EVERYTHING, json!({ "filter": { "status": "AWAITING_COFINANCER" } })),
            (EVERYTHING, json!({ "filter": { "departementCode": "69", "year": 2026 }, "first": 40 })),
            (EVERYTHING, json!({ "filter": { "categoryCode": "448", "awaitingCofinancerCode": "CD-69" } })),
            (DASHBOARD, json!({})),
            (r#"{ a: coFinancingStatus(filter: { regionCode: "84", status: AWAITING_COFINANCER }, first: 7) DIRECTIVE { totalCount edges { node { measure { id } } } } }"#, json!({})),
            ("{ me DIRECTIVE { role institution { code } } }", json!({})),
            ("query($after: String) { coFinancingStatus(first: 3, after: $after) DIRECTIVE { edges { cursor } pageInfo { hasPreviousPage hasNextPage startCursor endCursor } } }", json!({ "after": "m" })),
        ];
        let before = api::observe::METRICS.fast_reads.get();
        let mut fast = 0;
        let mut measures_seen = 0;
        for (who, caller) in &callers {
            for (query, variables) in &cases {
                let answered = answer(caller, query, variables, false).await?;
                let general = answer(caller, query, variables, true).await?;
                assert_eq!(answered, general, "{who}: {query} with {variables}");
                let value: Value = serde_json::from_str(&answered)?;
                if value.get("errors").is_none() {
                    fast += 1;
                    measures_seen += value["data"]["page"]["edges"].as_array().map_or(0, Vec::len);
                }
            }
        }
        assert!(fast >= 27, "most of the cases are answered (MDPH and dashboards do not read coFinancingStatus): {fast}");
        assert!(measures_seen > 300, "the cases show measures: {measures_seen}");
        assert!(api::observe::METRICS.fast_reads.get() - before >= fast, "every answered case took the fast path");

        // What the resolver refuses is refused alike (the fast path leaves it to the general executor).
        let ars = &callers[0].1;
        for query in [
            r#"{ coFinancingStatus(filter: { regionCode: "11" }) DIRECTIVE { totalCount } }"#,
            "{ coFinancingStatus(first: 1000) DIRECTIVE { totalCount } }",
            r#"{ coFinancingStatus(filter: { status: "BALANCED" }) DIRECTIVE { totalCount } }"#,
            "{ coFinancingStatus DIRECTIVE { edges { node { openEscalations } } } }",
            "{ coFinancingStatus DIRECTIVE { nothing } }",
            "query($n: Int!) { coFinancingStatus(first: $n) DIRECTIVE { totalCount } }",
        ] {
            let answered = answer(ars, query, &json!({}), false).await?;
            let general = answer(ars, query, &json!({}), true).await?;
            assert_eq!(answered, general, "{query}");
        }
        // And an anonymous caller is refused, as before.
        let anonymous: Value = serde_json::from_str(&answer(&hub.anonymous(), DASHBOARD, &json!({}), false).await?)?;
        assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"], "{anonymous}");
        Ok(())
    }
}
