use std::time::Duration;

use serde::Deserialize;
use switchyard_apps::Secret;

use crate::duration::secs;

/// `[server]`: where to listen and how connections behave. Defaults match Pusher and soketi.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Client silence before the server pings (sent to clients in the handshake, in seconds).
    #[serde(rename = "activity_timeout_secs", deserialize_with = "secs")]
    pub activity_timeout: Duration,
    /// How long to wait for a pong after that ping before closing with 4201.
    #[serde(rename = "pong_timeout_secs", deserialize_with = "secs")]
    pub pong_timeout: Duration,
    /// Largest inbound WebSocket message; larger ones close the connection with 1009.
    pub max_message_bytes: usize,
    /// Frames queued per connection before it is closed as a slow consumer (4100).
    pub outbound_queue: usize,
    /// Bytes queued per connection before it is closed as a slow consumer (4100).
    pub outbound_queue_bytes: usize,
    /// Connections one edge (or the embedded server) holds at most; beyond it new ones are
    /// closed with 4100 so clients retry elsewhere or later. 0: no limit.
    pub max_edge_connections: usize,
    /// How long shutdown waits for connections to close after telling them to reconnect.
    #[serde(rename = "shutdown_grace_secs", deserialize_with = "secs")]
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// PEM certificate chain and private key: with both set, WebSocket and HTTP API
    /// connections are TLS only (`wss://`, `https://`). Health ports stay plain.
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// How often the certificate files are checked for a renewal.
    #[serde(rename = "tls_reload_secs", deserialize_with = "secs")]
    pub tls_reload: Duration,
    /// Bearer token for the admin API (`/admin/apps`); unset leaves that API off.
    pub admin_token: Option<Secret>,
    /// New WebSocket connections accepted per second from one IP address, per edge; 0: no limit.
    pub max_connections_per_ip_per_second: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".into(),
            port: 6001,
            activity_timeout: Duration::from_secs(120),
            pong_timeout: Duration::from_secs(30),
            max_message_bytes: 64 * 1024,
            outbound_queue: 1024,
            outbound_queue_bytes: 1 << 20,
            max_edge_connections: 0,
            shutdown_grace: Duration::from_secs(10),
            log_format: LogFormat::Text,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_reload: Duration::from_secs(5),
            admin_token: None,
            max_connections_per_ip_per_second: 0,
        }
    }
}

impl ServerConfig {
    /// Keys that `SWITCHYARD_<KEY>` overrides.
    pub const KEYS: [&'static str; 15] = [
        "host",
        "port",
        "activity_timeout_secs",
        "pong_timeout_secs",
        "max_message_bytes",
        "outbound_queue",
        "outbound_queue_bytes",
        "max_edge_connections",
        "shutdown_grace_secs",
        "log_format",
        "tls_cert_file",
        "tls_key_file",
        "tls_reload_secs",
        "admin_token",
        "max_connections_per_ip_per_second",
    ];

    pub(crate) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            errors.push(format!(
                "[server] host {:?} is not an IP address",
                self.host
            ));
        }
        if self.activity_timeout.is_zero() || self.pong_timeout.is_zero() {
            errors.push(
                "[server] activity_timeout_secs and pong_timeout_secs must be at least 1".into(),
            );
        }
        if self.max_message_bytes < 1024 {
            errors.push("[server] max_message_bytes must be at least 1024".into());
        }
        if self.tls_cert_file.is_empty() != self.tls_key_file.is_empty() {
            errors.push("[server] tls_cert_file and tls_key_file go together".into());
        }
        if self.tls_reload.is_zero() {
            errors.push("[server] tls_reload_secs must be at least 1".into());
        }
        if self.outbound_queue == 0 {
            errors.push("[server] outbound_queue must be at least 1".into());
        }
        if self.outbound_queue_bytes < self.max_message_bytes.max(64 * 1024) {
            errors.push(
                "[server] outbound_queue_bytes must hold at least one largest message \
                 (max_message_bytes, and 65536 at least)"
                    .into(),
            );
        }
        errors
    }
}
