//! The admin API on the embedded server: managing apps in PostgreSQL over HTTP, the
//! read-only file store, and the per-IP connection rate at the edge.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;
use support::{http, http_with_headers, open_ws, Rest, TestServer, SERVER};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const TOKEN: &str = "admin-t0ken";

struct Database {
    name: String,
}

impl Database {
    async fn create() -> Database {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("sy_admin_{}_{nanos}", std::process::id());
        let mut con = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres"))
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, trust)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut con)
            .await
            .expect("create database");
        Database { name }
    }

    fn url(&self) -> String {
        format!("{POSTGRES}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .status();
    }
}

async fn admin(srv: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![("Authorization", auth.as_str())];
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    http_with_headers(srv.addr, method, path, &headers, body.as_bytes()).await
}

fn rest(srv: &TestServer, app: &Value, secret: &str) -> Rest {
    Rest {
        addr: srv.addr,
        app_id: app["id"].as_str().expect("id").to_owned(),
        key: app["key"].as_str().expect("key").to_owned(),
        secret: secret.to_owned(),
    }
}

async fn trigger(rest: &Rest) -> u16 {
    let event = json!({"name": "e", "channel": "c", "data": "{}"});
    rest.post("/events", &event).await.0
}

#[tokio::test]
async fn admin_api_manages_apps_in_postgres() {
    let db = Database::create().await;
    // A long TTL: only the change announced on the bus can make changes visible this fast.
    let config = format!(
        "{SERVER}admin_token = \"{TOKEN}\"\n[app_store]\nbackend = \"postgres\"\n\
         database_url = \"{}\"\ncache_ttl_ms = 60000\n",
        db.url()
    );
    let srv = TestServer::start(&config).await;

    let (status, _) = http(srv.addr, "GET", "/admin/apps", None, b"").await;
    assert_eq!(status, 401, "no token");
    let wrong = [("Authorization", "Bearer nope")];
    let (status, _) = http_with_headers(srv.addr, "GET", "/admin/apps", &wrong, b"").await;
    assert_eq!(status, 401, "wrong token");

    let (status, body) = admin(
        &srv,
        "POST",
        "/admin/apps",
        Some(json!({"id": "a1", "max_connections": 2})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let app = body["app"].clone();
    let secret = app["secret"]
        .as_str()
        .expect("create shows the secret")
        .to_owned();
    assert_eq!(app["max_connections"], 2);
    let (status, body) = admin(&srv, "POST", "/admin/apps", Some(json!({"id": "a1"}))).await;
    assert_eq!(status, 409, "duplicate id: {body}");
    let (status, body) = admin(
        &srv,
        "POST",
        "/admin/apps",
        Some(json!({"id": "a2", "bogus": 1})),
    )
    .await;
    assert_eq!(status, 400, "unknown setting: {body}");

    let (status, body) = admin(&srv, "GET", "/admin/apps", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apps"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(
        body["apps"][0].get("secret").is_none(),
        "list hides secrets: {body}"
    );
    let (_, body) = admin(&srv, "GET", "/admin/apps/a1?show_secret=true", None).await;
    assert_eq!(body["app"]["secret"], secret.as_str());
    let (status, _) = admin(&srv, "GET", "/admin/apps/nope", None).await;
    assert_eq!(status, 404);

    let key = app["key"].as_str().expect("key").to_owned();
    let mut live = open_ws(srv.addr, &key).await;
    live.established().await;
    assert_eq!(trigger(&rest(&srv, &app, &secret)).await, 200);

    let (status, body) = admin(
        &srv,
        "PATCH",
        "/admin/apps/a1",
        Some(json!({"max_backend_events_per_second": 100})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["app"]["max_backend_events_per_second"], 100);
    let (status, body) = admin(
        &srv,
        "PATCH",
        "/admin/apps/a1",
        Some(json!({"id": "other"})),
    )
    .await;
    assert_eq!(status, 400, "ids do not change: {body}");

    let (status, body) = admin(&srv, "POST", "/admin/apps/a1/rotate-secret", None).await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["app"]["secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(rotated, secret);
    assert_eq!(
        trigger(&rest(&srv, &app, &rotated)).await,
        200,
        "new secret, at once"
    );
    assert_eq!(trigger(&rest(&srv, &app, &secret)).await, 401, "old secret");

    let (status, body) = admin(&srv, "POST", "/admin/apps/a1/disable", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["app"]["enabled"], false);
    let (code, _) = live.expect_close_within(Duration::from_secs(3)).await;
    assert_eq!(code, 4003, "a live connection of a disabled app");
    let mut refused = open_ws(srv.addr, &key).await;
    assert_eq!(refused.expect_close().await.0, 4003, "a new one");
    assert_eq!(trigger(&rest(&srv, &app, &rotated)).await, 403);
    srv.shutdown().await;
}

#[tokio::test]
async fn the_file_store_is_read_only() {
    let srv = TestServer::start(&format!(
        "{SERVER}admin_token = \"{TOKEN}\"\n{}",
        support::app_toml(support::APP_ID, support::KEY, support::SECRET, "")
    ))
    .await;
    let (status, body) = admin(&srv, "GET", "/admin/apps", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apps"][0]["id"], support::APP_ID);
    let (status, body) = admin(&srv, "POST", "/admin/apps", Some(json!({"id": "new"}))).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("read-only"),
        "{body}"
    );
    srv.shutdown().await;

    let srv = TestServer::with_main_app("").await;
    let (status, body) = admin(&srv, "GET", "/admin/apps", None).await;
    assert_eq!(status, 404, "no token configured, no admin API: {body}");
    srv.shutdown().await;
}

#[tokio::test]
async fn new_connections_per_ip_are_rate_limited() {
    let srv = TestServer::start(&format!(
        "{SERVER}max_connections_per_ip_per_second = 3\n{}",
        support::app_toml(support::APP_ID, support::KEY, support::SECRET, "")
    ))
    .await;
    // The window starts at the first attempt from an address, so the three fit in it.
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let mut c = open_ws(srv.addr, support::KEY).await;
        c.established().await;
        accepted.push(c);
    }
    let url = srv.ws_url(&format!("/app/{}?protocol=7", support::KEY));
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("expected HTTP 429, got {:?}", other.map(|_| "a connection")),
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut again = open_ws(srv.addr, support::KEY).await;
    again.established().await;
    srv.shutdown().await;
}
