//! The platforms to build for and the external (base) images resolved for
//! each of them.

use std::collections::BTreeMap;

use strata_proto::gateway as gw;
use strata_proto::pb;

use super::Bridge;
use crate::frontend::errors::FrontendError;
use crate::frontend::opts::{self, FrontendOpts};
use crate::graph::{Base, CopySource, ImageRef, Stack, StepKind};
use crate::lower::{BaseImage, Platform};
use crate::spec::{Diagnostic, Diagnostics, ErrorCode};

/// The platforms to build for: the `platform` option (one or more), else
/// the worker's own.
pub(super) fn target_platforms(opts: &FrontendOpts, pong: &gw::PongResponse) -> Vec<Platform> {
    if opts.platforms.is_empty() {
        vec![worker_platform(pong)]
    } else {
        opts.platforms.clone()
    }
}

/// The worker's own platform: `BUILDPLATFORM`.
pub(super) fn worker_platform(pong: &gw::PongResponse) -> Platform {
    pong.workers
        .iter()
        .find_map(|w| w.platforms.first())
        .and_then(platform_from_pb)
        .unwrap_or_default()
}

/// Where the stack uses an external image (for locating resolve errors).
pub(super) fn image_use_span(stack: &Stack, image: &ImageRef) -> std::ops::Range<usize> {
    for c in stack.enabled() {
        if c.base == Base::Image(image.clone()) {
            return c.span.clone();
        }
        for s in &c.steps {
            if let StepKind::Copy(copy) = &s.kind {
                if copy.source == CopySource::Image(image.clone()) {
                    return s.span.clone();
                }
            }
        }
    }
    0..0
}

/// Resolves external images (bases the target needs) for `platform`.
pub(super) async fn resolve_bases<B: Bridge>(
    bridge: &mut B,
    stack: &Stack,
    images: Vec<ImageRef>,
    platform: &Platform,
    opts: &FrontendOpts,
) -> Result<BTreeMap<String, BaseImage>, FrontendError> {
    let mode = opts.image_resolve_mode.unwrap_or_default().as_str();
    let mut bases = BTreeMap::new();
    for image in images {
        let normalized = image.normalized();
        if bases.contains_key(&normalized) {
            continue;
        }
        // No LogName: a probe must not show the user a step of its own.
        let answer = bridge
            .resolve_image_config(gw::ResolveImageConfigRequest {
                r#ref: normalized.clone(),
                platform: Some(pb_platform(platform)),
                resolve_mode: mode.to_owned(),
                ..Default::default()
            })
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(s) => {
                let d = Diagnostic::error(
                    ErrorCode::UnresolvableImage,
                    image_use_span(stack, &image),
                    format!(
                        "cannot resolve image `{}` for {}: {}",
                        image.familiar(),
                        platform,
                        s.message()
                    ),
                )
                .with_help(
                    "load or pull it into the engine's image store, or map it to a reachable copy with a mirror (build-arg STRATA_MIRRORS=from=to)",
                );
                return Err(FrontendError::Stack(Diagnostics {
                    file: stack.file.clone(),
                    items: vec![d],
                }));
            }
        };
        let config = if answer.config.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(&answer.config).map_err(|e| {
                FrontendError::Other(format!(
                    "the config of image `{}` is not JSON: {e}",
                    image.familiar()
                ))
            })?
        };
        let name = if answer.r#ref.is_empty() {
            normalized.clone()
        } else {
            answer.r#ref.clone()
        };
        // Images only in the local store have no registry digest: use them by name.
        let reference = if answer.digest.is_empty() || name.contains('@') {
            name
        } else {
            format!("{name}@{}", answer.digest)
        };
        bases.insert(normalized, BaseImage { reference, config });
    }
    Ok(bases)
}

pub(super) fn platform_from_pb(p: &pb::Platform) -> Option<Platform> {
    let text = match p.variant.as_str() {
        "" => format!("{}/{}", p.os, p.architecture),
        v => format!("{}/{}/{v}", p.os, p.architecture),
    };
    opts::parse_platform(&text).ok()
}

pub(super) fn pb_platform(p: &Platform) -> pb::Platform {
    pb::Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone().unwrap_or_default(),
        ..Default::default()
    }
}
