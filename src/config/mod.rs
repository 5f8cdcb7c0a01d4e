pub mod ast;
pub mod cond;
pub mod lexer;
pub mod parser;
