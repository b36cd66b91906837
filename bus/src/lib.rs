//! The Bus carries finished Pusher frames between the tiers.
//!
//! Subjects are per (app, channel) and per (app, user), so a node receives only what it holds
//! local interest in. The embedded mode uses [`MemoryBus`]; the distributed mode a NATS bus
//! behind the same trait.

mod memory;
mod nats;
mod subject;

use async_trait::async_trait;
use bytes::Bytes;
use switchyard_telemetry::{trace, TraceParent};
use tokio::sync::mpsc;
use tracing::Span;

pub use memory::MemoryBus;
pub use nats::NatsBus;
pub use subject::{
    channel_subject, decode_token, encode_token, user_subject, watch_subject, APPS_CHANGED_SUBJECT,
};

/// One message on the bus: the frame bytes plus routing headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The complete frame to write to each recipient socket, serialized once by the publisher.
    pub payload: Bytes,
    /// A socket that must not receive this frame (the sender of a client event, or the
    /// `socket_id` given to a trigger).
    pub except_socket: Option<String>,
    /// A control instruction instead of a frame to deliver.
    pub control: Option<Control>,
    /// The trace the message belongs to, when spans are exported; set by `publish`.
    pub trace: Option<TraceParent>,
    /// When the HTTP API accepted the trigger this frame comes from (microseconds since the
    /// Unix epoch), for the fan-out latency histogram; `None` for other frames.
    pub accepted_at_us: Option<u64>,
    /// For `member_added` / `member_removed`: the channel's membership sequence number after
    /// the change, so an edge can drop a stale event and notice a missed one.
    pub seq: Option<u64>,
}

/// Instructions that travel on user subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Close every connection signed in as the subject's user with 4009.
    TerminateUser,
}

impl Envelope {
    pub fn frame(payload: impl Into<Bytes>, except_socket: Option<String>) -> Envelope {
        Envelope {
            payload: payload.into(),
            except_socket,
            control: None,
            trace: None,
            accepted_at_us: None,
            seq: None,
        }
    }

    pub fn control(control: Control) -> Envelope {
        Envelope {
            payload: Bytes::new(),
            except_socket: None,
            control: Some(control),
            trace: None,
            accepted_at_us: None,
            seq: None,
        }
    }

    /// Stamps a membership event with its sequence number (see [`Envelope::seq`]).
    pub fn member_seq(mut self, seq: u64) -> Envelope {
        self.seq = Some(seq);
        self
    }

    /// Stamps when the trigger was accepted (see [`Envelope::accepted_at_us`]).
    pub fn accepted_at(mut self, unix_us: u64) -> Envelope {
        self.accepted_at_us = Some(unix_us);
        self
    }
}

/// What every backend's `publish` does first: inside a sampled trace, a `bus.publish` span for
/// the hop; in any trace, the context the receiver continues. Returns the span to hold until
/// the publish is done. With tracing off this is one relaxed load.
fn publish_span(system: &'static str, subject: &str, envelope: &mut Envelope) -> Span {
    if !trace::enabled() {
        return Span::none();
    }
    let span = if trace::current_is_sampled() {
        tracing::info_span!(
            "bus.publish",
            otel.kind = "producer",
            messaging.system = system,
            messaging.destination.name = subject,
        )
    } else {
        Span::none()
    };
    if envelope.trace.is_none() {
        envelope.trace = trace::of(&span).or_else(trace::current);
    }
    span
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// Publish/subscribe by subject.
///
/// Contract: messages published on one subject by one publisher arrive in order at every
/// subscription that existed when `publish` returned; a subscription sees nothing published
/// before `subscribe` returned. Dropping the [`Subscription`] unsubscribes.
#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, subject: &str, envelope: Envelope) -> Result<(), BusError>;
    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError>;

    /// Whether the bus can carry messages right now (for `/ready`). An in-process bus always
    /// can.
    fn is_connected(&self) -> bool {
        true
    }

    /// Counts the times the connection came back after a loss. Whatever was published while
    /// it was down is lost to this node's subscriptions, so a change tells a subscriber to
    /// re-read the state those messages carried. An in-process bus never loses messages.
    fn reconnects(&self) -> tokio::sync::watch::Receiver<u64> {
        tokio::sync::watch::channel(0).1
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Envelope>,
    _guard: Box<dyn Send + Sync>,
}

impl Subscription {
    pub fn new(rx: mpsc::UnboundedReceiver<Envelope>, guard: Box<dyn Send + Sync>) -> Self {
        Subscription { rx, _guard: guard }
    }

    /// The next message, or `None` once the bus has closed this subscription.
    pub async fn next(&mut self) -> Option<Envelope> {
        self.rx.recv().await
    }
}
