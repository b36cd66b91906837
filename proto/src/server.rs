//! Serves any `ChannelCore` (the real `Core`) over gRPC.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use channel_core::{ChannelCore, CountReport, Quota};
use switchyard_telemetry::{metrics, trace, TraceParent};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span};

use crate::convert::{counts_to_wire, error_to_status, member_from_wire, member_to_wire};
use crate::v1;
use crate::v1::channel_core_server::{ChannelCore as Rpc, ChannelCoreServer};
use crate::SERVICE;

pub struct CoreService {
    core: Arc<dyn ChannelCore>,
}

impl CoreService {
    pub fn new(core: Arc<dyn ChannelCore>) -> CoreService {
        CoreService { core }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn done<T>(result: Result<T, channel_core::CoreError>) -> Reply<T> {
    result.map(Response::new).map_err(error_to_status)
}

fn empty(result: Result<(), channel_core::CoreError>) -> Reply<v1::Empty> {
    done(result.map(|()| v1::Empty {}))
}

/// Serves one call of `method`: continues the caller's trace from the request metadata and
/// records the latency and failure metrics.
async fn serve_call<T, R, F, Fut>(method: &'static str, req: Request<T>, handle: F) -> Reply<R>
where
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = Reply<R>>,
{
    let span = if trace::enabled() {
        tracing::info_span!(
            "grpc.server",
            otel.name = method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = SERVICE,
            rpc.method = method,
        )
    } else {
        Span::none()
    };
    let parent = req
        .metadata()
        .get(TraceParent::HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    if let Some(parent) = parent {
        trace::set_parent(&span, parent);
    }
    let started = Instant::now();
    let reply = handle(req.into_inner()).instrument(span).await;
    let timing = metrics::process().grpc_server.get(method);
    timing.latency.observe(started.elapsed());
    if reply.is_err() {
        timing.errors.inc();
    }
    reply
}

#[tonic::async_trait]
impl Rpc for CoreService {
    async fn report_counts(&self, req: Request<v1::ReportCountsRequest>) -> Reply<v1::Empty> {
        serve_call("ReportCounts", req, |req| async move {
            let reports = req
                .reports
                .into_iter()
                .map(|r| CountReport {
                    app_id: r.app_id,
                    channel: r.channel,
                    count: r.count,
                })
                .collect();
            empty(self.core.report_counts(&req.edge, reports).await)
        })
        .await
    }

    async fn join_presence(
        &self,
        req: Request<v1::JoinPresenceRequest>,
    ) -> Reply<v1::MembersReply> {
        serve_call("JoinPresence", req, |r| async move {
            let member = member_from_wire(r.member.unwrap_or_default());
            let joined = self
                .core
                .join_presence(&r.app_id, &r.channel, &r.edge, &r.socket_id, member)
                .await;
            done(joined.map(|members| v1::MembersReply {
                members: members.into_iter().map(member_to_wire).collect(),
            }))
        })
        .await
    }

    async fn leave_presence(&self, req: Request<v1::ConnectionRef>) -> Reply<v1::Empty> {
        serve_call("LeavePresence", req, |r| async move {
            empty(
                self.core
                    .leave_presence(&r.app_id, &r.channel, &r.edge, &r.socket_id)
                    .await,
            )
        })
        .await
    }

    async fn members(&self, req: Request<v1::ChannelRef>) -> Reply<v1::MembersReply> {
        serve_call("Members", req, |r| async move {
            done(
                self.core
                    .members(&r.app_id, &r.channel)
                    .await
                    .map(|members| v1::MembersReply {
                        members: members.into_iter().map(member_to_wire).collect(),
                    }),
            )
        })
        .await
    }

    async fn channel(&self, req: Request<v1::ChannelRef>) -> Reply<v1::Counts> {
        serve_call("Channel", req, |r| async move {
            done(
                self.core
                    .channel(&r.app_id, &r.channel)
                    .await
                    .map(counts_to_wire),
            )
        })
        .await
    }

    async fn channels(&self, req: Request<v1::ChannelsRequest>) -> Reply<v1::ChannelsReply> {
        serve_call("Channels", req, |r| async move {
            done(self.core.channels(&r.app_id, &r.prefix).await.map(|list| {
                v1::ChannelsReply {
                    channels: list
                        .into_iter()
                        .map(|(channel, counts)| v1::ChannelCounts {
                            channel,
                            counts: Some(counts_to_wire(counts)),
                        })
                        .collect(),
                }
            }))
        })
        .await
    }

    async fn cache_get(&self, req: Request<v1::ChannelRef>) -> Reply<v1::CacheGetReply> {
        serve_call("CacheGet", req, |r| async move {
            done(
                self.core
                    .cache_get(&r.app_id, &r.channel)
                    .await
                    .map(|cached| match cached {
                        Some(c) => v1::CacheGetReply {
                            frame: Some(c.frame),
                            ttl_secs: c.ttl_secs,
                        },
                        None => v1::CacheGetReply::default(),
                    }),
            )
        })
        .await
    }

    async fn cache_put(&self, req: Request<v1::CachePutRequest>) -> Reply<v1::Empty> {
        serve_call("CachePut", req, |r| async move {
            empty(self.core.cache_put(&r.app_id, &r.channel, r.frame).await)
        })
        .await
    }

    async fn user_signed_in(&self, req: Request<v1::UserConnection>) -> Reply<v1::Empty> {
        serve_call("UserSignedIn", req, |r| async move {
            empty(
                self.core
                    .user_signed_in(&r.app_id, &r.user_id, &r.edge, &r.socket_id)
                    .await,
            )
        })
        .await
    }

    async fn user_signed_out(&self, req: Request<v1::UserConnection>) -> Reply<v1::Empty> {
        serve_call("UserSignedOut", req, |r| async move {
            empty(
                self.core
                    .user_signed_out(&r.app_id, &r.user_id, &r.edge, &r.socket_id)
                    .await,
            )
        })
        .await
    }

    async fn online(&self, req: Request<v1::OnlineRequest>) -> Reply<v1::OnlineReply> {
        serve_call("Online", req, |r| async move {
            done(
                self.core
                    .online(&r.app_id, &r.user_ids)
                    .await
                    .map(|user_ids| v1::OnlineReply { user_ids }),
            )
        })
        .await
    }

    async fn heartbeat(&self, req: Request<v1::HeartbeatRequest>) -> Reply<v1::HeartbeatReply> {
        serve_call("Heartbeat", req, |req| async move {
            let live = self.core.heartbeat(&req.edge).await;
            done(live.map(|live| v1::HeartbeatReply { live }))
        })
        .await
    }

    async fn admit_connection(
        &self,
        req: Request<v1::AdmitConnectionRequest>,
    ) -> Reply<v1::AdmitConnectionReply> {
        serve_call("AdmitConnection", req, |req| async move {
            let admitted = self
                .core
                .admit_connection(&req.app_id, &req.edge, req.max)
                .await;
            done(admitted.map(|admitted| v1::AdmitConnectionReply { admitted }))
        })
        .await
    }

    async fn release_connection(&self, req: Request<v1::EdgeApp>) -> Reply<v1::Empty> {
        serve_call("ReleaseConnection", req, |req| async move {
            empty(self.core.release_connection(&req.app_id, &req.edge).await)
        })
        .await
    }

    async fn take_quota(&self, req: Request<v1::TakeQuotaRequest>) -> Reply<v1::TakeQuotaReply> {
        serve_call("TakeQuota", req, |req| async move {
            let Some(quota) = Quota::parse(&req.quota) else {
                return Err(Status::invalid_argument(format!(
                    "unknown quota {:?}",
                    req.quota
                )));
            };
            let taken = self
                .core
                .take_quota(&req.app_id, quota, req.amount, req.per_second)
                .await;
            done(taken.map(|taken| v1::TakeQuotaReply { taken }))
        })
        .await
    }
}

/// Serves `core` over gRPC on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Arc<dyn ChannelCore>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(ChannelCoreServer::new(CoreService::new(core)))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}
