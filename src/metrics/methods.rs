//! The method table: every method this server answers, with its call type, read once from the
//! descriptor sets of the contract, health and reflection (v1 and v1alpha). Metrics and log
//! spans name a call only through this table, so a caller choosing paths chooses among these
//! label values and `unknown`: one label set per method, however many paths are tried.

use std::collections::HashMap;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prost::Message;

/// The labels of one method, as grpc-ecosystem's Prometheus middleware names them.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub grpc_type: &'static str,
    pub grpc_service: &'static str,
    pub grpc_method: &'static str,
}

/// A method of the table, or the one `unknown` entry for any other path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    pub labels: MethodLabels,
    /// `/package.Service/Method`, or `unknown`.
    pub path: &'static str,
    /// A method of the contract (not health or reflection, nor unknown).
    pub contract: bool,
    /// Its place in the table, below [`count`]; `usize::MAX` for unknown.
    pub slot: usize,
}

impl Method {
    pub fn is_known(&self) -> bool {
        self.path != UNKNOWN.path
    }
}

/// Every path outside the table: one label set, whatever the path was.
pub static UNKNOWN: Method = Method {
    labels: MethodLabels {
        grpc_type: "unknown",
        grpc_service: "unknown",
        grpc_method: "unknown",
    },
    path: "unknown",
    contract: false,
    slot: usize::MAX,
};

/// The method called at `path` (`/package.Service/Method`), or [`UNKNOWN`].
pub fn lookup(path: &str) -> &'static Method {
    table().get(path).unwrap_or(&UNKNOWN)
}

/// How many places the table has: every method's `slot` is below it.
pub fn count() -> usize {
    table().values().map(|m| m.slot + 1).max().unwrap_or(0)
}

/// Every method of the table, in no particular order.
pub fn all() -> impl Iterator<Item = &'static Method> {
    table().values()
}

/// `code` as Go's `codes.Code.String()` writes it (`OK`, `Canceled`, `InvalidArgument`, …):
/// the `grpc_code` values that the usual gRPC dashboards and alerts query.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

fn table() -> &'static HashMap<&'static str, Method> {
    static TABLE: OnceLock<HashMap<&'static str, Method>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let sets = [
            (crate::pb::FILE_DESCRIPTOR_SET, true),
            (tonic_health::pb::FILE_DESCRIPTOR_SET, false),
            (tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET, false),
            (tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET, false),
        ];
        let mut table = HashMap::new();
        for (bytes, contract) in sets {
            // Compiled into the binary and decoded by a unit test, so this cannot fail in a
            // build that passed its tests; were it to, calls would only be labelled unknown.
            let set = match prost_types::FileDescriptorSet::decode(bytes) {
                Ok(set) => set,
                Err(error) => {
                    tracing::error!(%error, "a compiled-in descriptor set does not decode");
                    continue;
                }
            };
            // Contract files import google.* types; only services of the set's own package
            // are served (the contract's set also holds the files it imports).
            for file in &set.file {
                if contract && file.package() != "observer_registry.v1" {
                    continue;
                }
                for service in &file.service {
                    let service_name = format!("{}.{}", file.package(), service.name());
                    for method in &service.method {
                        let path = format!("/{service_name}/{}", method.name());
                        let grpc_type = match (method.client_streaming(), method.server_streaming())
                        {
                            (false, false) => "unary",
                            (true, false) => "client_stream",
                            (false, true) => "server_stream",
                            (true, true) => "bidi_stream",
                        };
                        // Built once per process from the fixed descriptor sets: leaking
                        // gives `'static` label values that cost nothing to copy per call.
                        let entry = Method {
                            labels: MethodLabels {
                                grpc_type,
                                grpc_service: leak(service_name.clone()),
                                grpc_method: leak(method.name().to_owned()),
                            },
                            path: leak(path),
                            contract,
                            slot: table.len(),
                        };
                        table.insert(entry.path, entry);
                    }
                }
            }
        }
        table
    })
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Access, required_access};

    /// The labels and the role table agree: every method that can be authorized has labels of
    /// its own, and every labelled method can be authorized.
    #[test]
    fn every_method_the_role_table_knows_has_labels_and_back() {
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut contract = 0;
        for file in set
            .file
            .iter()
            .filter(|f| f.package() == "observer_registry.v1")
        {
            for service in &file.service {
                for method in &service.method {
                    let path =
                        format!("/observer_registry.v1.{}/{}", service.name(), method.name());
                    let found = lookup(&path);
                    assert!(found.is_known() && found.contract, "{path} has no labels");
                    assert_eq!(found.path, path);
                    assert_eq!(
                        found.labels.grpc_service,
                        format!("observer_registry.v1.{}", service.name())
                    );
                    assert_eq!(found.labels.grpc_method, method.name());
                    contract += 1;
                }
            }
        }
        assert!(contract >= 40, "only {contract} contract methods");
        for method in all() {
            assert!(
                required_access(method.path).is_some(),
                "{} is labelled but refused by the role table",
                method.path
            );
            // The contract's methods: those that need a role, and the contract's public
            // ones (ListBadgeKeys); health and reflection are public but not the contract.
            let of_contract = method.path.starts_with("/observer_registry.v1.");
            assert_eq!(
                method.contract,
                matches!(required_access(method.path), Some(Access::Role(_))) || of_contract,
                "{}",
                method.path
            );
        }
    }

    #[test]
    fn call_types_come_from_the_descriptors() {
        let types = |path: &str| lookup(path).labels.grpc_type;
        assert_eq!(
            types("/observer_registry.v1.ElectionService/GetElection"),
            "unary"
        );
        assert_eq!(
            types("/observer_registry.v1.ObserverService/WatchObservers"),
            "server_stream"
        );
        assert_eq!(types("/grpc.health.v1.Health/Check"), "unary");
        assert_eq!(types("/grpc.health.v1.Health/Watch"), "server_stream");
        assert_eq!(
            types("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "bidi_stream"
        );
        assert_eq!(
            types("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            "bidi_stream"
        );
        let health = lookup("/grpc.health.v1.Health/Check");
        assert!(health.is_known() && !health.contract);
    }

    #[test]
    fn any_other_path_is_one_unknown_label_set() {
        for path in [
            "",
            "/",
            "/observer_registry.v1.ElectionService/Nope",
            "/observer_registry.v1.ElectionService/GetElection/extra",
            "observer_registry.v1.ElectionService/GetElection",
            "/google.protobuf.Empty/x",
            &format!("/{}/{}", "a".repeat(1000), "b".repeat(1000)),
        ] {
            assert_eq!(lookup(path), &UNKNOWN, "{path}");
        }
        assert_eq!(UNKNOWN.labels.grpc_service, "unknown");
        assert_eq!(UNKNOWN.labels.grpc_method, "unknown");
    }

    /// Exactly Go's `codes.Code.String()`, which the usual dashboards compare with.
    #[test]
    fn codes_are_named_as_go_names_them() {
        let names: Vec<&str> = (0..17)
            .map(|i| code_name(tonic::Code::from_i32(i)))
            .collect();
        assert_eq!(
            names,
            [
                "OK",
                "Canceled",
                "Unknown",
                "InvalidArgument",
                "DeadlineExceeded",
                "NotFound",
                "AlreadyExists",
                "PermissionDenied",
                "ResourceExhausted",
                "FailedPrecondition",
                "Aborted",
                "OutOfRange",
                "Unimplemented",
                "Internal",
                "Unavailable",
                "DataLoss",
                "Unauthenticated",
            ]
        );
    }
}
