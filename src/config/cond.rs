//! `.if/.elif/.else/.endif` blocks and their condition language; `.diag/.notice/.warning/.alert`.
//!
//! INTERFACE (stable, used by parser.rs and the `-cc` flag):
//!   pub struct CondCtx<'a> { version, vars: &Vars }
//!   pub fn eval(words: &[String], ctx: &CondCtx) -> Result<bool, CondError>
//!   pub struct CondStack  (the nesting state, one per file)
