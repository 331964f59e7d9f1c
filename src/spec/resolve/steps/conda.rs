//! `conda` steps.

use super::*;

impl Resolver<'_> {
    pub(in crate::spec::resolve) fn conda(
        &mut self,
        c: &Spanned<raw::Short<raw::CondaSpec>>,
        vars: &Vars,
    ) -> Option<Step> {
        let spec = c.get_ref();
        let env = self.interpolate(&spec.env, vars)?;
        // Conda allows any case (`R` is a usual name); no spaces, `/` or `:`.
        let env_ok = env
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && env.len() <= 128
            && env
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !env_ok {
            self.error(
                ErrorCode::InvalidName,
                spec.env.span(),
                format!("`{env}` is not a valid environment name"),
                "use letters, digits, `-`, `_` and `.`",
            );
        }
        let tool = match spec.tool.as_ref().map(|t| t.get_ref().as_str()) {
            None => "micromamba".to_owned(),
            Some(t @ ("micromamba" | "mamba" | "conda")) => t.to_owned(),
            Some(other) => {
                let span = spec.tool.as_ref().map_or(c.span(), Spanned::span);
                self.error(
                    ErrorCode::UnknownChoice,
                    span,
                    format!("unknown conda tool `{other}`"),
                    "use micromamba, mamba or conda",
                );
                return None;
            }
        };
        let packages = self.words(
            &spec.packages,
            vars,
            values::conda_word,
            "package",
            "write a package spec such as `python=3.10`",
        );
        let file = spec
            .file
            .as_ref()
            .and_then(|f| self.context_input(f, vars, InputKind::CondaFile));
        let channel_dir = spec
            .channel_dir
            .as_ref()
            .and_then(|d| self.context_input(d, vars, InputKind::CondaChannel));
        if spec.packages.is_empty() && spec.file.is_none() {
            self.error(
                ErrorCode::EmptyStep,
                c.span(),
                format!("conda environment `{env}` has no packages and no file"),
                "give `packages = [...]` or `file = \"environment.yml\"`",
            );
        }
        Some(Step {
            kind: StepKind::Conda(Conda {
                env,
                packages,
                channels: self.words(
                    &spec.channels,
                    vars,
                    values::conda_word,
                    "channel",
                    "write a channel name such as `conda-forge`, a URL or an absolute path",
                ),
                file,
                channel_dir,
                tool,
            }),
            span: c.span(),
        })
    }
}
