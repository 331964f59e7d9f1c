//! `dnf` and `apk` steps.

use super::*;

impl Resolver<'_> {
    /// A dnf (`dnf = true`) or apk step.
    pub(in crate::spec::resolve) fn os_packages(
        &mut self,
        p: &Spanned<raw::Short<raw::OsPackagesSpec>>,
        vars: &Vars,
        dnf: bool,
    ) -> Option<Step> {
        let spec = p.get_ref();
        let tool = if dnf { "dnf" } else { "apk" };
        let packages = self.words(
            &spec.packages,
            vars,
            values::os_package,
            "package",
            &format!("use package names such as `curl` or `curl-8.5.0`; {tool}'s options are set by Strata"),
        );
        if spec.packages.is_empty() {
            self.error(
                ErrorCode::EmptyStep,
                p.span(),
                format!("{tool} step installs no packages"),
                "list packages, or remove the step",
            );
        }
        let packages = OsPackages { packages };
        Some(Step {
            kind: if dnf {
                StepKind::Dnf(packages)
            } else {
                StepKind::Apk(packages)
            },
            span: p.span(),
        })
    }
}
