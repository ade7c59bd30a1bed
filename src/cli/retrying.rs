//! Calls of the observer commands that may be repeated: backoff after UNAVAILABLE, ABORTED
//! and DEADLINE_EXCEEDED, and the reason of a refusal as the service names it.

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::cli::progress::Progress;

/// Waits before calling again after UNAVAILABLE and the like.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Makes a call, calling again after UNAVAILABLE, ABORTED or DEADLINE_EXCEEDED with
/// backoff. Only for calls that are safe to repeat: reads, dry runs, creates with a
/// `request_id`.
pub(crate) async fn retrying<T, F, Fut>(
    progress: &Progress,
    what: &str,
    mut call: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut waits = BACKOFF.iter();
    loop {
        match call().await {
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::Aborted | Code::DeadlineExceeded
                ) =>
            {
                let Some(wait) = waits.next() else {
                    return Err(status);
                };
                let (message, code) = (status.message(), status.code());
                let wait_text = humantime::format_duration(*wait);
                progress.line(&format!(
                    "{what}: {message} ({code:?}); retrying in {wait_text}"
                ));
                tokio::time::sleep(*wait).await;
            }
            result => return result,
        }
    }
}

/// The `ErrorInfo.reason` of a refusal (e.g. `HOST_COUNTRY_CITIZEN`), else its code.
pub(crate) fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_else(|| format!("{:?}", status.code()))
}
