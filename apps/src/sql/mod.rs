//! Apps in MySQL/MariaDB or PostgreSQL, in one table `switchyard_apps`.
//!
//! The id, key, secret and enabled flag are columns (lookups, uniqueness, and a quick look
//! with a SQL client); every other setting is the JSON text of those fields in `settings`, so
//! adding a setting to [`App`] needs no migration.

mod schema;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::error::DatabaseError;
use sqlx::mysql::{MySql, MySqlConnectOptions};
use sqlx::postgres::{PgConnectOptions, Postgres};
use sqlx::Pool;

use crate::{changes, App, AppAdmin, AppStore, AppStoreError};

/// The fields of [`App`] kept in their own columns rather than in `settings`.
const COLUMN_FIELDS: [&str; 4] = ["id", "key", "secret", "enabled"];

/// A row in column order: id, app_key, secret, enabled, settings.
type Row = (String, String, String, bool, String);

/// An [`AppStore`] and [`AppAdmin`] over a MySQL/MariaDB or PostgreSQL database.
pub struct SqlAppStore {
    pool: Backend,
}

enum Backend {
    MySql(Pool<MySql>),
    Postgres(Pool<Postgres>),
}

/// The same statement in each dialect; the placeholders differ, and the order of the bound
/// values is the same.
struct Statements {
    name: &'static str,
    by_key: &'static str,
    by_id: &'static str,
    list: &'static str,
    insert: &'static str,
    update: &'static str,
}

/// sqlx reads binary-collated columns (the id and key, see the migration) as bytes, so they
/// are converted to text; ordering and comparing still use the columns' byte order.
macro_rules! mysql_select {
    () => {
        "SELECT CONVERT(id USING utf8mb4), CONVERT(app_key USING utf8mb4), secret, enabled, \
         settings FROM switchyard_apps"
    };
}

const MYSQL: Statements = Statements {
    name: "mysql",
    by_key: concat!(mysql_select!(), " WHERE app_key = ?"),
    by_id: concat!(mysql_select!(), " WHERE id = ?"),
    list: concat!(mysql_select!(), " ORDER BY switchyard_apps.id"),
    insert: "INSERT INTO switchyard_apps (id, app_key, secret, enabled, settings) \
             VALUES (?, ?, ?, ?, ?)",
    update: "UPDATE switchyard_apps SET app_key = ?, secret = ?, enabled = ?, settings = ?, \
             updated_at = CURRENT_TIMESTAMP WHERE id = ?",
};

const POSTGRES: Statements = Statements {
    name: "postgres",
    by_key: "SELECT id, app_key, secret, enabled, settings FROM switchyard_apps WHERE app_key = $1",
    by_id: "SELECT id, app_key, secret, enabled, settings FROM switchyard_apps WHERE id = $1",
    list: "SELECT id, app_key, secret, enabled, settings FROM switchyard_apps ORDER BY id",
    insert: "INSERT INTO switchyard_apps (id, app_key, secret, enabled, settings) \
             VALUES ($1, $2, $3, $4, $5)",
    update: "UPDATE switchyard_apps SET app_key = $1, secret = $2, enabled = $3, settings = $4, \
             updated_at = CURRENT_TIMESTAMP WHERE id = $5",
};

/// Runs `$body` with `$pool` bound to the backend's pool and `$sql` to its statements: the
/// two drivers' types differ, the code does not.
macro_rules! on_backend {
    ($backend:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $backend {
            Backend::MySql($pool) => {
                let $sql = &MYSQL;
                $body
            }
            Backend::Postgres($pool) => {
                let $sql = &POSTGRES;
                $body
            }
        }
    };
}

