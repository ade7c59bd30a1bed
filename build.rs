//! Generates the server and client code and the descriptor set for reflection from `proto/`,
//! in pure Rust (protox), so building needs no `protoc` on the machine.

use std::{env, fs, io, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from("proto");
    let mut files = fs::read_dir(proto_dir.join("observer_registry/v1"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();

    let descriptor_bytes = protox::Compiler::new([&proto_dir])?
        .include_source_info(true)
        .include_imports(true)
        .open_files(&files)?
        .encode_file_descriptor_set();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("observer_registry_descriptor.bin"),
        &descriptor_bytes,
    )?;

    let descriptor_set = prost_types::FileDescriptorSet::decode(descriptor_bytes.as_slice())?;
    // A partner's client-only build (`--no-default-features --features client`) compiles
    // no server code.
    let server = env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .build_server(server)
        .build_client(true)
        .compile_fds(descriptor_set)?;

    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
