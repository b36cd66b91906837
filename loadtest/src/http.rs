//! A keep-alive HTTP/1.1 client that signs Pusher API requests.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use switchyard_protocol::rest::{self, Query};
use switchyard_protocol::signature;
use tokio::net::TcpStream;

pub struct Api {
    server: String,
    app_id: String,
    key: String,
    secret: String,
    sender: SendRequest<Full<Bytes>>,
}

impl Api {
    pub async fn connect(
        server: &str,
        app_id: &str,
        key: &str,
        secret: &str,
    ) -> anyhow::Result<Api> {
        let stream = TcpStream::connect(server)
            .await
            .context("connect to the API")?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Api {
            server: server.to_owned(),
            app_id: app_id.to_owned(),
            key: key.to_owned(),
            secret: secret.to_owned(),
            sender,
        })
    }

    /// Signs and sends `POST /apps/{id}/events`; returns the HTTP status.
    pub async fn trigger(&mut self, body: String) -> anyhow::Result<u16> {
        let path = format!("/apps/{}/events", self.app_id);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let unsigned = format!(
            "auth_key={}&auth_timestamp={now}&auth_version=1.0&body_md5={}",
            self.key,
            rest::body_md5(body.as_bytes())
        );
        let to_sign = rest::string_to_sign("POST", &path, &Query::parse(&unsigned));
        let sig = signature::sign(&self.secret, to_sign.as_bytes());
        let req = Request::post(format!("{path}?{unsigned}&auth_signature={sig}"))
            .header(hyper::header::HOST, &self.server)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let status = res.status().as_u16();
        res.into_body().collect().await?;
        Ok(status)
    }
}
