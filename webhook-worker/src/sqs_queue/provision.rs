//! Building the SQS client and finding (or creating) the queues it talks to.

use std::time::Duration;

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;

use super::{bounded, is_code, timed_out, unavailable, SqsQueueConfig};
use crate::QueueError;

pub(super) async fn client(config: &SqsQueueConfig) -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.command_timeout.min(Duration::from_secs(3)))
        .build();
    // Bodies are a few hundred bytes and every call has its own deadline here; the SDK's
    // throughput watchdog only adds false alarms around long polls.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .timeout_config(timeouts)
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(endpoint) = &config.endpoint_url {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            let local = Credentials::new("test", "test", None, None, "switchyard-local-sqs");
            loader = loader.credentials_provider(local);
        }
    }
    Client::new(&loader.load().await)
}

/// The main queue's URL, creating it (and the dead-letter queue) when given by name.
pub(super) async fn queue_url(
    client: &Client,
    config: &SqsQueueConfig,
) -> Result<String, QueueError> {
    let limit = config.command_timeout;
    let redrive = match &config.dead_letter_queue {
        Some(name) => Some(redrive_policy(client, config, name).await?),
        None => None,
    };
    if let Some(url) = &config.queue_url {
        if let Some(policy) = redrive {
            set_redrive_policy(client, limit, url, policy).await?;
        }
        return Ok(url.clone());
    }
    let mut create = client.create_queue().queue_name(&config.queue_name);
    if let Some(policy) = &redrive {
        create = create.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    match tokio::time::timeout(limit, create.send()).await {
        Ok(Ok(out)) => out
            .queue_url
            .ok_or_else(|| QueueError::Unavailable("sqs CreateQueue: no queue url".into())),
        // CreateQueue only refuses an existing queue whose attributes differ: this config
        // says what the redrive policy should be, so it wins.
        Ok(Err(e)) if is_code(&e, &["QueueNameExists", "QueueAlreadyExists"]) => {
            let url = get_url(client, limit, &config.queue_name).await?;
            if let Some(policy) = redrive {
                set_redrive_policy(client, limit, &url, policy).await?;
            }
            Ok(url)
        }
        Ok(Err(e)) => Err(unavailable("CreateQueue", e)),
        Err(_) => Err(timed_out("CreateQueue", limit)),
    }
}

async fn get_url(client: &Client, limit: Duration, name: &str) -> Result<String, QueueError> {
    let out = bounded(
        limit,
        "GetQueueUrl",
        client.get_queue_url().queue_name(name).send(),
    );
    out.await?
        .queue_url
        .ok_or_else(|| QueueError::Unavailable("sqs GetQueueUrl: no queue url".into()))
}

/// Creates the dead-letter queue if missing and returns the main queue's policy pointing at it.
async fn redrive_policy(
    client: &Client,
    config: &SqsQueueConfig,
    name: &str,
) -> Result<String, QueueError> {
    let limit = config.command_timeout;
    let created = bounded(
        limit,
        "CreateQueue",
        client.create_queue().queue_name(name).send(),
    );
    let url = created
        .await?
        .queue_url
        .ok_or_else(|| QueueError::Unavailable("sqs CreateQueue: no queue url".into()))?;
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send();
    let arn = bounded(limit, "GetQueueAttributes", attributes)
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError::Unavailable("sqs: dead-letter queue has no ARN".into()))?;
    let policy = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": config.max_receive_count.max(1),
    });
    Ok(policy.to_string())
}

async fn set_redrive_policy(
    client: &Client,
    limit: Duration,
    url: &str,
    policy: String,
) -> Result<(), QueueError> {
    let set = client
        .set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send();
    bounded(limit, "SetQueueAttributes", set).await.map(drop)
}
