//! Per-app batching: an app with `webhook_batching` gets the jobs of one pull that match one
//! webhook in a single POST `{"time_ms":…,"events":[e1,e2,…]}`, as Pusher itself sends them.
//!
//! Only jobs pulled together are batched: waiting for more would delay every webhook of the
//! app, and a pull already returns whatever piled up while the previous one was delivered.
//! A batch is therefore at most `pull_batch` events.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_apps::App;
use tokio::task::JoinSet;

use crate::retry::{self, Finished};
use crate::worker::{give_up, wants, Context};
use crate::{Leased, WebhookJob};

/// Splits one pull into per-app groups: apps in order of first appearance, each group in
/// pull order, so a batch lists its events in the order they were queued.
pub(crate) fn by_app(jobs: Vec<Leased>) -> Vec<Vec<Leased>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<Leased>> = Vec::new();
    for leased in jobs {
        match index.get(&leased.job.app_id) {
            Some(&i) => groups[i].push(leased),
            None => {
                index.insert(leased.job.app_id.clone(), groups.len());
                groups.push(vec![leased]);
            }
        }
    }
    groups
}

/// The receiver-facing key of one POST to webhook `n`. Built from lease ids, which survive
/// redelivery where the backend allows, so a receiver can drop a duplicate; a single job
/// gets the same key batched or not.
pub(crate) fn idempotency_key(app_id: &str, batch: &[Leased], n: usize) -> String {
    match batch {
        [] => format!("{app_id}-{n}"),
        [one] => format!("{app_id}-{}-{n}", one.id),
        [first, .., last] => format!("{app_id}-{}..{}-{n}", first.id, last.id),
    }
}

/// Sends `group` (jobs of `app`, pulled together) to each matching webhook as one body, in
/// parallel, and returns once every webhook has it or has been given up; a given-up batch is
/// dead-lettered job by job, so each can be listed and replayed on its own.
pub(crate) async fn deliver(ctx: &Arc<Context>, app: &App, group: &[Leased]) {
    let mut deliveries = JoinSet::new();
    for (n, hook) in app.webhooks.iter().enumerate() {
        let batch: Vec<Leased> = group
            .iter()
            .filter(|l| wants(hook, &l.job))
            .cloned()
            .collect();
        if batch.is_empty() {
            continue;
        }
        let key = idempotency_key(&app.id, &batch, n);
        let (ctx, hook, app_id) = (ctx.clone(), hook.clone(), app.id.clone());
        deliveries.spawn(async move {
            let events: Vec<&WebhookJob> = batch.iter().map(|l| &l.job).collect();
            let finished = retry::deliver(&ctx, &app_id, &hook, &events, &key).await;
            if let Finished::GaveUp(error) = finished {
                give_up(&ctx, &batch, Some(&hook.url), &error).await;
            }
        });
    }
    while deliveries.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LeaseId, WebhookEvent};

    fn leased(id: &str, app_id: &str) -> Leased {
        Leased {
            id: LeaseId::new(id),
            job: WebhookJob {
                app_id: app_id.into(),
                event: WebhookEvent::CacheMiss {
                    channel: "cache-a".into(),
                },
                time_ms: 1,
                only_url: None,
                id: None,
            },
        }
    }

    #[test]
    fn groups_keep_pull_order_per_app() {
        let jobs = vec![
            leased("1", "a"),
            leased("2", "b"),
            leased("3", "a"),
            leased("4", "a"),
        ];
        let ids: Vec<Vec<String>> = by_app(jobs)
            .iter()
            .map(|g| g.iter().map(|l| l.id.to_string()).collect())
            .collect();
        assert_eq!(ids, [vec!["1", "3", "4"], vec!["2"]]);
    }

    #[test]
    fn a_single_job_keeps_its_unbatched_key() {
        let one = [leased("7-0", "a")];
        assert_eq!(idempotency_key("a", &one, 0), "a-7-0-0");
        let two = [leased("7-0", "a"), leased("9-0", "a")];
        assert_eq!(idempotency_key("a", &two, 1), "a-7-0..9-0-1");
    }
}
