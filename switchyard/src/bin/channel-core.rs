//! `channel-core [--config FILE]`: channel state over Redis, served over gRPC. Several
//! replicas may run at once.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use channel_core::{ApiCore, ChannelStore, Core};
use switchyard::{app_store, cluster, launch};

const USAGE: &str = "usage: channel-core [--config FILE]

Serves gRPC on [core] port (6301) and /up, /ready on [core] health_port (6302).
Needs Redis ([cluster] redis_url) and NATS ([cluster] nats_url).";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let name = cluster::instance_name("core", config.core.port);
        let store: Arc<dyn ChannelStore> = Arc::new(cluster::store(&config).await?);
        let bus = cluster::bus(&config).await?;
        let backend = app_store::backend(&config).await?;
        let apps = app_store::lookup(&config, backend, Some(bus.clone()), shutdown.clone());
        let core = Arc::new(
            Core::new(
                store,
                bus,
                apps,
                cluster::webhook_queue(&config, &name).await?,
            )
            .with_lease_ttl(Duration::from_millis(config.core.lease_ttl_ms)),
        );
        let reap_every = Duration::from_millis(config.core.reap_interval_ms);
        tokio::spawn(core.clone().run_reaper(reap_every, shutdown.clone()));
        tokio::spawn(
            core.clone()
                .run_holds(switchyard::HOLD_CHECK_EVERY, shutdown.clone()),
        );

        let health = launch::bind(
            &config.server.host,
            config.core.health_port,
            "health checks",
        )
        .await?;
        let probe = core.clone();
        tokio::spawn(cluster::serve_health(
            health,
            move || {
                let probe = probe.clone();
                // A channel query is a real store round trip: it proves Redis is reachable.
                async move { probe.channel("", "ready-probe").await.is_ok() }
            },
            shutdown.clone(),
        ));
        let listener = launch::bind(&config.server.host, config.core.port, "gRPC").await?;
        tracing::info!(addr = %listener.local_addr()?, name, "channel-core listening");
        switchyard_proto::serve(listener, core, shutdown).await?;
        Ok(())
    })
}
