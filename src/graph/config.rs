//! The image config a component declares.

use std::collections::BTreeMap;

use serde::Serialize;

/// A healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// Test command (`["CMD", ...]`, `["CMD-SHELL", ...]` or `["NONE"]`).
    pub test: Vec<String>,
    /// Nanoseconds between checks.
    pub interval_ns: Option<u64>,
    /// Nanoseconds one check may take.
    pub timeout_ns: Option<u64>,
    /// Nanoseconds of grace after start.
    pub start_period_ns: Option<u64>,
    /// Failures before unhealthy.
    pub retries: Option<u32>,
}

/// The image config a component declares (merged over its base's later).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigSpec {
    /// Env, in order.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Ports, `8080/tcp`.
    pub expose: Vec<String>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    pub cmd: Option<Vec<String>>,
    /// Healthcheck.
    pub healthcheck: Option<Healthcheck>,
    /// Stop signal.
    pub stop_signal: Option<String>,
}
