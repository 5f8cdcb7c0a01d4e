//! HAProxy's number formats: time values (`10s`, `500ms`), sizes (`16k`) and the C-style
//! integer readers (`atol`/`atoi`) that many 2.6 keywords use without any error check.
//!
//! Everything here follows what HAProxy 2.6 does, including its quirks: a trailing junk
//! character after a time unit is only a warning, values are rounded up to the caller's
//! unit, the digit accumulator of a time value wraps silently, sizes are 32-bit.
//! The message helpers return HAProxy's text without the `parsing [file:line] : ` frame,
//! which the caller adds.
use std::fmt;

/// The unit a caller wants the value in. It is also the unit of a value written without a
/// suffix: `timeout connect 5000` is 5000 ms, `stats refresh 10` is 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Us,
    Ms,
    S,
    Min,
    Hour,
    Day,
}

impl TimeUnit {
    /// Output multiplier and divisor relative to one second.
    fn out_ratio(self) -> (u64, u64) {
        match self {
            TimeUnit::Us => (1_000_000, 1),
            TimeUnit::Ms => (1000, 1),
            TimeUnit::S => (1, 1),
            TimeUnit::Min => (1, 60),
            TimeUnit::Hour => (1, 3600),
            TimeUnit::Day => (1, 86400),
        }
    }

    /// Microseconds in one unit.
    fn micros(self) -> u64 {
        match self {
            TimeUnit::Us => 1,
            TimeUnit::Ms => 1000,
            TimeUnit::S => 1_000_000,
            TimeUnit::Min => 60_000_000,
            TimeUnit::Hour => 3_600_000_000,
            TimeUnit::Day => 86_400_000_000,
        }
    }
}

/// A parsed time value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeValue {
    /// The value in the unit the caller asked for (`TimeValue::unit`), rounded up as HAProxy
    /// rounds it (`1us` in milliseconds is 1). Always below 2^31.
    pub value: u32,
    /// The unit of `value`: the `default` given to [`parse_time`].
    pub unit: TimeUnit,
    /// 2.6 accepts junk after a valid unit (`1s500ms`, `15min`) with this warning, printed
    /// without any `[file:line]` of its own (a server keyword gets the server's context).
    pub warning: Option<String>,
}

impl TimeValue {
    /// The value in milliseconds (rounded up from microseconds).
    pub fn millis(&self) -> u64 {
        (u64::from(self.value) * self.unit.micros()).div_ceil(1000)
    }

    /// The value in microseconds.
    pub fn micros(&self) -> u64 {
        u64::from(self.value) * self.unit.micros()
    }
}

/// Why a time, size or integer word was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitErrorKind {
    /// A character HAProxy stopped at. `None` when the word ended where a digit was needed
    /// (the empty word): 2.6 then prints a NUL byte, which callers usually prevent by
    /// checking for a missing argument first.
    Unexpected { ch: Option<char>, pos: usize },
    /// The value reaches 2^31 in the caller's unit (times) or 2^32 (sizes, integers).
    Overflow,
    /// A non-zero value rounded to zero (`PARSE_TIME_UNDER`; only reachable through the
    /// silent wrap-around of huge values).
    Underflow,
}

/// Which reader refused the word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Time,
    Size,
    Int,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError {
    pub kind: UnitErrorKind,
    pub what: Quantity,
    /// The word as given.
    pub word: String,
}

impl UnitError {
    fn unexpected(what: Quantity, word: &str, pos: usize) -> UnitError {
        UnitError {
            what,
            kind: UnitErrorKind::Unexpected { ch: word.get(pos..).and_then(|s| s.chars().next()), pos },
            word: word.to_string(),
        }
    }

    fn of(what: Quantity, kind: UnitErrorKind, word: &str) -> UnitError {
        UnitError { what, kind, word: word.to_string() }
    }

    /// The offending character as HAProxy prints it with `%c`.
    pub fn ch(&self) -> String {
        match &self.kind {
            UnitErrorKind::Unexpected { ch: Some(c), .. } => c.to_string(),
            _ => "\0".to_string(),
        }
    }

