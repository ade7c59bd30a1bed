//! Generates the server stubs and the descriptor set for reflection from `proto/`, in pure
//! Rust (protox), so building needs no `protoc` on the machine. The messages and client stubs
//! come from the client crate (client/build.rs): generated twice, they would be two sets of
//! types that do not convert into each other.

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
    // A client-only build (`--no-default-features --features client`) compiles no server
    // code (src/pb.rs includes none).
    if env::var_os("CARGO_FEATURE_SERVER").is_some() {
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(false)
            .codec_path("crate::pb::codec::ServerCodec")
            .extern_path(
                ".observer_registry.v1",
                "::observer_registry_client::pb::v1",
            )
            .compile_fds(descriptor_set)?;
    }

    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=migrations");
    commit();
    Ok(())
}

/// `OBSERVER_REGISTRY_COMMIT` for the `observer_registry_build_info` metric: the environment's
/// value when set (an image built without `.git`), else `git rev-parse`, else `unknown` — a
/// build without git or outside a repository must still succeed.
fn commit() {
    println!("cargo:rerun-if-env-changed=OBSERVER_REGISTRY_COMMIT");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let commit = env::var("OBSERVER_REGISTRY_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=OBSERVER_REGISTRY_COMMIT={commit}");
    // Build again when HEAD moves: HEAD names the branch, the branch's ref names the commit
    // (a worktree keeps HEAD apart from the shared refs). Only files that exist: cargo runs
    // the script at every build for a missing one.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    for path in watched.into_iter().flatten() {
        if PathBuf::from(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
