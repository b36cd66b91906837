//! Configuration: a TOML file, then `SWITCHYARD_*` environment overrides, then validation of
//! the whole. Every problem found is reported at once; a bad explicit config is fatal.

mod app_store;
mod cluster;
mod duration;
mod env;
mod server;
mod telemetry;

use std::collections::HashMap;

use serde::Deserialize;
use switchyard_apps::App;

pub use app_store::{AppStoreBackend, AppStoreSection};
pub use cluster::{
    ApiSection, ClusterConfig, CoreSection, EdgeSection, WebhookQueueBackend, WorkerSection,
};
pub use server::{LogFormat, ServerConfig};
pub use telemetry::TelemetrySection;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub apps: Vec<App>,
    pub cluster: ClusterConfig,
    pub edge: EdgeSection,
    pub api: ApiSection,
    pub core: CoreSection,
    pub worker: WorkerSection,
    pub app_store: AppStoreSection,
    pub telemetry: TelemetrySection,
}

/// Sections besides `[server]` and `[[apps]]`; `SWITCHYARD_<SECTION>_<KEY>` overrides each key.
const SECTIONS: [&str; 7] = [
    "cluster",
    "edge",
    "api",
    "core",
    "worker",
    "app_store",
    "telemetry",
];

/// Every problem found in a configuration, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Builds the config from the file's text (`None` for no file) and the environment.
    pub fn load(file: Option<&str>, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut table = match file.map(toml::from_str::<toml::Table>) {
            None => toml::Table::new(),
            Some(Ok(table)) => table,
            Some(Err(e)) => {
                return Err(ConfigErrors(vec![format!(
                    "config file is not valid TOML: {e}"
                )]))
            }
        };
        for key in table.keys() {
            if key != "server" && key != "apps" && !SECTIONS.contains(&key.as_str()) {
                errors.push(format!(
                    "unknown section [{key}] (expected [server], [[apps]] or one of {SECTIONS:?})"
                ));
            }
        }
        let cluster: ClusterConfig = section(&mut table, "cluster", env, &mut errors);
        let edge: EdgeSection = section(&mut table, "edge", env, &mut errors);
        let api: ApiSection = section(&mut table, "api", env, &mut errors);
        let core: CoreSection = section(&mut table, "core", env, &mut errors);
        let worker: WorkerSection = section(&mut table, "worker", env, &mut errors);
        let app_store: AppStoreSection = section(&mut table, "app_store", env, &mut errors);
        let mut telemetry: TelemetrySection = section(&mut table, "telemetry", env, &mut errors);
        errors.extend(telemetry.apply_otel_env(env));
        errors.extend(telemetry.validate());
        errors.extend(cluster::validate(&cluster, &edge, &core, &worker));
        errors.extend(app_store.validate());
        let mut server_table = match table.remove("server") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                errors.push("[server] must be a table".into());
                toml::Table::new()
            }
        };
        env::apply_server_overrides(&mut server_table, env);
        let server = match ServerConfig::deserialize(toml::Value::Table(server_table)) {
            Ok(server) => server,
            Err(e) => {
                errors.push(format!("[server]: {e}"));
                ServerConfig::default()
            }
        };
        errors.extend(server.validate());
        let mut apps = Vec::new();
        match table.remove("apps") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    match App::deserialize(item) {
                        Ok(app) => apps.push(app),
                        Err(e) => errors.push(format!("apps[{i}]: {e}")),
                    }
                }
            }
            Some(_) => errors.push("apps must be an array of tables ([[apps]])".into()),
        }
        match env::default_app(env, apps.is_empty()) {
            Ok(Some(app)) => {
                apps.retain(|a| a.id != app.id);
                apps.insert(0, app);
            }
            Ok(None) => {}
            Err(mut e) => errors.append(&mut e),
        }
        errors.extend(validate_apps(&apps));
        if errors.is_empty() {
            Ok(Config {
                server,
                apps,
                cluster,
                edge,
                api,
                core,
                worker,
                app_store,
                telemetry,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Reads `[name]` with `SWITCHYARD_<NAME>_<KEY>` overrides; on error records it and uses the
/// defaults so the remaining sections are still checked.
fn section<T: for<'de> Deserialize<'de> + Default>(
    table: &mut toml::Table,
    name: &str,
    env: &HashMap<String, String>,
    errors: &mut Vec<String>,
) -> T {
    let mut t = match table.remove(name) {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(_) => {
            errors.push(format!("[{name}] must be a table"));
            toml::Table::new()
        }
    };
    env::apply_section_overrides(&mut t, name, env);
    T::deserialize(toml::Value::Table(t)).unwrap_or_else(|e| {
        errors.push(format!("[{name}]: {e}"));
        T::default()
    })
}

fn validate_apps(apps: &[App]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut ids = HashMap::new();
    let mut keys = HashMap::new();
    for (i, app) in apps.iter().enumerate() {
        let at = format!("app {:?}", app.id);
        if app.id.is_empty() || app.key.is_empty() || app.secret.expose().is_empty() {
            errors.push(format!("apps[{i}]: id, key and secret must not be empty"));
        }
        if let Some(j) = ids.insert(app.id.clone(), i) {
            errors.push(format!("apps[{i}] and apps[{j}] share the id {:?}", app.id));
        }
        if let Some(j) = keys.insert(app.key.clone(), i) {
            errors.push(format!("apps[{i}] and apps[{j}] share a key"));
        }
        if app.client_events_per_second == 0 && app.enable_client_messages {
            errors.push(format!("{at}: client_events_per_second must be at least 1"));
        }
        for (field, value) in [
            ("max_payload_bytes", app.max_payload_bytes),
            ("max_channels_per_trigger", app.max_channels_per_trigger),
            ("max_batch_size", app.max_batch_size),
            ("max_channel_name_length", app.max_channel_name_length),
            ("max_event_name_length", app.max_event_name_length),
            ("max_presence_members", app.max_presence_members),
        ] {
            if value == 0 {
                errors.push(format!("{at}: {field} must be at least 1"));
            }
        }
        for hook in &app.webhooks {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                errors.push(format!(
                    "{at}: webhook url {:?} must start with http:// or https://",
                    hook.url
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests;
