//! Chaos: under a steady trigger load, kill and restart an edge, a channel-core replica, the
//! webhook worker, NATS and Redis in turn; then check that no presence member is a ghost, no
//! webhook was lost, and every surviving client still receives. Prints a report.
//!
//! `SWITCHYARD_CHAOS_ROUNDS` (default 1) repeats the whole cycle; `deploy/local/chaos` runs a
//! longer form with the report shown.

mod cluster;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::*;
use serde_json::json;
use support::{Client, Incoming, Rest};

const FEED: &str = "chaos-feed";
const PRESENCE: &str = "presence-chaos";
/// Subscribers and presence users kept on each edge.
const PER_EDGE: usize = 3;
/// How long each part stays down.
const OUTAGE: Duration = Duration::from_millis(700);

/// One client of the fleet: where it is, and its presence user if it joined.
struct Member {
    edge: usize,
    user: String,
    client: Client,
}

/// Waits for `event` on the feed; Err says why not (closed, dropped, silent).
async fn receives(client: &mut Client, event: &str, bound: Duration) -> Result<(), String> {
    let deadline = Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_within(left).await {
            Some(Incoming::Json(v)) if v["event"] == event => return Ok(()),
            Some(Incoming::Json(_)) => continue,
            Some(other) => return Err(format!("{other:?}")),
            None => return Err(format!("no {event} within {bound:?}")),
        }
    }
}

async fn join(c: &TestCluster, edge: usize, user: String) -> Member {
    let mut client = c.connect(edge).await;
    client.subscribe(FEED).await;
    join_presence(&mut client, &c.name(PRESENCE), &user).await;
    Member { edge, user, client }
}

/// Triggers on the feed every 25 ms until stopped; counts answers by status.
fn steady_load(
    rest: Rest,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<HashMap<u16, u64>>>) {
    let statuses = Arc::new(Mutex::new(HashMap::new()));
    let counts = statuses.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let body = json!({"name": "load", "channel": FEED, "data": n.to_string()});
            let (status, _) = rest.post("/events", &body).await;
            *counts.lock().expect("lock").entry(status).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    (task, statuses)
}

