//! `pip` steps.

use super::*;

impl Resolver<'_> {
    pub(in crate::spec::resolve) fn pip(
        &mut self,
        p: &Spanned<raw::Short<raw::PipSpec>>,
        vars: &Vars,
    ) -> Option<Step> {
        let spec = p.get_ref();
        let packages = self.words(
            &spec.packages,
            vars,
            values::pip_requirement,
            "requirement",
            "write a requirement such as `six==1.16.0`; set pip's options with the step's keys",
        );
        let mut requirements = Vec::new();
        for r in &spec.requirements {
            requirements.extend(self.context_input(r, vars, InputKind::Requirements));
        }
        if spec.packages.is_empty() && spec.requirements.is_empty() {
            self.error(
                ErrorCode::EmptyStep,
                p.span(),
                "pip step installs nothing",
                "give `packages` or `requirements`",
            );
        }
        let venv = match spec.venv.as_ref() {
            None => Some("/opt/venv".to_owned()),
            Some(v) if v.get_ref() == "system" => None,
            Some(v) => {
                if !v.get_ref().starts_with('/') {
                    self.error(
                        ErrorCode::NotAbsolute,
                        v.span(),
                        format!("venv `{}` must be an absolute path", v.get_ref()),
                        "e.g. `/opt/venv`, or `system` for no venv",
                    );
                }
                Some(v.get_ref().clone())
            }
        };
        let find_links = spec
            .find_links
            .as_ref()
            .and_then(|r| self.context_input(r, vars, InputKind::WheelDir));
        let index = self.pip_index(
            spec.index_url.as_ref(),
            &spec.extra_index_url,
            &spec.trusted_host,
            vars,
        );
        Some(Step {
            kind: StepKind::Pip(Pip {
                packages,
                requirements,
                venv,
                find_links,
                index,
            }),
            span: p.span(),
        })
    }
}
