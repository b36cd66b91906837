use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use switchyard_telemetry::metrics;
use tokio::sync::mpsc;

use crate::{Bus, BusError, Envelope, Subscription};

type Subscribers = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Envelope>)>>;

/// An in-process bus: a map from subject to subscriber queues.
///
/// Queues are unbounded because the consumers (an edge's per-channel fan-out task) only move
/// frames into bounded per-socket queues and never wait, so they drain as fast as they fill;
/// a bounded queue here would force a choice between blocking the publisher and dropping.
#[derive(Default, Clone)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    subjects: Subscribers,
}

impl MemoryBus {
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent across a panic in another holder: every mutation is a
        // single insert or retain.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Unsubscribe {
    bus: MemoryBus,
    subject: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut inner = self.bus.lock();
        if let Some(subs) = inner.subjects.get_mut(&self.subject) {
            subs.retain(|(id, _)| *id != self.id);
            if subs.is_empty() {
                inner.subjects.remove(&self.subject);
            }
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, subject: &str, mut envelope: Envelope) -> Result<(), BusError> {
        let _span = crate::publish_span("memory", subject, &mut envelope);
        let metrics = metrics::process();
        metrics.bus_published.inc();
        let inner = self.lock();
        if let Some(subs) = inner.subjects.get(subject) {
            for (_, tx) in subs {
                // A closed receiver is a subscription being dropped right now: nothing to do.
                if tx.send(envelope.clone()).is_ok() {
                    metrics.bus_received.inc();
                }
            }
        }
        Ok(())
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            inner
                .subjects
                .entry(subject.to_owned())
                .or_default()
                .push((id, tx));
            id
        };
        let guard = Unsubscribe {
            bus: self.clone(),
            subject: subject.to_owned(),
            id,
        };
        Ok(Subscription::new(rx, Box::new(guard)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_to_every_subscriber_until_dropped() {
        let bus = MemoryBus::new();
        let mut a = bus.subscribe("s").await.expect("subscribe");
        let mut b = bus.subscribe("s").await.expect("subscribe");
        for i in 0..3u8 {
            bus.publish("s", Envelope::frame(vec![i], None))
                .await
                .expect("publish");
        }
        for i in 0..3u8 {
            assert_eq!(a.next().await.map(|e| e.payload.to_vec()), Some(vec![i]));
            assert_eq!(b.next().await.map(|e| e.payload.to_vec()), Some(vec![i]));
        }
        drop(a);
        assert_eq!(bus.lock().subjects.get("s").map(Vec::len), Some(1));
        drop(b);
        assert!(bus.lock().subjects.is_empty());
    }

    #[tokio::test]
    async fn subjects_are_isolated() {
        let bus = MemoryBus::new();
        let mut a = bus.subscribe("a").await.expect("subscribe");
        bus.publish("b", Envelope::frame("x", None))
            .await
            .expect("publish");
        bus.publish("a", Envelope::frame("y", None))
            .await
            .expect("publish");
        assert_eq!(a.next().await.map(|e| e.payload), Some("y".into()));
    }
}
