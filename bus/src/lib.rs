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
use tokio::sync::mpsc;

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
        }
    }

    pub fn control(control: Control) -> Envelope {
        Envelope {
            payload: Bytes::new(),
            except_socket: None,
            control: Some(control),
        }
    }
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