impl SqlAppStore {
    /// Connects to `mysql://` / `mariadb://` or `postgres://` / `postgresql://` `url` (which
    /// names the database) and creates or updates the table. Several services may call this
    /// at once: the migrations take a database lock.
    ///
    /// `Unavailable` when the database cannot be reached within a few seconds; `Invalid`
    /// when the URL is not one of these.
    pub async fn connect(url: &str) -> Result<SqlAppStore, AppStoreError> {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        let pool = match scheme {
            "mysql" | "mariadb" => {
                let options = MySqlConnectOptions::from_str(url).map_err(bad_url)?;
                need_database(options.get_database())?;
                Backend::MySql(schema::open_mysql(options).await?)
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url).map_err(bad_url)?;
                Backend::Postgres(schema::open_postgres(options).await?)
            }
            _ => {
                return Err(AppStoreError::Invalid(format!(
                    "unsupported app store URL scheme {scheme:?}: use mysql://, mariadb://, \
                     postgres:// or postgresql://"
                )))
            }
        };
        Ok(SqlAppStore { pool })
    }

    /// Closes the pool's connections, waiting for queries in flight.
    pub async fn close(&self) {
        on_backend!(&self.pool, |pool, _sql| pool.close().await)
    }

    async fn find(&self, by_key: bool, value: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        let row: Option<Row> = on_backend!(&self.pool, |pool, sql| {
            let statement = if by_key { sql.by_key } else { sql.by_id };
            sqlx::query_as(statement)
                .bind(value)
                .fetch_optional(pool)
                .await
                .map_err(|e| unavailable(sql, e))?
        });
        // MySQL/MariaDB collations compare ignoring trailing spaces ("k " finds "k"); the
        // exact match is made here rather than with collations whose names differ between
        // the two.
        let row = row.filter(|(id, key, ..)| if by_key { key == value } else { id == value });
        row.map(|row| decode(row).map(Arc::new)).transpose()
    }
}

#[async_trait]
impl AppStore for SqlAppStore {
    async fn by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        self.find(true, key).await
    }

    async fn by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        self.find(false, id).await
    }
}

#[async_trait]
impl AppAdmin for SqlAppStore {
    async fn list(&self) -> Result<Vec<App>, AppStoreError> {
        let rows: Vec<Row> = on_backend!(&self.pool, |pool, sql| {
            sqlx::query_as(sql.list)
                .fetch_all(pool)
                .await
                .map_err(|e| unavailable(sql, e))?
        });
        rows.into_iter().map(decode).collect()
    }

    async fn create(&self, app: &App) -> Result<(), AppStoreError> {
        changes::validate(app)?;
        let settings = encode_settings(app)?;
        on_backend!(&self.pool, |pool, sql| {
            sqlx::query(sql.insert)
                .bind(&app.id)
                .bind(&app.key)
                .bind(app.secret.expose())
                .bind(app.enabled)
                .bind(&settings)
                .execute(pool)
                .await
                .map_err(|e| write_error(sql, app, e))?;
        });
        Ok(())
    }

    async fn update(&self, app: &App) -> Result<bool, AppStoreError> {
        changes::validate(app)?;
        let settings = encode_settings(app)?;
        // MySQL counts matched rather than changed rows here (sqlx sets CLIENT_FOUND_ROWS), so
        // an update that changes nothing still reports that the app exists.
        let updated = on_backend!(&self.pool, |pool, sql| {
            sqlx::query(sql.update)
                .bind(&app.key)
                .bind(app.secret.expose())
                .bind(app.enabled)
                .bind(&settings)
                .bind(&app.id)
                .execute(pool)
                .await
                .map_err(|e| write_error(sql, app, e))?
                .rows_affected()
        });
        Ok(updated > 0)
    }
}

fn bad_url(e: sqlx::Error) -> AppStoreError {
    // The URL itself is left out of the message: it may carry a password.
    AppStoreError::Invalid(format!("app store URL: {e}"))
}

fn need_database(database: Option<&str>) -> Result<(), AppStoreError> {
    match database {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(AppStoreError::Invalid(
            "the mysql app store URL names no database (mysql://user@host:3306/DATABASE)".into(),
        )),
    }
}

/// Database errors never quote bound values (so never the secret), except MySQL's duplicate
/// entry, which quotes the id or key only; both are handled in [`write_error`].
fn unavailable(sql: &Statements, e: sqlx::Error) -> AppStoreError {
    AppStoreError::Unavailable(format!("{} app store: {e}", sql.name))
}

