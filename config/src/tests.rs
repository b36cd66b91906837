use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn no_file_gives_the_default_app_on_6001() {
    let c = Config::load(None, &env(&[])).expect("valid");
    assert_eq!(c.server.port, 6001);
    assert_eq!(c.apps.len(), 1);
    assert_eq!(
        (c.apps[0].id.as_str(), c.apps[0].key.as_str()),
        ("app-id", "app-key")
    );
    assert_eq!(c.apps[0].secret.expose(), "app-secret");
}

#[test]
fn environment_overrides_the_file() {
    let file = "[server]\nport = 7000\nhost = \"127.0.0.1\"\n";
    let c = Config::load(Some(file), &env(&[("SWITCHYARD_PORT", "7100")])).expect("valid");
    assert_eq!(c.server.port, 7100);
    assert_eq!(c.server.host, "127.0.0.1");
}

#[test]
fn default_app_from_the_environment() {
    let c = Config::load(
        None,
        &env(&[
            ("SWITCHYARD_DEFAULT_APP_ID", "42"),
            ("SWITCHYARD_DEFAULT_APP_KEY", "k"),
            ("SWITCHYARD_DEFAULT_APP_SECRET", "s"),
            ("SWITCHYARD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", "true"),
            ("SWITCHYARD_DEFAULT_APP_MAX_CONNECTIONS", "5"),
            (
                "SWITCHYARD_DEFAULT_APP_WEBHOOK_URL",
                "http://127.0.0.1:9/hook",
            ),
            (
                "SWITCHYARD_DEFAULT_APP_REQUIRE_AUTHORIZED_CONNECTIONS",
                "true",
            ),
        ]),
    )
    .expect("valid");
    let app = &c.apps[0];
    assert_eq!((app.id.as_str(), app.key.as_str()), ("42", "k"));
    assert!(app.enable_client_messages && app.require_authorized_connections);
    assert_eq!(app.max_connections, 5);
    assert_eq!(app.webhooks[0].url, "http://127.0.0.1:9/hook");
}

#[test]
fn file_apps_replace_the_default_app() {
    let file =
        "[[apps]]\nid = \"1\"\nkey = \"k1\"\nsecret = \"s1\"\nenable_client_messages = true\n";
    let c = Config::load(Some(file), &env(&[])).expect("valid");
    assert_eq!(c.apps.len(), 1);
    assert!(c.apps[0].enable_client_messages);
    assert_eq!(c.apps[0].max_payload_bytes, 10 * 1024);
}

