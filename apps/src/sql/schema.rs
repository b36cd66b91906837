//! Opening a database: a first connection, the embedded migrations, then the pool.

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::mysql::{MySql, MySqlConnectOptions};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, Postgres};
use sqlx::{ConnectOptions, Connection, Database, Pool};
use tokio::time::error::Elapsed;

use crate::AppStoreError;

/// How long connecting may take, and waiting for a pooled connection. Short, so a dead
/// database is reported at start-up, and lookups fail over to the cache's stale entries,
/// within seconds rather than hanging.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Waiting for another starting service that holds the migration lock is expected; a lock
/// held this long means something is stuck.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Lookups are short and the cache in front absorbs most of them.
const MAX_CONNECTIONS: u32 = 5;

/// A migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

// Versions are timestamps, as sqlx writes them, because `_sqlx_migrations` may be shared with
// another program's migrations in the same database.
const MYSQL_MIGRATIONS: &[Embedded] = &[(
    20261129000000,
    "create switchyard_apps",
    include_str!("../../migrations/mysql/20261129000000_create_switchyard_apps.sql"),
)];

const POSTGRES_MIGRATIONS: &[Embedded] = &[(
    20261129000000,
    "create switchyard_apps",
    include_str!("../../migrations/postgres/20261129000000_create_switchyard_apps.sql"),
)];

/// Opens a MySQL/MariaDB database: see [`migrated_pool`]. The first connection also holds a
/// lock of our own while the migrations run, because MariaDB answers the `GET_LOCK(name, -1)`
/// that sqlx's migrator takes with NULL at once instead of waiting ("infinite" is MySQL-only),
/// so that lock does not keep services that start together from migrating at the same time.
pub(super) async fn open_mysql(options: MySqlConnectOptions) -> Result<Pool<MySql>, AppStoreError> {
    const BACKEND: &str = "mysql";
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let mut lock = first_connection(BACKEND, &server, options.connect()).await?;
    // A server-wide name, so it carries the database; hashed to stay under the 64-character
    // limit on lock names.
    let locked: Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('switchyard_apps:', MD5(DATABASE())), ?)")
            .bind(MIGRATE_TIMEOUT.as_secs())
            .fetch_one(&mut lock)
            .await;
    let opened = match locked {
        Ok(Some(1)) => migrated_pool(BACKEND, options, MYSQL_MIGRATIONS, false).await,
        Ok(_) => Err(migration_failed(
            BACKEND,
            format!(
                "another service held the migration lock for {} s",
                MIGRATE_TIMEOUT.as_secs()
            ),
        )),
        Err(e) => Err(migration_failed(BACKEND, e)),
    };
    // Ending the session releases the lock; closing cleanly or not changes nothing else.
    let _ = lock.close().await;
    opened
}

/// Opens a PostgreSQL database: see [`migrated_pool`]. sqlx's migrator locks with
/// `pg_advisory_lock`, which waits as it should.
pub(super) async fn open_postgres(
    options: PgConnectOptions,
) -> Result<Pool<Postgres>, AppStoreError> {
    const BACKEND: &str = "postgres";
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let check = first_connection(BACKEND, &server, options.connect()).await?;
    let _ = check.close().await;
    migrated_pool(BACKEND, options, POSTGRES_MIGRATIONS, true).await
}

/// A pool that connects on demand, after running the migrations through it. Callers first
/// connect once on their own, so that an unreachable database is reported with its own error
/// (the pool would retry until its timeout and say only "timed out").
///
/// Through the pool rather than that connection: with `&mut` a connection, sqlx's `Acquire`
/// bound makes the future not `Send` (a rustc limitation with higher-ranked lifetimes), and
/// `connect` must be spawnable.
async fn migrated_pool<DB>(
    backend: &'static str,
    options: <DB::Connection as Connection>::Options,
    migrations: &'static [Embedded],
    locking: bool,
) -> Result<Pool<DB>, AppStoreError>
where
    DB: Database,
    DB::Connection: Migrate,
{
    let pool = PoolOptions::<DB>::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options);
    let migrator = migrator(backend, migrations, locking).await?;
    let migrated = tokio::time::timeout(MIGRATE_TIMEOUT, migrator.run(&pool)).await;
    if let Err(e) = migration_outcome(backend, migrated) {
        // Closing ends the sessions, which releases the migrator's lock if it stopped
        // half-way with it held.
        pool.close().await;
        return Err(e);
    }
    Ok(pool)
}

async fn first_connection<C>(
    backend: &str,
    server: &str,
    connecting: impl Future<Output = Result<C, sqlx::Error>>,
) -> Result<C, AppStoreError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(AppStoreError::Unavailable(format!(
            "cannot connect to the {backend} app store at {server}: {e}"
        ))),
        Err(_) => Err(AppStoreError::Unavailable(format!(
            "cannot connect to the {backend} app store at {server}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

async fn migrator(
    backend: &str,
    migrations: &'static [Embedded],
    locking: bool,
) -> Result<Migrator, AppStoreError> {
    let mut migrator = Migrator::new(EmbeddedMigrations(migrations))
        .await
        .map_err(|e| migration_failed(backend, e))?;
    // Other programs' migrations in a shared `_sqlx_migrations` are none of our business.
    migrator.set_ignore_missing(true);
    // Locking serializes services that start together: the first migrates, the others wait
    // and then find nothing to do.
    migrator.set_locking(locking);
    Ok(migrator)
}

fn migration_outcome(
    backend: &str,
    outcome: Result<Result<(), MigrateError>, Elapsed>,
) -> Result<(), AppStoreError> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(migration_failed(backend, e)),
        Err(_) => Err(migration_failed(
            backend,
            format!("not done within {} s", MIGRATE_TIMEOUT.as_secs()),
        )),
    }
}

fn migration_failed(backend: &str, why: impl Display) -> AppStoreError {
    AppStoreError::Unavailable(format!("cannot migrate the {backend} app store: {why}"))
}

/// Migrations compiled into the binary, so a service needs no files beside it.
#[derive(Debug)]
struct EmbeddedMigrations(&'static [Embedded]);

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}
