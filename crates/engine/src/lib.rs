//! pbatch-engine
