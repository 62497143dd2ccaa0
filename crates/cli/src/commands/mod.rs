//! The client subcommands, one module per command group.

pub mod access_key;
pub mod alias;
pub mod app;
pub mod audit;
pub mod deploy;
pub mod function;
pub mod invoke;
pub mod observe;
pub mod queue;
pub mod records;
pub mod secret;
pub mod token;
pub mod top;
pub mod trigger;
pub mod versions;
