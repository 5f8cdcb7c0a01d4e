//! The syntax tree: sections of statements, every word with its place. No semantics here.
use std::sync::Arc;

use crate::check::Span;
use crate::config::lexer::Word;

/// One live statement: the words of one line (after `.if` selection and expansion).
#[derive(Clone, Debug)]
pub struct Stmt {
    pub file: Arc<str>,
    pub line: u32,
    pub words: Vec<Word>,
}

impl Stmt {
    /// The keyword (first word).
    pub fn keyword(&self) -> &str {
        self.word(0)
    }

    /// Word `i`, or "" when the line is shorter (HAProxy reads missing words as empty).
    pub fn word(&self, i: usize) -> &str {
        self.words.get(i).map_or("", |w| w.text.as_str())
    }

    /// All words after the keyword.
    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// The span of the whole line's first word, for messages about the statement.
    pub fn span(&self) -> Span {
        self.span_of(0)
    }

    /// The span of word `i` (the last word if `i` is past the end).
    pub fn span_of(&self, i: usize) -> Span {
        match self.words.get(i).or(self.words.last()) {
            Some(w) => Span::new(self.file.clone(), self.line, w.col, w.len),
            None => Span::new(self.file.clone(), self.line, 1, 0),
        }
    }
}

/// A section: its header line (`listen name ...`) and the statements under it.
#[derive(Clone, Debug)]
pub struct Section {
    pub header: Stmt,
    pub body: Vec<Stmt>,
}

impl Section {
    pub fn kind(&self) -> &str {
        self.header.keyword()
    }

    pub fn name(&self) -> &str {
        self.header.word(1)
    }
}

/// A whole configuration: the files in load order and their sections in order.
#[derive(Clone, Debug, Default)]
pub struct Ast {
    pub files: Vec<Arc<str>>,
    pub sections: Vec<Section>,
}
