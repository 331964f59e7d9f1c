//! Which components a build builds: the selection (`--only`, what the
//! selected need), their target names, and the platforms of each.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use super::BuildArgs;
use crate::cli::StackArgs;
use crate::graph::{Component, Stack};
use crate::spec::diag::closest;

/// One bake target: a component and its image.
#[derive(Debug, Clone)]
pub struct Target {
    /// The bake target name (the component's, with `.` made `_`).
    pub name: String,
    /// The component.
    pub component: String,
    /// The image's primary name, from the naming rule.
    pub image: String,
    /// Every name of the image: the primary name, then the extra tags.
    pub names: Vec<String>,
}

/// The components to build, dependencies first: the enabled ones, or
/// those named with `--only` and everything they need.
pub fn select<'a>(stack: &'a Stack, only: &[String]) -> Result<Vec<&'a Component>> {
    if only.is_empty() {
        return Ok(stack.enabled().collect());
    }
    let mut want = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for name in only {
        let Some(c) = stack.component(name) else {
            let names = stack.components.iter().map(|c| c.name.as_str());
            match closest(name, names) {
                Some(s) => bail!("--only {name}: no such component (did you mean `{s}`?)"),
                None => bail!("--only {name}: no such component (see `strata targets`)"),
            }
        };
        if !c.enabled {
            bail!(
                "--only {name}: the component is disabled by `when = \"{}\"` with these args and profile",
                c.condition.as_deref().unwrap_or("")
            );
        }
        todo.push(name.clone());
    }
    while let Some(name) = todo.pop() {
        if !want.insert(name.clone()) {
            continue;
        }
        if let Some(c) = stack.component(&name) {
            todo.extend(c.dependencies().into_iter().map(|(d, _)| d));
        }
    }
    Ok(stack
        .components
        .iter()
        .filter(|c| want.contains(&c.name))
        .collect())
}

/// Bake target names allow letters, digits, `_` and `-` only.
pub(in crate::cli) fn target_names(components: &[&Component]) -> Vec<Target> {
    let mut used = BTreeSet::new();
    components
        .iter()
        .map(|c| {
            let base: String = c
                .name
                .chars()
                .map(|ch| if ch == '.' { '_' } else { ch })
                .collect();
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            Target {
                name,
                component: c.name.clone(),
                image: c.image.familiar(),
                names: c.names().map(|n| n.familiar()).collect(),
            }
        })
        .collect()
}

/// The components `strata build` builds as targets: the selected ones
/// (with `--platform`, those enabled on at least one platform, builders
/// left to the components that copy from them).
pub(super) fn to_build<'s>(
    a: &BuildArgs,
    stack: &'s Stack,
    platforms: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<&'s Component>> {
    let mut components = if a.platform.is_empty() {
        select(stack, &a.select.only)?
    } else {
        stack
            .components
            .iter()
            .filter(|c| platforms.contains_key(&c.name))
            .collect()
    };
    if components.is_empty() {
        bail!("no component is enabled with these args and profile");
    }
    if !a.platform.is_empty() {
        // A builder (`platform = "build"`) is no image of a target
        // platform: it is built inside the components that copy from it.
        components.retain(|c| c.platform != crate::graph::RunsOn::Build);
        if components.is_empty() {
            bail!("with --platform, builder components (platform = \"build\") are built only as part of the components that copy from them: select those");
        }
    }
    Ok(components)
}

/// Every component the targets need, themselves included.
pub(super) fn needed_by<'s>(stack: &'s Stack, targets: &[&'s Component]) -> Vec<&'s Component> {
    let mut needed: Vec<&Component> = Vec::new();
    for c in targets {
        for n in crate::lower::needed_components(stack, &c.name) {
            if !needed.iter().any(|m| m.name == n.name) {
                needed.push(n);
            }
        }
    }
    needed
}

/// With `--platform`: the platforms each component is built for, those
/// of the `--platform` list where it is enabled (a component switched off
/// on arm64 is built for amd64 only); empty without `--platform`. None
/// when the stack has errors for one of the platforms.
pub(in crate::cli) fn platforms_of(
    stack_args: &StackArgs,
    select_only: &[String],
    platforms: &[crate::lower::Platform],
    first: &Stack,
) -> Result<Option<BTreeMap<String, Vec<String>>>> {
    let mut of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if platforms.is_empty() {
        return Ok(Some(of));
    }
    for p in platforms {
        let Some(stack) = stack_args.load_for(Some(p))? else {
            return Ok(None);
        };
        // `--only` names switched off on this platform are built for the others.
        let only: Vec<String> = select_only
            .iter()
            .filter(|n| stack.component(n).is_some_and(|c| c.enabled))
            .cloned()
            .collect();
        if !select_only.is_empty() && only.is_empty() {
            continue;
        }
        for c in select(&stack, &only)? {
            of.entry(c.name.clone()).or_default().push(p.to_string());
        }
    }
    if let Some(off) = select_only.iter().find(|n| !of.contains_key(*n)) {
        // Unknown, or switched off on every platform: said as for the first.
        select(first, std::slice::from_ref(off))?;
        bail!("--only {off}: the component is switched off on every platform asked for");
    }
    Ok(Some(of))
}
