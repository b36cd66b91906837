//! Checking cluster state: bounded polling, REST state queries and soft assertions.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::support::Rest;

/// Retries `check` every 50 ms until it returns Some, within `bound`; panics naming `what`
/// and the last value seen otherwise.
pub async fn poll_until<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + bound;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        if Instant::now() > deadline {
            panic!("timed out after {bound:?} waiting for {what}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sorted user ids of `GET /channels/{channel}/users` (Err with the answer otherwise).
pub async fn users(rest: &Rest, channel: &str) -> Result<Vec<String>, String> {
    let (status, body) = rest.get(&format!("/channels/{channel}/users"), &[]).await;
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    let mut ids: Vec<String> = body["users"]
        .as_array()
        .ok_or_else(|| format!("no users array: {body}"))?
        .iter()
        .map(|u| u["id"].as_str().unwrap_or("?").to_owned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// The channel names of `GET /channels` (Err with the answer otherwise).
pub async fn channel_names(rest: &Rest) -> Result<Vec<String>, String> {
    let (status, body) = rest.get("/channels", &[]).await;
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    let mut names: Vec<String> = body["channels"]
        .as_object()
        .ok_or_else(|| format!("no channels object: {body}"))?
        .keys()
        .cloned()
        .collect();
    names.sort();
    Ok(names)
}

/// Soft assertions: every failed check is recorded, and [`Checks::finish`] reports them all,
/// so one server bug does not hide the checks after it.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            let what = what.into();
            eprintln!("CHECK FAILED: {what}");
            self.0.push(what);
        }
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}