#[test]
fn every_error_is_reported_at_once() {
    let file = r#"
[server]
port = "not a number"

[[apps]]
id = "1"
key = "k"
secret = "s"
bogus = 1

[[apps]]
id = "2"
key = "k2"
secret = "s2"
max_batch_size = 0

[[apps]]
id = "2"
key = "k3"
secret = "s3"

[extra]
"#;
    let errors = Config::load(
        Some(file),
        &env(&[("SWITCHYARD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", "maybe")]),
    )
    .expect_err("invalid")
    .0;
    let all = errors.join("\n");
    for needle in [
        "[server]",
        "apps[0]",
        "max_batch_size",
        "share the id",
        "[extra]",
        "ENABLE_CLIENT_MESSAGES",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn invalid_toml_is_reported() {
    let errors = Config::load(Some("[server"), &env(&[]))
        .expect_err("invalid")
        .0;
    assert!(errors[0].contains("not valid TOML"));
}

#[test]
fn cluster_sections_have_defaults_and_overrides() {
    let file = "[edge]\nport = 6102\n[core]\nlease_ttl_ms = 8000\n";
    let c = Config::load(
        Some(file),
        &env(&[
            ("SWITCHYARD_CLUSTER_NATS_URL", "nats://10.0.0.1:4222"),
            ("SWITCHYARD_API_PORT", "7201"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.edge.port, 6102);
    assert_eq!(c.core.lease_ttl, Duration::from_millis(8000));
    assert_eq!(c.cluster.nats_url, "nats://10.0.0.1:4222");
    assert_eq!(c.api.port, 7201);
    assert_eq!(c.core.port, 6301);
}

#[test]
fn cluster_mistakes_are_reported() {
    let file = "[cluster]\nredis_url = \"localhost\"\n[core]\nlease_ttl_ms = 1000\nbogus = 1\n";
    let errors = Config::load(Some(file), &env(&[("SWITCHYARD_EDGE_NOPE", "1")]))
        .expect_err("invalid")
        .0;
    let all = errors.join("\n");
    for needle in ["redis_url", "[core]", "[edge]"] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn the_example_file_is_valid_and_shows_the_defaults() {
    let c = Config::load(Some(include_str!("../example.toml")), &env(&[])).expect("valid example");
    let d = Config::load(None, &env(&[])).expect("defaults");
    // Every key, not a sample: the file documents all of them with their defaults.
    assert_eq!(format!("{c:#?}"), format!("{d:#?}"));
}

#[test]
fn durations_are_read_in_the_unit_their_key_names() {
    let file = "[server]\nactivity_timeout_secs = 7\n[edge]\nheartbeat_ms = 250\n\
                [core]\nlease_ttl_ms = 1000\n[worker]\nretry_window_secs = 2\n";
    let c = Config::load(
        Some(file),
        &env(&[
            ("SWITCHYARD_APP_STORE_CACHE_TTL_MS", "1500"),
            ("SWITCHYARD_SHUTDOWN_GRACE_SECS", "3"),
            ("SWITCHYARD_WORKER_RECLAIM_AFTER_SECS", "9"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.server.activity_timeout, Duration::from_secs(7));
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(3));
    assert_eq!(c.edge.heartbeat, Duration::from_millis(250));
    assert_eq!(c.core.lease_ttl, Duration::from_millis(1000));
    assert_eq!(c.worker.retry_window, Duration::from_secs(2));
    assert_eq!(c.worker.reclaim_after, Duration::from_secs(9));
    assert_eq!(c.app_store.cache_ttl, Duration::from_millis(1500));
}

#[test]
fn zero_durations_are_rejected() {
    let file = "[server]\ntls_reload_secs = 0\n[core]\nreap_interval_ms = 0\n\
                [app_store]\ncache_ttl_ms = 0\n";
    let all = Config::load(Some(file), &env(&[]))
        .expect_err("invalid")
        .0
        .join("\n");
    for needle in ["tls_reload_secs", "reap_interval_ms", "cache_ttl_ms"] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn backends_are_read_into_enums() {
    let d = Config::load(None, &env(&[])).expect("defaults");
    assert_eq!(d.cluster.webhook_queue, WebhookQueueBackend::Redis);
    assert_eq!(d.app_store.backend, AppStoreBackend::File);
    assert!(!d.app_store.backend.is_database());

    let file = "[app_store]\nbackend = \"postgres\"\ndatabase_url = \"postgres://db/apps\"\n";
    let c = Config::load(
        Some(file),
        &env(&[("SWITCHYARD_CLUSTER_WEBHOOK_QUEUE", "sqs")]),
    )
    .expect("valid");
    assert_eq!(c.cluster.webhook_queue, WebhookQueueBackend::Sqs);
    assert_eq!(c.app_store.backend, AppStoreBackend::Postgres);
    assert!(c.app_store.backend.is_database());
    // Logs and messages name a backend as the file does.
    assert_eq!(
        (
            c.app_store.backend.to_string(),
            c.cluster.webhook_queue.to_string()
        ),
        ("postgres".to_owned(), "sqs".to_owned())
    );
}

#[test]
fn unknown_backends_are_reported_with_every_other_problem() {
    let file = "[server]\nport = \"x\"\n[cluster]\nwebhook_queue = \"kafka\"\n\
                [app_store]\nbackend = \"sqlite\"\n";
    let errors = Config::load(Some(file), &env(&[])).expect_err("invalid").0;
    let all = errors.join("\n");
    for needle in [
        "[server]",
        "[cluster]",
        "\"kafka\" must be \"redis\" or \"sqs\"",
        "[app_store]",
        "\"sqlite\" is not one of",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    let needs_url = Config::load(Some("[app_store]\nbackend = \"mysql\"\n"), &env(&[]))
        .expect_err("no database_url")
        .0;
    assert_eq!(
        needs_url,
        ["[app_store] backend \"mysql\" needs database_url"]
    );
}
