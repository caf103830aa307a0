//! Requests an attacker would send, with or without a token: none may crash the hub or make it work in proportion to
//! anything but the request's own size. Each case of the intrusion test has its regression test, then generated
//! documents (deep and wide values, lists, objects, selections, fragments, directives, aliases, variables) are thrown
//! at it and every answer must be a clear refusal or an answer, never a dropped connection.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Caller, TestHub, error_codes};

fn nested_list(levels: usize) -> String {
    format!("{{ regions(a: {}1{}) {{ code }} }}", "[".repeat(levels), "]".repeat(levels))
}

fn doubling_fragments(levels: usize) -> String {
    let mut q = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ regions {{ code }} }}\n");
    for i in 1..=levels {
        q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i - 1, i - 1));
    }
    q
}

async fn post(caller: &Caller<'_>, query: &str, variables: Value) -> Result<(u16, Value), reqwest::Error> {
    let response = caller.request(query, variables).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// The hub still answers, and with its data.
async fn alive(hub: &TestHub) -> crate::support::TestResult {
    let health = hub.client.get(hub.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    let regions = hub.as_cnsa().data("{ regions { code } }").await?;
    assert_eq!(regions["regions"].as_array().map(Vec::len), Some(18));
    Ok(())
}

db_test! {
    async fn a_deeply_nested_list_argument_is_refused_without_crashing_the_hub(hub) {
        let query = nested_list(2_000);
        assert!(query.len() < 5_000);
        for caller in [hub.anonymous(), hub.as_cnsa()] {
            let (status, answer) = post(&caller, &query, json!({})).await?;
            assert_eq!(status, 400, "{answer}");
            assert_eq!(error_codes(&answer), ["QUERY_TOO_COMPLEX"]);
            assert_eq!(answer["errors"][0]["extensions"]["limit"], "valueDepth");
            assert_eq!(answer["errors"][0]["extensions"]["max"], 12);
            assert!(answer.get("data").is_none());
        }
        // By GET too.
        let response = hub.client.get(hub.url("/graphql")).query(&[("query", query.as_str())]).send().await?;
        assert_eq!(response.status(), 400);
        assert_eq!(error_codes(&response.json().await?), ["QUERY_TOO_COMPLEX"]);
        alive(&hub).await
    }
}

db_test! {
    async fn a_deeply_nested_input_object_is_refused_without_crashing_the_hub(hub) {
        let query = format!(
            "mutation {{ upsertMeasure(input: {}1{}) {{ measure {{ id }} }} }}",
            "{ reference: ".repeat(1_000),
            "}".repeat(1_000)
        );
        let (status, answer) = post(&hub.anonymous(), &query, json!({})).await?;
        assert_eq!((status, error_codes(&answer)), (400, vec!["QUERY_TOO_COMPLEX".to_owned()]), "{answer}");
        // Nested in variables: JSON deeper than the parser's own bound is not even read...
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!({ "a": deep });
        }
        let (status, answer) = post(&hub.anonymous(), "query($v: String) { regions { code } }", json!({ "v": deep })).await?;
        assert_eq!((status, error_codes(&answer)), (400, vec!["BAD_REQUEST".to_owned()]), "{answer}");
        // ...and within it, the value depth limit applies to variables as to literals.
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        let (status, answer) = post(&hub.as_cnsa(), "query($v: String) { regions { code } }", json!({ "v": deep })).await?;
        assert_eq!((status, error_codes(&answer)), (400, vec!["QUERY_TOO_COMPLEX".to_owned()]), "{answer}");
        alive(&hub).await
    }
}

db_test! {
    async fn fragments_that_double_each_other_are_refused_before_they_are_expanded(hub) {
        for levels in [24, 26, 40] {
            let query = doubling_fragments(levels);
            for caller in [hub.anonymous(), hub.as_cnsa()] {
                let (status, answer) = post(&caller, &query, json!({})).await?;
                assert_eq!(status, 400, "{answer}");
                assert_eq!(error_codes(&answer), ["QUERY_TOO_COMPLEX"], "{answer}");
                assert_eq!(answer["errors"][0]["extensions"]["limit"], "fragmentDepth");
            }
        }
        // Within the limits, fragments still work.
        let answer = hub.as_cnsa().data(&doubling_fragments(3)).await?;
        assert_eq!(answer["regions"].as_array().map(Vec::len), Some(18));
        // A cycle is refused before anything follows it.
        let (status, answer) = post(&hub.anonymous(), "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A ...A }", json!({})).await?;
        assert_eq!((status, answer["errors"][0]["extensions"]["limit"].clone()), (400, json!("fragmentCycle")), "{answer}");
        alive(&hub).await
    }
}

db_test! {
    async fn subscriptions_are_held_to_the_same_limits(hub) {
        let deep = format!("subscription {{ coFinancingStatusChanged(regionCode: {}\"84\"{}) {{ measureId }} }}", "[".repeat(3_000), "]".repeat(3_000));
        let mut subscription = hub.as_cnsa().subscribe(&deep).await?;
        let answer = subscription.next(Duration::from_secs(10)).await?.ok_or("no answer")?;
        assert_eq!(error_codes(&answer), ["QUERY_TOO_COMPLEX"], "{answer}");
        alive(&hub).await
    }
}

/// Deterministic documents (the demo's SplitMix64): the same on every run, so a failure can be replayed.
struct Generator(api::demo::Rng);

impl Generator {
    fn below(&mut self, n: u64) -> usize {
        self.0.below(n) as usize
    }

    /// A size spread over orders of magnitude: mostly small, sometimes huge.
    fn size(&mut self) -> usize {
        let magnitude = self.below(5) as u32;
        1 + self.below(10u64.pow(magnitude) * 3)
    }

    fn value(&mut self, depth: usize) -> String {
        if depth == 0 {
            return ["1", "\"x\"", "true", "null", "$v", "ENUM", "-1.5e3"][self.below(7)].to_owned();
        }
        match self.below(3) {
            0 => format!("[{}]", self.value(depth - 1)),
            1 => format!("{{k: {}}}", self.value(depth - 1)),
            _ => format!("[{}, {}]", self.value(depth - 1), self.value(0)),
        }
    }

    /// One hostile (or harmless) document and its variables.
    fn document(&mut self) -> (String, Value) {
        let n = self.size();
        match self.below(9) {
            0 => (format!("{{ regions(a: {}) {{ code }} }}", self.value(n.min(3_000))), json!({})),
            1 => (format!("{}{}", "{ regions ".repeat(n.min(5_000)), "}".repeat(n.min(5_000))), json!({})),
            2 => (doubling_fragments(n.min(60)), json!({})),
            3 => {
                let aliases: String = (0..n.min(30_000)).map(|i| format!("a{i}: regions {{ code }} ")).collect();
                (format!("{{ {aliases} }}"), json!({}))
            }
            4 => {
                let directives = "@include(if: true) ".repeat(n.min(10_000));
                (format!("{{ regions {directives} {{ code }} }}"), json!({}))
            }
            5 => {
                let mut q = String::from("{ ...F0 }");
                for i in 0..n.min(3_000) {
                    q.push_str(&format!(" fragment F{i} on Query {{ regions {{ code }} }}"));
                }
                (q, json!({}))
            }
            6 => {
                let mut v = json!("84");
                for _ in 0..n.min(300) {
                    v = if self.below(2) == 0 { json!([v]) } else { json!({ "k": v }) };
                }
                ("query($v: String) { region(code: $v) { code } }".to_owned(), json!({ "v": v }))
            }
            7 => {
                // Token soup.
                let vocabulary = [
                    "{", "}", "[", "]", "(", ")", "...", "on", "Query", "regions", ":", "$v", "@skip", "\"s\"", "#c\n",
                    "fragment", "F", "1", "!", "=",
                ];
                let soup: Vec<&str> =
                    (0..n.min(40_000)).map(|_| vocabulary[self.below(vocabulary.len() as u64)]).collect();
                (soup.join(" "), json!({}))
            }
            _ => {
                let depth = n.min(60);
                let inner = format!("{}{}", "ofType { ".repeat(depth), "}".repeat(depth));
                (format!("{{ __type(name: \"Region\") {{ fields {{ type {{ {inner} }} }} }} }}"), json!({}))
            }
        }
    }
}

db_test! {
    async fn generated_deep_and_wide_documents_never_take_the_hub_down(hub) {
        let mut generator = Generator(api::demo::Rng(0x00C0_FFEE));
        let impatient = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
        let token = crate::support::mint("CNSA", false, Duration::from_secs(3_600));
        for case in 0..150 {
            let (query, variables) = generator.document();
            let with_token = case % 2 == 0;
            let by_get = case % 7 == 3 && query.len() < 6_000 && variables == json!({});
            let mut request = if by_get {
                impatient.get(hub.url("/graphql")).query(&[("query", query.as_str())])
            } else {
                impatient.post(hub.url("/graphql")).json(&json!({ "query": query, "variables": variables }))
            };
            if with_token {
                request = request.bearer_auth(&token);
            }
            let response = request.send().await.map_err(|e| format!("case {case} ({} bytes): no answer: {e}", query.len()))?;
            let status = response.status().as_u16();
            let answer: Value = response.json().await.map_err(|e| format!("case {case}: not JSON: {e}"))?;
            assert!([200, 400, 413].contains(&status), "case {case}: HTTP {status} {answer}");
            let codes = error_codes(&answer);
            assert!(answer.get("data").is_some_and(|d| !d.is_null()) || !codes.is_empty(), "case {case}: {answer}");
            assert!(!codes.iter().any(|c| c == "INTERNAL_SERVER_ERROR"), "case {case}: {answer}");
            if !with_token && answer.get("data").is_some_and(|d| !d.is_null()) {
                assert!(codes.iter().any(|c| c == "UNAUTHENTICATED"), "case {case}: anonymous got data {answer}");
            }
        }
        alive(&hub).await
    }
}

db_test! {
    async fn generated_documents_and_variables_get_coded_answers_over_http(hub) {
        use proptest::strategy::{Strategy, ValueTree};
        use proptest::test_runner::TestRunner;
        // Documents and variables built from GraphQL's own pieces and hostile texts (NUL, escapes, huge numbers),
        // through the real entry point: every answer is an answer or a coded refusal, never an internal error.
        let piece = proptest::prop_oneof![
            proptest::strategy::Just("{ ".to_owned()),
            proptest::strategy::Just(" }".to_owned()),
            proptest::strategy::Just("measures(filter: { regionCode: $r }) { totalCount }".to_owned()),
            proptest::strategy::Just("measure(id: $id) { id label }".to_owned()),
            proptest::strategy::Just("coFinancingStatus(first: $n) { totalCount }".to_owned()),
            proptest::strategy::Just("reconciliation(regionCode: \"84\") { envelopes { headroom } }".to_owned()),
            proptest::strategy::Just("regions { code }".to_owned()),
            proptest::strategy::Just("...F".to_owned()),
            proptest::strategy::Just("@include(if: false)".to_owned()),
            proptest::strategy::Just("\"\\u0000\"".to_owned()),
            proptest::strategy::Just("1e400".to_owned()),
            "[a-zA-Z_]{1,10}",
            "[ -~]{0,12}",
        ];
        let documents = proptest::collection::vec(piece, 0..12).prop_map(|pieces| {
            format!("query($r: String, $id: ID!, $n: Int) {{ {} }}", pieces.join(" "))
        });
        let values = proptest::prop_oneof![
            proptest::strategy::Just(json!(null)),
            proptest::strategy::Just(json!("84")),
            proptest::strategy::Just(json!("8\u{0}4")),
            proptest::strategy::Just(json!(1e300)),
            proptest::strategy::Just(json!(-1)),
            proptest::strategy::Just(json!(i64::MAX)),
            proptest::strategy::Just(json!([[[[["deep"]]]]])),
            proptest::strategy::Just(json!({ "a": { "b": "c" } })),
            "\\PC{0,20}".prop_map(Value::from),
        ];
        let mut runner = TestRunner::deterministic();
        let ars = hub.as_role(api::access::principal::Role::Ars, Some("84"));
        for _ in 0..96 {
            let document = documents.new_tree(&mut runner).map_err(|r| r.to_string())?.current();
            let variables = json!({
                "r": values.new_tree(&mut runner).map_err(|r| r.to_string())?.current(),
                "id": values.new_tree(&mut runner).map_err(|r| r.to_string())?.current(),
                "n": values.new_tree(&mut runner).map_err(|r| r.to_string())?.current(),
            });
            let response = ars.request(&document, variables.clone()).send().await?;
            let status = response.status().as_u16();
            assert!([200, 400].contains(&status), "{status} for {document} {variables}");
            let answer: Value = response.json().await?;
            let codes = error_codes(&answer);
            assert!(answer.get("data").is_some() || !codes.is_empty(), "{answer}");
            assert!(!codes.iter().any(|c| c == "INTERNAL_SERVER_ERROR"), "{document} {variables}: {answer}");
            let errors = answer["errors"].as_array().map_or(0, Vec::len);
            assert_eq!(codes.len(), errors, "every error has a code: {answer}");
        }
        Ok(())
    }
}
