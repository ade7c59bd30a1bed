//! The List calls as streams of items, fetching page after page.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tonic::{Response, Status};

use crate::Client;
use crate::pb::v1::{
    AuditEvent, Delegation, Election, Invitation, ListAuditEventsRequest, ListAuditEventsResponse,
    ListDelegationsRequest, ListDelegationsResponse, ListElectionsRequest, ListElectionsResponse,
    ListInvitationsRequest, ListInvitationsResponse, ListMeetingsRequest, ListMeetingsResponse,
    ListObserversRequest, ListObserversResponse, ListOrganizationsRequest,
    ListOrganizationsResponse, ListPublicRegisterRequest, ListPublicRegisterResponse, Meeting,
    Observer, Organization, PublicRegisterEntry,
};

/// Every item of a List call, page after page: the request's filter, order and page size
/// hold for every page, and only its `page_token` moves on. Each page is fetched when the
/// previous one has been read, so stopping early fetches no more.
///
/// A failed page is yielded as the error (after the retries of the client's
/// [`RetryPolicy`](crate::RetryPolicy)) and ends the stream. Use it as a
/// [`Stream`] (e.g. with `futures::TryStreamExt`), or call [`ListStream::next`]:
///
/// ```no_run
/// # async fn example(client: observer_registry_client::Client) -> Result<(), observer_registry_client::tonic::Status> {
/// use observer_registry_client::pb::v1::ListDelegationsRequest;
///
/// let mut delegations = client.list_delegations_stream(ListDelegationsRequest {
///     parent: "elections/kz-2023".into(),
///     page_size: 200,
///     ..Default::default()
/// });
/// while let Some(delegation) = delegations.next().await {
///     println!("{}", delegation?.display_name);
/// }
/// # Ok(()) }
/// ```
#[must_use = "a ListStream fetches nothing until it is read"]
pub struct ListStream<T> {
    items: Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>,
}

impl<T> ListStream<T> {
    /// The next item; `None` after the last page, or after an error.
    pub async fn next(&mut self) -> Option<Result<T, Status>> {
        std::future::poll_fn(|cx| self.items.as_mut().poll_next(cx)).await
    }
}

impl<T> Stream for ListStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.as_mut().poll_next(cx)
    }
}

impl<T> std::fmt::Debug for ListStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListStream").finish_non_exhaustive()
    }
}

/// A List request: the token of the page it asks for.
pub(crate) trait PageRequest {
    fn set_page_token(&mut self, page_token: String);
}

/// A List response: its items and the token of the next page (empty on the last).
pub(crate) trait Page {
    type Item;
    fn into_items_and_next_page_token(self) -> (Vec<Self::Item>, String);
}

/// Where a [`ListStream`] is: the request of the next page, and what is left of the last.
struct Pager<R, T, F> {
    request: R,
    fetch: F,
    unread: std::vec::IntoIter<T>,
    last_page_fetched: bool,
}

/// The items of `request`'s pages, each page fetched with `fetch`.
pub(crate) fn list_stream<R, P, F, Fut>(request: R, fetch: F) -> ListStream<P::Item>
where
    R: PageRequest + Clone + Send + 'static,
    P: Page + Send + 'static,
    P::Item: Send + 'static,
    F: FnMut(R) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<P>, Status>> + Send + 'static,
{
    let pager = Pager {
        request,
        fetch,
        unread: Vec::new().into_iter(),
        last_page_fetched: false,
    };
    let items = futures_util::stream::try_unfold(pager, |mut pager| async move {
        loop {
            if let Some(item) = pager.unread.next() {
                return Ok(Some((item, pager)));
            }
            if pager.last_page_fetched {
                return Ok(None);
            }
            let page = (pager.fetch)(pager.request.clone()).await?.into_inner();
            let (items, next_page_token) = page.into_items_and_next_page_token();
            // An empty page with a token is not the end: the loop fetches the next one.
            pager.last_page_fetched = next_page_token.is_empty();
            pager.request.set_page_token(next_page_token);
            pager.unread = items.into_iter();
        }
    });
    ListStream {
        items: Box::pin(items),
    }
}

