//! Compiles `proto/` with protox (pure Rust, no system protoc) and generates
//! the prost messages, the tonic clients (LLBBridge, Control) and the
//! session services' servers (FileSync, FileSend, Auth, Content).

use std::path::PathBuf;

const FILES: &[&str] = &[
    "ops.proto",
    "caps.proto",
    "worker.proto",
    "stat.proto",
    "google/rpc/status.proto",
    "errdefs.proto",
    "gateway.proto",
    "control.proto",
    "wire.proto",
    "filesync.proto",
    "auth.proto",
    "content.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", proto_dir.join(file).display());
    }

    let descriptors = protox::compile(FILES, [&proto_dir])?;
    tonic_prost_build::configure()
        // Servers for the session services BuildKit calls on a client
        // (file sync, auth); unused servers cost nothing in a binary.
        .build_server(true)
        .build_client(true)
        // BTreeMap everywhere: map entries encode in key order, so bytes are stable.
        .btree_map(".")
        .include_file("strata_proto.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
