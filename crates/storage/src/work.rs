//! The unit of work: one write transaction for one use case, holding the audit chain's lock
//! from its first statement, with every write and its audit entries inside it. Nothing is
//! visible to anyone until [`Work::commit`]; dropping a `Work` (an error on the way) rolls
//! everything back, audit entries included.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::audit::{append, Actor, AuditEvent};
use crate::{Backend, Result, Store};

/// An open unit of work for one actor at one instant.
pub struct Work {
    tx: crate::WriteTx,
    backend: Backend,
    actor: Actor,
    now: DateTime<Utc>,
}

impl Store {
    /// Opens a unit of work for `actor` at `now` (see [`Store::begin_write`] for the lock).
    pub async fn begin_work(&self, actor: &Actor, now: DateTime<Utc>) -> Result<Work> {
        Ok(Work {
            tx: self.begin_write().await?,
            backend: self.backend(),
            actor: actor.clone(),
            now,
        })
    }
}

impl Work {
    /// The transaction's connection, for the storage modules' `*_in` functions.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The engine behind the transaction.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Who acts.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The instant of this unit of work (every write and entry carries it).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Appends an audit entry inside the unit of work.
    pub async fn audit(&mut self, event: AuditEvent) -> Result<i64> {
        append(&mut self.tx, &self.actor, &event, self.now).await
    }

    /// Makes every write of the unit visible at once.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
