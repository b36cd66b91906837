//! The fault checker (issue 16): a workload of Pusher clients on both edges (each on a feed
//! channel and one presence channel, half of them signed in, each tracking its member list as
//! pusher-js does) under a steady, numbered trigger load, while faults are injected one per
//! round: kill -9 and SIGSTOP/SIGCONT (short, and longer than the lease) of an edge, a core
//! replica and the worker; edge 2 cut off from NATS and from its core; a Redis restart; NATS
//! down for 4 s; Redis losing every key followed by an edge crash. Membership churns while each
//! fault is active. After each fault it waits (bounded) for convergence and counts ghosts and
//! missing members, wrong client member lists, wrong occupancy, lost and duplicate triggers
//! and unbalanced webhooks; it prints a report table and fails if any count is not zero.
//!
//! `SWITCHYARD_CHAOS_ROUNDS` (default 1) repeats every fault kind; `deploy/local/chaos
//! [ROUNDS]` runs it with the report shown.

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../support/mod.rs"]
mod support;

mod checks;
mod client;
mod faults;
mod fleet;
mod load;
mod report;
mod round;

use std::collections::BTreeMap;
use std::time::Instant;

use cluster::Options;
use round::{Checker, CONVERGE_BOUND};

fn options() -> Options {
    Options {
        cores: 2,
        private_nats: true,
        private_redis: true,
        durable_redis: true,
        webhooks: true,
        edge2_via_proxy: true,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_leaves_presence_occupancy_triggers_and_webhooks_exact() {
    let rounds: usize = std::env::var("SWITCHYARD_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let started = Instant::now();
    let mut checker = Checker::start(options()).await;
    let mut results = Vec::new();
    let mut outcomes = BTreeMap::new();
    let mut problems = Vec::new();
    for round in 1..=rounds {
        for fault in faults::ALL {
            let result = checker.round(fault).await;
            eprintln!(
                "chaos: round {round} {:<24} converged {:?}, {} error(s)",
                result.fault,
                result.converged,
                result.errors()
            );
            // A cluster a fault left wrong is replaced, so that what the next fault does is
            // not hidden by what this one left behind; its logs are kept.
            if result.errors() > 0 {
                let (o, p) = checker.finish(true).await;
                merge(&mut outcomes, o);
                problems.extend(p);
                checker = Checker::start(options()).await;
            }
            results.push(result);
        }
    }
    let (o, p) = checker.finish(false).await;
    merge(&mut outcomes, o);
    problems.extend(p);

    let mut report = format!(
        "\nchaos report: {rounds} round(s) in {:?}; convergence bound {CONVERGE_BOUND:?}\n{}\n",
        started.elapsed(),
        report::table(&results)
    );
    for r in results.iter().filter(|r| !r.notes.is_empty()) {
        report.push_str(&format!("  {}:\n    {}\n", r.fault, r.notes.join("\n    ")));
    }
    report.push_str(&format!("trigger answers: {outcomes:?}\n"));
    eprintln!("{report}");

    let errors: usize = results.iter().map(|r| r.errors()).sum();
    let odd: Vec<_> = outcomes
        .keys()
        .filter(|s| !["200", "503", "no answer"].contains(&s.as_str()))
        .collect();
    assert!(problems.is_empty(), "bad webhook requests: {problems:?}");
    assert!(
        odd.is_empty(),
        "triggers answered with neither 200 nor 503: {outcomes:?}"
    );
    assert_eq!(
        errors, 0,
        "the fault checker found errors (see the report above)"
    );
}

fn merge(total: &mut BTreeMap<String, u64>, more: BTreeMap<String, u64>) {
    for (k, n) in more {
        *total.entry(k).or_default() += n;
    }
}
