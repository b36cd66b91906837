//! Distributed mode under concurrency: many sockets of the same users joining and leaving one
//! presence channel at once, through two edges and two channel-core replicas. Each user must be
//! announced exactly once each way, to clients and to webhooks.

mod cluster;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cluster::*;
use serde_json::json;
use support::{event_of, string_data, Client, Incoming};
use tokio::task::JoinSet;

const USERS: usize = 50;
const SOCKETS_PER_USER: usize = 4;

/// Reads `event` frames of `channel` from `observer` until every one of `expected` users has
/// been seen, then for a further quiet period (to catch duplicates); returns the count per
/// user. Bounded by `bound` overall.
async fn member_events(
    observer: &mut Client,
    event: &str,
    channel: &str,
    expected: usize,
    bound: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + bound;
    let quiet = Duration::from_millis(700);
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut others = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = if counts.len() >= expected {
            quiet.min(left)
        } else {
            left
        };
        match observer.next_within(wait).await {
            None => break,
            Some(Incoming::Json(f)) if event_of(&f) == event && f["channel"] == json!(channel) => {
                let user = string_data(&f)["user_id"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                *counts.entry(user).or_default() += 1;
            }
            Some(Incoming::Json(f)) => others.push(f),
            Some(other) => panic!("observer lost its connection: {other:?}"),
        }
    }
    assert!(
        counts.len() >= expected,
        "only {} of {expected} users announced with {event} within {bound:?}: {counts:?} \
         (other frames: {others:?})",
        counts.len()
    );
    counts
}

/// Asserts that exactly the users `u0..u{USERS}` (plus `extra`) appear, each exactly once.
fn assert_once_each(what: &str, counts: &HashMap<String, usize>, extra: &[&str]) {
    let mut expected: Vec<String> = (0..USERS).map(|u| format!("u{u}")).collect();
    expected.extend(extra.iter().map(|s| (*s).to_owned()));
    expected.sort();
    let mut got: Vec<String> = counts.keys().cloned().collect();
    got.sort();
    assert_eq!(got, expected, "{what}: the users announced");
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "{what}: users announced more than once: {repeated:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_and_leaves_announce_each_user_once() {
    let mut c = TestCluster::start(Options {
        cores: 2,
        webhooks: true,
        ..Options::default()
    })
    .await;
    let rest = c.rest();
    let channel = c.name("presence-c");
    let edges = [c.edges[0].addr(), c.edges[1].addr()];

    let mut observer = c.connect(0).await;
    join_presence(&mut observer, &channel, "observer").await;

    // 50 users × 4 sockets, 2 on each edge (so on each core replica), all joining at once.
    let started = Instant::now();
    let mut joins = JoinSet::new();
    for user in 0..USERS {
        for socket in 0..SOCKETS_PER_USER {
            let (addr, channel) = (edges[socket % 2], channel.clone());
            joins.spawn(async move {
                let mut client = connect_to(addr).await;
                join_presence(&mut client, &channel, &format!("u{user}")).await;
                (socket, client)
            });
        }
    }
    let mut clients = Vec::new();
    while let Some(joined) = joins.join_next().await {
        clients.push(joined.expect("a joining client failed"));
    }
    eprintln!(
        "{} sockets joined in {:?}",
        clients.len(),
        started.elapsed()
    );

    let added = member_events(
        &mut observer,
        "pusher_internal:member_added",
        &channel,
        USERS,
        Duration::from_secs(10),
    )
    .await;
    assert_once_each("member_added to the observer", &added, &[]);
    let mut all: Vec<String> = (0..USERS).map(|u| format!("u{u}")).collect();
    all.push("observer".into());
    all.sort();
    poll_until(
        "every user listed by REST",
        Duration::from_secs(5),
        || async {
            let ids = users(&rest, &channel).await?;
            let (s, body) = rest
                .get(
                    &format!("/channels/{channel}"),
                    &[("info", "user_count,subscription_count")],
                )
                .await;
            let expected = json!({
                "occupied": true,
                "user_count": USERS + 1,
                "subscription_count": USERS * SOCKETS_PER_USER + 1,
            });
            if ids == all && s == 200 && body == expected {
                Ok(())
            } else {
                Err(format!("{} users; {s} {body}", ids.len()))
            }
        },
    )
    .await;

    // All leave at once: half the sockets unsubscribe, the other half disconnect.
    let started = Instant::now();
    let mut leaves = JoinSet::new();
    for (socket, mut client) in clients {
        let channel = channel.clone();
        leaves.spawn(async move {
            if socket < 2 {
                client
                    .send_json(
                        &json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}),
                    )
                    .await;
                Some(client)
            } else {
                client.close().await;
                None
            }
        });
    }
    let mut still_open = Vec::new();
    while let Some(left) = leaves.join_next().await {
        still_open.extend(left.expect("a leaving client failed"));
    }
    eprintln!("all sockets left in {:?}", started.elapsed());

    let removed = member_events(
        &mut observer,
        "pusher_internal:member_removed",
        &channel,
        USERS,
        Duration::from_secs(10),
    )
    .await;
    assert_once_each("member_removed to the observer", &removed, &[]);
    poll_until("only the observer left", Duration::from_secs(5), || async {
        let ids = users(&rest, &channel).await?;
        (ids == ["observer"])
            .then_some(())
            .ok_or(format!("{ids:?}"))
    })
    .await;
    observer.close().await;
    let observer_left = Instant::now();
    poll_until(
        "the channel to end empty",
        Duration::from_secs(5),
        || async {
            let ids = users(&rest, &channel).await?;
            let names = channel_names(&rest).await?;
            (ids.is_empty() && !names.contains(&channel))
                .then_some(())
                .ok_or(format!("users {ids:?}, channels {names:?}"))
        },
    )
    .await;

    // Webhooks: one member_added and one member_removed per user (the removals after the
    // 3 s hold; the observer left last, so by its removal every other hold has passed).
    let bound = (observer_left + WEBHOOK_HOLD + Duration::from_secs(7))
        .saturating_duration_since(Instant::now());
    c.hooks()
        .wait_for("every member webhook", bound, |ev| {
            count_per_user(ev, "member_added", &channel).len() > USERS
                && count_per_user(ev, "member_removed", &channel).len() > USERS
                && count_events(ev, "channel_vacated", &channel, None) >= 1
        })
        .await;
    c.hooks().collect_for(Duration::from_secs(1)).await;
    let hooks = c.hooks();
    let events = hooks.events.clone();
    assert_once_each(
        "member_added webhooks",
        &count_per_user(&events, "member_added", &channel),
        &["observer"],
    );
    assert_once_each(
        "member_removed webhooks",
        &count_per_user(&events, "member_removed", &channel),
        &["observer"],
    );
    assert_eq!(
        count_events(&events, "channel_occupied", &channel, None),
        1,
        "channel_occupied webhooks"
    );
    assert_eq!(
        count_events(&events, "channel_vacated", &channel, None),
        1,
        "channel_vacated webhooks"
    );
    assert_eq!(hooks.problems(), Vec::<String>::new(), "webhook requests");
    drop(still_open);
    eprintln!("concurrency test done in {:?}", c.elapsed());
}
