//! How many rows a retention batch takes on SQLite: at most `batch`, and
//! fewer while batches hold the write lock too long.
//!
//! A SQLite batch holds the one write lock from its first deletion to the
//! end of its commit (the WAL synced), and a callback that finds it taken
//! retries after 1, 3, 8, 18, 33, 53 … ms (SQLite's busy handler): a batch
//! that holds it 34 ms makes a callback wait 53 ms and more. How long a
//! batch of a given size takes depends on the disk and on what else writes,
//! so the size follows what batches took: halved after one that took longer
//! than [`TARGET`], grown by a quarter (up to `batch`) after one that took
//! less than half of it. A batch's time may also hold the checkpoint
//! SQLite runs in a commit that takes the WAL past 1,000 pages (after the
//! lock is released); the run checkpoints in its pause after each batch,
//! so such a commit finds little to copy, and one that does shrinks the
//! next batch for nothing until the quick ones after it grow it back.
//! PostgreSQL's deletions lock only their rows: there every batch takes
//! `batch` rows.

use std::time::Duration;

/// The longest a SQLite batch should hold the write lock: a callback that
/// finds it taken is then in by its retry at 18 ms.
pub const TARGET: Duration = Duration::from_millis(15);

/// The fewest rows a batch takes, however slow: below this a batch's time
/// is mostly its commit's sync, which a smaller batch does not shorten.
pub const FEWEST: u32 = 16;

/// The size of the next batch.
#[derive(Debug, Clone)]
pub struct Pacer {
    most: u32,
    size: u32,
    target: Option<Duration>,
}

impl Pacer {
    /// Batches of `most` rows, kept under `target` when there is one
    /// (SQLite: [`TARGET`]; PostgreSQL: none).
    pub fn new(most: u32, target: Option<Duration>) -> Pacer {
        let most = most.max(1);
        Pacer {
            most,
            size: most,
            target,
        }
    }

    /// How many rows the next batch takes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The last batch took `took`.
    pub fn took(&mut self, took: Duration) {
        let Some(target) = self.target else {
            return;
        };
        if took > target {
            self.size = (self.size / 2).max(FEWEST.min(self.most));
        } else if took < target / 2 {
            self.size = (self.size + (self.size / 4).max(1)).min(self.most);
        }
    }
}
