//! The handle through which others reach one connection: its outbound queue and a way to
//! close it.
//!
//! The queue is a `VecDeque` behind a mutex rather than a channel because an idle connection
//! should cost almost nothing: an empty `VecDeque` allocates nothing, while a bounded tokio
//! channel allocates a block of slots up front (about 1 KB per connection here). After a
//! burst, the buffer is released once it drains.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use switchyard_protocol::CloseCode;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Spare capacity kept after a burst drains; beyond it the buffer is freed.
const KEEP_CAPACITY: usize = 8;

#[derive(Clone)]
pub(crate) struct Peer {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<VecDeque<Utf8Bytes>>,
    limit: usize,
    /// 0 while open; otherwise the close code someone asked for.
    close: AtomicU16,
    wake: Notify,
}

/// The connection's own end: what to write next.
pub(crate) struct Mailbox {
    shared: Arc<Shared>,
}

/// What the connection should do next.
pub(crate) enum Outgoing {
    Frame(Utf8Bytes),
    Close(CloseCode),
}

pub(crate) fn pair(limit: usize) -> (Peer, Mailbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        limit,
        close: AtomicU16::new(0),
        wake: Notify::new(),
    });
    (
        Peer {
            shared: shared.clone(),
        },
        Mailbox { shared },
    )
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Utf8Bytes>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closing(&self) -> Option<CloseCode> {
        // Checked on every outbound frame: the common "still open" case skips the code lookup.
        match self.close.load(Ordering::Acquire) {
            0 => None,
            code => CloseCode::from_code(code),
        }
    }
}

impl Peer {
    /// Queues a frame without waiting; a full queue means a slow consumer, closed with 4100.
    pub fn send(&self, frame: Utf8Bytes) {
        let mut queue = self.shared.queue();
        if queue.len() >= self.shared.limit {
            drop(queue);
            self.close(CloseCode::OverCapacity);
            return;
        }
        queue.push_back(frame);
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn close(&self, code: CloseCode) {
        let _ =
            self.shared
                .close
                .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire);
        self.shared.wake.notify_one();
    }
}

impl Mailbox {
    /// Waits for the next frame or close request; a close request goes first.
    /// Cancel-safe: nothing is taken from the queue unless it is returned.
    pub async fn next(&self) -> Outgoing {
        loop {
            if let Some(out) = self.try_next() {
                return out;
            }
            // `notify_one` stores a permit when nobody waits, so a send between the check
            // above and this await is not missed.
            self.shared.wake.notified().await;
        }
    }

    pub fn try_next(&self) -> Option<Outgoing> {
        if let Some(code) = self.shared.closing() {
            return Some(Outgoing::Close(code));
        }
        let mut queue = self.shared.queue();
        let frame = queue.pop_front();
        if queue.is_empty() && queue.capacity() > KEEP_CAPACITY {
            queue.shrink_to(KEEP_CAPACITY);
        }
        frame.map(Outgoing::Frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_owned())
    }

    #[tokio::test]
    async fn frames_arrive_in_order_then_overflow_closes() {
        let (peer, mailbox) = pair(2);
        peer.send(text("a"));
        peer.send(text("b"));
        assert!(matches!(mailbox.next().await, Outgoing::Frame(f) if f.as_str() == "a"));
        peer.send(text("c"));
        peer.send(text("d"));
        assert!(matches!(
            mailbox.next().await,
            Outgoing::Close(CloseCode::OverCapacity)
        ));
    }

    #[tokio::test]
    async fn first_close_request_wins() {
        let (peer, mailbox) = pair(4);
        peer.close(CloseCode::Unauthorized);
        peer.close(CloseCode::OverCapacity);
        assert!(matches!(
            mailbox.next().await,
            Outgoing::Close(CloseCode::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn a_waiting_mailbox_wakes_on_send() {
        let (peer, mailbox) = pair(4);
        let waiter =
            tokio::spawn(async move { matches!(mailbox.next().await, Outgoing::Frame(_)) });
        tokio::task::yield_now().await;
        peer.send(text("x"));
        assert!(waiter.await.expect("join"));
    }
}
