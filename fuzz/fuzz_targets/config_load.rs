//! The config file and the environment: the input is the file's text, then optionally a NUL
//! byte and `KEY=VALUE` lines for the environment.
//!
//! Properties: nothing panics, with the file and without it; a refused config says at least one
//! thing; an accepted one holds everything validation promises to the services that read it.
#![no_main]

use std::collections::{HashMap, HashSet};

use libfuzzer_sys::fuzz_target;
use switchyard_config::Config;

fuzz_target!(|data: &[u8]| {
    let (file, env) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], environment(&data[nul + 1..])),
        None => (data, HashMap::new()),
    };
    // The binaries read the file with `read_to_string`, so it is UTF-8.
    let Ok(file) = std::str::from_utf8(file) else {
        return;
    };
    check(Config::load(Some(file), &env));
    check(Config::load(None, &env));
});

fn environment(lines: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(lines)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn check(loaded: Result<Config, switchyard_config::ConfigErrors>) {
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without a reason");
            return;
        }
    };
    let s = &config.server;
    assert!(s.max_message_bytes >= 1024);
    assert!(!s.activity_timeout.is_zero() && !s.pong_timeout.is_zero());
    assert!(!config.edge.heartbeat.is_zero() && !config.core.reap_interval.is_zero());
    assert!(config.core.lease_ttl >= 2 * config.edge.heartbeat);
    assert!(config.worker.concurrency >= 1 && !config.app_store.cache_ttl.is_zero());
    // Backends are enums: an unknown name cannot get this far.
    assert!(
        !config.app_store.backend.is_database() || !config.app_store.database_url.expose().is_empty()
    );

    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    // With no app in the file, the default app is added.
    assert!(!config.apps.is_empty());
    for app in &config.apps {
        assert!(!app.id.is_empty() && !app.key.is_empty() && !app.secret.expose().is_empty());
        assert!(ids.insert(&app.id), "duplicate app id {:?}", app.id);
        assert!(keys.insert(&app.key), "duplicate app key");
        assert_eq!(format!("{:?}", app.secret), "***");
        assert!(app.max_payload_bytes >= 1 && app.max_channel_name_length >= 1);
        assert!(app.max_batch_size >= 1 && app.max_channels_per_trigger >= 1);
        assert!(app.max_event_name_length >= 1 && app.max_presence_members >= 1);
        assert!(!app.enable_client_messages || app.client_events_per_second >= 1);
        for hook in &app.webhooks {
            assert!(hook.url.starts_with("http://") || hook.url.starts_with("https://"));
        }
    }
}
