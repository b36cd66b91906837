//! One conformance suite for every app store: the config file, MariaDB and PostgreSQL (real
//! servers, see `support`), and the cache in front of each.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Kind, TestDb};
use switchyard_apps::changes::{self, rotate_secret, set_enabled};
use switchyard_apps::{
    App, AppAdmin, AppStore, AppStoreError, CachedAppStore, SqlAppStore, StaticAppStore, Webhook,
    WebhookFilter,
};

/// Apps covering every setting. Ids sort differently by bytes than by a human collation
/// ("10" < "9" < "B" < "a"), and two keys differ only in case.
fn fixtures() -> Vec<App> {
    let mut full = App::new("10", "key-ten", "secret-ten");
    full.enable_client_messages = true;
    full.max_connections = 500;
    full.enable_subscription_count = true;
    full.require_authorized_connections = true;
    full.authorization_timeout_secs = 12;
    full.allowed_origins = vec!["https://a.example".into(), "*".into()];
    full.max_payload_bytes = 20_000;
    full.max_channels_per_trigger = 50;
    full.max_batch_size = 5;
    full.max_channel_name_length = 100;
    full.max_event_name_length = 90;
    full.max_presence_members = 250;
    full.max_presence_user_info_bytes = 2048;
    full.client_events_per_second = 40;
    full.webhook_batching = true;
    full.webhooks = vec![
        Webhook {
            url: "https://hooks.example/presence".into(),
            event_types: vec!["member_added".into(), "member_removed".into()],
            filter: WebhookFilter {
                channel_prefix: Some("presence-".into()),
                channel_suffix: Some("-room".into()),
                channel_pattern: Some("presence-*-room".into()),
            },
            headers: BTreeMap::from([
                ("Authorization".into(), "Bearer t0ken".into()),
                ("X-Ünicode".into(), "värde \"quoted\"".into()),
            ]),
        },
        Webhook {
            url: "http://127.0.0.1:9/all".into(),
            event_types: Vec::new(),
            filter: WebhookFilter::default(),
            headers: BTreeMap::new(),
        },
    ];

    let mut disabled = App::new("9", "key-nine", "secret-nine");
    disabled.enabled = false;

    vec![
        full,
        disabled,
        App::new("B", "Key-B", "secret-B"),
        App::new("a", "key-b", "secret-a"),
    ]
}

async fn reads(store: &dyn AppStore, apps: &[App]) {
    for app in apps {
        let by_key = store.by_key(&app.key).await.expect("by key");
        assert_eq!(by_key.as_deref(), Some(app), "by_key {}", app.key);
        let by_id = store.by_id(&app.id).await.expect("by id");
        assert_eq!(by_id.as_deref(), Some(app), "by_id {}", app.id);
    }
    for missing in ["nope", "KEY-TEN", "key-ten "] {
        assert!(
            store.by_key(missing).await.expect("by key").is_none(),
            "{missing}"
        );
    }
    assert!(store.by_id("nope").await.expect("by id").is_none());
    assert!(
        store.by_id("b").await.expect("by id").is_none(),
        "ids are case-sensitive"
    );

    let disabled = store
        .by_key("key-nine")
        .await
        .expect("by key")
        .expect("found");
    assert!(!disabled.enabled, "disabled apps are found, and say so");
}

async fn listing(store: &dyn AppAdmin, apps: &[App]) {
    let mut expected = apps.to_vec();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list().await.expect("list"), expected);
}

async fn read_only(store: &dyn AppAdmin) {
    let app = App::new("new", "new-key", "s");
    assert!(matches!(
        store.create(&app).await,
        Err(AppStoreError::ReadOnly)
    ));
    let mut existing = (*store.by_id("B").await.expect("by id").expect("found")).clone();
    existing.max_connections = 1;
    assert!(matches!(
        store.update(&existing).await,
        Err(AppStoreError::ReadOnly)
    ));
    assert!(matches!(
        set_enabled(store, "B", false).await,
        Err(AppStoreError::ReadOnly)
    ));
    assert!(matches!(
        rotate_secret(store, "B").await,
        Err(AppStoreError::ReadOnly)
    ));
}

