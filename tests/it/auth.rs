//! Authentication: who the hub says the caller is, the tokens it refuses, revocation without restart, and an
//! OpenID Connect issuer served by a real local HTTP server (discovery + JWKS) through rotation and outage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{TEST_SECRET, TestHub, TestResult, error_codes, mint};

const ME: &str = "{ me { role institution { code kind } scope { level code regionCodes departementCodes } agentId tokenId issuer } }";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A development-issuer token with the given claims overriding the valid defaults.
fn dev_token(overrides: Value, secret: &str) -> String {
    api::access::install_crypto();
    let mut claims = json!({
        "iss": "cnh-hub-dev", "aud": "cnh-hub", "sub": "agent.test", "institution": "ARS-84",
        "jti": uuid::Uuid::new_v4().to_string(), "iat": now(), "nbf": now(), "exp": now() + 600,
    });
    for (key, value) in overrides.as_object().expect("an object") {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// Asserts a refusal: UNAUTHENTICATED, HTTP 401, and nothing but a short public message.
async fn assert_refused(hub: &TestHub, token: &str, why: &str) -> TestResult {
    let response = hub.with_token(token.to_owned()).request(ME, json!({})).send().await?;
    assert_eq!(response.status(), 401, "{why}");
    let answer: Value = response.json().await?;
    assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"], "{why}: {answer}");
    let text = answer.to_string();
    for secret_part in [TEST_SECRET, "BEGIN", "SELECT", "kid", "InvalidSignature", "127.0.0.1"] {
        assert!(!text.contains(secret_part), "{why}: the answer leaks {secret_part:?}: {text}");
    }
    assert!(answer.get("data").is_none(), "{why}: nothing is executed");
    Ok(())
}

db_test! {
    async fn me_tells_each_principal_its_institution_role_and_territory(hub) {
        use api::access::principal::Role;
        let ars = hub.as_role(Role::Ars, Some("84")).data(ME).await?;
        assert_eq!(ars["me"]["role"], "ARS");
        assert_eq!(ars["me"]["institution"], json!({ "code": "ARS-84", "kind": "ARS" }));
        assert_eq!(ars["me"]["scope"], json!({ "level": "REGION", "code": "84", "regionCodes": ["84"], "departementCodes": [] }));
        assert_eq!(ars["me"]["issuer"], "development");
        assert!(ars["me"]["tokenId"].as_str().is_some_and(|t| t.len() == 36));

        let corse = hub.as_role(Role::Collectivite, Some("2B")).data(ME).await?;
        assert_eq!(corse["me"]["institution"]["code"], "CORSE");
        assert_eq!(corse["me"]["scope"]["departementCodes"], json!(["2A", "2B"]));

        let rectorat = hub.as_role(Role::Rectorat, Some("lyon")).data(ME).await?;
        assert_eq!(rectorat["me"]["scope"], json!({ "level": "ACADEMIE", "code": "lyon", "regionCodes": ["84"], "departementCodes": ["01", "42", "69"] }));

        let mdph = hub.as_role(Role::Mdph, Some("971")).data(ME).await?;
        assert_eq!(mdph["me"]["scope"]["departementCodes"], json!(["971"]));

        let dashboard = hub.as_role(Role::Dashboard, Some("84")).data(ME).await?;
        assert_eq!((&dashboard["me"]["role"], &dashboard["me"]["institution"]["code"]), (&json!("DASHBOARD"), &json!("ARS-84")));

        let cnsa = hub.as_cnsa().data(ME).await?;
        assert_eq!(cnsa["me"]["scope"]["level"], "NATIONAL");
        let admin = hub.as_admin().data(ME).await?;
        assert_eq!((&admin["me"]["role"], &admin["me"]["institution"]["kind"]), (&json!("ADMIN"), &json!("OPERATEUR")));
        Ok(())
    }
}

db_test! {
    async fn no_token_and_a_bad_token_are_told_apart(hub) {
        let anonymous = hub.anonymous().graphql(ME, json!({})).await?;
        assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"]);
        assert!(anonymous["errors"][0]["message"].as_str().unwrap().contains("Authorization"));
        let bad = hub.with_token("not-a-token".into()).graphql(ME, json!({})).await?;
        assert_eq!(error_codes(&bad), ["UNAUTHENTICATED"]);
        assert!(bad["errors"][0]["message"].as_str().unwrap().contains("jeton invalide"));
        let basic = hub.client.post(hub.url("/graphql")).header("authorization", "Basic YTpi").json(&json!({ "query": ME })).send().await?;
        assert_eq!(basic.status(), 401);
        Ok(())
    }
}

db_test! {
    async fn forged_stale_and_foreign_tokens_are_refused(hub) {
        let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = base64url(json!({ "iss": "cnh-hub-dev", "aud": "cnh-hub", "institution": "CNSA", "exp": now() + 600 }).to_string().as_bytes());
        assert_refused(&hub, &format!("{header}.{payload}."), "alg none").await?;
        assert_refused(&hub, &dev_token(json!({}), "another-secret-another-secret-another"), "wrong key").await?;
        assert_refused(&hub, &dev_token(json!({ "exp": now() - 3600, "iat": now() - 7200, "nbf": now() - 7200 }), TEST_SECRET), "expired").await?;
        assert_refused(&hub, &dev_token(json!({ "nbf": now() + 3600 }), TEST_SECRET), "not yet valid").await?;
        assert_refused(&hub, &dev_token(json!({ "aud": "another-service" }), TEST_SECRET), "wrong audience").await?;
        assert_refused(&hub, &dev_token(json!({ "iss": "https://idp.elsewhere" }), TEST_SECRET), "unknown issuer").await?;
        assert_refused(&hub, &dev_token(json!({ "exp": null }), TEST_SECRET), "no expiry").await?;
        assert_refused(&hub, &dev_token(json!({ "institution": "ARS-99" }), TEST_SECRET), "unknown institution").await?;
        assert_refused(&hub, &dev_token(json!({ "cnh_role": "cnsa" }), TEST_SECRET), "a role the institution does not hold").await?;
        assert_refused(&hub, "a.b.c", "malformed").await?;
        assert_refused(&hub, "", "empty").await?;
        // Within the leeway, a token just expired is still accepted (clocks differ a little between systems).
        let just_expired = dev_token(json!({ "exp": now() - 5 }), TEST_SECRET);
        assert_eq!(hub.with_token(just_expired).data(ME).await?["me"]["role"], "ARS");
        // A dashboard may be asked for by any institution: it only narrows what the token can do.
        let dashboard = dev_token(json!({ "cnh_role": "dashboard" }), TEST_SECRET);
        assert_eq!(hub.with_token(dashboard).data(ME).await?["me"]["role"], "DASHBOARD");
        Ok(())
    }
}

db_test! {
    async fn revocation_and_suspension_take_effect_on_the_next_request(hub) {
        use api::access::principal::Role;
        let ars = hub.as_role(Role::Ars, Some("84"));
        let token_id = ars.data(ME).await?["me"]["tokenId"].as_str().unwrap().to_owned();

        let forbidden = ars.graphql(r#"mutation($id: String!) { revokeToken(tokenId: $id, reason: "x") { tokenId } }"#, json!({ "id": token_id })).await?;
        assert_eq!(error_codes(&forbidden), ["FORBIDDEN"], "only the operator revokes");

        let revoked = hub.as_admin().data(&format!(r#"mutation {{ revokeToken(tokenId: "{token_id}", reason: "poste compromis") {{ tokenId reason revokedBy }} }}"#)).await?;
        assert_eq!(revoked["revokeToken"]["reason"], "poste compromis");
        assert!(revoked["revokeToken"]["revokedBy"].as_str().unwrap().starts_with("HUB/"));
        assert_refused(&hub, ars.token.as_deref().unwrap(), "revoked").await?;
        let other_ars_token = hub.as_role(Role::Ars, Some("84"));
        assert_eq!(other_ars_token.data(ME).await?["me"]["role"], "ARS", "only that token is revoked");

        let suspended = hub.as_admin().data(r#"mutation { suspendInstitution(code: "ARS-84", reason: "audit de sécurité") { suspended suspensionReason } }"#).await?;
        assert_eq!(suspended["suspendInstitution"], json!({ "suspended": true, "suspensionReason": "audit de sécurité" }));
        assert_refused(&hub, other_ars_token.token.as_deref().unwrap(), "suspended institution").await?;
        hub.as_admin().data(r#"mutation { reinstateInstitution(code: "ARS-84") { suspended } }"#).await?;
        assert_eq!(other_ars_token.data(ME).await?["me"]["role"], "ARS", "reinstated");

        let unknown = hub.as_admin().graphql(r#"mutation { suspendInstitution(code: "ARS-99", reason: "x") { suspended } }"#, json!({})).await?;
        assert_eq!(error_codes(&unknown), ["NOT_FOUND"]);
        let no_reason = hub.as_admin().graphql(r#"mutation { suspendInstitution(code: "ARS-11", reason: "  ") { suspended } }"#, json!({})).await?;
        assert_eq!(error_codes(&no_reason), ["BAD_USER_INPUT"]);
        let audited = hub.as_admin().data(r#"{ auditTrail(filter: { institutionCode: "HUB" }) { edges { node { operation objectIds } } } }"#).await?;
        let operations: Vec<&str> = audited["auditTrail"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["operation"].as_str().unwrap()).collect();
        assert_eq!(operations, ["revokeToken", "suspendInstitution", "reinstateInstitution"], "the operator's actions are audited too");
        Ok(())
    }
}

db_test! {
    async fn tokens_without_an_id_or_issued_in_the_future_are_refused(hub) {
        // The development issuer requires a jti (as every issuer does in production by default).
        assert_refused(&hub, &dev_token(json!({ "jti": null }), TEST_SECRET), "no jti").await?;
        assert_refused(&hub, &dev_token(json!({ "jti": "" }), TEST_SECRET), "empty jti").await?;
        let response = hub.with_token(dev_token(json!({ "jti": null }), TEST_SECRET)).request(ME, json!({})).send().await?;
        assert!(response.json::<Value>().await?["errors"][0]["message"].as_str().unwrap().contains("jti"));
        assert_refused(&hub, &dev_token(json!({ "iat": now() + 3_600 }), TEST_SECRET), "issued in an hour").await?;
        assert_refused(&hub, &dev_token(json!({ "iat": "yesterday" }), TEST_SECRET), "iat not a number").await?;
        // Within the leeway, clocks may differ a little.
        assert_eq!(hub.with_token(dev_token(json!({ "iat": now() + 10 }), TEST_SECRET)).data(ME).await?["me"]["role"], "ARS");
        Ok(())
    }
}

db_test! {
    async fn revoking_an_id_the_hub_never_saw_is_recorded_and_says_so(hub) {
        const REVOKE: &str = "mutation($id: String!) { revokeToken(tokenId: $id, reason: \"départ de l'agent\") { tokenId seenByHub alreadyRevoked note } }";
        let unknown = hub.as_admin().graphql(REVOKE, json!({ "id": "no-such-token" })).await?;
        let answer = &unknown["data"]["revokeToken"];
        assert_eq!((&answer["seenByHub"], &answer["alreadyRevoked"]), (&json!(false), &json!(false)), "{unknown}");
        assert!(answer["note"].as_str().unwrap().contains("aucune requête"), "{unknown}");
        // A token that has been used is known.
        let ars = hub.as_role(api::access::principal::Role::Ars, Some("84"));
        let token_id = ars.data(ME).await?["me"]["tokenId"].as_str().unwrap().to_owned();
        let used = hub.as_admin().graphql(REVOKE, json!({ "id": token_id })).await?;
        assert_eq!(used["data"]["revokeToken"]["seenByHub"], true, "{used}");
        let again = hub.as_admin().graphql(REVOKE, json!({ "id": token_id })).await?;
        assert_eq!(again["data"]["revokeToken"]["alreadyRevoked"], true, "{again}");
        // Both revocations of the unknown and the used id are in the audit trail; the unknown one is enforced.
        let audited = hub.as_admin().data(r#"{ auditTrail(filter: { institutionCode: "HUB" }) { edges { node { operation objectIds } } } }"#).await?;
        let ids: Vec<&Value> = audited["auditTrail"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["objectIds"][0]).collect();
        assert!(ids.contains(&&json!("no-such-token")) && ids.contains(&&json!(token_id)), "{audited}");
        assert_refused(&hub, &dev_token(json!({ "jti": "no-such-token" }), TEST_SECRET), "revoked before first use").await?;
        Ok(())
    }
}

db_test! {
    async fn the_operator_sets_an_institution_s_siret_checked_and_unique(hub) {
        const SET: &str = r#"mutation($c: String!, $s: String) { setInstitutionSiret(code: $c, siret: $s) { code siret } }"#;
        let bad = hub.as_admin().graphql(SET, json!({ "c": "ARS-84", "s": "13000548100011" })).await?;
        assert_eq!(error_codes(&bad), ["BAD_USER_INPUT"], "{bad}");
        set_siret(&hub).await?;
        let taken = hub.as_admin().graphql(SET, json!({ "c": "ARS-11", "s": ARS_84_SIRET })).await?;
        assert_eq!(error_codes(&taken), ["BAD_USER_INPUT"], "{taken}");
        let by_ars = hub.as_role(api::access::principal::Role::Ars, Some("84")).graphql(SET, json!({ "c": "ARS-84", "s": null })).await?;
        assert_eq!(error_codes(&by_ars), ["FORBIDDEN"]);
        let cleared = hub.as_admin().graphql(SET, json!({ "c": "ARS-84", "s": null })).await?;
        assert_eq!(cleared["data"]["setInstitutionSiret"]["siret"], Value::Null, "{cleared}");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A fake OpenID Connect issuer: a real axum server on an ephemeral port.

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture present")
}

fn jwk(kid: &str) -> Value {
    let all: Value = serde_json::from_slice(&fixture("oidc-jwks.json")).unwrap();
    all[kid].clone()
}

struct FakeIdp {
    issuer: String,
    published: Arc<Mutex<(bool, Vec<&'static str>)>>,
    discovery_hits: Arc<Mutex<u32>>,
}

impl FakeIdp {
    async fn start(kids: Vec<&'static str>) -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let published = Arc::new(Mutex::new((true, kids)));
        let discovery_hits = Arc::new(Mutex::new(0));
        type IdpState = (String, Arc<Mutex<(bool, Vec<&'static str>)>>, Arc<Mutex<u32>>);
        let state: IdpState = (issuer.clone(), published.clone(), discovery_hits.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State((issuer, published, hits)): State<IdpState>| async move {
                    *hits.lock().unwrap() += 1;
                    if !published.lock().unwrap().0 {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    axum::Json(json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") })).into_response()
                }),
            )
            .route(
                "/jwks",
                get(|State((_, published, _)): State<IdpState>| async move {
                    let (up, kids) = published.lock().unwrap().clone();
                    if !up {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    axum::Json(json!({ "keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>() })).into_response()
                }),
            )
            .with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeIdp { issuer, published, discovery_hits }
    }

    fn publish(&self, kids: Vec<&'static str>) {
        self.published.lock().unwrap().1 = kids;
    }

    fn set_up(&self, up: bool) {
        self.published.lock().unwrap().0 = up;
    }

    /// A ProConnect-like token: the institution is found by SIRET, the agent by uid.
    fn token(&self, kid: &str, siret: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let claims = json!({
            "iss": self.issuer, "aud": "cnh-hub", "sub": "per-service-sub-123", "uid": "marie.durand",
            "siret": siret, "iat": now(), "nbf": now(), "exp": now() + 600, "jti": uuid::Uuid::new_v4().to_string(),
        });
        let key = EncodingKey::from_rsa_pem(&fixture(&format!("{kid}.pem"))).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

fn issuers_file(issuer: &str) -> String {
    let path = std::env::temp_dir().join(format!("cnh-issuers-{}.json", uuid::Uuid::new_v4()));
    let text = json!({ "issuers": [{
        "name": "proconnect", "issuer": issuer, "audience": "cnh-hub", "algorithms": ["RS256"],
        "oidc": { "refresh_seconds": 3600, "min_refresh_seconds": 0 },
        "claims": { "institution": null, "siret": "siret", "agent": "uid" }
    }] });
    std::fs::write(&path, text.to_string()).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn several_issuers_are_trusted_at_once_and_told_apart_by_iss() -> TestResult {
    let proconnect = FakeIdp::start(vec!["oidc-key-1"]).await;
    let machines = FakeIdp::start(vec!["oidc-key-2"]).await;
    let path = std::env::temp_dir().join(format!("cnh-issuers-{}.json", uuid::Uuid::new_v4()));
    let text = json!({ "issuers": [
        { "name": "proconnect", "issuer": proconnect.issuer, "audience": "cnh-hub", "algorithms": ["RS256"],
          "oidc": { "min_refresh_seconds": 0 }, "claims": { "institution": null, "siret": "siret", "agent": "uid" } },
        { "name": "mdph-m2m", "issuer": machines.issuer, "audience": "cnh-hub", "algorithms": ["RS256"],
          "oidc": { "min_refresh_seconds": 0 }, "service_accounts": true,
          "claims": { "institution": "cnh_institution", "siret": null, "agent": "client_id" } }
    ] });
    std::fs::write(&path, text.to_string())?;
    let file = path.display().to_string();
    let hub = TestHub::start_configured(|config| {
        config.issuers_file = Some(file);
        config.dev_jwt_secret = Some(api::config::Secret::new(TEST_SECRET));
    })
    .await?;
    set_siret(&hub).await?;

    let agent = hub.with_token(proconnect.token("oidc-key-1", ARS_84_SIRET)).data(ME).await?;
    assert_eq!((&agent["me"]["issuer"], &agent["me"]["institution"]["code"]), (&json!("proconnect"), &json!("ARS-84")));

    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("oidc-key-2".to_owned());
    let claims = json!({ "iss": machines.issuer, "aud": "cnh-hub", "sub": "svc", "client_id": "si-mdph-69",
        "cnh_institution": "MDPH-69", "exp": now() + 600 });
    let service = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&fixture("oidc-key-2.pem"))?)?;
    let me = hub.with_token(service).data("{ me { role issuer agentId serviceAccount institution { code } } }").await?;
    assert_eq!(
        me["me"],
        json!({ "role": "MDPH", "issuer": "mdph-m2m", "agentId": "si-mdph-69", "serviceAccount": true, "institution": { "code": "MDPH-69" } })
    );

    // A machine token signed with ProConnect's key is not the machine issuer's: refused.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("oidc-key-1".to_owned());
    let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&fixture("oidc-key-1.pem"))?)?;
    assert_refused(&hub, &forged, "the other issuer's key").await?;
    assert_eq!(hub.as_cnsa().data(ME).await?["me"]["issuer"], "development");
    Ok(())
}

/// An issuers file naming an identity provider nobody answers for.
pub fn write_issuers_file_for_unreachable_idp() -> String {
    issuers_file("http://127.0.0.1:1")
}

const ARS_84_SIRET: &str = "13000548100010";

/// The operator records the SIRET by which ProConnect agents of ARS 84 are recognised.
async fn set_siret(hub: &TestHub) -> TestResult {
    let answer = hub
        .as_admin()
        .graphql(
            r#"mutation($s: String) { setInstitutionSiret(code: "ARS-84", siret: $s) { code siret } }"#,
            json!({ "s": ARS_84_SIRET }),
        )
        .await?;
    assert_eq!(answer["data"]["setInstitutionSiret"]["siret"], ARS_84_SIRET, "{answer}");
    Ok(())
}

async fn hub_trusting(idp: &FakeIdp) -> Result<TestHub, Box<dyn std::error::Error + Send + Sync>> {
    let file = issuers_file(&idp.issuer);
    let hub = TestHub::start_configured(|config| {
        config.issuers_file = Some(file);
        // The operator's own token, to record the SIRET.
        config.dev_jwt_secret = Some(api::config::Secret::new(TEST_SECRET));
    })
    .await?;
    set_siret(&hub).await?;
    Ok(hub)
}

#[tokio::test]
async fn an_oidc_issuer_s_agents_are_mapped_by_siret_and_uid() -> TestResult {
    let idp = FakeIdp::start(vec!["oidc-key-1"]).await;
    let hub = hub_trusting(&idp).await?;
    let me = hub.with_token(idp.token("oidc-key-1", ARS_84_SIRET)).data(ME).await?;
    assert_eq!(me["me"]["institution"]["code"], "ARS-84");
    assert_eq!(me["me"]["agentId"], "marie.durand", "people are mapped by uid, not by the per-service sub");
    assert_eq!(me["me"]["issuer"], "proconnect");
    assert_refused(&hub, &idp.token("oidc-key-1", "11111111111111"), "a SIRET no institution has").await?;
    Ok(())
}

#[tokio::test]
async fn the_hub_keeps_working_across_a_key_rotation_and_an_issuer_outage() -> TestResult {
    let idp = FakeIdp::start(vec!["oidc-key-1"]).await;
    let hub = hub_trusting(&idp).await?;
    let with_key_1 = idp.token("oidc-key-1", ARS_84_SIRET);
    assert_eq!(hub.with_token(with_key_1.clone()).data(ME).await?["me"]["role"], "ARS");

    // Rotation: the issuer publishes key 2 beside key 1, then signs with it. The unknown kid makes the hub refetch.
    idp.publish(vec!["oidc-key-1", "oidc-key-2"]);
    let with_key_2 = idp.token("oidc-key-2", ARS_84_SIRET);
    assert_eq!(hub.with_token(with_key_2.clone()).data(ME).await?["me"]["role"], "ARS");
    assert_eq!(hub.with_token(with_key_1.clone()).data(ME).await?["me"]["role"], "ARS");

    // Key 1 retired: once the hub refetches (on the next unknown kid), tokens signed with it are refused.
    idp.publish(vec!["oidc-key-2"]);
    assert_refused(&hub, &idp.token("oidc-key-3", ARS_84_SIRET), "a kid the issuer never published").await?;
    assert_refused(&hub, &with_key_1, "a retired key").await?;

    // Outage: the issuer stops answering; the hub goes on with the last good keys.
    idp.set_up(false);
    let hits_before = *idp.discovery_hits.lock().unwrap();
    assert_eq!(hub.with_token(with_key_2.clone()).data(ME).await?["me"]["role"], "ARS");
    assert_refused(&hub, &idp.token("oidc-key-3", ARS_84_SIRET), "unknown kid while the issuer is down").await?;
    assert!(*idp.discovery_hits.lock().unwrap() > hits_before, "the hub tried to refresh");
    assert_eq!(hub.with_token(with_key_2).data(ME).await?["me"]["role"], "ARS", "failed refresh kept the keys");

    // Back up, with key 3 published: accepted again.
    idp.set_up(true);
    idp.publish(vec!["oidc-key-2", "oidc-key-3"]);
    assert_eq!(hub.with_token(idp.token("oidc-key-3", ARS_84_SIRET)).data(ME).await?["me"]["role"], "ARS");
    Ok(())
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_issuer_s_public_key_is_refused() -> TestResult {
    let idp = FakeIdp::start(vec!["oidc-key-1"]).await;
    let file = issuers_file(&idp.issuer);
    let hub = TestHub::start_configured(|config| config.issuers_file = Some(file)).await?;
    api::access::install_crypto();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("oidc-key-1".to_owned());
    let claims = json!({ "iss": idp.issuer, "aud": "cnh-hub", "siret": ARS_84_SIRET, "exp": now() + 600 });
    let public_pem = fixture("oidc-key-1.pub.pem");
    let confused = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public_pem)).unwrap();
    assert_refused(&hub, &confused, "HS256 with the public key as secret").await?;
    // and a token signed by the right key but for another audience
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("oidc-key-1".to_owned());
    let claims = json!({ "iss": idp.issuer, "aud": "other", "siret": ARS_84_SIRET, "exp": now() + 600 });
    let key = EncodingKey::from_rsa_pem(&fixture("oidc-key-1.pem")).unwrap();
    assert_refused(&hub, &jsonwebtoken::encode(&header, &claims, &key).unwrap(), "wrong audience").await?;
    // The development issuer is not configured on this hub: its tokens are foreign here.
    assert_refused(&hub, &mint("ARS-84", false, Duration::from_secs(60)), "development token").await?;
    Ok(())
}
