//! `run` steps.

use super::*;

impl Resolver<'_> {
    pub(in crate::spec::resolve) fn run(
        &mut self,
        r: &Spanned<raw::Short<raw::RunSpec>>,
        vars: &Vars,
    ) -> Option<Step> {
        let spec = r.get_ref();
        let args = spec.cmd.get_ref().argv();
        if args.last().is_none_or(|a| a.trim().is_empty()) {
            self.error(
                ErrorCode::EmptyStep,
                r.span(),
                "run step has an empty command",
                "give the command to run",
            );
        }
        let network = self.network(spec.network.as_ref(), Network::Default);
        let as_user = self.as_user(spec.run_as.as_ref(), false);
        let mut cache = Vec::new();
        for c in &spec.cache {
            if !c.get_ref().starts_with('/') {
                self.error(
                    ErrorCode::NotAbsolute,
                    c.span(),
                    format!("cache directory `{}` must be absolute", c.get_ref()),
                    "e.g. `/root/.cache`",
                );
            } else {
                cache.push(c.get_ref().clone());
            }
        }
        let mut env = Vec::new();
        for (k, v) in &spec.env {
            env.extend(self.interpolate(v, vars).map(|v| (k.get_ref().clone(), v)));
        }
        Some(Step {
            kind: StepKind::Run(Run {
                args,
                network,
                secrets: spec.secrets.iter().map(|s| s.get_ref().clone()).collect(),
                cache,
                as_user,
                env,
                env_keys: key_spans(&spec.env),
                name: spec.name.as_ref().map(|n| n.get_ref().clone()),
            }),
            span: r.span(),
        })
    }
}
