//! The native BuildKit client behind `strata build`: the session services
//! BuildKit calls back on the client.

pub mod filesync;
