//! Live data stops with the credentials: a WebSocket connection is held to the same rules as a request for as long as
//! it lives, and closed with 4403 the moment its token expires, is revoked, or its institution is suspended — on
//! every instance, within a second.

use std::time::Duration;

use api::access::principal::Role;
use serde_json::json;

use crate::support::{TestHub, TestResult, mint, websocket_init_close_code};

const CHANGES: &str = "subscription { coFinancingStatusChanged { measureId status } }";
const ME: &str = "{ me { tokenId } }";

async fn revoke(hub: &TestHub, token_id: &str) -> TestResult {
    hub.as_admin()
        .data(&format!(r#"mutation {{ revokeToken(tokenId: "{token_id}", reason: "poste compromis") {{ tokenId }} }}"#))
        .await?;
    Ok(())
}

/// Polls until the token is refused over HTTP, for at most `wait`.
async fn refused_within(
    hub: &TestHub,
    token: &str,
    wait: Duration,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let status = hub.with_token(token.to_owned()).request(ME, json!({})).send().await?.status();
        if status == 401 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

db_test! {
    async fn a_revoked_token_loses_its_subscription_at_once(hub) {
        let ars = hub.as_role(Role::Ars, Some("84"));
        let token = ars.token.clone().unwrap();
        let token_id = ars.data(ME).await?["me"]["tokenId"].as_str().unwrap().to_owned();
        let mut subscription = ars.subscribe(CHANGES).await?;
        assert_eq!(subscription.closed_within(Duration::from_millis(300)).await?, None, "open while the token is good");
        revoke(&hub, &token_id).await?;
        assert_eq!(subscription.closed_within(Duration::from_secs(1)).await?, Some(4403));
        // And it cannot open a new one.
        let payload = json!({ "Authorization": format!("Bearer {token}") });
        assert_eq!(websocket_init_close_code(&hub, payload).await?, Some(4403));
        Ok(())
    }
}

db_test! {
    async fn a_suspended_institution_loses_its_subscriptions_and_a_reinstated_one_gets_them_back(hub) {
        let mut first = hub.as_role(Role::Ars, Some("84")).subscribe(CHANGES).await?;
        let mut second = hub.as_role(Role::Ars, Some("84")).subscribe(CHANGES).await?;
        let mut other = hub.as_role(Role::Ars, Some("11")).subscribe(CHANGES).await?;
        hub.as_admin().data(r#"mutation { suspendInstitution(code: "ARS-84", reason: "audit") { suspended } }"#).await?;
        assert_eq!(first.closed_within(Duration::from_secs(1)).await?, Some(4403));
        assert_eq!(second.closed_within(Duration::from_secs(1)).await?, Some(4403));
        assert_eq!(other.closed_within(Duration::from_millis(300)).await?, None, "another institution keeps its own");
        hub.as_admin().data(r#"mutation { reinstateInstitution(code: "ARS-84") { suspended } }"#).await?;
        let mut again = hub.as_role(Role::Ars, Some("84")).subscribe(CHANGES).await?;
        assert_eq!(again.closed_within(Duration::from_millis(300)).await?, None);
        Ok(())
    }
}

db_test! {
    async fn an_expired_token_loses_its_subscription_when_it_expires(hub) {
        let token = mint("CNSA", false, Duration::from_secs(2));
        let mut subscription = hub.with_token(token).subscribe(CHANGES).await?;
        // `exp` has a one-second resolution: the token ends between 1 and 2 seconds from now.
        assert_eq!(subscription.closed_within(Duration::from_millis(900)).await?, None);
        assert_eq!(subscription.closed_within(Duration::from_secs(2)).await?, Some(4403));
        Ok(())
    }
}

db_test! {
    async fn missing_and_refused_tokens_close_the_connection_with_4403(hub) {
        assert_eq!(websocket_init_close_code(&hub, json!({})).await?, Some(4403), "anonymous");
        assert_eq!(websocket_init_close_code(&hub, json!({ "Authorization": "Bearer not.a.token" })).await?, Some(4403));
        let expired = mint("CNSA", false, Duration::from_secs(0));
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // Within the leeway the token is still accepted at connection_init, then the connection is closed at once.
        let code = websocket_init_close_code(&hub, json!({ "Authorization": format!("Bearer {expired}") })).await?;
        assert!(code.is_none() || code == Some(4403), "{code:?}");
        let good = hub.as_cnsa().token.clone().unwrap();
        assert_eq!(websocket_init_close_code(&hub, json!({ "Authorization": format!("Bearer {good}") })).await?, None);
        Ok(())
    }
}

db_test! {
    async fn a_revocation_or_suspension_on_one_instance_takes_effect_on_another_within_a_second(hub) {
        if !hub.database_url.starts_with("postgres") {
            // Instances share the access list through PostgreSQL's LISTEN/NOTIFY; SQLite is a single-instance store.
            return Ok(());
        }
        let second = hub.second_instance().await?;
        let ars = second.as_role(Role::Ars, Some("84"));
        let token = ars.token.clone().unwrap();
        let token_id = ars.data(ME).await?["me"]["tokenId"].as_str().unwrap().to_owned();
        let mut on_second = ars.subscribe(CHANGES).await?;
        revoke(&hub, &token_id).await?;
        assert_eq!(on_second.closed_within(Duration::from_secs(1)).await?, Some(4403));
        assert!(refused_within(&second, &token, Duration::from_secs(1)).await?, "the second instance refuses the revoked token");

        let collectivite = second.as_role(Role::Collectivite, Some("69"));
        let mut rhone = collectivite.subscribe(CHANGES).await?;
        hub.as_admin().data(r#"mutation { suspendInstitution(code: "CD-69", reason: "audit") { suspended } }"#).await?;
        assert_eq!(rhone.closed_within(Duration::from_secs(1)).await?, Some(4403));
        assert!(refused_within(&second, collectivite.token.as_deref().unwrap(), Duration::from_secs(1)).await?);
        Ok(())
    }
}