    /// A short message naming the fault, used when no keyword-specific text applies.
    pub fn message(&self) -> String {
        match &self.kind {
            UnitErrorKind::Unexpected { .. } => {
                format!("unexpected character '{}' in '{}'", self.ch(), self.word)
            }
            UnitErrorKind::Overflow => match self.what {
                Quantity::Time => "timer overflow".to_string(),
                Quantity::Size | Quantity::Int => format!("value '{}' is too large", self.word),
            },
            UnitErrorKind::Underflow => "timer underflow".to_string(),
        }
    }
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for UnitError {}

/// Reads a time value as 2.6's `parse_time_err` does: decimal digits, then an optional
/// lowercase suffix `us`, `ms`, `s`, `m`, `h` or `d`. Without a suffix the value is taken
/// in `default`, which is also the unit of the result.
pub fn parse_time(word: &str, default: TimeUnit) -> Result<TimeValue, UnitError> {
    let b = word.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return Err(UnitError::unexpected(Quantity::Time, word, 0));
    }
    // HAProxy's accumulator is a 64-bit integer that wraps without notice.
    let mut value: u64 = 0;
    let mut i = 0;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        value = value.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        i += 1;
    }
    let (mut omult, mut odiv) = default.out_ratio();
    let (mut imult, mut idiv) = (1u64, 1u64);
    let mut warning = None;
    match b.get(i) {
        None => {
            // No suffix: the number is already in the caller's unit.
            omult = 1;
            odiv = 1;
        }
        Some(&u) => {
            match u {
                b's' => {}
                b'u' if b.get(i + 1) == Some(&b's') => {
                    idiv = 1_000_000;
                    i += 1;
                }
                b'm' if b.get(i + 1) == Some(&b's') => {
                    idiv = 1000;
                    i += 1;
                }
                b'm' => imult = 60,
                b'h' => imult = 3600,
                b'd' => imult = 86400,
                _ => return Err(UnitError::unexpected(Quantity::Time, word, i)),
            }
            i += 1;
            if i < b.len() {
                warning = Some(time_junk_warning(word, i));
            }
        }
    }
    // Reduce the ratios the way HAProxy does before the rounding-up division.
    if omult % idiv == 0 {
        omult /= idiv;
        idiv = 1;
    }
    if idiv % omult == 0 {
        idiv /= omult;
        omult = 1;
    }
    if imult % odiv == 0 {
        imult /= odiv;
        odiv = 1;
    }
    if odiv % imult == 0 {
        odiv /= imult;
        imult = 1;
    }
    let div = idiv.wrapping_mul(odiv);
    let result = value.wrapping_mul(imult.wrapping_mul(omult)).wrapping_add(div - 1) / div;
    if result >= 0x8000_0000 {
        return Err(UnitError::of(Quantity::Time, UnitErrorKind::Overflow, word));
    }
    if result == 0 && value != 0 {
        return Err(UnitError::of(Quantity::Time, UnitErrorKind::Underflow, word));
    }
    Ok(TimeValue { value: result as u32, unit: default, warning })
}

/// 2.6's warning for characters after a time unit (`1s500ms`): `pos` is the byte offset of
/// the first extra character.
pub fn time_junk_warning(word: &str, pos: usize) -> String {
    let ch = word.get(pos..).and_then(|s| s.chars().next()).unwrap_or('\0');
    format!(
        "unexpected character '{ch}' after the timer value '{word}', only \
         (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. \
         This will be reported as an error in next versions."
    )
}

/// The alert 2.6 prints for `timeout <name> <word>` in a proxy (frontend, backend, listen,
/// defaults): `name` is the sub-keyword (`connect`, `client`, ...), `word` its argument,
/// which may be empty (missing argument).
pub fn proxy_timeout_error(name: &str, word: &str, err: Option<&UnitError>) -> String {
    match err {
        _ if word.is_empty() => {
            format!("'timeout {name}' expects an integer value (in milliseconds)")
        }
        Some(e) => match e.kind {
            UnitErrorKind::Overflow => format!(
                "timer overflow in argument '{word}' to 'timeout {name}' \
                 (maximum value is 2147483647 ms or ~24.8 days)"
            ),
            UnitErrorKind::Underflow => format!(
                "timer underflow in argument '{word}' to 'timeout {name}' \
                 (minimum non-null value is 1 ms)"
            ),
            UnitErrorKind::Unexpected { .. } => {
                format!("unexpected character '{}' in 'timeout {name}'", e.ch())
            }
        },
        None => String::new(),
    }
}

