//! The one integration-test binary.

mod atomic;
mod backfill;
mod cluster;
mod cluster_harness;
mod conformance;
mod console;
mod crash;
mod durable;
mod example;
mod fusion;
mod hdfs;
mod library;
mod plan;
mod report;
mod retry;
mod s3;
mod schedule;
mod server;
mod servers;
mod sinks;
mod util;
