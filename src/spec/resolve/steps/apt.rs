//! `apt` steps.

use super::*;

impl Resolver<'_> {
    pub(in crate::spec::resolve) fn apt(
        &mut self,
        a: &Spanned<raw::Short<raw::AptSpec>>,
        vars: &Vars,
    ) -> Option<Step> {
        let spec = a.get_ref();
        let packages = self.words(
            &spec.packages,
            vars,
            values::apt_package,
            "package",
            "use names like `python3` or `libssl3=3.0.11-1`; apt-get's options are set by Strata",
        );
        if spec.packages.is_empty() {
            self.error(
                ErrorCode::EmptyStep,
                a.span(),
                "apt step installs no packages",
                "list packages, or remove the step",
            );
        }
        let repo = spec
            .repo
            .as_ref()
            .and_then(|r| self.context_input(r, vars, InputKind::AptRepo));
        let mirror = spec.mirror.as_ref().and_then(|m| self.apt_mirror(m, vars));
        if let (Some(_), Some(m)) = (&spec.repo, &spec.mirror) {
            self.error(
                ErrorCode::ConflictingKeys,
                m.span(),
                "an apt step reads one archive, but this one has both `repo` and `mirror`",
                "keep `repo` (a flat repository in the context) or `mirror` (an archive URL)",
            );
        }
        Some(Step {
            kind: StepKind::Apt(Apt {
                packages,
                repo,
                mirror,
            }),
            span: a.span(),
        })
    }
}
