//! A tiny regular-expression engine for `tcp-check expect rstring|rbinary`: the project takes
//! no regex crate. It answers only "does the pattern occur in the bytes", which lets a
//! memoised backtracking VM run in O(pattern × input) with no catastrophic cases.
//!
//! Supported: literals, `.`, classes `[a-z]` `[^...]` with `\d\w\s` and `[:alpha:]`-style
//! names, `^`, `$` (PCRE's: end, or before a final newline), groups `(...)` and `(?:...)`,
//! alternation `|`, quantifiers `* + ? {m} {m,} {m,n}` (lazy forms accepted: for a yes/no
//! answer they match the same inputs), escapes `\d \D \w \W \s \S \n \r \t \xHH` and escaped
//! punctuation. Refused when the rule is built: back-references, `\b`, look-around, inline
//! flags, possessive quantifiers.

/// Largest compiled program accepted, so `{m,n}` expansion stays bounded.
const MAX_PROGRAM: usize = 2_000;
/// Largest repetition count accepted in `{m,n}`.
const MAX_REPEAT: u32 = 1000;

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Empty,
    Set(Box<[bool; 256]>),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat { node: Box<Node>, min: u32, max: Option<u32> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Inst {
    Set(Box<[bool; 256]>),
    Start,
    End,
    /// Try the first target, then the second.
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regex {
    prog: Vec<Inst>,
}

impl Regex {
    /// Compiles `pattern`, or says why it is outside the supported subset.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let mut p = Parser { s: pattern.as_bytes(), pos: 0 };
        let node = p.alternation()?;
        if p.pos < p.s.len() {
            return Err(format!("unmatched ')' at offset {}", p.pos));
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog)?;
        prog.push(Inst::Match);
        Ok(Regex { prog })
    }

    /// Whether the pattern matches anywhere in `hay`.
    pub fn is_match(&self, hay: &[u8]) -> bool {
        let width = hay.len() + 1;
        // One bit per (instruction, position): each pair is explored at most once.
        let mut seen = vec![0u64; self.prog.len().saturating_mul(width) / 64 + 1];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for start in 0..=hay.len() {
            stack.push((0, start));
            while let Some((pc, pos)) = stack.pop() {
                let slot = pc * width + pos;
                match seen.get_mut(slot / 64) {
                    Some(word) if *word & (1 << (slot % 64)) == 0 => *word |= 1 << (slot % 64),
                    _ => continue,
                }
                match self.prog.get(pc) {
                    Some(Inst::Match) => return true,
                    Some(Inst::Set(set)) => {
                        if let Some(&b) = hay.get(pos) {
                            if set.get(usize::from(b)).copied().unwrap_or(false) {
                                stack.push((pc + 1, pos + 1));
                            }
                        }
                    }
                    Some(Inst::Start) if pos == 0 => stack.push((pc + 1, pos)),
                    Some(Inst::End) if pos == hay.len() || (pos + 1 == hay.len() && hay.get(pos) == Some(&b'\n')) => {
                        stack.push((pc + 1, pos))
                    }
                    Some(Inst::Start | Inst::End) => {}
                    Some(Inst::Split(a, b)) => {
                        // Pushed in reverse so the preferred branch runs first.
                        stack.push((*b, pos));
                        stack.push((*a, pos));
                    }
                    Some(Inst::Jmp(t)) => stack.push((*t, pos)),
                    None => {}
                }
            }
        }
        false
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) -> Result<(), String> {
    if prog.len() > MAX_PROGRAM {
        return Err("pattern too large once repetitions are expanded".to_string());
    }
    match node {
        Node::Empty => {}
        Node::Set(s) => prog.push(Inst::Set(s.clone())),
        Node::Start => prog.push(Inst::Start),
        Node::End => prog.push(Inst::End),
        Node::Concat(items) => {
            for n in items {
                compile(n, prog)?;
            }
        }
        Node::Alt(branches) => {
            // split L1, next; L1: branch; jmp end; next: split ...
            let mut jumps = Vec::new();
            let count = branches.len();
            for (i, b) in branches.iter().enumerate() {
                if i + 1 < count {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(b, prog)?;
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    if let Some(Inst::Split(_, second)) = prog.get_mut(split) {
                        *second = next;
                    }
                } else {
                    compile(b, prog)?;
                }
            }
            let end = prog.len();
            for j in jumps {
                if let Some(Inst::Jmp(t)) = prog.get_mut(j) {
                    *t = end;
                }
            }
        }
        Node::Repeat { node, min, max } => {
            for _ in 0..*min {
                compile(node, prog)?;
            }
            match max {
                None => {
                    // loop: split body, end; body; jmp loop
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(node, prog)?;
                    prog.push(Inst::Jmp(split));
                    let end = prog.len();
                    if let Some(Inst::Split(_, second)) = prog.get_mut(split) {
                        *second = end;
                    }
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(prog.len() + 1, 0));
                        compile(node, prog)?;
                    }
                    let end = prog.len();
                    for s in splits {
                        if let Some(Inst::Split(_, second)) = prog.get_mut(s) {
                            *second = end;
                        }
                    }
                }
            }
        }
    }
    if prog.len() > MAX_PROGRAM {
        return Err("pattern too large once repetitions are expanded".to_string());
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

fn set_of(f: impl Fn(u8) -> bool) -> Box<[bool; 256]> {
    let mut s = Box::new([false; 256]);
    for (i, slot) in s.iter_mut().enumerate() {
        *slot = u8::try_from(i).map(&f).unwrap_or(false);
    }
    s
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn alternation(&mut self) -> Result<Node, String> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 { branches.pop().unwrap_or(Node::Empty) } else { Node::Alt(branches) })
    }

    fn concat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == b'|' || c == b')' {
                break;
            }
            let atom = self.atom()?;
            let atom = self.quantified(atom)?;
            items.push(atom);
        }
        Ok(Node::Concat(items))
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some(b'*') => {
                self.pos += 1;
                (0, None)
            }
            Some(b'+') => {
                self.pos += 1;
                (1, None)
            }
            Some(b'?') => {
                self.pos += 1;
                (0, Some(1))
            }
            Some(b'{') => match self.braces()? {
                Some(r) => r,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if matches!(atom, Node::Start | Node::End) {
            return Err("quantifier after an anchor".to_string());
        }
        match self.peek() {
            Some(b'?') => self.pos += 1,
            Some(b'+') => return Err("possessive quantifiers are not supported".to_string()),
            _ => {}
        }
        if matches!(self.peek(), Some(b'*' | b'+' | b'{')) {
            return Err("nested quantifier".to_string());
        }
        Ok(Node::Repeat { node: Box::new(atom), min, max })
    }

    /// `{m}`, `{m,}`, `{m,n}`; a `{` that starts none of them is a literal (as in PCRE).
    fn braces(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        let rest = self.s.get(self.pos..).unwrap_or_default();
        let close = match rest.iter().position(|&b| b == b'}') {
            Some(c) => c,
            None => return Ok(None),
        };
        let inner = std::str::from_utf8(rest.get(1..close).unwrap_or_default()).unwrap_or("");
        let num = |t: &str| -> Option<u32> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        let parsed = match inner.split_once(',') {
            None => num(inner).map(|m| (m, Some(m))),
            Some((a, "")) => num(a).map(|m| (m, None)),
            Some((a, b)) => match (num(a), num(b)) {
                (Some(m), Some(n)) => Some((m, Some(n))),
                _ => None,
            },
        };
        let Some((min, max)) = parsed else { return Ok(None) };
        if min > MAX_REPEAT || max.is_some_and(|n| n > MAX_REPEAT) {
            return Err(format!("repetition count above {MAX_REPEAT}"));
        }
        if max.is_some_and(|n| n < min) {
            return Err("numbers out of order in {} quantifier".to_string());
        }
        self.pos += close + 1;
        Ok(Some((min, max)))
    }

    fn atom(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else { return Ok(Node::Empty) };
        self.pos += 1;
        match c {
            b'.' => Ok(Node::Set(set_of(|b| b != b'\n'))),
            b'^' => Ok(Node::Start),
            b'$' => Ok(Node::End),
            b'(' => {
                if self.peek() == Some(b'?') {
                    if self.s.get(self.pos + 1) == Some(&b':') {
                        self.pos += 2;
                    } else {
                        return Err("look-around and inline flags are not supported".to_string());
                    }
                }
                let inner = self.alternation()?;
                if self.peek() != Some(b')') {
                    return Err("missing ')'".to_string());
                }
                self.pos += 1;
                Ok(inner)
            }
            b'[' => self.class(),
            b'\\' => {
                let set = self.escape(false)?;
                Ok(Node::Set(set))
            }
            b'*' | b'+' | b'?' => Err("quantifier does not follow a repeatable item".to_string()),
            other => Ok(Node::Set(set_of(|b| b == other))),
        }
    }

    /// After a backslash: the set of bytes the escape stands for.
    fn escape(&mut self, in_class: bool) -> Result<Box<[bool; 256]>, String> {
        let Some(c) = self.peek() else { return Err("pattern ends with '\\'".to_string()) };
        self.pos += 1;
        let single = |b: u8| Ok(set_of(move |x| x == b));
        match c {
            b'd' => Ok(set_of(|b| b.is_ascii_digit())),
            b'D' => Ok(set_of(|b| !b.is_ascii_digit())),
            b'w' => Ok(set_of(is_word)),
            b'W' => Ok(set_of(|b| !is_word(b))),
            b's' => Ok(set_of(is_space)),
            b'S' => Ok(set_of(|b| !is_space(b))),
            b'n' => single(b'\n'),
            b'r' => single(b'\r'),
            b't' => single(b'\t'),
            b'f' => single(0x0c),
            b'v' => single(0x0b),
            b'e' => single(0x1b),
            b'0' => single(0),
            b'x' => {
                let hex = self.s.get(self.pos..self.pos + 2).unwrap_or_default();
                let v = std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match v {
                    Some(v) if hex.len() == 2 => {
                        self.pos += 2;
                        single(v)
                    }
                    _ => Err("\\x expects two hex digits".to_string()),
                }
            }
            b'b' if in_class => single(0x08),
            b'1'..=b'9' => Err("back-references are not supported".to_string()),
            c if c.is_ascii_alphanumeric() => Err(format!("unsupported escape '\\{}'", char::from(c))),
            other => single(other),
        }
    }

    fn class(&mut self) -> Result<Node, String> {
        let mut set = [false; 256];
        let negate = self.peek() == Some(b'^');
        if negate {
            self.pos += 1;
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else { return Err("missing ']'".to_string()) };
            if c == b']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            // Named classes such as [:alpha:].
            if c == b'[' && self.s.get(self.pos + 1) == Some(&b':') {
                let rest = self.s.get(self.pos + 2..).unwrap_or_default();
                if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                    let name = rest.get(..end).unwrap_or_default();
                    let f: fn(u8) -> bool = match name {
                        b"alpha" => |b| b.is_ascii_alphabetic(),
                        b"digit" => |b| b.is_ascii_digit(),
                        b"alnum" => |b| b.is_ascii_alphanumeric(),
                        b"space" => is_space,
                        b"upper" => |b| b.is_ascii_uppercase(),
                        b"lower" => |b| b.is_ascii_lowercase(),
                        b"xdigit" => |b| b.is_ascii_hexdigit(),
                        b"punct" => |b| b.is_ascii_punctuation(),
                        b"print" => |b| (0x20..0x7f).contains(&b),
                        b"cntrl" => |b| b.is_ascii_control(),
                        _ => return Err("unknown POSIX class name".to_string()),
                    };
                    for (i, slot) in set.iter_mut().enumerate() {
                        if u8::try_from(i).map(f).unwrap_or(false) {
                            *slot = true;
                        }
                    }
                    self.pos += 2 + end + 2;
                    continue;
                }
            }
            self.pos += 1;
            let lo_set = if c == b'\\' { self.escape(true)? } else { set_of(|b| b == c) };
            let single = {
                let mut it = lo_set.iter().enumerate().filter(|(_, &v)| v);
                match (it.next(), it.next()) {
                    (Some((i, _)), None) => u8::try_from(i).ok(),
                    _ => None,
                }
            };
            // A range `a-z` (a '-' before ']' is literal).
            if let (Some(lo), Some(b'-')) = (single, self.peek()) {
                if let Some(&hi_c) = self.s.get(self.pos + 1) {
                    if hi_c != b']' {
                        self.pos += 2;
                        let hi = if hi_c == b'\\' {
                            let hs = self.escape(true)?;
                            let mut it = hs.iter().enumerate().filter(|(_, &v)| v);
                            match (it.next(), it.next()) {
                                (Some((i, _)), None) => u8::try_from(i).unwrap_or(0),
                                _ => return Err("invalid range in class".to_string()),
                            }
                        } else {
                            hi_c
                        };
                        if hi < lo {
                            return Err("range out of order in class".to_string());
                        }
                        for b in lo..=hi {
                            set[usize::from(b)] = true;
                        }
                        continue;
                    }
                }
            }
            for (slot, v) in set.iter_mut().zip(lo_set.iter()) {
                *slot |= *v;
            }
        }
        if negate {
            for slot in set.iter_mut() {
                *slot = !*slot;
            }
        }
        Ok(Node::Set(Box::new(set)))
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn m(p: &str, h: &str) -> bool {
        Regex::new(p).map(|r| r.is_match(h.as_bytes())).unwrap_or(false)
    }

    #[test]
    fn literal_found_anywhere() {
        assert!(m("PONG", "+PONG\r\n"));
        assert!(!m("PONG", "+PING\r\n"));
    }

    #[test]
    fn anchors_and_classes() {
        assert!(m("^\\+OK", "+OK ready"));
        assert!(!m("^OK", "+OK ready"));
        assert!(m("ready$", "+OK ready\n"));
        assert!(m("^[0-9]{3} ", "220 smtp"));
        assert!(!m("^[0-9]{3} ", "22 smtp"));
        assert!(m("role:(master|slave)", "role:slave\r\n"));
        assert!(m("[[:alpha:]]+", "x"));
        assert!(m("a.c", "abc") && !m("a.c", "a\nc"));
    }

    #[test]
    fn hex_dump_pattern_like_rbinary() {
        assert!(m("^2002(00|01)00$", "20020000"));
        assert!(!m("^2002(00|01)00$", "20020500"));
    }

    #[test]
    fn pathological_pattern_is_linear() {
        let hay = "a".repeat(5000);
        assert!(!m("(a*)*b", &hay));
    }

    #[test]
    fn unsupported_features_are_refused() {
        assert!(Regex::new("(a)\\1").is_err());
        assert!(Regex::new("(?=a)").is_err());
        assert!(Regex::new("\\bword").is_err());
        assert!(Regex::new("a++").is_err());
        assert!(Regex::new("(a").is_err());
        assert!(Regex::new("a)").is_err());
    }
}