/// Sends a probe and sorts the fleet into those that got it and those that did not (which
/// are dropped: the test then replaces them, as a real client would reconnect).
async fn probe(c: &TestCluster, fleet: &mut Vec<Member>, tag: &str) -> (usize, Vec<String>) {
    let event = format!("probe-{tag}");
    let rest = c.rest();
    let sent = poll_until(
        "a probe trigger accepted",
        Duration::from_secs(15),
        || async {
            let body = json!({"name": event, "channel": FEED, "data": "{}"});
            match rest.post("/events", &body).await {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    sent.await;
    let mut lost = Vec::new();
    let mut kept = Vec::new();
    for mut m in fleet.drain(..) {
        match receives(&mut m.client, &event, Duration::from_secs(5)).await {
            Ok(()) => kept.push(m),
            Err(why) => lost.push(format!("{} on edge {}: {why}", m.user, m.edge + 1)),
        }
    }
    *fleet = kept;
    (fleet.len(), lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_survives_each_part_failing() {
    let rounds: usize = std::env::var("SWITCHYARD_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut c = TestCluster::start(Options {
        cores: 2,
        private_nats: true,
        private_redis: true,
        durable_redis: true,
        webhooks: true,
        ..Options::default()
    })
    .await;
    let presence = c.name(PRESENCE);
    let mut fleet = Vec::new();
    let mut next_user = 0;
    for edge in [0, 1] {
        for _ in 0..PER_EDGE {
            next_user += 1;
            fleet.push(join(&c, edge, format!("u{next_user}")).await);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (load, statuses) = steady_load(c.rest(), stop.clone());
    let mut report = vec![format!(
        "{:<10} {:>8} {:>11} {:>9}  lost clients",
        "part", "down ms", "recover ms", "replaced"
    )];

    for round in 1..=rounds {
        for part in ["edge", "core", "worker", "nats", "redis"] {
            let started = Instant::now();
            match part {
                "edge" => c.edges[0].kill(),
                "core" => c.cores[1].kill(),
                "worker" => c.worker.as_mut().expect("worker").kill(),
                "nats" => c.nats_backend().kill(),
                _ => c.redis_backend().kill(),
            }
            tokio::time::sleep(OUTAGE).await;
            let down = started.elapsed();
            match part {
                "edge" => c.edges[0].restart().await,
                "core" => c.cores[1].restart().await,
                "worker" => c.worker.as_mut().expect("worker").restart().await,
                "nats" => c.nats_backend().start().await,
                _ => c.redis_backend().start().await,
            }
            for s in c
                .edges
                .iter_mut()
                .chain(c.cores.iter_mut())
                .chain(std::iter::once(&mut c.api))
                .chain(c.worker.iter_mut())
            {
                s.wait_ready(Duration::from_secs(20)).await;
            }
            let recovered = started.elapsed();
            let (_, lost) = probe(&c, &mut fleet, &format!("{round}-{part}")).await;
            // Replace lost clients on their edge, as pusher-js would reconnect.
            let mut replaced = 0;
            for edge in [0, 1] {
                while fleet.iter().filter(|m| m.edge == edge).count() < PER_EDGE {
                    next_user += 1;
                    fleet.push(join(&c, edge, format!("u{next_user}")).await);
                    replaced += 1;
                }
            }
            report.push(format!(
                "{:<10} {:>8} {:>11} {:>9}  {}",
                format!("{part}#{round}"),
                down.as_millis(),
                recovered.as_millis(),
                replaced,
                if lost.is_empty() {
                    "-".to_owned()
                } else {
                    lost.join("; ")
                }
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load task");

    // Every surviving client still receives.
    let (alive, lost) = probe(&c, &mut fleet, "final").await;
    assert!(
        lost.is_empty(),
        "clients that stopped receiving at the end: {lost:?}"
    );

    // No ghosts: once dead edges are reaped, the members are exactly the live users.
    let live: BTreeSet<String> = fleet.iter().map(|m| m.user.clone()).collect();
    let rest = c.rest();
    poll_until(
        "presence members to equal the live users",
        LEASE_TTL * 3,
        || async {
            let members: BTreeSet<String> = users(&rest, &presence).await?.into_iter().collect();
            if members == live {
                Ok(())
            } else {
                Err(format!("members {members:?}, live {live:?}"))
            }
        },
    )
    .await;

    // No webhook lost: per user, added minus removed is 1 for the live and 0 for the rest.
    let settle = WEBHOOK_HOLD + LEASE_TTL + Duration::from_secs(10);
    let hooks = c.hooks();
    hooks
        .wait_for(
            "member webhooks matching the live users",
            settle,
            |events| {
                let events = distinct(events);
                let added = count_per_user(&events, "member_added", &presence);
                let removed = count_per_user(&events, "member_removed", &presence);
                (1..=next_user).all(|n| {
                    let user = format!("u{n}");
                    let net = added.get(&user).copied().unwrap_or(0) as i64
                        - removed.get(&user).copied().unwrap_or(0) as i64;
                    net == i64::from(live.contains(&user))
                })
            },
        )
        .await;
    let problems = hooks.problems();
    assert!(problems.is_empty(), "bad webhook requests: {problems:?}");

    let statuses = statuses.lock().expect("lock").clone();
    report.push(format!(
        "steady load: trigger answers by status {statuses:?}; {alive} live clients received the final probe; {} users over the run",
        next_user
    ));
    eprintln!(
        "\nchaos report ({rounds} round(s)):\n{}\n",
        report.join("\n")
    );
    let unexpected: Vec<_> = statuses
        .keys()
        .filter(|s| **s != 200 && **s != 503)
        .collect();
    assert!(
        unexpected.is_empty(),
        "triggers answered with neither 200 nor 503: {statuses:?}"
    );
}
