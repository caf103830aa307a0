//! The hub as an Apollo Federation v2 subgraph: `_service { sdl }` for composition, `_entities` for Region,
//! Departement and Measure under the same policy and territory as the hub's own fields.

use api::access::principal::Role;
use serde_json::{Value, json};

use crate::support::{TestResult, error_codes};

const ENTITIES: &str = "query ($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Region { code name }
    ... on Departement { code name }
    ... on Measure { id reference departementCode }
  }
}";

db_test! {
    async fn the_subgraph_sdl_declares_federation_v2_and_the_three_entity_keys(hub) {
        let answer = hub.as_role(Role::Dashboard, None).data("{ _service { sdl } }").await?;
        let sdl = answer["_service"]["sdl"].as_str().expect("an SDL");
        assert!(sdl.contains("@link(") && sdl.contains("https://specs.apollo.dev/federation/v2."), "{sdl}");
        for (kind, key) in [("Region", "code"), ("Departement", "code"), ("Measure", "id")] {
            let declared = sdl.lines().any(|line| {
                line.starts_with(&format!("type {kind} ")) && line.contains(&format!("@key(fields: \"{key}\")"))
            });
            assert!(declared, "{kind} @key({key}) missing from\n{sdl}");
        }
        // The federation fields are the router's, not part of the subgraph's own contract.
        assert!(!sdl.contains("_entities("), "{sdl}");
        Ok(())
    }
}

db_test! {
    async fn entities_resolve_within_the_callers_reach(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let measure = crate::programming::create_measure(&ars, "FED-1").await?;
        let id = measure["id"].as_str().expect("an id").to_owned();
        let representations = json!([
            { "__typename": "Region", "code": "84" },
            { "__typename": "Departement", "code": "69" },
            { "__typename": "Measure", "id": id },
        ]);
        let answer = ars.graphql(ENTITIES, json!({ "representations": representations })).await?;
        assert!(answer.get("errors").is_none(), "{answer}");
        let entities = &answer["data"]["_entities"];
        assert_eq!(entities[0], json!({ "__typename": "Region", "code": "84", "name": "Auvergne-Rhône-Alpes" }));
        assert_eq!(entities[1]["code"], "69");
        assert_eq!(entities[2]["reference"], "FED-1");
        assert_eq!(entities[2]["id"], json!(id));

        // Another region's ARS gets the measure as `measure(id:)` would answer it: not found, not a leak.
        let other = hub.as_role(Role::Ars, Some("11"));
        let answer = other.graphql(ENTITIES, json!({ "representations": [{ "__typename": "Measure", "id": id }] })).await?;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"], "{answer}");
        assert!(!answer.to_string().contains("FED-1"), "{answer}");
        // A dashboard reads aggregates only: a measure is refused by the policy table.
        let dashboard = hub.as_role(Role::Dashboard, None);
        let answer = dashboard.graphql(ENTITIES, json!({ "representations": [{ "__typename": "Measure", "id": id }] })).await?;
        assert_eq!(error_codes(&answer), ["FORBIDDEN"], "{answer}");
        // Reference data: any institution; nobody without a token.
        let answer = dashboard.graphql(ENTITIES, json!({ "representations": [{ "__typename": "Region", "code": "11" }] })).await?;
        assert_eq!(answer["data"]["_entities"][0]["code"], "11", "{answer}");
        let answer: Value = hub.anonymous().graphql(ENTITIES, json!({ "representations": [{ "__typename": "Region", "code": "11" }] })).await?;
        assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"], "{answer}");
        // Unknown codes are refused by name, as by `region(code:)`.
        let answer = ars.graphql(ENTITIES, json!({ "representations": [{ "__typename": "Region", "code": "99" }] })).await?;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"], "{answer}");
        Ok(())
    }
}
