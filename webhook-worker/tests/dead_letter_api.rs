//! The admin endpoints: absent without a token, 401 with a wrong one, list and replay with
//! the right one; over the memory and the Redis dead letters.

mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use webhook_worker::{
    DeadLetterApi, DeadLetters, Failure, MemoryDeadLetters, MemoryQueue, WebhookJob, WebhookQueue,
};

use fixtures::{job, Stream};

const TOKEN: &str = "t0ken-for-tests";

async fn call(
    admin: &DeadLetterApi,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    admin.handle(req).await
}

async fn seed(letters: &dyn DeadLetters, n: u64) -> String {
    let failure = Failure::now(job("app-1", n), Some("http://127.0.0.1:1/"), "boom");
    letters.record(failure).await.expect("record")
}

#[tokio::test]
async fn without_a_token_the_endpoints_do_not_exist() {
    let letters = Arc::new(MemoryDeadLetters::default());
    for token in [None, Some(String::new())] {
        let admin = DeadLetterApi::new(token, letters.clone(), Arc::new(MemoryQueue::new()));
        for (method, path) in [
            (Method::GET, "/admin/dead-letters"),
            (Method::POST, "/admin/dead-letters/replay"),
        ] {
            let (status, body) = call(&admin, method, path, Some(""), r#"{"all":true}"#).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(body["error"].is_string());
        }
    }
}

async fn a_wrong_or_missing_token_is_refused(letters: Arc<dyn DeadLetters>) {
    let queue = Arc::new(MemoryQueue::new());
    let id = seed(&*letters, 1).await;
    let admin = DeadLetterApi::new(Some(TOKEN.into()), letters.clone(), queue.clone());
    for token in [None, Some("wrong"), Some("t0ken-for-test")] {
        let (status, body) = call(&admin, Method::GET, "/admin/dead-letters", token, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body, json!({ "error": "missing or wrong bearer token" }));
        let replay = format!(r#"{{"id":"{id}"}}"#);
        let path = "/admin/dead-letters/replay";
        let (status, _) = call(&admin, Method::POST, path, token, &replay).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        letters.list(10).await.expect("list").len(),
        1,
        "nothing replayed"
    );
    assert!(queue
        .pull(1, Duration::ZERO)
        .await
        .expect("pull")
        .is_empty());
}

async fn the_right_token_lists_and_replays(letters: Arc<dyn DeadLetters>) {
    let queue = Arc::new(MemoryQueue::new());
    let ids = [
        seed(&*letters, 1).await,
        seed(&*letters, 2).await,
        seed(&*letters, 3).await,
    ];
    let admin = DeadLetterApi::new(Some(TOKEN.into()), letters.clone(), queue.clone());
    let list = |path: &'static str| call(&admin, Method::GET, path, Some(TOKEN), "");

    let (status, body) = list("/admin/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    let listed = body["dead_letters"].as_array().expect("dead_letters");
    let listed_ids: Vec<&str> = listed.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(listed_ids, [&ids[2], &ids[1], &ids[0]], "newest first");
    assert_eq!(listed[0]["job"], json!(job("app-1", 3)));
    assert_eq!(listed[0]["url"], "http://127.0.0.1:1/");
    assert_eq!(listed[0]["error"], "boom");
    let (_, body) = list("/admin/dead-letters?limit=1").await;
    assert_eq!(body["dead_letters"].as_array().map(Vec::len), Some(1));
    let (status, _) = list("/admin/dead-letters?limit=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let replay = |body: String| {
        let admin = &admin;
        async move {
            let path = "/admin/dead-letters/replay";
            call(admin, Method::POST, path, Some(TOKEN), &body).await
        }
    };
    let (status, body) = replay(format!(r#"{{"id":"{}"}}"#, ids[0])).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "replayed": [ids[0]] }))
    );
    let (status, _) = replay(format!(r#"{{"id":"{}"}}"#, ids[0])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "replayed already");
    for bad in [
        "",
        "{}",
        r#"{"all":false}"#,
        r#"{"id":"x","all":true}"#,
        "[1]",
    ] {
        let (status, _) = replay(bad.to_owned()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, body) = replay(r#"{"all":true}"#.to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "replayed": [ids[1], ids[2]] }),
        "oldest first"
    );

    let pushed = queue.pull(10, Duration::ZERO).await.expect("pull");
    let jobs: Vec<_> = pushed.into_iter().map(|l| l.job).collect();
    // A replay is aimed at the webhook that failed, and only at it.
    let aimed = |n| WebhookJob {
        only_url: Some("http://127.0.0.1:1/".into()),
        id: None,
        ..job("app-1", n)
    };
    assert_eq!(jobs, [aimed(1), aimed(2), aimed(3)]);
    assert!(letters.list(10).await.expect("list").is_empty());

    let (status, _) = call(
        &admin,
        Method::DELETE,
        "/admin/dead-letters",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = call(&admin, Method::GET, "/admin/other", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

macro_rules! admin_suite {
    ($($name:ident),*) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(Arc::new(MemoryDeadLetters::default())).await;
                }
            )*
        }

        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let stream = Stream::new(stringify!($name)).await;
                    super::$name(stream.dead_letters(100).await).await;
                    stream.delete().await;
                }
            )*
        }
    };
}

admin_suite!(
    a_wrong_or_missing_token_is_refused,
    the_right_token_lists_and_replays
);
