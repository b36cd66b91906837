//! [`Proxy`]: a TCP proxy inside the test process that the test can cut, so one service can be
//! partitioned from another without network namespaces (which need root).

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Relays every connection made to `127.0.0.1:port` to an upstream port. While cut, it drops
/// every proxied connection and closes new ones as soon as they are accepted: to the service
/// behind it, the upstream is unreachable. Dropping the proxy ends its tasks.
pub struct Proxy {
    pub port: u16,
    cut: watch::Sender<bool>,
}

impl Proxy {
    /// Listens on `port` (picked free with the cluster's other ports).
    pub async fn start(port: u16, upstream: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the proxy's port");
        let (cut, rx) = watch::channel(false);
        tokio::spawn(accept(listener, upstream, rx));
        Proxy { port, cut }
    }

    /// Drops every proxied connection and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

async fn accept(listener: TcpListener, upstream: u16, mut cut: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                if !*cut.borrow() {
                    tokio::spawn(relay(inbound, upstream, cut.clone()));
                }
            }
            changed = cut.changed() => {
                if changed.is_err() {
                    return; // the Proxy was dropped
                }
            }
        }
    }
}

async fn relay(mut inbound: TcpStream, upstream: u16, mut cut: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    // `wait_for` also returns at once if the cut came before this relay started, and with
    // Err once the proxy is dropped: either way both sockets are dropped.
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}

/// The proxies between edge 2 and the services it depends on (see `Options::edge2_via_proxy`).
pub struct EdgeLinks {
    pub nats: Proxy,
    pub core: Proxy,
}
