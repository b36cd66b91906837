//! Apps in MariaDB, managed while a cluster runs: `switchyard apps` and the admin API change
//! them, and every edge and the API honour the change within the cache TTL: a rotated secret
//! is the only one accepted, a disabled app's live connections close with 4003 and new ones
//! are refused.

mod cluster;
mod support;

use std::process::Command;
use std::time::Duration;

use cluster::*;
use serde_json::{json, Value};
use sqlx::Connection;
use support::{http, Rest};

const MYSQL: &str = "mysql://root@127.0.0.1:3306";
const TOKEN: &str = "admin-t0ken";
/// Short, so the test also proves the TTL bound, not only the announcement.
const CACHE_TTL: Duration = Duration::from_millis(1500);

/// A database of its own, dropped when the test ends.
struct Database {
    name: String,
}

impl Database {
    async fn create(tag: &str) -> Database {
        let name = format!("sy_cluster_{tag}");
        let mut con = sqlx::MySqlConnection::connect(MYSQL)
            .await
            .expect("MariaDB on 127.0.0.1:3306 (root, no password)");
        sqlx::query(&format!("CREATE DATABASE `{name}`"))
            .execute(&mut con)
            .await
            .expect("create database");
        Database { name }
    }

    fn url(&self) -> String {
        format!("{MYSQL}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-uroot", "-h127.0.0.1", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .status();
    }
}

/// Runs `switchyard apps …` against the database; returns stdout, asserting success.
fn apps_cli(db: &Database, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("apps")
        .args(args)
        .env("SWITCHYARD_APP_STORE_BACKEND", "mysql")
        .env("SWITCHYARD_APP_STORE_DATABASE_URL", db.url())
        .output()
        .expect("run switchyard apps");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "switchyard apps {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn admin(c: &TestCluster, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    support::http_with_headers(
        c.api.addr(),
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

fn rest_with(c: &TestCluster, secret: &str) -> Rest {
    Rest {
        secret: secret.to_owned(),
        ..c.rest()
    }
}

async fn trigger_status(rest: &Rest) -> u16 {
    let event = json!({"name": "e", "channel": "rotation", "data": "{}"});
    rest.post("/events", &event).await.0
}

/// Subscribes to a private channel signing with `secret`; true when it succeeded.
async fn private_ok(client: &mut support::Client, channel: &str, secret: &str) -> bool {
    let auth = support::token(
        secret,
        CLUSTER_KEY,
        &switchyard_protocol::signature::channel_string(&client.socket_id, channel),
    );
    client.send_subscribe(channel, Some(&auth), None).await;
    loop {
        let frame = client.recv_json().await;
        match frame["event"].as_str() {
            Some("pusher_internal:subscription_succeeded") => return true,
            Some("pusher:subscription_error") => return false,
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_changes_reach_every_service() {
    let tag = format!("{:x}_{:x}", std::process::id(), rand_suffix());
    let db = Database::create(&tag).await;
    let created = apps_cli(
        &db,
        &[
            "create",
            CLUSTER_APP,
            "--key",
            CLUSTER_KEY,
            "--secret",
            CLUSTER_SECRET,
        ],
    );
    let created: Value = serde_json::from_str(created.trim()).expect("create prints JSON");
    assert_eq!(
        created["secret"], CLUSTER_SECRET,
        "create shows the secret once"
    );
    let listed = apps_cli(&db, &["list"]);
    assert!(listed.contains(CLUSTER_KEY), "{listed}");
    assert!(
        !listed.contains(CLUSTER_SECRET),
        "list never prints secrets: {listed}"
    );

    let c = TestCluster::start(Options {
        server: format!("admin_token = \"{TOKEN}\""),
        sections: format!(
            "[app_store]\nbackend = \"mysql\"\ndatabase_url = \"{}\"\ncache_ttl_ms = {}\n",
            db.url(),
            CACHE_TTL.as_millis()
        ),
        ..Options::default()
    })
    .await;
    let mut on_edge1 = c.connect(0).await;
    let mut on_edge2 = c.connect(1).await;
    assert_eq!(trigger_status(&c.rest()).await, 200);
    assert!(private_ok(&mut on_edge1, "private-before", CLUSTER_SECRET).await);

    // Rotate through the admin API: it answers with the new secret, once.
    let (status, body) = admin(
        &c,
        "POST",
        &format!("/admin/apps/{CLUSTER_APP}/rotate-secret"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["app"]["secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(secret, CLUSTER_SECRET);
    let bound = CACHE_TTL + Duration::from_secs(1);
    poll_until("the API to take only the new secret", bound, || async {
        match (
            trigger_status(&rest_with(&c, &secret)).await,
            trigger_status(&c.rest()).await,
        ) {
            (200, 401) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Live connections on both edges authorize with the new secret, not the old one.
    assert!(!private_ok(&mut on_edge1, "private-old", CLUSTER_SECRET).await);
    assert!(private_ok(&mut on_edge1, "private-new-1", &secret).await);
    assert!(private_ok(&mut on_edge2, "private-new-2", &secret).await);

    // Disable from the command line: both edges close their connections with 4003 and
    // refuse new ones; the API answers 403.
    apps_cli(&db, &["disable", CLUSTER_APP]);
    let close_bound = bound + Duration::from_secs(2);
    assert_eq!(on_edge1.expect_close_within(close_bound).await.0, 4003);
    assert_eq!(on_edge2.expect_close_within(close_bound).await.0, 4003);
    for edge in &c.edges {
        let mut refused = support::open_ws(edge.addr(), CLUSTER_KEY).await;
        assert_eq!(refused.expect_close().await.0, 4003);
    }
    assert_eq!(trigger_status(&rest_with(&c, &secret)).await, 403);

    // Re-enable through the admin API; secrets stay hidden unless asked for.
    let (status, body) = admin(
        &c,
        "POST",
        &format!("/admin/apps/{CLUSTER_APP}/enable"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["app"].get("secret").is_none(), "{body}");
    poll_until("the edges to admit the app again", bound, || async {
        let mut client = support::open_ws(c.edges[1].addr(), CLUSTER_KEY).await;
        match client.recv_json_or_close().await {
            Ok(frame) if frame["event"] == "pusher:connection_established" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (status, body) = http(c.api.addr(), "GET", "/admin/apps", None, b"").await;
    assert_eq!(status, 401, "no token: {body}");
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()))
}
