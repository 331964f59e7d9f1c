use thiserror::Error;

/// Everything that can go wrong while building, marshalling, decoding or
/// validating LLB.
#[derive(Debug, Error)]
pub enum LlbError {
    /// Bytes that are not a valid protobuf message of the expected type.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// Which message was being decoded (e.g. "definition", "op 3").
        what: String,
        /// The protobuf decoder's error.
        source: prost::DecodeError,
    },
    /// A run without a command.
    #[error("run needs at least one argument")]
    EmptyArgs,
    /// A platform string that is not `os/arch[/variant]`.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
    /// An op's source location points past the registered source infos.
    #[error(
        "source location refers to source #{index}, but only {len} source infos are registered"
    )]
    SourceIndexOutOfRange {
        /// The offending index.
        index: i32,
        /// How many source infos exist.
        len: usize,
    },
    /// A definition with ops but fewer than the two BuildKit requires.
    #[error("a definition needs at least 2 ops (one and the terminal), found {0}")]
    TooFewOps(usize),
    /// An op input whose digest is not among the definition's ops.
    #[error("op {op} refers to missing input {digest}")]
    MissingInput {
        /// Digest of the op holding the reference.
        op: String,
        /// The digest that does not resolve.
        digest: String,
    },
    /// An index (mount input, file action input, ...) outside its valid range.
    #[error("op {op}: {what} {index} is out of range")]
    IndexOutOfRange {
        /// Digest of the op.
        op: String,
        /// Which index ("mount input", "file action input", ...).
        what: &'static str,
        /// The offending value.
        index: i64,
    },
    /// The last op is not a terminal op with exactly one input.
    #[error("the last op must be a terminal op with exactly one input")]
    BadTerminal,
    /// Metadata or a source location keyed by a digest that is not an op.
    #[error("{what} is keyed by {digest}, which is not an op of the definition")]
    OrphanKey {
        /// "metadata" or "source location".
        what: &'static str,
        /// The unknown digest.
        digest: String,
    },
}
