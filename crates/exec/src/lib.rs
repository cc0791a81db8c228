//! pbatch-exec
