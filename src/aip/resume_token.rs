//! Resume tokens of the change feed: the election, the feed and the position of an event,
//! sealed with the same key as page tokens so that every replica accepts them and nobody can
//! forge one. A token older than the retention period (its changes may be purged) or from
//! another election or feed is INVALID_ARGUMENT / INVALID_RESUME_TOKEN.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aip::paging::PageTokens;
use crate::error::{Error, Reason, Result};

#[derive(Serialize, Deserialize)]
struct Resume {
    #[serde(rename = "e")]
    election: String,
    #[serde(rename = "f")]
    feed: String,
    #[serde(rename = "p")]
    position: i64,
    /// When the event's change was committed, in seconds since the epoch.
    #[serde(rename = "t")]
    time: i64,
}

/// The token of the event at `position`.
pub fn issue(
    tokens: &PageTokens,
    election: &str,
    feed: &str,
    position: i64,
    time: DateTime<Utc>,
) -> String {
    let resume = Resume {
        election: election.to_owned(),
        feed: feed.to_owned(),
        position,
        time: time.timestamp(),
    };
    tokens.seal(serde_json::to_vec(&resume).unwrap_or_default())
}

/// The position a token resumes after, if it is this feed's and still within retention.
pub fn position(
    tokens: &PageTokens,
    token: &str,
    election: &str,
    feed: &str,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<i64> {
    let invalid = |why: &str| Error::invalid_field(Reason::InvalidResumeToken, "resume_token", why);
    let resume: Resume = tokens
        .open(token)
        .and_then(|body| serde_json::from_slice(&body).ok())
        .ok_or_else(|| invalid("not a resume token issued by this service, or altered"))?;
    if resume.election != election || resume.feed != feed {
        return Err(invalid(
            "the resume token belongs to another election or feed",
        ));
    }
    let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    if now.timestamp().saturating_sub(resume.time) > retention {
        return Err(invalid(
            "the resume token is older than the feed's retention period; start a new watch \
             and resynchronize with List",
        ));
    }
    Ok(resume.position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resume_their_own_feed_within_retention() {
        let tokens = PageTokens::new(b"key");
        let now = Utc::now();
        let token = issue(&tokens, "kz-2023", "observer", 42, now);
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(
            position(&tokens, &token, "kz-2023", "observer", week, now).unwrap(),
            42
        );
        for (election, feed) in [("kz-2024", "observer"), ("kz-2023", "meeting")] {
            let error = position(&tokens, &token, election, feed, week, now).unwrap_err();
            assert_eq!(error.reason, Reason::InvalidResumeToken);
        }
        let later = now + chrono::Duration::days(8);
        let error = position(&tokens, &token, "kz-2023", "observer", week, later).unwrap_err();
        assert_eq!(error.reason, Reason::InvalidResumeToken);
        let forged = PageTokens::new(b"other key");
        let error = position(&forged, &token, "kz-2023", "observer", week, now).unwrap_err();
        assert_eq!(error.reason, Reason::InvalidResumeToken);
    }
}