// One row per List call: the traits of its request and response, and the `Client` method
// that streams it, so a new List call is one line here.
macro_rules! list_streams {
    ($(
        $(#[doc = $doc:literal])*
        $method:ident: $service:ident.$rpc:ident($request:ty) -> $response:ty { $items:ident: $item:ty }
    )*) => {
        $(
            impl PageRequest for $request {
                fn set_page_token(&mut self, page_token: String) {
                    self.page_token = page_token;
                }
            }

            impl Page for $response {
                type Item = $item;
                fn into_items_and_next_page_token(self) -> (Vec<$item>, String) {
                    (self.$items, self.next_page_token)
                }
            }
        )*

        impl Client {
            $(
                $(#[doc = $doc])*
                pub fn $method(&self, request: $request) -> ListStream<$item> {
                    let service = self.$service();
                    list_stream(request, move |request| {
                        let mut service = service.clone();
                        async move { service.$rpc(request).await }
                    })
                }
            )*
        }
    };
}

list_streams! {
    /// Every election of ListElections with `request`'s filter and order; see [`ListStream`].
    list_elections_stream: elections.list_elections(ListElectionsRequest)
        -> ListElectionsResponse { elections: Election }
    /// Every organization of ListOrganizations; see [`ListStream`].
    list_organizations_stream: organizations.list_organizations(ListOrganizationsRequest)
        -> ListOrganizationsResponse { organizations: Organization }
    /// Every delegation of ListDelegations; see [`ListStream`].
    list_delegations_stream: delegations.list_delegations(ListDelegationsRequest)
        -> ListDelegationsResponse { delegations: Delegation }
    /// Every observer of ListObservers; see [`ListStream`].
    list_observers_stream: observers.list_observers(ListObserversRequest)
        -> ListObserversResponse { observers: Observer }
    /// Every entry of ListPublicRegister; see [`ListStream`].
    list_public_register_stream: observers.list_public_register(ListPublicRegisterRequest)
        -> ListPublicRegisterResponse { entries: PublicRegisterEntry }
    /// Every meeting of ListMeetings; see [`ListStream`].
    list_meetings_stream: meetings.list_meetings(ListMeetingsRequest)
        -> ListMeetingsResponse { meetings: Meeting }
    /// Every invitation of ListInvitations; see [`ListStream`].
    list_invitations_stream: invitations.list_invitations(ListInvitationsRequest)
        -> ListInvitationsResponse { invitations: Invitation }
    /// Every audit event of ListAuditEvents; see [`ListStream`].
    list_audit_events_stream: audit.list_audit_events(ListAuditEventsRequest)
        -> ListAuditEventsResponse { audit_events: AuditEvent }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Three pages of observers named 1 to 5 (the middle one empty, as a server may send),
    /// then a failing fourth page for the token "broken".
    fn fake_service(
        requests: Arc<Mutex<Vec<ListObserversRequest>>>,
    ) -> impl FnMut(
        ListObserversRequest,
    ) -> std::future::Ready<Result<Response<ListObserversResponse>, Status>>
    + Send
    + 'static {
        move |request: ListObserversRequest| {
            requests.lock().unwrap().push(request.clone());
            let page = |names: &[&str], next: &str| {
                Ok(Response::new(ListObserversResponse {
                    observers: names
                        .iter()
                        .map(|name| Observer {
                            name: (*name).to_owned(),
                            ..Default::default()
                        })
                        .collect(),
                    next_page_token: next.to_owned(),
                    total_size: 0,
                }))
            };
            std::future::ready(match request.page_token.as_str() {
                "" => page(&["1", "2"], "second"),
                "second" => page(&[], "third"),
                "third" => page(&["3", "4", "5"], ""),
                _ => Err(Status::invalid_argument("bad token")),
            })
        }
    }

    fn names(items: Vec<Result<Observer, Status>>) -> Vec<String> {
        items.into_iter().map(|item| item.unwrap().name).collect()
    }

    #[tokio::test]
    async fn every_item_of_every_page_arrives_once_in_order_under_the_same_request() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let request = ListObserversRequest {
            parent: "elections/kz-2023".into(),
            filter: "citizenship = \"CN\"".into(),
            order_by: "family_name".into(),
            page_size: 2,
            ..Default::default()
        };
        let mut stream = list_stream(request.clone(), fake_service(requests.clone()));
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item);
        }
        assert_eq!(names(items), ["1", "2", "3", "4", "5"]);
        let requests = requests.lock().unwrap();
        let tokens: Vec<&str> = requests.iter().map(|r| r.page_token.as_str()).collect();
        assert_eq!(tokens, ["", "second", "third"]);
        for sent in requests.iter() {
            assert_eq!(
                ListObserversRequest {
                    page_token: String::new(),
                    ..sent.clone()
                },
                request
            );
        }
    }

    #[tokio::test]
    async fn a_failed_page_is_yielded_and_ends_the_stream() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let request = ListObserversRequest {
            page_token: "broken".into(),
            ..Default::default()
        };
        let mut stream = list_stream(request, fake_service(requests.clone()));
        let error = stream.next().await.unwrap().unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(stream.next().await.is_none());
        assert_eq!(requests.lock().unwrap().len(), 1, "no page after the error");
    }

    #[tokio::test]
    async fn no_page_is_fetched_before_its_items_are_wanted() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut stream = list_stream(
            ListObserversRequest::default(),
            fake_service(requests.clone()),
        );
        assert!(requests.lock().unwrap().is_empty());
        stream.next().await.unwrap().unwrap();
        stream.next().await.unwrap().unwrap();
        assert_eq!(
            requests.lock().unwrap().len(),
            1,
            "the second page was fetched early"
        );
    }

    #[test]
    fn list_streams_and_feeds_can_be_moved_between_tasks_and_polled_unpinned() {
        fn movable_stream<S: Stream + Send + Unpin + 'static>() {}
        movable_stream::<ListStream<Observer>>();
        movable_stream::<crate::Feed<crate::pb::v1::ObserverEvent>>();
    }
}
