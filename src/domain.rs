//! Validated domain types: once parsed, always valid. No prost types and no SQL here.

pub mod badge;
pub mod country;
pub mod date;
pub mod delegation;
pub mod election;
pub mod invitation;
pub mod meeting;
pub mod names;
pub mod observer;
pub mod organization;
pub mod refusal;
pub mod retention;
pub mod summary;
pub mod text;
