//! `gpu = { of, base, mode, steps, apt-repo, copy, capabilities }`: a GPU
//! flavour of a CPU component, resolved.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_spanned::Spanned;

use super::{Ctx, ErrorCode, Resolver};
use crate::graph::{Base, Gpu, GpuMode};
use crate::spec::raw::RawGpu;

impl Resolver<'_> {
    /// The flavour's base (the CUDA image) and its GPU settings.
    pub(super) fn gpu(
        &mut self,
        g: &Spanned<RawGpu>,
        cname: &str,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> (Base, Option<Gpu>) {
        let gr = g.get_ref();
        let of = self.gpu_of(gr, cname, ctx);
        ref_spans.insert((cname.to_owned(), of.clone()), gr.of.span());
        let base = self.gpu_base(gr, ctx);
        let (mode, copy) = self.gpu_mode(g, &of);
        let steps = gr
            .steps
            .iter()
            .filter_map(|s| self.step(s, cname, ctx, ref_spans))
            .collect();
        let apt_repo = gr
            .apt_repo
            .as_ref()
            .and_then(|r| self.context_input(r, &ctx.vars, crate::graph::InputKind::AptRepo))
            .filter(|r| !r.is_empty());
        let gpu = Gpu {
            of,
            mode,
            steps,
            apt_repo,
            copy,
            capabilities: gr
                .capabilities
                .as_ref()
                .map_or_else(|| "compute,utility".to_owned(), |c| c.get_ref().clone()),
            span: g.span(),
        };
        (base, Some(gpu))
    }

    /// `gpu.of`: the CPU component this is the flavour of (errors when it
    /// is not a component, or is this one).
    fn gpu_of(&mut self, gr: &RawGpu, cname: &str, ctx: &Ctx) -> String {
        let of = gr.of.get_ref().clone();
        if !ctx.names.contains(&of) {
            let help = self
                .closest(&of, ctx.names.iter().map(String::as_str))
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| "name the CPU component this is the GPU flavour of".into());
            self.error(
                ErrorCode::UnknownComponent,
                gr.of.span(),
                format!("`gpu.of = \"{of}\"` is not a component"),
                help,
            );
        } else if of == cname {
            self.error(
                ErrorCode::SelfReference,
                gr.of.span(),
                format!("component `{cname}` is the GPU flavour of itself"),
                "name the CPU component",
            );
        }
        of
    }

    /// `gpu.base`: an external image (scratch after an error).
    fn gpu_base(&mut self, gr: &RawGpu, ctx: &Ctx) -> Base {
        match self.interpolate(&gr.base, &ctx.vars) {
            Some(text) if ctx.names.contains(&text) => {
                self.error(
                    ErrorCode::InvalidImage,
                    gr.base.span(),
                    format!("`gpu.base` names the component `{text}`, not an image"),
                    "a GPU flavour is built on an external CUDA image: write `name:tag`, e.g. `nvidia/cuda:12.4.1-runtime-ubuntu22.04`",
                );
                Base::Scratch
            }
            Some(text) if self.bare_name(gr.base.span(), &text, &BTreeSet::new()) => Base::Scratch,
            Some(_) => self
                .image_ref(&gr.base, &ctx.vars, ctx.mirrors)
                .map_or(Base::Scratch, Base::Image),
            None => Base::Scratch,
        }
    }

    /// `gpu.mode` and the absolute `gpu.copy` paths it copies from `of`:
    /// copy when paths are listed, else replay.
    fn gpu_mode(&mut self, g: &Spanned<RawGpu>, of: &str) -> (GpuMode, Vec<String>) {
        let gr = g.get_ref();
        let mut copy = Vec::new();
        for p in &gr.copy {
            if !p.get_ref().starts_with('/') {
                self.error(
                    ErrorCode::NotAbsolute,
                    p.span(),
                    format!("`{}` must be an absolute path in `{of}`", p.get_ref()),
                    "write the path starting with `/`",
                );
            } else {
                copy.push(p.get_ref().clone());
            }
        }
        let mode = match gr.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None if gr.copy.is_empty() => GpuMode::Replay,
            None | Some(("copy", _)) => GpuMode::Copy,
            Some(("replay", span)) => {
                if !gr.copy.is_empty() {
                    self.error(
                        ErrorCode::GpuFlavour,
                        span,
                        "`gpu.copy` lists paths but `mode = \"replay\"` copies nothing",
                        "remove `copy` (replay rebuilds those paths on the CUDA base), or write `mode = \"copy\"`",
                    );
                }
                GpuMode::Replay
            }
            Some((other, span)) => {
                self.error(
                    ErrorCode::UnknownChoice,
                    span,
                    format!("`{other}` is not a GPU flavour mode"),
                    "write `mode = \"replay\"` (re-run the CPU component's steps on the CUDA base) or `mode = \"copy\"` (copy `gpu.copy` paths)",
                );
                GpuMode::Replay
            }
        };
        if mode == GpuMode::Copy && copy.is_empty() && gr.copy.is_empty() {
            self.error(
                ErrorCode::GpuFlavour,
                g.span(),
                "`mode = \"copy\"` with nothing to copy",
                "list the CPU component's paths in `copy = [\"/opt/venv\", ...]`, or use `mode = \"replay\"`",
            );
        }
        (mode, copy)
    }
}