/// Parses a proxy `timeout <name> <word>` argument and returns the full 2.6 alert text
/// (without the `parsing [file:line] : ` frame) on failure.
pub fn parse_proxy_timeout(name: &str, word: &str) -> Result<TimeValue, String> {
    if word.is_empty() {
        return Err(proxy_timeout_error(name, word, None));
    }
    parse_time(word, TimeUnit::Ms).map_err(|e| proxy_timeout_error(name, word, Some(&e)))
}

/// The alert for the time-valued keywords whose 2.6 parser says
/// `unexpected character 'x' in argument to <kw>.`: server `pool-purge-delay`, global
/// `grace`, `hard-stop-after`, `close-spread-time`, proxy `clitcpka-idle/intvl`,
/// `srvtcpka-idle/intvl`. The overflow text always says "ms", even for the
/// seconds-based tcpka keywords, as 2.6 does.
pub fn arg_time_error(keyword: &str, word: &str, err: &UnitError) -> String {
    match err.kind {
        UnitErrorKind::Overflow => format!(
            "timer overflow in argument '{word}' to '{keyword}' \
             (maximum value is 2147483647 ms or ~24.8 days)"
        ),
        UnitErrorKind::Underflow => format!(
            "timer underflow in argument '{word}' to '{keyword}' \
             (minimum non-null value is 1 ms)"
        ),
        UnitErrorKind::Unexpected { .. } => {
            format!("unexpected character '{}' in argument to <{keyword}>.", err.ch())
        }
    }
}

/// Reads a size as 2.6's `parse_size_err`: digits and an optional `k`, `m` or `g`
/// (either case, powers of 1024), nothing after. The result fits 32 bits as in 2.6.
pub fn parse_size(word: &str) -> Result<u64, UnitError> {
    let b = word.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return Err(UnitError::unexpected(Quantity::Size, word, 0));
    }
    let mut value: u32 = 0;
    let mut i = 0;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        value = match value.checked_mul(10).and_then(|v| v.checked_add(u32::from(d - b'0'))) {
            Some(v) => v,
            // HAProxy points at the digit that would overflow.
            None => return Err(UnitError::unexpected(Quantity::Size, word, i)),
        };
        i += 1;
    }
    let shift = match b.get(i) {
        None => 0,
        Some(b'k' | b'K') => 10,
        Some(b'm' | b'M') => 20,
        Some(b'g' | b'G') => 30,
        Some(_) => return Err(UnitError::unexpected(Quantity::Size, word, i)),
    };
    if shift > 0 {
        if value > u32::MAX >> shift {
            return Err(UnitError::unexpected(Quantity::Size, word, i));
        }
        value <<= shift;
        if i + 1 < b.len() {
            return Err(UnitError::unexpected(Quantity::Size, word, i + 1));
        }
    }
    Ok(u64::from(value))
}

/// The alert 2.6 gives for a bad `size` of a stick table; `keyword` is the line's first
/// word (`stick-table` in a proxy, `table` in a peers section).
pub fn stick_table_size_error(keyword: &str, err: &UnitError) -> String {
    format!("{keyword}: unexpected character '{}' in argument of 'size'.", err.ch())
}

/// C's `atol` as glibc implements it (`strtol(s, NULL, 10)`): leading white space, an
/// optional sign, then digits up to the first other character; no digit gives 0 and an
/// overflow saturates. Many 2.6 keywords (`maxconn`, `nbthread`, `weight`, ...) read their
/// argument this way and so accept `10k` as 10 and `abc` as 0 without a word.
pub fn atol(word: &str) -> i64 {
    let b = word.as_bytes();
    let mut i = 0;
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    // Accumulate negatively so that i64::MIN is reachable, as strtol does.
    let mut acc: i64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        match acc.checked_mul(10).and_then(|v| v.checked_sub(i64::from(d - b'0'))) {
            Some(v) => acc = v,
            None => overflow = true,
        }
        i += 1;
    }
    match (overflow, neg) {
        (true, true) => i64::MIN,
        (true, false) => i64::MAX,
        (false, true) => acc,
        (false, false) => acc.checked_neg().unwrap_or(i64::MAX),
    }
}

