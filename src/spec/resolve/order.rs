//! The build order of components, and the cycle check.

use super::*;

impl Resolver<'_> {
    /// Dependencies first, ties by name; reports cycles.
    pub(super) fn order(
        &mut self,
        comps: Vec<Component>,
        ref_spans: &BTreeMap<(String, String), Range<usize>>,
    ) -> Option<Vec<Component>> {
        let index: BTreeMap<String, usize> = comps
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let deps: Vec<Vec<usize>> = comps
            .iter()
            .map(|c| {
                c.dependencies()
                    .into_iter()
                    .filter_map(|(d, _)| index.get(&d).copied())
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; comps.len()];
        let mut order = Vec::with_capacity(comps.len());
        let mut reported = false;
        for start in 0..comps.len() {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (node, next dependency to visit).
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = deps[node].get(*next) {
                    *next += 1;
                    match state[dep] {
                        0 => {
                            state[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 if !reported => {
                            reported = true;
                            let pos = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut path: Vec<&str> = stack[pos..]
                                .iter()
                                .map(|(n, _)| comps[*n].name.as_str())
                                .collect();
                            path.push(&comps[dep].name);
                            let span = ref_spans
                                .get(&(comps[node].name.clone(), comps[dep].name.clone()))
                                .cloned()
                                .unwrap_or(comps[node].span.clone());
                            self.error(ErrorCode::Cycle, span, format!("components form a cycle: {}", path.join(" -> ")), "a component cannot need itself, directly or through others; break one of these edges");
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        if reported {
            return None;
        }
        let mut slots: Vec<Option<Component>> = comps.into_iter().map(Some).collect();
        Some(order.into_iter().filter_map(|i| slots[i].take()).collect())
    }
}
