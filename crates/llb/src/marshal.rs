//! From a [`State`] to a [`pb::Definition`], deterministically.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use strata_proto::pb;

use crate::op::Node;
use crate::{caps, LlbError, Platform, State};

/// A user file that source locations point into.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceInfo {
    /// Name shown to the user (e.g. `stack.yaml`).
    pub filename: String,
    /// The file's contents, for showing the lines around an error.
    pub data: Vec<u8>,
    /// The file's language (e.g. `yaml`), for highlighting.
    pub language: String,
}

/// Settings of one [`State::marshal`] call.
#[derive(Clone, Debug, Default)]
pub struct MarshalOptions {
    /// Platform of image sources and exec ops whose state has none
    /// (`linux/amd64` unless set; a frontend passes the worker's).
    pub platform: Platform,
    /// Files that ops' [`crate::SourceLocation`]s index into.
    pub source_infos: Vec<SourceInfo>,
}

/// `sha256:<hex>` of `bytes`, the digest BuildKit gives an op.
pub fn digest_of(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut digest = String::with_capacity(7 + 64);
    digest.push_str("sha256:");
    for byte in hash {
        digest.push_str(&format!("{byte:02x}"));
    }
    digest
}

/// The protobuf bytes of a definition (e.g. for `frontend.bin`-style files).
pub fn encode_definition(definition: &pb::Definition) -> Vec<u8> {
    definition.encode_to_vec()
}

impl State {
    /// The definition of this state's filesystem. Scratch gives an empty
    /// definition, which BuildKit solves to an empty result.
    pub fn marshal(&self, options: &MarshalOptions) -> Result<pb::Definition, LlbError> {
        let Some(output) = &self.output else {
            return Ok(pb::Definition::default());
        };
        let mut marshaller = Marshaller {
            options,
            digests: BTreeMap::new(),
            emitted: BTreeSet::new(),
            definition: pb::Definition::default(),
            locations: BTreeMap::new(),
        };
        let root = pb::Input {
            digest: marshaller.visit(&output.node)?,
            index: output.index,
        };
        marshaller.finish(root)
    }

    /// [`State::marshal`], encoded.
    pub fn to_bytes(&self, options: &MarshalOptions) -> Result<Vec<u8>, LlbError> {
        self.marshal(options)
            .map(|definition| encode_definition(&definition))
    }
}

struct Marshaller<'a> {
    options: &'a MarshalOptions,
    /// Digest of each node already visited, by node address: a graph shared
    /// by many states is walked once. Only looked up, never iterated.
    digests: BTreeMap<usize, String>,
    emitted: BTreeSet<String>,
    definition: pb::Definition,
    locations: BTreeMap<String, pb::Locations>,
}

impl Marshaller<'_> {
    /// Emits `root` after its inputs (post-order) and returns its digest.
    /// Iterative, so graphs of any depth marshal without deep recursion.
    fn visit(&mut self, root: &Arc<Node>) -> Result<String, LlbError> {
        let address = |node: &Arc<Node>| Arc::as_ptr(node) as usize;
        // (node, inputs already pushed)
        let mut stack: Vec<(Arc<Node>, bool)> = vec![(root.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if self.digests.contains_key(&address(&node)) {
                continue;
            }
            if !expanded {
                stack.push((node.clone(), true));
                // Reversed, so the first input is emitted first, as a recursive walk would.
                for output in node.kind.inputs().into_iter().rev() {
                    if !self.digests.contains_key(&address(&output.node)) {
                        stack.push((output.node.clone(), false));
                    }
                }
                continue;
            }
            let inputs = node
                .kind
                .inputs()
                .into_iter()
                .map(|output| pb::Input {
                    digest: self
                        .digests
                        .get(&address(&output.node))
                        .cloned()
                        .unwrap_or_default(),
                    index: output.index,
                })
                .collect::<Vec<_>>();
            self.emit(&node, &inputs)?;
        }
        Ok(self
            .digests
            .get(&address(root))
            .cloned()
            .unwrap_or_default())
    }

    /// Encodes one op whose inputs are already emitted, with its metadata and location.
    fn emit(&mut self, node: &Arc<Node>, inputs: &[pb::Input]) -> Result<String, LlbError> {
        let address = Arc::as_ptr(node) as usize;
        let op = node.kind.lower(inputs, &self.options.platform)?;
        let bytes = op.encode_to_vec();
        let digest = digest_of(&bytes);

        let mut metadata = node.meta.to_pb();
        let caps = caps::for_op(&op)
            .into_iter()
            .chain(caps::for_metadata(&metadata));
        metadata.caps = caps.map(|cap| (cap.to_owned(), true)).collect();
        // Equal ops built separately share a digest: their metadata merges.
        let merged = self.definition.metadata.entry(digest.clone()).or_default();
        merge_metadata(merged, metadata);

        if let Some(location) = &node.meta.location {
            let len = self.options.source_infos.len();
            let index = i32::try_from(location.source_index)
                .ok()
                .filter(|_| location.source_index < len)
                .ok_or(LlbError::SourceIndexOutOfRange {
                    index: i32::try_from(location.source_index).unwrap_or(i32::MAX),
                    len,
                })?;
            let location = pb::Location {
                source_index: index,
                ranges: location.ranges.iter().map(|range| range.to_pb()).collect(),
            };
            let locations = &mut self.locations.entry(digest.clone()).or_default().locations;
            if !locations.contains(&location) {
                locations.push(location);
            }
        }

        if self.emitted.insert(digest.clone()) {
            self.definition.def.push(bytes);
        }
        self.digests.insert(address, digest.clone());
        Ok(digest)
    }

    /// Appends the terminal op pointing at `root` and the source map.
    fn finish(mut self, root: pb::Input) -> Result<pb::Definition, LlbError> {
        let terminal = pb::Op {
            inputs: vec![root],
            ..Default::default()
        };
        let bytes = terminal.encode_to_vec();
        let digest = digest_of(&bytes);
        let mut caps: BTreeMap<String, bool> = [caps::CONSTRAINTS, caps::PLATFORM]
            .into_iter()
            .map(|cap| (cap.to_owned(), true))
            .collect();
        for metadata in self.definition.metadata.values() {
            caps.extend(
                caps::for_metadata(metadata)
                    .into_iter()
                    .map(|cap| (cap.to_owned(), true)),
            );
        }
        self.definition.metadata.insert(
            digest.clone(),
            pb::OpMetadata {
                caps,
                ..Default::default()
            },
        );
        if self.emitted.insert(digest) {
            self.definition.def.push(bytes);
        }

        if !self.locations.is_empty() || !self.options.source_infos.is_empty() {
            let infos = self.options.source_infos.iter().map(|info| pb::SourceInfo {
                filename: info.filename.clone(),
                data: info.data.clone(),
                definition: None,
                language: info.language.clone(),
            });
            self.definition.source = Some(pb::Source {
                locations: self.locations,
                infos: infos.collect(),
            });
        }
        Ok(self.definition)
    }
}

/// Go's `mergeMetadata`: flags and caps accumulate, later descriptions and
/// progress groups win.
fn merge_metadata(into: &mut pb::OpMetadata, from: pb::OpMetadata) {
    into.ignore_cache |= from.ignore_cache;
    into.description.extend(from.description);
    into.caps.extend(from.caps);
    if from.export_cache.is_some() {
        into.export_cache = from.export_cache;
    }
    if from.progress_group.is_some() {
        into.progress_group = from.progress_group;
    }
}
