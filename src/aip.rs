//! The AIP mechanics every service shares, written once.

pub mod etag;
pub mod field_mask;
pub mod filter;
pub mod paging;
pub mod request_id;
pub mod resume_token;
