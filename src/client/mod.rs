//! Strata's own BuildKit client (`strata build`): one connection and one
//! session for a whole stack, every component solved over them with the
//! frontend running in this process.

pub mod connect;
pub mod content;
pub mod filesync;
pub mod layout;
pub mod progress;
pub mod session;
pub mod solve;
