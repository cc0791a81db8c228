//! pbatch
