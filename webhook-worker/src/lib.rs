//! Webhook jobs, the queue they wait in, and the worker that signs and delivers them.

mod deliver;
mod depth;
mod receivers;
mod redis_queue;
mod retry;
pub mod service;
mod sqs_queue;
mod worker;

// Dead letters, batching and the dead-letter endpoints.
mod batch;
mod dead_letter;
mod dead_letter_api;
mod redis_dead_letters;

// The contract (jobs, queue traits, the memory queue) lives in its own crate so that core and
// edges need not depend on this one; re-exported so the worker's users see one crate.
pub use redis_queue::{RedisQueue, RedisQueueConfig, DEFAULT_GROUP, DEFAULT_STREAM_KEY};
pub use sqs_queue::{SqsQueue, SqsQueueConfig};
pub use switchyard_webhook::{
    push_with_retry, LeaseId, Leased, MemoryQueue, QueueError, WebhookEvent, WebhookJob,
    WebhookQueue, WebhookSink,
};
pub use worker::{matches, wants, WorkerConfig};

pub use dead_letter::{
    replay, DeadLetter, DeadLetterError, DeadLetters, Failure, MemoryDeadLetters, Replay,
    DEFAULT_DEAD_LETTER_CAP,
};
pub use dead_letter_api::{DeadLetterApi, DeadLetterCommand, ADMIN_PREFIX};
pub use redis_dead_letters::RedisDeadLetters;
pub use worker::run_with_dead_letters;
