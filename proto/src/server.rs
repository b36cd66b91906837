//! Serves any `ChannelCore` (the real `Core`) over gRPC.

use std::sync::Arc;

use channel_core::{ChannelCore, CountReport, Quota};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::convert::{counts_to_wire, error_to_status, member_from_wire, member_to_wire};
use crate::v1;
use crate::v1::channel_core_server::{ChannelCore as Rpc, ChannelCoreServer};

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

#[tonic::async_trait]
impl Rpc for CoreService {
    async fn report_counts(&self, req: Request<v1::ReportCountsRequest>) -> Reply<v1::Empty> {
        let req = req.into_inner();
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
    }

    async fn join_presence(
        &self,
        req: Request<v1::JoinPresenceRequest>,
    ) -> Reply<v1::MembersReply> {
        let r = req.into_inner();
        let member = member_from_wire(r.member.unwrap_or_default());
        let joined = self
            .core
            .join_presence(&r.app_id, &r.channel, &r.edge, &r.socket_id, member)
            .await;
        done(joined.map(|members| v1::MembersReply {
            members: members.into_iter().map(member_to_wire).collect(),
        }))
    }

    async fn leave_presence(&self, req: Request<v1::ConnectionRef>) -> Reply<v1::Empty> {
        let r = req.into_inner();
        empty(
            self.core
                .leave_presence(&r.app_id, &r.channel, &r.edge, &r.socket_id)
                .await,
        )
    }

    async fn members(&self, req: Request<v1::ChannelRef>) -> Reply<v1::MembersReply> {
        let r = req.into_inner();
        done(
            self.core
                .members(&r.app_id, &r.channel)
                .await
                .map(|members| v1::MembersReply {
                    members: members.into_iter().map(member_to_wire).collect(),
                }),
        )
    }

    async fn channel(&self, req: Request<v1::ChannelRef>) -> Reply<v1::Counts> {
        let r = req.into_inner();
        done(
            self.core
                .channel(&r.app_id, &r.channel)
                .await
                .map(counts_to_wire),
        )
    }

    async fn channels(&self, req: Request<v1::ChannelsRequest>) -> Reply<v1::ChannelsReply> {
        let r = req.into_inner();
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
    }

    async fn cache_get(&self, req: Request<v1::ChannelRef>) -> Reply<v1::CacheGetReply> {
        let r = req.into_inner();
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
    }

    async fn cache_put(&self, req: Request<v1::CachePutRequest>) -> Reply<v1::Empty> {
        let r = req.into_inner();
        empty(self.core.cache_put(&r.app_id, &r.channel, r.frame).await)
    }

    async fn user_signed_in(&self, req: Request<v1::UserConnection>) -> Reply<v1::Empty> {
        let r = req.into_inner();
        empty(
            self.core
                .user_signed_in(&r.app_id, &r.user_id, &r.edge, &r.socket_id)
                .await,
        )
    }

    async fn user_signed_out(&self, req: Request<v1::UserConnection>) -> Reply<v1::Empty> {
        let r = req.into_inner();
        empty(
            self.core
                .user_signed_out(&r.app_id, &r.user_id, &r.edge, &r.socket_id)
                .await,
        )
    }

    async fn online(&self, req: Request<v1::OnlineRequest>) -> Reply<v1::OnlineReply> {
        let r = req.into_inner();
        done(
            self.core
                .online(&r.app_id, &r.user_ids)
                .await
                .map(|user_ids| v1::OnlineReply { user_ids }),
        )
    }

    async fn heartbeat(&self, req: Request<v1::HeartbeatRequest>) -> Reply<v1::HeartbeatReply> {
        let live = self.core.heartbeat(&req.into_inner().edge).await;
        done(live.map(|live| v1::HeartbeatReply { live }))
    }

    async fn admit_connection(
        &self,
        req: Request<v1::AdmitConnectionRequest>,
    ) -> Reply<v1::AdmitConnectionReply> {
        let req = req.into_inner();
        let admitted = self
            .core
            .admit_connection(&req.app_id, &req.edge, req.max)
            .await;
        done(admitted.map(|admitted| v1::AdmitConnectionReply { admitted }))
    }

    async fn release_connection(&self, req: Request<v1::EdgeApp>) -> Reply<v1::Empty> {
        let req = req.into_inner();
        empty(self.core.release_connection(&req.app_id, &req.edge).await)
    }

    async fn take_quota(&self, req: Request<v1::TakeQuotaRequest>) -> Reply<v1::TakeQuotaReply> {
        let req = req.into_inner();
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
