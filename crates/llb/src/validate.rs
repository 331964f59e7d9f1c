//! Checks any definition (ours or one received from BuildKit) against the
//! rules buildkitd applies when it loads LLB.

use std::collections::BTreeMap;

use prost::Message;
use strata_proto::pb;

use crate::{digest_of, LlbError};

/// Decodes the protobuf bytes of a definition.
pub fn decode_definition(bytes: &[u8]) -> Result<pb::Definition, LlbError> {
    pb::Definition::decode(bytes).map_err(|source| LlbError::Decode {
        what: "definition".to_owned(),
        source,
    })
}

/// Decodes every op of `definition`, keyed by its digest (the sha256 of its
/// exact bytes, as buildkitd computes it), in definition order.
pub fn decode_ops(definition: &pb::Definition) -> Result<Vec<(String, pb::Op)>, LlbError> {
    definition
        .def
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let op = pb::Op::decode(bytes.as_slice()).map_err(|source| LlbError::Decode {
                what: format!("op {i}"),
                source,
            })?;
            Ok((digest_of(bytes), op))
        })
        .collect()
}

/// Checks that `definition` is loadable: every op decodes, every input digest
/// names an op of the definition, indices stay in range, the last op is a
/// terminal with one input, and metadata and source locations are keyed by
/// op digests. An empty definition (scratch) is valid.
pub fn validate(definition: &pb::Definition) -> Result<(), LlbError> {
    if definition.def.is_empty() {
        return Ok(());
    }
    let ops = decode_ops(definition)?;
    if ops.len() < 2 {
        return Err(LlbError::TooFewOps(ops.len()));
    }
    let by_digest: BTreeMap<&str, &pb::Op> = ops.iter().map(|(d, op)| (d.as_str(), op)).collect();

    for (digest, op) in &ops {
        for input in &op.inputs {
            if !by_digest.contains_key(input.digest.as_str()) {
                return Err(LlbError::MissingInput {
                    op: digest.clone(),
                    digest: input.digest.clone(),
                });
            }
            if input.index < 0 {
                return Err(out_of_range(digest, "input index", input.index));
            }
        }
        check_indices(digest, op)?;
    }

    let terminal = ops.last().map(|(_, op)| op);
    if !terminal.is_some_and(|op| op.op.is_none() && op.inputs.len() == 1) {
        return Err(LlbError::BadTerminal);
    }

    for digest in definition.metadata.keys() {
        if !by_digest.contains_key(digest.as_str()) {
            return Err(LlbError::OrphanKey {
                what: "metadata",
                digest: digest.clone(),
            });
        }
    }
    if let Some(source) = &definition.source {
        for (digest, locations) in &source.locations {
            if !by_digest.contains_key(digest.as_str()) {
                return Err(LlbError::OrphanKey {
                    what: "source location",
                    digest: digest.clone(),
                });
            }
            for location in &locations.locations {
                let index = location.source_index;
                if usize::try_from(index).map_or(true, |i| i >= source.infos.len()) {
                    return Err(LlbError::SourceIndexOutOfRange {
                        index,
                        len: source.infos.len(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn out_of_range(digest: &str, what: &'static str, index: i64) -> LlbError {
    LlbError::IndexOutOfRange {
        op: digest.to_owned(),
        what,
        index,
    }
}

/// Mount inputs index `Op.inputs` (or -1); file action inputs may also name
/// an earlier action's result (`len(inputs) + n`).
fn check_indices(digest: &str, op: &pb::Op) -> Result<(), LlbError> {
    let inputs = op.inputs.len() as i64;
    match &op.op {
        Some(pb::op::Op::Exec(exec)) => {
            for mount in &exec.mounts {
                if mount.input < -1 || mount.input >= inputs {
                    return Err(out_of_range(digest, "mount input", mount.input));
                }
            }
        }
        Some(pb::op::Op::File(file)) => {
            for (i, action) in file.actions.iter().enumerate() {
                let limit = inputs + i as i64;
                for (what, index) in [
                    ("file action input", action.input),
                    ("file action secondary input", action.secondary_input),
                ] {
                    if index < -1 || index >= limit {
                        return Err(out_of_range(digest, what, index));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}