/// C's `atoi` on glibc: `atol` truncated to 32 bits (so `4294967376` reads as 80).
pub fn atoi(word: &str) -> i32 {
    atol(word) as i32
}

/// A strict integer reader for linting words that 2.6 reads with `atol`: an optional sign
/// and digits, nothing else. 2.6 itself would take [`atol`]'s value without complaint;
/// use this to flag `maxconn 10k` or `maxconn abc`.
pub fn parse_int(word: &str) -> Result<i64, UnitError> {
    let b = word.as_bytes();
    let start = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    if !b.get(start).is_some_and(u8::is_ascii_digit) {
        return Err(UnitError::unexpected(Quantity::Int, word, start));
    }
    if let Some(p) = b.iter().skip(start).position(|c| !c.is_ascii_digit()).map(|p| p + start) {
        return Err(UnitError::unexpected(Quantity::Int, word, p));
    }
    word.parse::<i64>().map_err(|_| UnitError::of(Quantity::Int, UnitErrorKind::Overflow, word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(word: &str) -> u64 {
        match parse_time(word, TimeUnit::Ms) {
            Ok(v) => v.millis(),
            Err(e) => panic!("{word}: {e}"),
        }
    }

    #[test]
    fn every_lowercase_time_suffix_converts_to_milliseconds() {
        assert_eq!(ms("5000"), 5000);
        assert_eq!(ms("1500us"), 2); // rounded up
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("10s"), 10_000);
        assert_eq!(ms("2m"), 120_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(ms("0"), 0);
    }

    #[test]
    fn value_without_suffix_is_in_the_default_unit() {
        let v = parse_time("10", TimeUnit::S).unwrap();
        assert_eq!((v.value, v.millis()), (10, 10_000));
        // a millisecond value for a seconds keyword rounds up to one second
        assert_eq!(parse_time("1ms", TimeUnit::S).unwrap().value, 1);
        assert_eq!(parse_time("5m", TimeUnit::S).unwrap().value, 300);
    }

    #[test]
    fn uppercase_suffix_is_an_unexpected_character() {
        let e = parse_time("10S", TimeUnit::Ms).unwrap_err();
        assert_eq!(e.kind, UnitErrorKind::Unexpected { ch: Some('S'), pos: 2 });
        assert_eq!(parse_proxy_timeout("connect", "10S").unwrap_err(), "unexpected character 'S' in 'timeout connect'");
        assert_eq!(e.ch(), "S");
        assert!(parse_time("10MS", TimeUnit::Ms).is_err());
        assert!(parse_time("10u", TimeUnit::Ms).is_err());
    }

    #[test]
    fn fractions_and_negatives_are_refused_at_their_first_odd_character() {
        assert_eq!(parse_proxy_timeout("client", "1.5s").unwrap_err(), "unexpected character '.' in 'timeout client'");
        assert_eq!(parse_proxy_timeout("server", "-1").unwrap_err(), "unexpected character '-' in 'timeout server'");
    }

    #[test]
    fn timer_overflow_starts_at_two_to_the_31_milliseconds() {
        assert_eq!(ms("24d"), 24 * 86_400_000);
        assert_eq!(ms("2147483647"), 2_147_483_647);
        for w in ["25d", "2147483648"] {
            let e = parse_time(w, TimeUnit::Ms).unwrap_err();
            assert_eq!(e.kind, UnitErrorKind::Overflow);
            assert_eq!(e.message(), "timer overflow");
        }
        assert_eq!(
            parse_proxy_timeout("server", "25d").unwrap_err(),
            "timer overflow in argument '25d' to 'timeout server' \
             (maximum value is 2147483647 ms or ~24.8 days)"
        );
    }

    #[test]
    fn junk_after_a_unit_is_only_a_warning() {
        let v = parse_time("1s500ms", TimeUnit::Ms).unwrap();
        assert_eq!(v.millis(), 1000);
        assert_eq!(
            v.warning.as_deref(),
            Some(
                "unexpected character '5' after the timer value '1s500ms', only \
                 (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are \
                 supported. This will be reported as an error in next versions."
            )
        );
        // `15min` is 15 minutes plus a warning about the 'i'
        let v = parse_time("15min", TimeUnit::Ms).unwrap();
        assert_eq!(v.millis(), 900_000);
        assert!(v.warning.unwrap().starts_with("unexpected character 'i' after the timer value '15min'"));
        let v = parse_time("1s[", TimeUnit::Ms).unwrap();
        assert!(v.warning.unwrap().starts_with("unexpected character '[' after the timer value '1s['"));
        assert_eq!(parse_time("10s", TimeUnit::Ms).unwrap().warning, None);
    }

    #[test]
    fn missing_timeout_argument_asks_for_milliseconds() {
        assert_eq!(
            parse_proxy_timeout("connect", "").unwrap_err(),
            "'timeout connect' expects an integer value (in milliseconds)"
        );
    }

    #[test]
    fn huge_digit_strings_wrap_silently_like_haproxy() {
        // 2^64 + 5 wraps to 5 in HAProxy's 64-bit accumulator.
        assert_eq!(ms("18446744073709551621"), 5);
    }

    #[test]
    fn argument_style_time_errors_name_the_keyword() {
        let e = parse_time("10x", TimeUnit::Ms).unwrap_err();
        assert_eq!(
            arg_time_error("hard-stop-after", "10x", &e),
            "unexpected character 'x' in argument to <hard-stop-after>."
        );
    }

    #[test]
    fn size_suffixes_are_case_insensitive_powers_of_1024() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("1K").unwrap(), 1024);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("3G").unwrap(), 3 << 30);
    }

    #[test]
    fn size_refuses_other_suffixes_fractions_and_trailing_bytes() {
        let at = |w: &str| match parse_size(w).unwrap_err().kind {
            UnitErrorKind::Unexpected { ch, .. } => ch,
            k => panic!("{k:?}"),
        };
        assert_eq!(at("1t"), Some('t'));
        assert_eq!(at("1.5k"), Some('.'));
        assert_eq!(at("1kb"), Some('b'));
        assert_eq!(at("1x"), Some('x'));
        assert_eq!(at("k"), Some('k'));
        assert_eq!(at(""), None);
        // 32-bit limits, reported at the suffix or the digit that overflows
        assert_eq!(at("4g"), Some('g'));
        assert_eq!(at("4294967296"), Some('6'));
        assert_eq!(parse_size("4294967295").unwrap(), 4_294_967_295);
        let e = parse_size("1t").unwrap_err();
        assert_eq!(
            stick_table_size_error("stick-table", &e),
            "stick-table: unexpected character 't' in argument of 'size'."
        );
    }

    #[test]
    fn atol_accepts_junk_like_c() {
        assert_eq!(atol("10k"), 10);
        assert_eq!(atol("abc"), 0);
        assert_eq!(atol("  -42x"), -42);
        assert_eq!(atol("+7"), 7);
        assert_eq!(atol("99999999999999999999"), i64::MAX);
        assert_eq!(atol("-99999999999999999999"), i64::MIN);
        assert_eq!(atol("-9223372036854775808"), i64::MIN);
        assert_eq!(atoi("4294967376"), 80);
    }

    #[test]
    fn parse_int_flags_what_atol_would_swallow() {
        assert_eq!(parse_int("2000").unwrap(), 2000);
        assert_eq!(parse_int("-5").unwrap(), -5);
        assert!(matches!(parse_int("10k").unwrap_err().kind, UnitErrorKind::Unexpected { ch: Some('k'), pos: 2 }));
        assert!(parse_int("abc").is_err());
        assert!(parse_int("").is_err());
        assert!(parse_int("-").is_err());
        assert_eq!(parse_int("99999999999999999999").unwrap_err().kind, UnitErrorKind::Overflow);
    }
}
