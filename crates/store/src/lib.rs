//! Storage backends of Arcus: implementations of the `arcus-core` persistence traits.
//!
//! - [`SqliteStore`]: the metadata [`Store`](arcus_core::store::Store) (apps, functions,
//!   versions, aliases, invocation records, logs, settings) in one SQLite file, with
//!   versioned migrations embedded in the binary. The SQL is kept portable so that a
//!   PostgreSQL implementation can follow with the same schema shape.
//! - [`LocalBlobStore`]: the content-addressed
//!   [`BlobStore`](arcus_core::store::BlobStore) of code blobs in a local directory.
//!
//! Storage conventions: timestamps are stored as unix microseconds (UTC; finer
//! precision is dropped), JSON documents as TEXT.

mod blob;
mod sqlite;

pub use blob::LocalBlobStore;
pub use sqlite::{ALIAS_HISTORY_LIMIT, DEFAULT_RECORD_LIMIT, SCHEMA_VERSION, SqliteStore};
