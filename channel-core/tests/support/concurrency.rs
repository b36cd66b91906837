//! Cases where many tasks race on one channel: every first/last must be decided once.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{member, Store};

const USERS: usize = 50;
const SOCKETS: usize = 4;
const CH: &str = "presence-busy";

/// (edge, socket, user) for every connection; a user's sockets are spread over two edges.
fn connections() -> Vec<(String, String, String)> {
    (0..USERS)
        .flat_map(|u| {
            (0..SOCKETS).map(move |k| {
                let edge = format!("e{}", k % 2);
                (edge, format!("{u}.{k}"), format!("user-{u}"))
            })
        })
        .collect()
}

/// Runs `op` for every connection on its own task; returns per user how often it said true.
async fn race<F, Fut>(s: &Store, op: F) -> HashMap<String, usize>
where
    F: Fn(Store, String, String, String) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for (edge, socket, user) in connections() {
        let fut = op(s.clone(), edge, socket, user.clone());
        tasks.spawn(async move { (user, fut.await) });
    }
    let mut hits: HashMap<String, usize> = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (user, hit) = done.expect("task");
        *hits.entry(user).or_default() += usize::from(hit);
    }
    hits
}

fn assert_once_per_user(hits: &HashMap<String, usize>, what: &str) {
    assert_eq!(hits.len(), USERS);
    for (user, n) in hits {
        assert_eq!(*n, 1, "{user} got {n} {what}");
    }
}

pub async fn concurrent_joins_and_leaves_decide_once(s: Store) {
    let firsts = race(&s, |s, edge, socket, user| async move {
        let j = s.join("a", CH, &edge, &socket, member(&user), 1000).await;
        j.expect("join").first
    })
    .await;
    assert_once_per_user(&firsts, "firsts");
    assert_eq!(s.members("a", CH).await.expect("members").len(), USERS);
    assert_eq!(
        s.counts("a", CH).await.expect("counts").user_count,
        USERS as u64
    );

    let lasts = race(&s, |s, edge, socket, _| async move {
        let l = s.leave("a", CH, &edge, &socket).await.expect("leave");
        l.expect("a member").last
    })
    .await;
    assert_once_per_user(&lasts, "lasts");
    assert!(s.members("a", CH).await.expect("members").is_empty());

    // Joins and leaves interleaved: a user may come and go several times, but every
    // arrival is matched by exactly one departure.
    let balance = Arc::new(std::sync::Mutex::new(HashMap::<String, i64>::new()));
    let tally = balance.clone();
    race(&s, move |s, edge, socket, user| {
        let tally = tally.clone();
        async move {
            let first = s.join("a", CH, &edge, &socket, member(&user), 1000).await;
            let first = first.expect("join").first;
            let left = s.leave("a", CH, &edge, &socket).await.expect("leave");
            let last = left.expect("a member").last;
            let mut t = tally.lock().expect("tally");
            *t.entry(user).or_default() += i64::from(first) - i64::from(last);
            first
        }
    })
    .await;
    let balance = balance.lock().expect("tally").clone();
    assert!(balance.values().all(|b| *b == 0), "{balance:?}");
    assert!(s.members("a", CH).await.expect("members").is_empty());
}

pub async fn concurrent_count_reports_occupy_and_vacate_once(s: Store) {
    async fn report_all(s: &Store, count: u64) -> (usize, usize) {
        let mut tasks = JoinSet::new();
        for e in 0..20 {
            let s = s.clone();
            tasks.spawn(async move {
                let edge = format!("edge-{e}");
                s.set_edge_count("a", "busy", &edge, count)
                    .await
                    .expect("count")
            });
        }
        let (mut occupied, mut vacated) = (0, 0);
        while let Some(t) = tasks.join_next().await {
            let t = t.expect("task");
            occupied += usize::from(t.occupied());
            vacated += usize::from(t.vacated());
        }
        (occupied, vacated)
    }
    assert_eq!(report_all(&s, 2).await, (1, 0));
    assert_eq!(
        s.counts("a", "busy")
            .await
            .expect("counts")
            .subscription_count,
        40
    );
    assert_eq!(report_all(&s, 0).await, (0, 1));
    assert!(s.occupied("a", "").await.expect("occupied").is_empty());
}
