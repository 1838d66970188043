//! The project brain: durable, reviewable project memory kept as markdown in `.brain/`.
#![allow(unreachable_pub, dead_code)]
pub mod error;
pub mod model;
pub mod yaml;
