//! The backend-neutral core of recording and deciding callbacks:
//! - [`subject`]: which rows and keys a callback is about (the one rule);
//! - [`steps`]: the pure steps of each callback against a group's rows;
//! - [`queue`]: the group-commit queue that callers wait on;
//! - [`path`]: the write path that reads, decides, writes and commits a
//!   group, over the small connection trait each backend implements;
//! - [`statements`]: its SQL per backend, made from the tables' own.
//!
//! Depends on the store's types, its tables (`tables`), its write health
//! (`health`) and the domain (which decides: `domain::state`), never on a
//! backend.

pub(crate) mod path;
pub(crate) mod queue;
pub mod statements;
pub mod steps;
pub mod subject;
