//! `[args]` and `[profiles]`: typed values, overrides, bools.

use super::*;

impl Resolver<'_> {
    pub(super) fn args(
        &mut self,
        raw: &BTreeMap<SpannedString, Spanned<RawArg>>,
        profiles: &BTreeMap<SpannedString, Spanned<raw::RawProfile>>,
        overrides: &Overrides,
        fallback: Range<usize>,
    ) -> Vec<Arg> {
        let mut args: Vec<Arg> = raw
            .iter()
            .filter_map(|(name, a)| self.declared_arg(name, a))
            .collect();
        if let Some(sel) = &overrides.profile {
            if let Some((_, p)) = profiles.iter().find(|(k, _)| k.get_ref() == sel) {
                for (k, v) in &p.get_ref().args {
                    self.apply(
                        &mut args,
                        k.get_ref(),
                        v.get_ref(),
                        k.span(),
                        ArgOrigin::Profile(sel.clone()),
                    );
                }
            }
        }
        // Profile tables are checked even when not selected.
        for (pname, p) in profiles {
            for (k, v) in &p.get_ref().args {
                self.profile_value(&args, pname.get_ref(), k, v);
            }
        }
        for (k, v) in &overrides.args {
            self.override_arg(&mut args, k, v, &fallback);
        }
        args
    }

    /// One `[args]` entry, or none (with an error) when it cannot be declared.
    fn declared_arg(&mut self, name: &SpannedString, a: &Spanned<RawArg>) -> Option<Arg> {
        let n = name.get_ref();
        if !valid_arg_name(n) {
            self.error(
                ErrorCode::ArgName,
                name.span(),
                format!("`{n}` is not a valid arg name"),
                "use letters, digits and `_`, starting with a letter or `_`",
            );
            return None;
        }
        if is_reserved_arg(n)
            || matches!(n.as_str(), "stack" | "component")
            || PLATFORM_VARS.contains(&n.as_str())
        {
            self.error(
                ErrorCode::ReservedName,
                name.span(),
                format!("`{n}` is a reserved name"),
                "choose another name for this arg",
            );
            return None;
        }
        let span = a.span();
        let (kind, default, description) = match a.get_ref() {
            RawArg::Value(v) => match v {
                toml::Value::String(s) => (ArgType::String, ArgValue::String(s.clone()), None),
                toml::Value::Boolean(b) => (ArgType::Bool, ArgValue::Bool(*b), None),
                toml::Value::Integer(i) => (ArgType::Int, ArgValue::Int(*i), None),
                _ => {
                    self.error(ErrorCode::ArgDeclaration, span, format!("arg `{n}` must be a string, bool or integer"), "write the table form for enums: { type = \"enum\", values = [...], default = \"...\" }");
                    return None;
                }
            },
            RawArg::Table(t) => {
                let kind = self.table_arg_type(n, t, &span)?;
                let default = self.table_arg_default(n, t, &kind)?;
                let description = t.description.as_ref().map(|d| d.get_ref().clone());
                (kind, default, description)
            }
        };
        Some(Arg {
            name: n.clone(),
            kind,
            value: default.clone(),
            default,
            origin: ArgOrigin::Default,
            description,
            span: name.span(),
            by_value: matches!(a.get_ref(), RawArg::Value(_)),
        })
    }

    /// The type of a table-declared arg: `type`, else its default's type.
    fn table_arg_type(
        &mut self,
        n: &str,
        t: &raw::RawArgTable,
        span: &Range<usize>,
    ) -> Option<ArgType> {
        let values = || -> Vec<String> {
            t.values
                .iter()
                .flatten()
                .map(|v| v.get_ref().clone())
                .collect()
        };
        let kind = match t.kind.as_ref().map(|k| k.get_ref().as_str()) {
            Some("string") => ArgType::String,
            Some("bool") => ArgType::Bool,
            Some("int") => ArgType::Int,
            Some("enum") if values().is_empty() => {
                self.error(
                    ErrorCode::ArgDeclaration,
                    span.clone(),
                    format!("enum arg `{n}` needs `values = [...]`"),
                    "list the allowed values",
                );
                return None;
            }
            Some("enum") => ArgType::Enum(values()),
            Some(other) => {
                let k = t.kind.as_ref().map_or(span.clone(), Spanned::span);
                self.error(
                    ErrorCode::ArgDeclaration,
                    k,
                    format!("unknown arg type `{other}`"),
                    "use one of: string, bool, int, enum",
                );
                return None;
            }
            None => match t.default.as_ref().map(Spanned::get_ref) {
                Some(toml::Value::Boolean(_)) => ArgType::Bool,
                Some(toml::Value::Integer(_)) => ArgType::Int,
                _ if t.values.is_some() => ArgType::Enum(values()),
                _ => ArgType::String,
            },
        };
        if t.values.is_some() && !matches!(kind, ArgType::Enum(_)) {
            self.error(
                ErrorCode::ArgDeclaration,
                span.clone(),
                format!("`values` only applies to enum args, and `{n}` is not one"),
                "add `type = \"enum\"` or remove `values`",
            );
        }
        Some(kind)
    }

    /// The default of a table-declared arg, checked against its type.
    fn table_arg_default(
        &mut self,
        n: &str,
        t: &raw::RawArgTable,
        kind: &ArgType,
    ) -> Option<ArgValue> {
        let Some(d) = &t.default else {
            return Some(match kind {
                ArgType::String => ArgValue::String(String::new()),
                ArgType::Bool => ArgValue::Bool(false),
                ArgType::Int => ArgValue::Int(0),
                ArgType::Enum(v) => ArgValue::String(v.first().cloned().unwrap_or_default()),
            });
        };
        match typed_value(kind, d.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    ErrorCode::ArgValue,
                    d.span(),
                    format!("default of arg `{n}`: {e}"),
                    "make the default match the arg's type",
                );
                None
            }
        }
    }

    /// A profile's value for `k`: a declared arg, and of its type.
    fn profile_value(
        &mut self,
        args: &[Arg],
        pname: &str,
        k: &SpannedString,
        v: &Spanned<toml::Value>,
    ) {
        match args.iter().find(|a| &a.name == k.get_ref()) {
            None => {
                let help = self
                    .closest(k.get_ref(), args.iter().map(|a| a.name.as_str()))
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| "declare it in [args] first".to_owned());
                self.error(
                    ErrorCode::UndeclaredArg,
                    k.span(),
                    format!(
                        "profile `{pname}` sets `{}`, which is not an arg",
                        k.get_ref()
                    ),
                    help,
                );
            }
            Some(a) => {
                if let Err(e) = typed_value(&a.kind, v.get_ref()) {
                    self.error(
                        ErrorCode::ArgValue,
                        v.span(),
                        format!("profile `{pname}`: `{}` {e}", k.get_ref()),
                        "give a value of the arg's type",
                    );
                }
            }
        }
    }

    /// `--arg k=v`: parsed by the arg's type; an undeclared name is an
    /// error at the arg meant (else the first declared, else `fallback`).
    fn override_arg(&mut self, args: &mut [Arg], k: &str, v: &str, fallback: &Range<usize>) {
        let Some(a) = args.iter_mut().find(|a| a.name == k) else {
            if is_reserved_arg(k) {
                return;
            }
            let close = self.closest(k, args.iter().map(|a| a.name.as_str()));
            let help = close
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "this stack's args: {}",
                        args.iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            let span = close
                .and_then(|c| args.iter().find(|a| a.name == c))
                .or(args.first())
                .map_or(fallback.clone(), |a| a.span.clone());
            self.error(
                ErrorCode::UndeclaredArg,
                span,
                format!("`{k}={v}` sets an arg this stack does not declare"),
                help,
            );
            return;
        };
        match parse_override(&a.kind, v) {
            Ok(val) => {
                a.value = val;
                a.origin = ArgOrigin::Override;
            }
            Err(e) => {
                let span = a.span.clone();
                let name = a.name.clone();
                self.error(
                    ErrorCode::ArgValue,
                    span,
                    format!("`{name}={v}`: {e}"),
                    format!("`{name}` is declared here; give a value of its type"),
                );
            }
        }
    }

    pub(super) fn apply(
        &mut self,
        args: &mut [Arg],
        name: &str,
        v: &toml::Value,
        span: Range<usize>,
        origin: ArgOrigin,
    ) {
        if let Some(a) = args.iter_mut().find(|a| a.name == name) {
            if let Ok(val) = typed_value(&a.kind, v) {
                a.value = val;
                a.origin = origin;
            }
        } else {
            let _ = span;
        }
    }
}

