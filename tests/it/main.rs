//! The one integration-test binary.

mod atomic;
mod example;
mod fixtures;
mod library;
mod util;
