//! Reading through BuildKit: the stack file (from the `dockerfile` input or
//! the session's local directory) and files of the build context.

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};
use strata_proto::gateway as gw;
use strata_proto::pb;
use tonic::Status;

use super::output::result_ref;
use super::{Bridge, CONTEXT_KEY};
use crate::frontend::errors::FrontendError;
use crate::frontend::opts::FrontendOpts;

/// The stack file as read through BuildKit.
pub(super) struct StackFile {
    pub(super) bytes: Vec<u8>,
    /// The vertex that loaded it: warnings attach to it.
    pub(super) vertex: String,
}

pub(super) fn digest_of(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A Definition holding one source op, as `local://dockerfile` reads need.
pub(in crate::frontend) fn single_source_definition(
    source: pb::SourceOp,
    name: String,
    caps: &[&str],
) -> (pb::Definition, String) {
    let op = pb::Op {
        op: Some(pb::op::Op::Source(source)),
        constraints: Some(pb::WorkerConstraints::default()),
        ..Default::default()
    };
    let bytes = op.encode_to_vec();
    let digest = digest_of(&bytes);
    let terminal = pb::Op {
        inputs: vec![pb::Input {
            digest: digest.clone(),
            index: 0,
        }],
        ..Default::default()
    };
    let metadata = pb::OpMetadata {
        description: BTreeMap::from([("llb.customname".to_owned(), name)]),
        caps: caps.iter().map(|c| ((*c).to_owned(), true)).collect(),
        ..Default::default()
    };
    let def = pb::Definition {
        def: vec![bytes, terminal.encode_to_vec()],
        metadata: BTreeMap::from([(digest.clone(), metadata)]),
        source: None,
    };
    (def, digest)
}

/// The session serving local directory `name`.
pub(super) fn session_for(opts: &FrontendOpts, name: &str, session_id: &str) -> String {
    opts.local_sessions
        .get(name)
        .cloned()
        .unwrap_or_else(|| session_id.to_owned())
}

/// A Definition reading only `paths` of the session's local directory `name`.
pub(super) fn local_files_definition(
    name: &str,
    session: &str,
    paths: &[String],
    shared_key: &str,
    description: String,
) -> (pb::Definition, String) {
    let follow = serde_json::to_string(paths).unwrap_or_default();
    let source = pb::SourceOp {
        identifier: format!("local://{name}"),
        attrs: BTreeMap::from([
            ("local.differ".to_owned(), "none".to_owned()),
            ("local.followpaths".to_owned(), follow),
            ("local.session".to_owned(), session.to_owned()),
            ("local.sharedkeyhint".to_owned(), shared_key.to_owned()),
        ]),
    };
    single_source_definition(
        source,
        description,
        &[
            "source.local",
            "source.local.differ",
            "source.local.followpaths",
            "source.local.sessionid",
            "source.local.sharedkeyhint",
        ],
    )
}

/// Solves a definition and returns its ref id.
pub(in crate::frontend) async fn solve_ref<B: Bridge>(
    bridge: &mut B,
    definition: pb::Definition,
) -> Result<String, Status> {
    let solved = bridge
        .solve(gw::SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        })
        .await?;
    Ok(result_ref(&solved).unwrap_or_default())
}

/// Reads the ignore files lowering needs from the build context; a missing
/// file is simply absent from the map.
pub(super) async fn read_ignore_files<B: Bridge>(
    bridge: &mut B,
    paths: &[String],
    opts: &FrontendOpts,
    session_id: &str,
) -> Result<BTreeMap<String, String>, FrontendError> {
    read_context_files(bridge, paths, &session_for(opts, CONTEXT_KEY, session_id))
        .await
        .map_err(|s| FrontendError::engine("reading the build context's ignore files", s))
}

/// Reads `paths` of the session's build context; a missing file is simply
/// absent from the map.
pub(in crate::frontend) async fn read_context_files<B: Bridge>(
    bridge: &mut B,
    paths: &[String],
    session: &str,
) -> Result<BTreeMap<String, String>, Status> {
    let mut files = BTreeMap::new();
    if paths.is_empty() {
        return Ok(files);
    }
    let (definition, _) = local_files_definition(
        CONTEXT_KEY,
        session,
        paths,
        "context-ignore-files",
        format!("[internal] load {}", paths.join(", ")),
    );
    let id = solve_ref(bridge, definition).await?;
    for path in paths {
        let read = bridge
            .read_file(gw::ReadFileRequest {
                r#ref: id.clone(),
                file_path: path.clone(),
                range: None,
            })
            .await;
        if let Ok(bytes) = read {
            files.insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(files)
}

/// Reads the stack file from the `dockerfile` input if the caller passed
/// one (a remote context), else from the session's local directory.
pub(super) async fn read_stack_file<B: Bridge>(
    bridge: &mut B,
    opts: &FrontendOpts,
    session_id: &str,
) -> Result<StackFile, FrontendError> {
    let key = &opts.dockerfile_key;
    let from_input = match bridge.inputs().await {
        Ok(mut inputs) => inputs.definitions.remove(key),
        // Older daemons without the Inputs call: local directories only.
        Err(s) if s.code() == tonic::Code::Unimplemented => None,
        Err(s) => {
            return Err(FrontendError::engine(
                "asking BuildKit for the frontend inputs",
                s,
            ))
        }
    };
    let (definition, vertex) = match from_input {
        Some(def) => {
            let vertex = def
                .def
                .last()
                .and_then(|t| pb::Op::decode(t.as_slice()).ok())
                .and_then(|t| t.inputs.first().map(|i| i.digest.clone()))
                .unwrap_or_default();
            (def, vertex)
        }
        None => local_files_definition(
            key,
            &session_for(opts, key, session_id),
            std::slice::from_ref(&opts.filename),
            key,
            format!("[internal] load build definition from {}", opts.filename),
        ),
    };
    let reading = || format!("reading the stack file `{}`", opts.filename);
    let id = solve_ref(bridge, definition)
        .await
        .map_err(|s| FrontendError::engine(reading(), s))?;
    let bytes = bridge
        .read_file(gw::ReadFileRequest {
            r#ref: id,
            file_path: opts.filename.clone(),
            range: None,
        })
        .await
        .map_err(|s| FrontendError::engine(reading(), s))?;
    Ok(StackFile { bytes, vertex })
}
