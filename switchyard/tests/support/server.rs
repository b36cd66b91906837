//! [`TestServer`]: the embedded all-in-one server on an ephemeral port, and its clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use switchyard::Server;
use switchyard_config::Config;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use super::{main_app, Client, Rest, APP_ID, KEY, SECRET, WAIT};

/// A running embedded server. Dropping it cancels it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server from a complete TOML config (environment empty).
    pub async fn start(toml: &str) -> TestServer {
        let config = Config::load(Some(toml), &HashMap::new())
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n{toml}"));
        let server = Server::bind(config).await.expect("bind test server");
        let addr = server.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(server.run(stop.clone()));
        TestServer {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    /// Starts a server with only the main app, configured with `extra`.
    pub async fn with_main_app(extra: &str) -> TestServer {
        TestServer::start(&main_app(extra)).await
    }

    /// Cancels the server and waits (bounded) for `run` to return.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server run() did not return within 10 s of shutdown")
                .expect("server task panicked");
        }
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }

    /// Connects to the main app with protocol 7 and reads `connection_established`.
    pub async fn connect(&self) -> Client {
        self.connect_key(KEY).await
    }

    /// Connects to the app with `key` and reads `connection_established`.
    pub async fn connect_key(&self, key: &str) -> Client {
        let mut c = self
            .connect_raw(&format!(
                "/app/{key}?protocol=7&client=js&version=8.6.0&flash=false"
            ))
            .await;
        c.established().await;
        c
    }

    /// Opens a WebSocket to `path_and_query` and reads nothing.
    pub async fn connect_raw(&self, path_and_query: &str) -> Client {
        self.connect_with_origin(path_and_query, None).await
    }

    /// Opens a WebSocket with an optional `Origin` header and reads nothing.
    pub async fn connect_with_origin(&self, path_and_query: &str, origin: Option<&str>) -> Client {
        let mut req = self
            .ws_url(path_and_query)
            .into_client_request()
            .expect("client request");
        if let Some(origin) = origin {
            req.headers_mut().insert(
                "Origin",
                HeaderValue::from_str(origin).expect("origin header"),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("WebSocket connect timed out")
            .expect("WebSocket handshake failed");
        Client {
            ws,
            socket_id: String::new(),
        }
    }

    /// A REST client for the main app.
    pub fn rest(&self) -> Rest {
        self.rest_for(APP_ID, KEY, SECRET)
    }

    pub fn rest_for(&self, app_id: &str, key: &str, secret: &str) -> Rest {
        Rest {
            addr: self.addr,
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
