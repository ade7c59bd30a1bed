//! Generates the messages and the client stubs from `../proto`, in pure Rust (protox), so
//! building needs no `protoc` on the machine. The service's crate generates only its server
//! stubs, against these messages.

use std::{fs, io, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The contract lives beside the crate in the workspace: one copy for client and server.
    let proto_dir = PathBuf::from("../proto");
    let mut files = fs::read_dir(proto_dir.join("observer_registry/v1"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();

    // Source info carries the contract's comments into the generated docs.
    let descriptor_set = protox::Compiler::new([&proto_dir])?
        .include_source_info(true)
        .include_imports(true)
        .open_files(&files)?
        .file_descriptor_set();
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptor_set)?;

    println!("cargo:rerun-if-changed=../proto");
    Ok(())
}
