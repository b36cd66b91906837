use super::*;
use crate::store::UserStore;

fn member(id: &str) -> Member {
    Member {
        user_id: id.into(),
        user_info: "null".into(),
    }
}

#[tokio::test]
async fn counts_sum_over_edges_with_transitions() {
    let s = MemoryStore::new();
    let t = s.set_edge_count("a", "c", "e1", 2).await.expect("ok");
    assert!(t.occupied());
    let t = s.set_edge_count("a", "c", "e2", 3).await.expect("ok");
    assert_eq!((t.before, t.after), (2, 5));
    assert_eq!(s.counts("a", "c").await.expect("ok").subscription_count, 5);
    s.set_edge_count("a", "c", "e1", 0).await.expect("ok");
    let t = s.set_edge_count("a", "c", "e2", 0).await.expect("ok");
    assert!(t.vacated());
    assert!(s.occupied("a", "").await.expect("ok").is_empty());
}

#[tokio::test]
async fn presence_first_and_last_connection() {
    let s = MemoryStore::new();
    let j = s
        .join("a", "presence-x", "e", "1.1", member("u"), 100)
        .await
        .expect("ok");
    assert!(j.first);
    let j = s
        .join("a", "presence-x", "e", "1.2", member("u"), 100)
        .await
        .expect("ok");
    assert!(!j.first);
    assert_eq!(j.members.len(), 1);
    let l = s.leave("a", "presence-x", "e", "1.1").await.expect("ok");
    assert_eq!(l.map(|l| l.last), Some(false));
    let l = s.leave("a", "presence-x", "e", "1.2").await.expect("ok");
    assert_eq!(l.map(|l| l.last), Some(true));
    assert_eq!(
        s.leave("a", "presence-x", "e", "1.2").await.expect("ok"),
        None
    );
}

#[tokio::test]
async fn presence_limit_refuses_new_users_only() {
    let s = MemoryStore::new();
    s.join("a", "p", "e", "1", member("u1"), 1)
        .await
        .expect("ok");
    assert!(matches!(
        s.join("a", "p", "e", "2", member("u2"), 1).await,
        Err(CoreError::PresenceFull(1))
    ));
    assert!(s.join("a", "p", "e", "3", member("u1"), 1).await.is_ok());
}

#[tokio::test]
async fn users_online_first_and_last_connection() {
    let s = MemoryStore::new();
    assert!(s.user_connect("a", "u", "e", "1").await.expect("ok"));
    assert!(!s.user_connect("a", "u", "e", "2").await.expect("ok"));
    let ids = vec!["u".to_string(), "v".to_string()];
    assert_eq!(
        s.users_online("a", &ids).await.expect("ok"),
        vec!["u".to_string()]
    );
    assert!(!s.user_disconnect("a", "u", "e", "1").await.expect("ok"));
    assert!(s.user_disconnect("a", "u", "e", "2").await.expect("ok"));
    assert!(!s.user_disconnect("a", "u", "e", "2").await.expect("ok"));
    assert!(s.users_online("a", &ids).await.expect("ok").is_empty());
}

#[tokio::test]
async fn cache_expires() {
    let s = MemoryStore::new();
    s.cache_put("a", "cache-x", "f".into(), Duration::from_secs(60))
        .await
        .expect("ok");
    let (frame, ttl) = s
        .cache_get("a", "cache-x")
        .await
        .expect("ok")
        .expect("cached");
    assert_eq!(frame, "f");
    assert!(ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(58));
    s.cache_put("a", "cache-y", "g".into(), Duration::ZERO)
        .await
        .expect("ok");
    assert_eq!(s.cache_get("a", "cache-y").await.expect("ok"), None);
}