/// Build args that belong to BuildKit or Strata, never to the stack.
pub fn is_reserved_arg(name: &str) -> bool {
    name.starts_with("BUILDKIT_")
        || name.starts_with("STRATA_")
        || matches!(
            name,
            "SOURCE_DATE_EPOCH"
                | "HTTP_PROXY"
                | "HTTPS_PROXY"
                | "FTP_PROXY"
                | "NO_PROXY"
                | "ALL_PROXY"
                | "http_proxy"
                | "https_proxy"
                | "ftp_proxy"
                | "no_proxy"
                | "all_proxy"
        )
}

pub(super) fn valid_arg_name(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && s.len() <= 128
}

pub(super) fn type_name(t: &ArgType) -> &'static str {
    match t {
        ArgType::String => "a string",
        ArgType::Bool => "a bool",
        ArgType::Int => "an integer",
        ArgType::Enum(_) => "an enum",
    }
}

/// A TOML value as a value of the arg's type.
pub(super) fn typed_value(kind: &ArgType, v: &toml::Value) -> Result<ArgValue, String> {
    match (kind, v) {
        (ArgType::String, toml::Value::String(s)) => Ok(ArgValue::String(s.clone())),
        (ArgType::Bool, toml::Value::Boolean(b)) => Ok(ArgValue::Bool(*b)),
        (ArgType::Int, toml::Value::Integer(i)) => Ok(ArgValue::Int(*i)),
        (ArgType::Enum(vals), toml::Value::String(s)) if vals.contains(s) => {
            Ok(ArgValue::String(s.clone()))
        }
        (ArgType::Enum(vals), toml::Value::String(s)) => {
            Err(format!("`{s}` is not one of {}", vals.join(", ")))
        }
        (ArgType::Bool, toml::Value::String(s)) => parse_bool(s).map(ArgValue::Bool),
        (k, v) => Err(format!("expected {}, found {}", type_name(k), v.type_str())),
    }
}

/// A command-line value as a value of the arg's type.
pub fn parse_override(kind: &ArgType, v: &str) -> Result<ArgValue, String> {
    match kind {
        ArgType::String => Ok(ArgValue::String(v.to_owned())),
        ArgType::Bool => parse_bool(v).map(ArgValue::Bool),
        ArgType::Int => v
            .trim()
            .parse()
            .map(ArgValue::Int)
            .map_err(|_| format!("`{v}` is not an integer")),
        ArgType::Enum(vals) if vals.iter().any(|x| x == v) => Ok(ArgValue::String(v.to_owned())),
        ArgType::Enum(vals) => Err(format!("`{v}` is not one of {}", vals.join(", "))),
    }
}

/// `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off`, any case; anything else is an error.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "`{}` is not a bool (true, 1, yes or on; false, 0, no or off; any case)",
            super::values::shown(v)
        )),
    }
}
