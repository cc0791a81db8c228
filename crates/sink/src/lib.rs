//! pbatch-sink
