pub mod cond;
pub mod lexer;
