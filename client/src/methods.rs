//! The contract's methods as the retrying channel needs to know them, generated from the
//! descriptors by build.rs.

/// Whether a method may be called again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read: repeating it changes nothing.
    Always,
    /// A write that the service answers once per `request_id`, the string field `field` of
    /// its request.
    WithRequestId { field: u32 },
    /// A write that may run at most once.
    Never,
}

/// One method of the contract.
#[derive(Debug)]
pub(crate) struct Method {
    pub path: &'static str,
    pub retry: Retry,
    pub server_streaming: bool,
    pub client_streaming: bool,
}

include!(concat!(env!("OUT_DIR"), "/methods.rs"));

/// The method at `path` (`/observer_registry.v1.ObserverService/GetObserver`); none for a
/// path the contract does not have (health, reflection), which is never retried.
pub(crate) fn find(path: &str) -> Option<&'static Method> {
    METHODS
        .binary_search_by(|method| method.path.cmp(path))
        .ok()
        .map(|index| &METHODS[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_always_retry() {
        let get = find("/observer_registry.v1.ObserverService/GetObserver").unwrap();
        assert_eq!(get.retry, Retry::Always);
        let watch = find("/observer_registry.v1.ObserverService/WatchObservers").unwrap();
        assert_eq!(watch.retry, Retry::Always);
        assert!(watch.server_streaming);
        for read in ["GetInvitation", "ListInvitations", "WatchInvitations"] {
            let path = format!("/observer_registry.v1.InvitationService/{read}");
            assert_eq!(find(&path).unwrap().retry, Retry::Always, "{path}");
        }
    }

    #[test]
    fn creates_and_batches_retry_by_their_request_id_field() {
        let create = find("/observer_registry.v1.ObserverService/CreateObserver").unwrap();
        assert_eq!(create.retry, Retry::WithRequestId { field: 4 });
        let batch = find("/observer_registry.v1.ObserverService/BatchCreateObservers").unwrap();
        assert_eq!(batch.retry, Retry::WithRequestId { field: 3 });
        let invitation = find("/observer_registry.v1.InvitationService/CreateInvitation").unwrap();
        assert_eq!(invitation.retry, Retry::WithRequestId { field: 4 });
    }

    #[test]
    fn other_writes_never_retry() {
        for path in [
            "/observer_registry.v1.ObserverService/UpdateObserver",
            "/observer_registry.v1.ObserverService/AccreditObserver",
            "/observer_registry.v1.MeetingService/CancelMeeting",
            "/observer_registry.v1.InvitationService/AcceptInvitation",
            "/observer_registry.v1.InvitationService/WithdrawInvitation",
            "/observer_registry.v1.ElectionService/DeleteElection",
        ] {
            assert_eq!(find(path).unwrap().retry, Retry::Never, "{path}");
        }
        assert!(find("/grpc.health.v1.Health/Check").is_none());
    }
}