fn assert_conflict(result: Result<(), AppStoreError>, mentions: &str) {
    match result {
        Err(AppStoreError::Conflict(message)) => {
            assert!(message.contains(mentions), "{message}");
            assert!(!message.contains("sekrit"), "{message}");
        }
        other => panic!("expected a conflict about {mentions}, got {other:?}"),
    }
}

async fn writes(store: &dyn AppAdmin) {
    let mut app = App::new("new", "new-key", "sekrit");
    store.create(&app).await.expect("create");
    assert_eq!(
        store.by_id("new").await.expect("by id").as_deref(),
        Some(&app)
    );

    assert_conflict(
        store.create(&App::new("new", "other-key", "sekrit")).await,
        "\"new\"",
    );
    assert_conflict(
        store.create(&App::new("other", "new-key", "sekrit")).await,
        "new-key",
    );
    assert!(store.by_id("other").await.expect("by id").is_none());
    let invalid = store.create(&App::new("has space", "k-space", "s")).await;
    assert!(
        matches!(invalid, Err(AppStoreError::Invalid(_))),
        "{invalid:?}"
    );

    // Every setting and the key change at once.
    let mut changed = fixtures()[0].clone();
    changed.id = app.id.clone();
    changed.key = "renamed-key".into();
    changed.secret = app.secret.clone();
    changed.webhooks[0]
        .headers
        .insert("X-Added".into(), "1".into());
    assert!(store.update(&changed).await.expect("update"));
    assert_eq!(
        store.by_id("new").await.expect("by id").as_deref(),
        Some(&changed)
    );
    assert_eq!(
        store
            .by_key("renamed-key")
            .await
            .expect("by key")
            .as_deref(),
        Some(&changed)
    );
    assert!(
        store.by_key("new-key").await.expect("by key").is_none(),
        "the old key is gone"
    );
    assert!(
        store.update(&changed).await.expect("update"),
        "an update changing nothing still finds it"
    );

    app = changed;
    let mut taken = app.clone();
    taken.key = "key-ten".into();
    assert_conflict(store.update(&taken).await.map(drop), "key-ten");
    assert!(!store
        .update(&App::new("missing", "missing-key", "s"))
        .await
        .expect("update"));
    assert!(store.by_id("missing").await.expect("by id").is_none());

    let disabled = set_enabled(store, "new", false)
        .await
        .expect("set enabled")
        .expect("found");
    assert!(!disabled.enabled);
    assert!(
        !store
            .by_key("renamed-key")
            .await
            .expect("by key")
            .expect("found")
            .enabled
    );
    assert!(
        set_enabled(store, "new", true)
            .await
            .expect("set enabled")
            .expect("found")
            .enabled
    );
    assert!(set_enabled(store, "missing", true)
        .await
        .expect("set enabled")
        .is_none());

    let rotated = rotate_secret(store, "new")
        .await
        .expect("rotate secret")
        .expect("found");
    assert_ne!(rotated.secret, app.secret);
    let stored = store.by_id("new").await.expect("by id").expect("found");
    assert_eq!(stored.secret.expose(), rotated.secret.expose());
    assert_eq!(
        stored.max_connections, app.max_connections,
        "the rest is unchanged"
    );
    assert!(rotate_secret(store, "missing")
        .await
        .expect("rotate secret")
        .is_none());

    let patched = changes::apply_patch(&stored, &serde_json::json!({"max_connections": 3}))
        .expect("apply patch");
    assert!(store.update(&patched).await.expect("update"));
    assert_eq!(
        store
            .by_id("new")
            .await
            .expect("by id")
            .expect("found")
            .max_connections,
        3
    );

    let ids: Vec<String> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["10", "9", "B", "a", "new"]);
}

const CACHE_TTL: Duration = Duration::from_secs(60);

#[tokio::test]
async fn file_store() {
    let store = StaticAppStore::new(fixtures());
    reads(&store, &fixtures()).await;
    listing(&store, &fixtures()).await;
    read_only(&store).await;

    let cached = CachedAppStore::new(Arc::new(StaticAppStore::new(fixtures())), CACHE_TTL);
    reads(&cached, &fixtures()).await;
    reads(&cached, &fixtures()).await;
}

#[tokio::test]
async fn mariadb_store() {
    sql_store(Kind::MySql).await;
}

#[tokio::test]
async fn postgres_store() {
    sql_store(Kind::Postgres).await;
}

