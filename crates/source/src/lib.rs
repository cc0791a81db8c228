//! pbatch-source
