//! [`Rest`]: the signed REST API client, query signing and REST assertions.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use switchyard_protocol::rest::{body_md5, string_to_sign, Query};
use switchyard_protocol::signature::sign;

use super::{eventually, http};

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Appends `auth_signature` to `query` (which must not contain it), signing
/// `METHOD\npath\nsorted query` with `secret`.
pub fn sign_query(secret: &str, method: &str, path: &str, query: &str) -> String {
    let q = Query::parse(query);
    let sig = sign(secret, string_to_sign(method, path, &q).as_bytes());
    format!("{query}&auth_signature={sig}")
}

/// A signed REST client for one app.
pub struct Rest {
    pub addr: SocketAddr,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

impl Rest {
    pub fn path(&self, suffix: &str) -> String {
        format!("/apps/{}{suffix}", self.app_id)
    }

    /// The full signed query: auth params, `body_md5` for a non-empty body, then `params`
    /// (values must need no URL escaping).
    pub fn signed_query(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
    ) -> String {
        let mut query = format!(
            "auth_key={}&auth_timestamp={}&auth_version=1.0",
            self.key,
            now_secs()
        );
        if !body.is_empty() {
            query.push_str(&format!("&body_md5={}", body_md5(body)));
        }
        for (k, v) in params {
            query.push_str(&format!("&{k}={v}"));
        }
        sign_query(&self.secret, method, path, &query)
    }

    /// A signed GET of `/apps/{id}{suffix}`.
    pub async fn get(&self, suffix: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let path = self.path(suffix);
        let query = self.signed_query("GET", &path, params, b"");
        http(self.addr, "GET", &format!("{path}?{query}"), None, b"").await
    }

    /// A signed POST of a JSON body to `/apps/{id}{suffix}`.
    pub async fn post(&self, suffix: &str, body: &Value) -> (u16, Value) {
        self.post_text(suffix, &body.to_string()).await
    }

    /// A signed POST of raw text as `application/json` (or with no body and no type when
    /// empty).
    pub async fn post_text(&self, suffix: &str, body: &str) -> (u16, Value) {
        let path = self.path(suffix);
        let query = self.signed_query("POST", &path, &[], body.as_bytes());
        let content_type = (!body.is_empty()).then_some("application/json");
        http(
            self.addr,
            "POST",
            &format!("{path}?{query}"),
            content_type,
            body.as_bytes(),
        )
        .await
    }

    /// Triggers `event` on `channel` with string `data`; asserts 200 `{}`.
    pub async fn trigger(&self, channel: &str, event: &str, data: &str) {
        let (status, body) = self
            .post(
                "/events",
                &json!({"name": event, "channel": channel, "data": data}),
            )
            .await;
        assert_eq!((status, &body), (200, &json!({})), "trigger on {channel}");
    }
}

/// Waits until the REST API reports `channel` with `count` subscribers.
pub async fn wait_subscription_count(rest: &Rest, channel: &str, count: u64) {
    let suffix = format!("/channels/{channel}");
    eventually(
        &format!("{channel} to have {count} subscribers"),
        || async {
            let (status, body) = rest.get(&suffix, &[("info", "subscription_count")]).await;
            (status == 200 && body["subscription_count"] == json!(count)).then_some(())
        },
    )
    .await
}

/// Asserts an error response: the status and a JSON body with a non-empty `error` string.
pub fn assert_error(what: &str, got: &(u16, Value), status: u16) {
    assert_eq!(got.0, status, "{what}: body {}", got.1);
    let msg = got.1["error"].as_str().unwrap_or("");
    assert!(
        !msg.is_empty(),
        "{what}: error body must be JSON with an \"error\" message, got {}",
        got.1
    );
}
