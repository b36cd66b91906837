//! Frame parsing and signature checks: the per-message work of the edge and the API.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use switchyard_protocol::{frame, rest, signature, ClientFrame};

fn parsing(c: &mut Criterion) {
    let subscribe = r#"{"event":"pusher:subscribe","data":{"channel":"presence-room","auth":"278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c","channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}"}}"#;
    let client_event = r#"{"event":"client-typing","channel":"private-chat","data":{"user":"a","text":"hello there"}}"#;
    c.bench_function("parse subscribe", |b| {
        b.iter(|| ClientFrame::parse(black_box(subscribe)))
    });
    c.bench_function("parse client event", |b| {
        b.iter(|| ClientFrame::parse(black_box(client_event)))
    });
    c.bench_function("encode channel event", |b| {
        b.iter(|| frame::channel_event("my-event", "my-channel", black_box(r#"{"a":"b"}"#), None))
    });
}

fn signatures(c: &mut Criterion) {
    let secret = "7ad3773142a6692b25b8";
    let msg = "1234.1234:private-foobar";
    let sig = signature::sign(secret, msg.as_bytes());
    c.bench_function("verify channel auth", |b| {
        b.iter(|| signature::verify(secret, black_box(msg.as_bytes()), &sig))
    });
    let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    let q = rest::Query::parse("auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c");
    c.bench_function("verify REST request", |b| {
        b.iter(|| {
            rest::verify(
                secret,
                "POST",
                "/apps/3/events",
                &q,
                black_box(body),
                1353088179,
            )
        })
    });
}

criterion_group!(benches, parsing, signatures);
criterion_main!(benches);
