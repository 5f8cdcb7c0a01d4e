//! hapx: HAProxy's configuration language and, later, its runtime.
//! Data flows one way: text → lexer → parser → model → runtime.
pub mod check;
pub mod cli;
pub mod config;
pub mod grammar;
pub mod logging;
pub mod model;
pub mod runtime;
pub mod version;
