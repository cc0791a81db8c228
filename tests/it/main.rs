//! The one integration-test binary.

mod fixtures;
mod util;
