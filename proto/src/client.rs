//! `GrpcCore`: the `ChannelCore` trait over gRPC, for edges and the API in the distributed
//! mode. Callers cannot tell it from the in-process `Core`.

use std::time::Duration;

use async_trait::async_trait;
use channel_core::{CachedEvent, ChannelCore, ChannelCounts, CoreError, CountReport, Quota};
use switchyard_protocol::presence::Member;
use tonic::transport::{Channel, Endpoint};

use crate::convert::{counts_from_wire, member_from_wire, member_to_wire, status_to_error};
use crate::v1;
use crate::v1::channel_core_client::ChannelCoreClient;

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

    fn client(&self) -> ChannelCoreClient<Channel> {
        // Cloning a tonic client is cheap and shares the connection.
        self.client.clone()
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
        self.client()
            .report_counts(req)
            .await
            .map_err(status_to_error)?;
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
            .client()
            .join_presence(req)
            .await
            .map_err(status_to_error)?;
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
        self.client()
            .leave_presence(req)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError> {
        let reply = self
            .client()
            .members(channel_ref(app_id, channel))
            .await
            .map_err(status_to_error)?;
        Ok(reply
            .into_inner()
            .members
            .into_iter()
            .map(member_from_wire)
            .collect())
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError> {
        let reply = self
            .client()
            .channel(channel_ref(app_id, channel))
            .await
            .map_err(status_to_error)?;
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
        let reply = self.client().channels(req).await.map_err(status_to_error)?;
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
            .client()
            .cache_get(channel_ref(app_id, channel))
            .await
            .map_err(status_to_error)?;
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
        self.client()
            .cache_put(req)
            .await
            .map_err(status_to_error)?;
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
        self.client()
            .user_signed_in(req)
            .await
            .map_err(status_to_error)?;
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
        self.client()
            .user_signed_out(req)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn online(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, CoreError> {
        let req = v1::OnlineRequest {
            app_id: app_id.to_owned(),
            user_ids: user_ids.to_vec(),
        };
        let reply = self.client().online(req).await.map_err(status_to_error)?;
        Ok(reply.into_inner().user_ids)
    }

    async fn heartbeat(&self, edge: &str) -> Result<bool, CoreError> {
        let req = v1::HeartbeatRequest {
            edge: edge.to_owned(),
        };
        let reply = self
            .client()
            .heartbeat(req)
            .await
            .map_err(status_to_error)?;
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
            .client()
            .admit_connection(req)
            .await
            .map_err(status_to_error)?;
        Ok(reply.into_inner().admitted)
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        let req = v1::EdgeApp {
            app_id: app_id.to_owned(),
            edge: edge.to_owned(),
        };
        self.client()
            .release_connection(req)
            .await
            .map_err(status_to_error)?;
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
            .client()
            .take_quota(req)
            .await
            .map_err(status_to_error)?;
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
