//! The handle through which others reach one connection: its outbound queue and a way to
//! close it.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use switchyard_protocol::CloseCode;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub(crate) struct Peer {
    tx: mpsc::Sender<Utf8Bytes>,
    kill: Arc<Kill>,
}

struct Kill {
    token: CancellationToken,
    code: AtomicU16,
}

/// The connection's end of a [`Peer`].
pub(crate) struct Mailbox {
    pub rx: mpsc::Receiver<Utf8Bytes>,
    pub kill: KillSwitch,
}

/// Resolves when someone asked the connection to close.
pub(crate) struct KillSwitch(Arc<Kill>);

pub(crate) fn pair(queue_len: usize) -> (Peer, Mailbox) {
    let (tx, rx) = mpsc::channel(queue_len);
    let kill = Arc::new(Kill {
        token: CancellationToken::new(),
        code: AtomicU16::new(0),
    });
    (
        Peer {
            tx,
            kill: kill.clone(),
        },
        Mailbox {
            rx,
            kill: KillSwitch(kill),
        },
    )
}

impl Peer {
    /// Queues a frame without waiting; a full queue means a slow consumer, closed with 4100.
    pub fn send(&self, frame: Utf8Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame) {
            self.close(CloseCode::OverCapacity);
        }
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn close(&self, code: CloseCode) {
        let _ =
            self.kill
                .code
                .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire);
        self.kill.token.cancel();
    }
}

impl KillSwitch {
    /// Waits for a close request and returns its code.
    pub async fn killed(&self) -> u16 {
        self.0.token.cancelled().await;
        self.0.code.load(Ordering::Acquire)
    }
}
