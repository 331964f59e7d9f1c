//! OCI image config as data: inherited from the base image's config,
//! changed by the component's steps and declarations, returned to BuildKit
//! as `containerimage.config`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::graph::Healthcheck;

/// The part of an image config that components change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    /// `config.Env`, in order, unique names.
    pub env: Vec<(String, String)>,
    /// `config.User`.
    pub user: Option<String>,
    /// `config.WorkingDir`.
    pub workdir: Option<String>,
    /// `config.Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `config.Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `config.ExposedPorts`.
    pub expose: Vec<String>,
    /// `config.Volumes`.
    pub volumes: Vec<String>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// `config.Healthcheck`.
    pub healthcheck: Option<Healthcheck>,
    /// `config.StopSignal`.
    pub stop_signal: Option<String>,
    /// Everything else of the base's document, kept as it was.
    pub base_document: Value,
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    })
}

impl ImageConfig {
    /// Reads the parts we change from an image config document (Docker or OCI).
    pub fn from_document(doc: &Value) -> ImageConfig {
        let cfg = doc
            .get("config")
            .or_else(|| doc.get("Config"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut out = ImageConfig {
            base_document: doc.clone(),
            ..Default::default()
        };
        for e in strings(cfg.get("Env")).unwrap_or_default() {
            let (k, v) = e.split_once('=').unwrap_or((&e, ""));
            out.set_env(k, v);
        }
        out.user = cfg
            .get("User")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        out.workdir = cfg
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        out.entrypoint = strings(cfg.get("Entrypoint"));
        out.cmd = strings(cfg.get("Cmd"));
        if let Some(p) = cfg.get("ExposedPorts").and_then(Value::as_object) {
            out.expose = p.keys().cloned().collect();
        }
        if let Some(v) = cfg.get("Volumes").and_then(Value::as_object) {
            out.volumes = v.keys().cloned().collect();
        }
        if let Some(l) = cfg.get("Labels").and_then(Value::as_object) {
            out.labels = l
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect();
        }
        out.stop_signal = cfg
            .get("StopSignal")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(h) = cfg.get("Healthcheck") {
            out.healthcheck = strings(h.get("Test")).map(|test| Healthcheck {
                test,
                interval_ns: h.get("Interval").and_then(Value::as_u64),
                timeout_ns: h.get("Timeout").and_then(Value::as_u64),
                start_period_ns: h.get("StartPeriod").and_then(Value::as_u64),
                retries: h
                    .get("Retries")
                    .and_then(Value::as_u64)
                    .and_then(|r| u32::try_from(r).ok()),
            });
        }
        out
    }

    /// The value of an env variable.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a variable, keeping its first position if it existed.
    pub fn set_env(&mut self, name: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.env.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Sets a variable after expanding `$NAME` / `${NAME}` against the current env.
    pub fn set_env_expanded(&mut self, name: &str, value: &str) {
        let v = expand(value, &self.env);
        self.set_env(name, &v);
    }

    /// `KEY=VALUE` strings, as exec ops and the config want them.
    pub fn env_list(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Sets the entrypoint; like Docker, a new entrypoint drops an inherited cmd.
    pub fn set_entrypoint(&mut self, ep: Vec<String>) {
        self.entrypoint = Some(ep);
        self.cmd = None;
    }

    /// The whole config document: the base's, with our fields replaced.
    pub fn to_document(
        &self,
        os: &str,
        architecture: &str,
        variant: Option<&str>,
        created: Option<&str>,
    ) -> Value {
        let mut doc = match &self.base_document {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        // Docker-style documents use "Config"; the OCI form is "config".
        let mut cfg = doc
            .remove("config")
            .or_else(|| doc.remove("Config"))
            .and_then(|c| c.as_object().cloned())
            .unwrap_or_default();
        for key in [
            "container",
            "container_config",
            "docker_version",
            "ContainerConfig",
            "Container",
        ] {
            doc.remove(key);
        }
        self.fill_config(&mut cfg);
        doc.insert("config".into(), Value::Object(cfg));
        doc.insert("os".into(), json!(os));
        doc.insert("architecture".into(), json!(architecture));
        match variant {
            Some(v) => doc.insert("variant".into(), json!(v)),
            None => doc.remove("variant"),
        };
        match created {
            Some(c) => doc.insert("created".into(), json!(c)),
            None => doc.remove("created"),
        };
        // The exporter rewrites rootfs from the real layers.
        doc.remove("rootfs");
        Value::Object(doc)
    }

    /// Our fields of the document's `config`, over the base's.
    fn fill_config(&self, cfg: &mut Map<String, Value>) {
        cfg.insert("Env".into(), json!(self.env_list()));
        set_opt(cfg, "User", self.user.as_ref().map(|u| json!(u)));
        set_opt(cfg, "WorkingDir", self.workdir.as_ref().map(|w| json!(w)));
        set_opt(
            cfg,
            "Entrypoint",
            self.entrypoint.as_ref().map(|e| json!(e)),
        );
        set_opt(cfg, "Cmd", self.cmd.as_ref().map(|c| json!(c)));
        let set = |items: &[String]| -> Option<Value> {
            (!items.is_empty())
                .then(|| Value::Object(items.iter().map(|p| (p.clone(), json!({}))).collect()))
        };
        set_opt(cfg, "ExposedPorts", set(&self.expose));
        set_opt(cfg, "Volumes", set(&self.volumes));
        set_opt(
            cfg,
            "Labels",
            (!self.labels.is_empty()).then(|| json!(self.labels)),
        );
        set_opt(
            cfg,
            "StopSignal",
            self.stop_signal.as_ref().map(|s| json!(s)),
        );
        set_opt(
            cfg,
            "Healthcheck",
            self.healthcheck.as_ref().map(healthcheck_json),
        );
    }
}

/// A healthcheck as the image config writes it.
fn healthcheck_json(h: &Healthcheck) -> Value {
    let mut m = Map::new();
    m.insert("Test".into(), json!(h.test));
    for (k, v) in [
        ("Interval", h.interval_ns),
        ("Timeout", h.timeout_ns),
        ("StartPeriod", h.start_period_ns),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(r) = h.retries {
        m.insert("Retries".into(), json!(r));
    }
    Value::Object(m)
}

fn set_opt(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    match v {
        Some(v) => {
            m.insert(key.to_owned(), v);
        }
        None => {
            m.remove(key);
        }
    }
}

/// Expands `$NAME` and `${NAME}` (unset: empty) the way Dockerfile ENV does; `\$` is a literal `$`.
pub fn expand(value: &str, env: &[(String, String)]) -> String {
    let lookup = |n: &str| {
        env.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut out = String::with_capacity(value.len());
    let mut chars = value.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if value[i + 1..].starts_with('$') => {
                out.push('$');
                chars.next();
            }
            '$' => {
                let rest = &value[i + 1..];
                if let Some(body) = rest.strip_prefix('{') {
                    if let Some(end) = body.find('}') {
                        out.push_str(lookup(&body[..end]));
                        for _ in 0..end + 2 {
                            chars.next();
                        }
                        continue;
                    }
                    out.push('$');
                } else {
                    let len = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    if len == 0 || rest.as_bytes()[0].is_ascii_digit() {
                        out.push('$');
                        continue;
                    }
                    out.push_str(lookup(&rest[..len]));
                    for _ in 0..len {
                        chars.next();
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_dockerfile_env() {
        let env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
        assert_eq!(
            expand("/opt/venv/bin:$PATH", &env),
            "/opt/venv/bin:/usr/bin:/bin"
        );
        assert_eq!(expand("${PATH}:/x", &env), "/usr/bin:/bin:/x");
        assert_eq!(expand("\\$PATH $NOPE. $1", &env), "$PATH . $1");
        assert_eq!(expand("cost $", &env), "cost $");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn base_config_is_inherited_and_overridden() {
        let base = json!({"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/bin", "LANG=C"], "Cmd": ["bash"], "Labels": {"a": "1"}},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": [{"created_by": "x"}]});
        let mut c = ImageConfig::from_document(&base);
        c.set_env_expanded("PATH", "/opt/venv/bin:$PATH");
        c.set_entrypoint(vec!["/tini".into()]);
        c.labels.insert("b".into(), "2".into());
        let doc = c.to_document("linux", "amd64", None, None);
        assert_eq!(
            doc["config"]["Env"],
            json!(["PATH=/opt/venv/bin:/usr/bin", "LANG=C"])
        );
        assert_eq!(doc["config"]["Entrypoint"], json!(["/tini"]));
        assert!(
            doc["config"].get("Cmd").is_none(),
            "a new entrypoint drops the inherited cmd"
        );
        assert_eq!(doc["config"]["Labels"], json!({"a": "1", "b": "2"}));
        assert!(
            doc.get("created").is_none(),
            "never the base's or the wall clock's time"
        );
        assert!(doc.get("rootfs").is_none());
        assert_eq!(doc["history"], json!([{"created_by": "x"}]));
    }
}
