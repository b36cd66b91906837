//! Every core operation, once: which trait method it is, its RPC, its arguments and result,
//! and its request and reply messages. The gRPC server (`CoreService`) and client
//! (`GrpcCore`) are generated from this table, so an operation is not written again on each
//! side; arguments and results cross the wire through `convert::{Arg, Reply}`.

use async_trait::async_trait;
use channel_core::{
    ApiCore, CachedEvent, ChannelCounts, CoreError, CountReport, EdgeCore, Presence, Quota,
};
use switchyard_protocol::presence::Member;
use tonic::{Request, Response, Status};

use crate::client::GrpcCore;
use crate::convert::{error_to_status, Arg, Reply};
use crate::server::{serve_call, CoreService};
use crate::v1;
use crate::v1::channel_core_server::ChannelCore as Rpc;

/// `Trait { method "Rpc" (arg: Type, …) -> Result, Request => Reply; … }`: the argument names
/// are the request message's field names.
macro_rules! core_ops {
    ($(
        $core:ident {
            $( $method:ident $rpc:literal ( $($arg:ident : $ty:ty),* ) -> $out:ty,
               $req:ident => $rep:ident; )*
        }
    )*) => {
        #[tonic::async_trait]
        impl<C: EdgeCore + ApiCore + 'static> Rpc for CoreService<C> {
            $($(
                #[allow(unused_mut, unused_variables)]
                async fn $method(
                    &self,
                    req: Request<v1::$req>,
                ) -> Result<Response<v1::$rep>, Status> {
                    serve_call($rpc, req, |mut r| async move {
                        let out = $core::$method(
                            &*self.core,
                            $( <$ty as Arg<'_>>::from_wire(&mut r.$arg)? ),*
                        )
                        .await;
                        out.map(|out| Response::new(<$out as Reply<v1::$rep>>::to_wire(out)))
                            .map_err(error_to_status)
                    })
                    .await
                }
            )*)*
        }

        $(
            #[async_trait]
            impl $core for GrpcCore {
                $(
                    async fn $method(&self, $($arg: $ty),*) -> Result<$out, CoreError> {
                        let req = v1::$req { $( $arg: <$ty as Arg<'_>>::to_wire($arg) ),* };
                        let reply = self
                            .call($rpc, req, |mut c, r| async move { c.$method(r).await })
                            .await?;
                        Ok(<$out as Reply<v1::$rep>>::from_wire(reply.into_inner()))
                    }
                )*
            }
        )*
    };
}

core_ops! {
    EdgeCore {
        report_counts "ReportCounts" (edge: &str, reports: Vec<CountReport>) -> (),
            ReportCountsRequest => Empty;
        join_presence "JoinPresence"
            (app_id: &str, channel: &str, edge: &str, socket_id: &str, member: Member)
            -> Presence, JoinPresenceRequest => MembersReply;
        presence "Presence" (app_id: &str, channel: &str) -> Presence, ChannelRef => MembersReply;
        leave_presence "LeavePresence" (app_id: &str, channel: &str, edge: &str, socket_id: &str)
            -> (), ConnectionRef => Empty;
        cache_get "CacheGet" (app_id: &str, channel: &str) -> Option<CachedEvent>,
            ChannelRef => CacheGetReply;
        user_signed_in "UserSignedIn" (app_id: &str, user_id: &str, edge: &str, socket_id: &str)
            -> (), UserConnection => Empty;
        user_signed_out "UserSignedOut" (app_id: &str, user_id: &str, edge: &str, socket_id: &str)
            -> (), UserConnection => Empty;
        online "Online" (app_id: &str, user_ids: &[String]) -> Vec<String>,
            OnlineRequest => OnlineReply;
        heartbeat "Heartbeat" (edge: &str) -> bool, HeartbeatRequest => HeartbeatReply;
        admit_connection "AdmitConnection" (app_id: &str, edge: &str, max: u64) -> bool,
            AdmitConnectionRequest => AdmitConnectionReply;
        release_connection "ReleaseConnection" (app_id: &str, edge: &str) -> (),
            EdgeApp => Empty;
    }
    ApiCore {
        members "Members" (app_id: &str, channel: &str) -> Vec<Member>,
            ChannelRef => MembersReply;
        channel "Channel" (app_id: &str, channel: &str) -> ChannelCounts, ChannelRef => Counts;
        channels "Channels" (app_id: &str, prefix: &str) -> Vec<(String, ChannelCounts)>,
            ChannelsRequest => ChannelsReply;
        cache_peek "CachePeek" (app_id: &str, channel: &str) -> Option<CachedEvent>,
            ChannelRef => CacheGetReply;
        cache_put "CachePut" (app_id: &str, channel: &str, frame: String) -> (),
            CachePutRequest => Empty;
        take_quota "TakeQuota" (app_id: &str, quota: Quota, amount: u64, per_second: u64) -> bool,
            TakeQuotaRequest => TakeQuotaReply;
        ready "Ready" () -> (), Empty => Empty;
    }
}
