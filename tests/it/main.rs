//! The one integration-test binary.

mod atomic;
mod durable;
mod example;
mod fixtures;
mod library;
mod schedule;
mod server;
mod util;
