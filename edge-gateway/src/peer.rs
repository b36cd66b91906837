//! The handle through which others reach one connection: its outbound queue and a way to
//! close it.
//!
//! The queue is a `VecDeque` behind a mutex rather than a channel because an idle connection
//! should cost almost nothing: an empty `VecDeque` allocates nothing, while a bounded tokio
//! channel allocates a block of slots up front (about 1 KB per connection here). After a
//! burst, the buffer is released once it drains. The connection's task is woken through an
//! `AtomicWaker`: it is polled directly by the task's loop, so the task keeps no waiter
//! future for it, and a wake-up takes no lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use switchyard_protocol::CloseCode;
use switchyard_telemetry::metrics;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Spare capacity kept after a burst drains; beyond it the buffer is freed.
const KEEP_CAPACITY: usize = 8;

#[derive(Clone)]
pub(crate) struct Peer {
    shared: Arc<Shared>,
}

/// How much may wait for one connection before it counts as a slow consumer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimit {
    pub frames: usize,
    pub bytes: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    limit: QueueLimit,
    /// 0 while open; otherwise the close code someone asked for.
    close: AtomicU16,
    wake: AtomicWaker,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
}

/// Connections closed as slow consumers since the process started (all edges in it).
static SLOW_CONSUMERS: AtomicU64 = AtomicU64::new(0);

/// How many connections were closed because their queue overflowed (4100).
pub fn slow_consumers_closed() -> u64 {
    SLOW_CONSUMERS.load(Ordering::Relaxed)
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

pub(crate) fn pair(limit: QueueLimit) -> (Peer, Mailbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        limit,
        close: AtomicU16::new(0),
        wake: AtomicWaker::new(),
    });
    (
        Peer {
            shared: shared.clone(),
        },
        Mailbox { shared },
    )
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
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
    /// Queues a frame without waiting; false if it was not queued. A queue over its frame or
    /// byte limit means a slow consumer: the connection is closed with 4100 (and counted)
    /// rather than let it hold ever more memory or slow down everyone else's fan-out.
    pub fn send(&self, frame: Utf8Bytes) -> bool {
        let mut queue = self.shared.queue();
        let limit = self.shared.limit;
        if queue.frames.len() >= limit.frames || queue.bytes + frame.len() > limit.bytes {
            drop(queue);
            if self.close(CloseCode::OverCapacity) {
                SLOW_CONSUMERS.fetch_add(1, Ordering::Relaxed);
                metrics::process().slow_consumers.inc();
            }
            return false;
        }
        queue.bytes += frame.len();
        queue.frames.push_back(frame);
        drop(queue);
        self.shared.wake.wake();
        true
    }

    /// Asks the connection to close with `code`; the first request wins (and returns true).
    pub fn close(&self, code: CloseCode) -> bool {
        let won = self
            .shared
            .close
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.shared.wake.wake();
        won
    }
}

impl Mailbox {
    /// Waits for the next frame or close request; a close request goes first.
    /// Cancel-safe: nothing is taken from the queue unless it is returned.
    #[cfg(test)]
    pub async fn next(&self) -> Outgoing {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next frame or close request, or `Pending` with the task's waker registered.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Outgoing> {
        if let Some(out) = self.try_next() {
            return Poll::Ready(out);
        }
        // Registered before looking again, so a send in between is not missed.
        self.shared.wake.register(cx.waker());
        match self.try_next() {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }

    pub fn try_next(&self) -> Option<Outgoing> {
        if let Some(code) = self.shared.closing() {
            return Some(Outgoing::Close(code));
        }
        let mut queue = self.shared.queue();
        let frame = queue.frames.pop_front()?;
        queue.bytes -= frame.len();
        if queue.frames.is_empty() && queue.frames.capacity() > KEEP_CAPACITY {
            queue.frames.shrink_to(KEEP_CAPACITY);
        }
        Some(Outgoing::Frame(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_owned())
    }

    fn pair(frames: usize) -> (Peer, Mailbox) {
        super::pair(QueueLimit {
            frames,
            bytes: 1 << 20,
        })
    }

    #[tokio::test]
    async fn too_many_queued_bytes_close_as_a_slow_consumer() {
        let (peer, mailbox) = super::pair(QueueLimit {
            frames: 100,
            bytes: 10,
        });
        let before = slow_consumers_closed();
        peer.send(text("12345"));
        peer.send(text("67890"));
        assert!(matches!(mailbox.try_next(), Some(Outgoing::Frame(_))));
        peer.send(text("abcde"));
        assert!(
            matches!(mailbox.try_next(), Some(Outgoing::Frame(_))),
            "bytes were given back"
        );
        peer.send(text("fghij"));
        peer.send(text("k"));
        assert!(matches!(
            mailbox.try_next(),
            Some(Outgoing::Close(CloseCode::OverCapacity))
        ));
        assert!(slow_consumers_closed() > before, "counted");
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
