//! The choice among the servers of `database.url` (taken apart by
//! `config::database_url`): the first, in order from the last good one,
//! that answers and (for `read-write`) takes writes. Hand-written because
//! sqlx has no multi-host URLs. Merchants without a proxy or a virtual IP in front of their
//! primary and standby can then name both, and the service follows the one
//! that takes writes after a failover.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};

use super::{Refusals, require_writable, server_name};
pub(crate) use crate::config::database_url::{ParsedUrl, Target, parse_url};

/// The servers of one URL and the one in use: where the next connection
/// goes first. It moves on to the next server when one fails, and to the
/// one that answered when a connection succeeds, so a failover costs the
/// first connections after it only, and the pool (which connects by
/// itself, to one server's options) is pointed at the server in use.
#[derive(Debug)]
pub(crate) struct Hosts {
    servers: Vec<PgConnectOptions>,
    names: Vec<String>,
    target: Target,
    /// Whether a connection must take writes (the writers' and the primary
    /// pool's; not the read pool's, which may use a standby).
    writes: bool,
    current: AtomicUsize,
    refusals: Refusals,
    /// The pool that follows [`Hosts::current`], with its session settings.
    pool: OnceLock<(PgPool, &'static [(&'static str, &'static str)])>,
}

/// How long one server may take to answer before the next is tried.
const PER_SERVER: Duration = Duration::from_secs(2);

impl Hosts {
    pub(crate) fn new(parsed: ParsedUrl, application: &str, writes: bool) -> Hosts {
        let servers: Vec<PgConnectOptions> = parsed
            .servers
            .into_iter()
            .map(|options| options.application_name(application))
            .collect();
        Hosts {
            names: servers.iter().map(server_name).collect(),
            servers,
            target: parsed.target,
            writes,
            current: AtomicUsize::new(0),
            refusals: Refusals::default(),
            pool: OnceLock::new(),
        }
    }

    /// The options of the server in use.
    pub(crate) fn current(&self) -> &PgConnectOptions {
        &self.servers[self.index()]
    }

    fn index(&self) -> usize {
        self.current.load(Ordering::SeqCst) % self.servers.len().max(1)
    }

    /// Makes `pool` (opened with [`Hosts::current`] and `settings`) follow
    /// the server in use.
    pub(crate) fn follow_with(
        &self,
        pool: PgPool,
        settings: &'static [(&'static str, &'static str)],
    ) {
        let _ = self.pool.set((pool, settings));
    }

    /// A new connection with the session `settings`: the servers are tried
    /// in order from the one in use, and the first that answers (and takes
    /// writes, when it must) is kept and becomes the one in use. When none
    /// does, the error is a refusal for want of writes if any server gave
    /// one (the more useful cause), else the last server's.
    pub(crate) async fn connect(
        &self,
        settings: &[(&str, &str)],
    ) -> Result<PgConnection, sqlx::Error> {
        let first = self.index();
        let count = self.servers.len();
        let mut refused = None;
        let mut last = None;
        for step in 0..count {
            let index = (first + step) % count;
            let options = self.servers[index]
                .clone()
                .options(settings.iter().copied());
            let attempt = async {
                let mut connection = PgConnection::connect_with(&options).await?;
                if self.writes
                    && let Err(error) =
                        require_writable(&mut connection, &self.names[index], &self.refusals).await
                {
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection.close()).await;
                    return Err(error);
                }
                Ok(connection)
            };
            let result = match tokio::time::timeout(PER_SERVER, attempt).await {
                Ok(result) => result,
                Err(_) => Err(sqlx::Error::PoolTimedOut),
            };
            match result {
                Ok(connection) => {
                    self.use_server(index);
                    return Ok(connection);
                }
                // `any`: the server answered, so it stays the one in use.
                Err(error) if is_read_only(&error) && self.target == Target::Any => {
                    return Err(error);
                }
                Err(error) => {
                    self.failed(index);
                    if is_read_only(&error) {
                        refused.get_or_insert(error);
                    } else {
                        last = Some(error);
                    }
                }
            }
        }
        Err(refused
            .or(last)
            .unwrap_or_else(|| sqlx::Error::Configuration("no database host".into())))
    }

    /// Checks a connection the pool made (to the server in use): refused,
    /// the pool moves on to the next server for its next attempt.
    pub(crate) async fn check_pooled(
        &self,
        connection: &mut PgConnection,
    ) -> Result<(), sqlx::Error> {
        if !self.writes {
            return Ok(());
        }
        let index = self.index();
        let result = require_writable(connection, &self.names[index], &self.refusals).await;
        if result.is_err() && self.target == Target::ReadWrite {
            self.failed(index);
        }
        result
    }

    /// The pool's server failed it: looks for one that answers (the pool
    /// only retries its one server), so the pool follows a failover
    /// without waiting for a callback.
    pub(crate) async fn find(&self) {
        if self.servers.len() > 1
            && let Ok(connection) = self.connect(&[]).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(1), connection.close()).await;
        }
    }

    /// `index` failed: the next server is tried first from now on (unless
    /// another caller moved on already).
    fn failed(&self, index: usize) {
        let next = (index + 1) % self.servers.len().max(1);
        if next != index
            && self
                .current
                .compare_exchange(index, next, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            tracing::info!(
                failed = %self.names[index],
                next = %self.names[next],
                "database server failed; trying the next one first"
            );
            self.point_pool();
        }
    }

    fn use_server(&self, index: usize) {
        if self.current.swap(index, Ordering::SeqCst) != index {
            tracing::info!(server = %self.names[index], "database server in use");
            self.point_pool();
        }
    }

    fn point_pool(&self) {
        if let Some((pool, settings)) = self.pool.get() {
            pool.set_connect_options(self.current().clone().options(settings.iter().copied()));
        }
    }
}

/// Whether `error` says the server takes no writes (SQLSTATE 25006).
fn is_read_only(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("25006"))
}

/// The pool's `after_connect` check, holding the hosts weakly (the pool
/// lives inside [`Hosts`], which must not keep itself alive).
pub(crate) async fn check_pooled(
    hosts: &Weak<Hosts>,
    connection: &mut PgConnection,
) -> Result<(), sqlx::Error> {
    match hosts.upgrade() {
        Some(hosts) => hosts.check_pooled(connection).await,
        None => Ok(()),
    }
}
