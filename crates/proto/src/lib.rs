//! BuildKit's LLB and gateway protocol, as the v0.13 subset Strata speaks.
//!
//! The `.proto` files in the workspace's top-level `proto/` directory were
//! written from BuildKit's published field numbers; `build.rs` compiles them
//! with `protox` (no system `protoc`) and generates prost messages plus a tonic
//! client for the `LLBBridge` service. Proto package names are BuildKit's own
//! (`pb`, `moby.buildkit.v1.frontend`, ...) because they are part of the wire
//! contract: gRPC method paths and `Any` type URLs are built from them.
//!
//! # Why our own subset rather than `bollard-buildkit-proto`
//!
//! `bollard-buildkit-proto` 0.9.2 (crates.io) ships pre-generated code for all
//! of BuildKit at a recent HEAD. We keep our own subset because:
//!
//! - **Determinism**: its gateway and control messages (`SolveRequest`,
//!   `InputsResponse`, ...) use `HashMap`; here every map is a `BTreeMap`.
//! - **v0.13 field set**: it carries fields Docker 26.1's BuildKit does not
//!   know (`ExecOp.cdiDevices`, `Meta.validExitCodes`, `FileActionCopy.modeStr`,
//!   `FileAction.symlink`, ...); our types cannot express them.
//! - **Size and dependencies**: it generates the control API, session, secrets,
//!   ssh, filesync, health and its own `google.protobuf` types; we generate 7
//!   small files and reuse `prost_types::Any`.

#![allow(
    missing_docs,
    clippy::doc_lazy_continuation,
    clippy::large_enum_variant
)]

mod generated {
    include!(concat!(env!("OUT_DIR"), "/strata_proto.rs"));
}

/// BuildKit's typed error details (proto package `errdefs`), sent as JSON in `Any`.
pub use generated::errdefs;
/// File metadata for `ReadDir`/`StatFile` (proto package `fsutil.types`).
pub use generated::fsutil::types as fsutil;
/// `google.rpc.Status`, the error carried by `ReturnRequest.error`.
pub use generated::google::rpc;
/// Capability records returned by `Ping` (proto package `moby.buildkit.v1.apicaps`).
pub use generated::moby::buildkit::v1::apicaps;
/// Gateway frontend API: the `LLBBridge` service and its messages
/// (proto package `moby.buildkit.v1.frontend`).
pub use generated::moby::buildkit::v1::frontend as gateway;
/// The generated tonic client for `LLBBridge`.
pub use generated::moby::buildkit::v1::frontend::llb_bridge_client;
pub use generated::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
/// Worker records returned by `Ping` (proto package `moby.buildkit.v1.types`).
pub use generated::moby::buildkit::v1::types;
/// LLB operations and definitions (proto package `pb`).
pub use generated::pb;