fn write_error(sql: &Statements, app: &App, e: sqlx::Error) -> AppStoreError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => {
            if violates_key(db) {
                AppStoreError::Conflict(format!("another app already has the key {:?}", app.key))
            } else {
                AppStoreError::Conflict(format!("an app with id {:?} already exists", app.id))
            }
        }
        _ => unavailable(sql, e),
    }
}

/// Whether a unique violation is of the key's index rather than the primary key. PostgreSQL
/// names the constraint; MySQL/MariaDB only say "Duplicate entry '…' for key '<index>'", and
/// the part before " for key " quotes the value, which may itself contain anything.
fn violates_key(db: &dyn DatabaseError) -> bool {
    let index = match db.constraint() {
        Some(constraint) => constraint,
        None => db
            .message()
            .rsplit_once(" for key ")
            .map_or("", |(_, index)| index),
    };
    index.contains("app_key")
}

fn encode_settings(app: &App) -> Result<String, AppStoreError> {
    let mut fields = match serde_json::to_value(app) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(AppStoreError::Invalid("an app is not a JSON object".into())),
        Err(e) => return Err(AppStoreError::Invalid(e.to_string())),
    };
    for column in COLUMN_FIELDS {
        fields.remove(column);
    }
    Ok(Value::Object(fields).to_string())
}

/// A row back into an app. A row this version cannot read (a setting it does not know, from a
/// newer version or a hand edit) is `Unavailable` naming the app, as for any store failure:
/// the app exists, so it must not be treated as unknown.
fn decode((id, key, secret, enabled, settings): Row) -> Result<App, AppStoreError> {
    let unreadable = |why: String| {
        AppStoreError::Unavailable(format!(
            "app {id:?} in the app store has settings this version cannot read: {why}"
        ))
    };
    let mut fields: Map<String, Value> =
        serde_json::from_str(&settings).map_err(|e| unreadable(e.to_string()))?;
    if let Some(column) = COLUMN_FIELDS.iter().find(|c| fields.contains_key(**c)) {
        return Err(unreadable(format!(
            "{column:?} belongs in its own column, not in settings"
        )));
    }
    fields.insert("id".into(), Value::String(id.clone()));
    fields.insert("key".into(), Value::String(key));
    fields.insert("secret".into(), Value::String(secret));
    fields.insert("enabled".into(), Value::Bool(enabled));
    serde_json::from_value(Value::Object(fields)).map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(settings: &str) -> Row {
        (
            "1".into(),
            "k".into(),
            "s3cret".into(),
            false,
            settings.into(),
        )
    }

    #[test]
    fn connecting_can_be_spawned() {
        fn is_send<T: Send>(_: &T) {}
        is_send(&SqlAppStore::connect("postgres://db/x"));
        is_send(&SqlAppStore::connect("mysql://db/x"));
    }

    #[test]
    fn settings_round_trip_without_the_columns() {
        let mut app = App::new("1", "k", "s3cret");
        app.enabled = false;
        app.max_connections = 9;
        let settings = encode_settings(&app).expect("encode settings");
        assert!(!settings.contains("s3cret"), "{settings}");
        assert!(!settings.contains(r#""key""#), "{settings}");
        assert_eq!(decode(row(&settings)).expect("row"), app);
    }

    #[test]
    fn unreadable_rows_name_the_app_and_not_the_secret() {
        for settings in [
            r#"{"colour":"blue"}"#,
            r#"{"max_connections":"many"}"#,
            r#"{"secret":"other"}"#,
            "not json",
        ] {
            let err = decode(row(settings)).expect_err("row");
            let text = err.to_string();
            assert!(matches!(err, AppStoreError::Unavailable(_)), "{text}");
            assert!(text.contains(r#""1""#), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn missing_settings_take_their_defaults() {
        let app = decode(row("{}")).expect("row");
        assert_eq!(
            app.max_payload_bytes,
            App::new("1", "k", "s").max_payload_bytes
        );
        assert!(!app.enabled);
    }
}
