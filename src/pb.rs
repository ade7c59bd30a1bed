//! The generated contract. Prost types stop at the `api` layer.

/// `observer_registry.v1`: every service, message and the generated client.
pub mod v1 {
    #![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]
    tonic::include_proto!("observer_registry.v1");
}

/// Encoded descriptor set of the contract (with imports), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("observer_registry_descriptor");
