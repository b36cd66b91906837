//! A fresh database per test run on the machine's MariaDB and PostgreSQL servers, so parallel
//! runs never see each other's apps. Unreachable servers fail the test: these are the real
//! backends, and a skipped conformance run would prove nothing.

use std::env;

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

/// Server URLs without a database (or query string); a database name is appended.
pub fn mysql_server() -> String {
    server_url("SWITCHYARD_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
}

pub fn postgres_server() -> String {
    server_url(
        "SWITCHYARD_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432",
    )
}

fn server_url(var: &str, default: &str) -> String {
    env::var(var)
        .unwrap_or_else(|_| default.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

#[derive(Clone, Copy)]
pub enum Kind {
    MySql,
    Postgres,
}

/// A database created for one test; [`TestDb::drop`] removes it.
pub struct TestDb {
    kind: Kind,
    server: String,
    name: String,
    /// The URL to give `SqlAppStore::connect`.
    pub url: String,
}

impl TestDb {
    pub async fn create(kind: Kind) -> TestDb {
        let server = match kind {
            Kind::MySql => mysql_server(),
            Kind::Postgres => postgres_server(),
        };
        let name = format!("sy_apps_{}", &switchyard_apps::changes::new_key()[..16]);
        let db = TestDb {
            kind,
            url: format!("{server}/{name}"),
            server,
            name,
        };
        db.admin(&format!("CREATE DATABASE {}", db.name)).await;
        db
    }

    /// Runs one statement in the test database itself, as a person with a SQL client would.
    pub async fn execute(&self, sql: &str) {
        match self.kind {
            Kind::MySql => {
                let mut conn = MySqlConnection::connect(&self.url).await.expect("connect");
                conn.execute(sql).await.expect("execute");
                conn.close().await.expect("close");
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                conn.execute(sql).await.expect("execute");
                conn.close().await.expect("close");
            }
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self.kind {
            Kind::MySql => {
                let mut conn = MySqlConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect("fetch one")
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect("fetch one")
            }
        }
    }

    pub async fn drop(self) {
        let statement = match self.kind {
            Kind::MySql => format!("DROP DATABASE {}", self.name),
            // FORCE ends sessions a failed test may have left open.
            Kind::Postgres => format!("DROP DATABASE {} WITH (FORCE)", self.name),
        };
        self.admin(&statement).await;
    }

    async fn admin(&self, sql: &str) {
        match self.kind {
            Kind::MySql => {
                let mut conn = MySqlConnection::connect(&self.server)
                    .await
                    .unwrap_or_else(|e| panic!("MariaDB at {}: {e}", self.server));
                conn.execute(sql).await.expect("execute");
                conn.close().await.expect("close");
            }
            Kind::Postgres => {
                let url = format!("{}/postgres", self.server);
                let mut conn = PgConnection::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
                conn.execute(sql).await.expect("execute");
                conn.close().await.expect("close");
            }
        }
    }
}
