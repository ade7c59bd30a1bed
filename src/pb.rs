//! The generated contract. Prost types stop at the `api` layer.

/// `observer_registry.v1`: every message and client stub, from the client crate (generated
/// once, there), and the server traits generated here against them.
pub mod v1 {
    #![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

    pub use observer_registry_client::pb::v1::*;

    #[cfg(feature = "server")]
    tonic::include_proto!("observer_registry.v1");
}

#[cfg(feature = "server")]
pub mod codec;

/// Encoded descriptor set of the contract (with imports), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("observer_registry_descriptor");
