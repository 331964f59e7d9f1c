//! What every op shares: its place in the graph ([`Node`], [`Output`]) and the
//! metadata any op may carry (name, cache policy, progress group, location).

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_proto::pb;

use crate::exec::ExecNode;
use crate::file::FileNode;
use crate::source::SourceNode;
use crate::{LlbError, Platform};

/// Description key BuildKit shows as the vertex name in progress output.
pub(crate) const CUSTOM_NAME: &str = "llb.customname";

/// One op of the graph. Shared behind `Arc`: states that derive from the same
/// op point at the same node, so cloning a state never copies the graph.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) meta: OpMeta,
}

/// The op bodies Strata emits.
#[derive(Debug)]
pub(crate) enum NodeKind {
    Source(SourceNode),
    Exec(Box<ExecNode>),
    File(FileNode),
}

impl NodeKind {
    /// The outputs this op reads, in the order `lower` expects their inputs.
    pub(crate) fn inputs(&self) -> Vec<&Output> {
        match self {
            NodeKind::Source(_) => Vec::new(),
            NodeKind::Exec(exec) => exec.inputs(),
            NodeKind::File(file) => file.inputs(),
        }
    }

    /// The protobuf op, given one resolved input per entry of `inputs()`.
    pub(crate) fn lower(
        &self,
        inputs: &[pb::Input],
        platform: &Platform,
    ) -> Result<pb::Op, LlbError> {
        match self {
            NodeKind::Source(source) => Ok(source.lower(platform)),
            NodeKind::Exec(exec) => exec.lower(inputs, platform),
            NodeKind::File(file) => Ok(file.lower(inputs)),
        }
    }
}

/// One output of an op: the filesystem a [`crate::State`] stands for.
#[derive(Clone, Debug)]
pub(crate) struct Output {
    pub(crate) node: Arc<Node>,
    pub(crate) index: i64,
}

/// `Op.inputs` under construction: equal inputs share one index, as in Go.
#[derive(Default)]
pub(crate) struct InputList(pub(crate) Vec<pb::Input>);

impl InputList {
    /// The index of `input`, appending it if it is new.
    pub(crate) fn index_of(&mut self, input: &pb::Input) -> i64 {
        let position = match self.0.iter().position(|known| known == input) {
            Some(position) => position,
            None => {
                self.0.push(input.clone());
                self.0.len() - 1
            }
        };
        position as i64
    }
}

/// Where in a user's file an op comes from, so BuildKit can point at the line
/// when the op fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    /// Index into [`crate::MarshalOptions::source_infos`].
    pub source_index: usize,
    /// The ranges within that file.
    pub ranges: Vec<SourceRange>,
}

impl SourceLocation {
    /// A location covering `ranges` of source `source_index`.
    pub fn new(source_index: usize, ranges: Vec<SourceRange>) -> Self {
        Self {
            source_index,
            ranges,
        }
    }

    /// A location covering lines `start..=end` (1-based) of source `source_index`.
    pub fn lines(source_index: usize, start: u32, end: u32) -> Self {
        Self::new(source_index, vec![SourceRange::lines(start, end)])
    }
}

/// A range in a source file; lines are 1-based, columns 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceRange {
    /// First line.
    pub start_line: u32,
    /// Column on the first line.
    pub start_col: u32,
    /// Last line.
    pub end_line: u32,
    /// Column on the last line.
    pub end_col: u32,
}

impl SourceRange {
    /// Whole lines `start..=end`.
    pub fn lines(start: u32, end: u32) -> Self {
        Self {
            start_line: start,
            start_col: 0,
            end_line: end,
            end_col: 0,
        }
    }

    pub(crate) fn to_pb(self) -> pb::Range {
        let position = |line: u32, character: u32| pb::Position {
            line: i32::try_from(line).unwrap_or(i32::MAX),
            character: i32::try_from(character).unwrap_or(i32::MAX),
        };
        // Go dereferences both ends, so both are always present.
        pb::Range {
            start: Some(position(self.start_line, self.start_col)),
            end: Some(position(self.end_line, self.end_col)),
        }
    }
}

/// Metadata any op may carry; set through the builder methods every op
/// builder ([`crate::Run`], [`crate::FileActions`], [`crate::Image`],
/// [`crate::Local`]) shares.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpMeta {
    pub(crate) description: BTreeMap<String, String>,
    pub(crate) ignore_cache: bool,
    pub(crate) progress_group: Option<pb::ProgressGroup>,
    pub(crate) location: Option<SourceLocation>,
}

impl OpMeta {
    pub(crate) fn to_pb(&self) -> pb::OpMetadata {
        pb::OpMetadata {
            ignore_cache: self.ignore_cache,
            description: self.description.clone(),
            progress_group: self.progress_group.clone(),
            ..Default::default()
        }
    }
}

/// Adds the shared op-metadata builder methods to a builder with an
/// `op: OpMeta` field.
macro_rules! op_meta_methods {
    ($builder:ty) => {
        impl $builder {
            /// Names the op in progress output (description `llb.customname`).
            /// Control characters are escaped (`\n` shows as `\\n`), so a
            /// name built from user values is one line of progress, never
            /// a forged one.
            pub fn custom_name(self, name: impl Into<String>) -> Self {
                let name = $crate::printable(&name.into()).into_owned();
                self.description($crate::op::CUSTOM_NAME, name)
            }

            /// Sets one description entry of the op's metadata.
            pub fn description(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
                self.op.description.insert(key.into(), value.into());
                self
            }

            /// Always runs the op, never taking it from the cache.
            pub fn ignore_cache(mut self, ignore: bool) -> Self {
                self.op.ignore_cache = ignore;
                self
            }

            /// Groups the op with others under one progress line.
            pub fn progress_group(
                mut self,
                id: impl Into<String>,
                name: impl Into<String>,
                weak: bool,
            ) -> Self {
                self.op.progress_group = Some(strata_proto::pb::ProgressGroup {
                    id: id.into(),
                    name: name.into(),
                    weak,
                });
                self
            }

            /// Records where in the user's file the op comes from.
            pub fn location(mut self, location: $crate::SourceLocation) -> Self {
                self.op.location = Some(location);
                self
            }
        }
    };
}
pub(crate) use op_meta_methods;
