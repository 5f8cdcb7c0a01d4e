//! One config line → words, following HAProxy's rules (../shared/reference/lexical.md):
//! `#` comments, backslash escapes, `\xHH`, single and double quotes, word assembly,
//! `$VAR`/`${VAR}`/`${VAR-default}`/`${VAR[*]}` (double quotes only), `${.FILE}` `${.LINE}`
//! `${.SECTION}`, the 64-word limit. Also file bytes → lines (LF, CRLF, NUL, missing final LF).
//!
//! INTERFACE (stable, used by parser.rs):
//!   pub struct Vars                     the variables `$X` reads; setenv & co. mutate it
//!   pub struct Word { text, col, len }  col: 1-based byte column of the word's first byte
//!   pub struct LexCtx<'a> { vars, file, line, section }
//!   pub fn split_line(line: &[u8], ctx: &LexCtx) -> Lexed
//!   pub struct Lexed { words: Vec<Word>, errors: Vec<LexError> }
//!   pub fn lines(bytes: &[u8]) -> Lines   (RawLine { number, text: &[u8] }, and the Missing-LF error)
//!   LexError::message() → the HAProxy text, e.g. "unmatched quote at position 13:"
