//! The project brain: durable, reviewable project memory kept as markdown in `.brain/`.
#![allow(
    clippy::doc_markdown,
    clippy::unused_self,
    clippy::too_many_arguments,
    reason = "record field names (snake_case) read better in prose; Brain methods keep one shape"
)]
pub mod check;
pub mod config;
pub mod context;
pub mod error;
pub mod index;
pub mod journal;
pub mod model;
pub mod redact;
pub mod store;
pub mod yaml;

#[cfg(test)]
mod tests;