async fn sql_store(kind: Kind) {
    let db = Arc::new(TestDb::create(kind).await);
    // Run in a task so that the database is dropped even when an assertion fails.
    let outcome = tokio::spawn(sql_suite(db.clone())).await;
    if let Ok(db) = Arc::try_unwrap(db) {
        db.drop().await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn sql_suite(db: Arc<TestDb>) {
    // Services starting together: the migration lock lets one create the table.
    let (a, b, c) = tokio::join!(
        SqlAppStore::connect(&db.url),
        SqlAppStore::connect(&db.url),
        SqlAppStore::connect(&db.url),
    );
    let (store, b, c) = (
        Arc::new(a.expect("connect")),
        b.expect("connect"),
        c.expect("connect"),
    );
    b.close().await;
    c.close().await;

    for app in fixtures() {
        store.create(&app).await.expect("create");
    }
    reads(&*store, &fixtures()).await;
    listing(&*store, &fixtures()).await;
    let cached = CachedAppStore::new(store.clone(), CACHE_TTL);
    reads(&cached, &fixtures()).await;
    writes(&*store).await;

    // A broken row names its app and fails only lookups of that app.
    let broken = App::new("broken", "broken-key", "sekrit");
    store.create(&broken).await.expect("create");
    db.execute(r#"UPDATE switchyard_apps SET settings = '{"colour":"blue"}' WHERE id = 'broken'"#)
        .await;
    for result in [
        store.by_id("broken").await,
        store.by_key("broken-key").await,
    ] {
        let message = match result {
            Err(AppStoreError::Unavailable(message)) => message,
            other => panic!("expected Unavailable, got {other:?}"),
        };
        assert!(
            message.contains("broken") && message.contains("colour"),
            "{message}"
        );
        assert!(!message.contains("sekrit"), "{message}");
    }
    assert!(store.by_id("10").await.expect("by id").is_some());
    db.execute("DELETE FROM switchyard_apps WHERE id = 'broken'")
        .await;
    store.close().await;

    // Connecting again migrates nothing and finds the apps.
    let again = SqlAppStore::connect(&db.url).await.expect("connect");
    assert_eq!(
        again.list().await.expect("list").len(),
        fixtures().len() + 1
    );
    again.close().await;
    assert_eq!(db.count("SELECT COUNT(*) FROM _sqlx_migrations").await, 1);
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_promptly() {
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr").port()
    };
    // Accepts TCP connections (the kernel does) but never says a word, like a hung server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_port = silent.local_addr().expect("local addr").port();

    let urls = [
        format!("mysql://root@127.0.0.1:{refused}/db"),
        format!("postgres://postgres@127.0.0.1:{refused}/db"),
        format!("mariadb://root:pw@127.0.0.1:{silent_port}/db"),
        format!("postgresql://postgres:pw@127.0.0.1:{silent_port}/db"),
        format!("{}/sy_apps_does_not_exist", support::mysql_server()),
        format!("{}/sy_apps_does_not_exist", support::postgres_server()),
    ];
    // Concurrently, each in its own task, so the whole test takes as long as the slowest.
    let attempts: Vec<_> = urls
        .into_iter()
        .map(|url| {
            tokio::spawn(async move {
                let started = Instant::now();
                let result = SqlAppStore::connect(&url).await;
                (url, started.elapsed(), result)
            })
        })
        .collect();
    for attempt in attempts {
        let (url, elapsed, result) = attempt.await.expect("task");
        match result {
            Err(AppStoreError::Unavailable(message)) => {
                assert!(!message.contains("pw@"), "{message}");
            }
            Err(other) => panic!("{url}: expected Unavailable, got {other}"),
            Ok(_) => panic!("{url}: connected"),
        }
        assert!(elapsed < Duration::from_secs(10), "{url} took {elapsed:?}");
    }
}

#[tokio::test]
async fn urls_that_are_not_app_stores_are_invalid() {
    for url in [
        "redis://127.0.0.1:6379",
        "127.0.0.1:3306",
        &format!("{}/", support::mysql_server()),
    ] {
        let result = SqlAppStore::connect(url).await;
        assert!(matches!(result, Err(AppStoreError::Invalid(_))), "{url}");
    }
}
