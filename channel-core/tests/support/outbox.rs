//! Cases for the outbox: each change writes what it causes, in order, for a relay to claim.

use std::time::Duration;

use channel_core::{Effect, PendingEffect};

use super::{member, Store};

const CLAIM: Duration = Duration::from_secs(60);

fn effects(claimed: &[PendingEffect]) -> Vec<Effect> {
    claimed.iter().map(|p| p.effect.clone()).collect()
}

pub async fn changes_write_their_effects_in_order(s: Store) {
    let ch = "presence-fx";
    s.join("a", ch, "e1", "1.1", member("u"), 10)
        .await
        .expect("join");
    s.join("a", ch, "e1", "1.2", member("u"), 10)
        .await
        .expect("a second connection causes nothing");
    s.set_edge_count("a", ch, "e1", 2).await.expect("count");
    s.set_edge_count("a", ch, "e1", 2)
        .await
        .expect("an unchanged count causes nothing");
    s.leave("a", ch, "e1", "1.1").await.expect("leave");
    s.leave("a", ch, "e1", "1.2").await.expect("leave");
    s.user_connect("a", "u", "e1", "1.1").await.expect("user");
    s.user_connect("a", "u", "e1", "1.1")
        .await
        .expect("the same connection again causes nothing");
    s.user_disconnect("a", "u", "e1", "1.1")
        .await
        .expect("user");
    let claimed = s.claim_effects(CLAIM, 100).await.expect("claim");
    assert!(claimed.iter().all(|p| p.app_id == "a"));
    assert_eq!(
        effects(&claimed),
        [
            Effect::MemberAdded {
                channel: ch.into(),
                user_id: "u".into(),
                user_info: member("u").user_info,
                except: Some("1.1".into()),
                seq: 1,
            },
            Effect::Count {
                channel: ch.into(),
                before: 0,
                after: 2,
            },
            Effect::MemberRemoved {
                channel: ch.into(),
                user_id: "u".into(),
                seq: 2,
            },
            Effect::Online {
                user_id: "u".into()
            },
            Effect::Offline {
                user_id: "u".into()
            },
        ]
    );
    assert!(
        s.claim_effects(CLAIM, 100).await.expect("claim").is_empty(),
        "claimed effects go to no one else"
    );
}

pub async fn reaping_writes_the_removals_and_the_count(s: Store) {
    let ch = "presence-reap-fx";
    s.join("a", ch, "e1", "1.1", member("u"), 10)
        .await
        .expect("join");
    s.join("a", ch, "e2", "2.1", member("v"), 10)
        .await
        .expect("join");
    s.set_edge_count("a", ch, "e1", 1).await.expect("count");
    for p in s.claim_effects(CLAIM, 100).await.expect("claim") {
        s.forget_effect(&p).await.expect("forget");
    }
    s.reap_channel("a", ch, "e1").await.expect("reap");
    s.user_connect("a", "w", "e1", "1.1").await.expect("user");
    s.reap_user("a", "w", "e1").await.expect("reap user");
    let claimed = s.claim_effects(CLAIM, 100).await.expect("claim");
    assert_eq!(
        effects(&claimed),
        [
            Effect::MemberRemoved {
                channel: ch.into(),
                user_id: "u".into(),
                seq: 3,
            },
            Effect::Count {
                channel: ch.into(),
                before: 1,
                after: 0,
            },
            Effect::Online {
                user_id: "w".into()
            },
            Effect::Offline {
                user_id: "w".into()
            },
        ]
    );
}

pub async fn an_unforgotten_effect_comes_back_after_its_claim(s: Store) {
    for user in ["u", "v"] {
        s.user_connect("a", user, "e1", user).await.expect("user");
    }
    let short = Duration::from_millis(100);
    let first = s.claim_effects(short, 100).await.expect("claim");
    assert_eq!(first.len(), 2);
    s.forget_effect(&first[0]).await.expect("forget");
    assert!(s.claim_effects(short, 100).await.expect("claim").is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let again = s.claim_effects(short, 100).await.expect("claim");
    assert_eq!(again, vec![first[1].clone()], "same id, same effect");
}
