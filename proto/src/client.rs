//! `GrpcCore`: the `ChannelCore` trait over gRPC, for edges and the API in the distributed
//! mode. Callers cannot tell it from the in-process `Core`.

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use channel_core::{CachedEvent, ChannelCore, ChannelCounts, CoreError, CountReport, Quota};
use switchyard_protocol::presence::Member;
use switchyard_telemetry::{metrics, trace, TraceParent};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span};

use crate::convert::{counts_from_wire, member_from_wire, member_to_wire, status_to_error};
use crate::v1;
use crate::v1::channel_core_client::ChannelCoreClient;
use crate::SERVICE;

/// Every call gives up after this long, so a hung core shows up as "unavailable" rather than
/// as a stuck subscribe or API request.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct GrpcCore {
    client: ChannelCoreClient<Channel>,
}

impl GrpcCore {
    /// Prepares a client for `url` (`http://host:port`). Connects lazily and reconnects by
    /// itself, so an edge can start before core and survive core restarts.
    pub fn new(url: &str) -> Result<GrpcCore, CoreError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| CoreError::Unavailable(format!("invalid core url {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true);
        Ok(GrpcCore {
            client: ChannelCoreClient::new(endpoint.connect_lazy()),
        })
    }

    /// One call of `method`: a client span whose W3C context travels in the request metadata
    /// (so core's spans join the caller's trace), the latency and failure metrics, and the
    /// status mapped back to a `CoreError`.
    async fn call<Req, Res, F, Fut>(
        &self,
        method: &'static str,
        req: Req,
        rpc: F,
    ) -> Result<Response<Res>, CoreError>
    where
        F: FnOnce(ChannelCoreClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Res>, Status>>,
    {
        let span = if trace::enabled() {
            tracing::info_span!(
                "grpc.client",
                otel.name = method,
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = SERVICE,
                rpc.method = method,
            )
        } else {
            Span::none()
        };
        let mut request = Request::new(req);
        if let Some(value) = trace::of(&span).and_then(|t| t.encode().parse().ok()) {
            request.metadata_mut().insert(TraceParent::HEADER, value);
        }
        let started = Instant::now();
        // Cloning a tonic client is cheap and shares the connection.
        let result = rpc(self.client.clone(), request).instrument(span).await;
        let timing = metrics::process().grpc_client.get(method);
        timing.latency.observe(started.elapsed());
        if result.is_err() {
            timing.errors.inc();
        }
        result.map_err(status_to_error)
    }
}

#[async_trait]
impl ChannelCore for GrpcCore {
    async fn report_counts(&self, edge: &str, reports: Vec<CountReport>) -> Result<(), CoreError> {
        let req = v1::ReportCountsRequest {
            edge: edge.to_owned(),
            reports: reports
                .into_iter()
                .map(|r| v1::CountReport {
                    app_id: r.app_id,
                    channel: r.channel,
                    count: r.count,
                })
                .collect(),
        };
        self.call("ReportCounts", req, |mut c, r| async move {
            c.report_counts(r).await
        })
        .await?;
        Ok(())
    }

    async fn join_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
    ) -> Result<Vec<Member>, CoreError> {
        let req = v1::JoinPresenceRequest {
            app_id: app_id.to_owned(),
            channel: channel.to_owned(),
            edge: edge.to_owned(),
            socket_id: socket_id.to_owned(),
            member: Some(member_to_wire(member)),
        };
        let reply = self
            .call("JoinPresence", req, |mut c, r| async move {
                c.join_presence(r).await
            })
            .await?;
        Ok(reply
            .into_inner()
            .members
            .into_iter()
            .map(member_from_wire)
            .collect())
    }

    async fn leave_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        let req = v1::ConnectionRef {
            app_id: app_id.to_owned(),
            channel: channel.to_owned(),
            edge: edge.to_owned(),
            socket_id: socket_id.to_owned(),
        };
        self.call("LeavePresence", req, |mut c, r| async move {
            c.leave_presence(r).await
        })
        .await?;
        Ok(())
    }

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError> {
        let reply = self
            .call(
                "Members",
                channel_ref(app_id, channel),
                |mut c, r| async move { c.members(r).await },
            )
            .await?;
        Ok(reply
            .into_inner()
            .members
            .into_iter()
            .map(member_from_wire)
            .collect())
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError> {
        let reply = self
            .call(
                "Channel",
                channel_ref(app_id, channel),
                |mut c, r| async move { c.channel(r).await },
            )
            .await?;
        Ok(counts_from_wire(Some(reply.into_inner())))
    }

    async fn channels(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError> {
        let req = v1::ChannelsRequest {
            app_id: app_id.to_owned(),
            prefix: prefix.to_owned(),
        };
        let reply = self
            .call(
                "Channels",
                req,
                |mut c, r| async move { c.channels(r).await },
            )
            .await?;
        Ok(reply
            .into_inner()
            .channels
            .into_iter()
            .map(|c| (c.channel, counts_from_wire(c.counts)))
            .collect())
    }

    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<CachedEvent>, CoreError> {
        let reply = self
            .call(
                "CacheGet",
                channel_ref(app_id, channel),
                |mut c, r| async move { c.cache_get(r).await },
            )
            .await?;
        let reply = reply.into_inner();
        Ok(reply.frame.map(|frame| CachedEvent {
            frame,
            ttl_secs: reply.ttl_secs,
        }))
    }

    async fn cache_put(&self, app_id: &str, channel: &str, frame: String) -> Result<(), CoreError> {
        let req = v1::CachePutRequest {
            app_id: app_id.to_owned(),
            channel: channel.to_owned(),
            frame,
        };
        self.call(
            "CachePut",
            req,
            |mut c, r| async move { c.cache_put(r).await },
        )
        .await?;
        Ok(())
    }

    async fn user_signed_in(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        let req = user_connection(app_id, user_id, edge, socket_id);
        self.call("UserSignedIn", req, |mut c, r| async move {
            c.user_signed_in(r).await
        })
        .await?;
        Ok(())
    }

    async fn user_signed_out(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        let req = user_connection(app_id, user_id, edge, socket_id);
        self.call("UserSignedOut", req, |mut c, r| async move {
            c.user_signed_out(r).await
        })
        .await?;
        Ok(())
    }

    async fn online(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, CoreError> {
        let req = v1::OnlineRequest {
            app_id: app_id.to_owned(),
            user_ids: user_ids.to_vec(),
        };
        let reply = self
            .call("Online", req, |mut c, r| async move { c.online(r).await })
            .await?;
        Ok(reply.into_inner().user_ids)
    }

    async fn heartbeat(&self, edge: &str) -> Result<bool, CoreError> {
        let req = v1::HeartbeatRequest {
            edge: edge.to_owned(),
        };
        let reply = self
            .call(
                "Heartbeat",
                req,
                |mut c, r| async move { c.heartbeat(r).await },
            )
            .await?;
        Ok(reply.into_inner().live)
    }

    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        let req = v1::AdmitConnectionRequest {
            app_id: app_id.to_owned(),
            edge: edge.to_owned(),
            max,
        };
        let reply = self
            .call("AdmitConnection", req, |mut c, r| async move {
                c.admit_connection(r).await
            })
            .await?;
        Ok(reply.into_inner().admitted)
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        let req = v1::EdgeApp {
            app_id: app_id.to_owned(),
            edge: edge.to_owned(),
        };
        self.call("ReleaseConnection", req, |mut c, r| async move {
            c.release_connection(r).await
        })
        .await?;
        Ok(())
    }

    async fn take_quota(
        &self,
        app_id: &str,
        quota: Quota,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError> {
        let req = v1::TakeQuotaRequest {
            app_id: app_id.to_owned(),
            quota: quota.as_str().to_owned(),
            amount,
            per_second,
        };
        let reply = self
            .call(
                "TakeQuota",
                req,
                |mut c, r| async move { c.take_quota(r).await },
            )
            .await?;
        Ok(reply.into_inner().taken)
    }
}

fn channel_ref(app_id: &str, channel: &str) -> v1::ChannelRef {
    v1::ChannelRef {
        app_id: app_id.to_owned(),
        channel: channel.to_owned(),
    }
}

fn user_connection(app_id: &str, user_id: &str, edge: &str, socket_id: &str) -> v1::UserConnection {
    v1::UserConnection {
        app_id: app_id.to_owned(),
        user_id: user_id.to_owned(),
        edge: edge.to_owned(),
        socket_id: socket_id.to_owned(),
    }
}
