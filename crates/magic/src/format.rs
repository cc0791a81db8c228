//! Java `SimpleDateFormat`-style patterns (`yyyy-MM-dd HH:mm:ss`).

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use pbatch_model::{Error, ErrorCode, Result};

const LETTERS: &str = "yMdHmsS";

/// Checks a pattern uses only the supported letters: `y M d H m s S`;
/// other ASCII letters must be quoted (`'T'`).
pub fn validate_java_format(pattern: &str) -> Result<()> {
    if pattern.is_empty() {
        return Err(Error::new(ErrorCode::InvalidTimeFormat, "format is empty"));
    }
    let mut quoted = false;
    for c in pattern.chars() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c.is_ascii_alphabetic() && !LETTERS.contains(c) {
            return Err(Error::new(
                ErrorCode::InvalidTimeFormat,
                format!(
                    "format {pattern:?} uses pattern letter {c:?}; supported are y, M, d, H, m, s, S (quote other letters with ')"
                ),
            ));
        }
    }
    if quoted {
        return Err(Error::new(
            ErrorCode::InvalidTimeFormat,
            format!("format {pattern:?} has an unclosed quote"),
        ));
    }
    Ok(())
}

/// Formats `t` with a validated pattern.
pub fn format_java(t: &DateTime<FixedOffset>, pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut quoted = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            quoted = !quoted;
            i += 1;
            continue;
        }
        if quoted || !LETTERS.contains(c) {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let (v, width) = match c {
            'y' if n == 2 => (i64::from(t.year()).rem_euclid(100), 2),
            'y' => (i64::from(t.year()), n),
            'M' => (i64::from(t.month()), n),
            'd' => (i64::from(t.day()), n),
            'H' => (i64::from(t.hour()), n),
            'm' => (i64::from(t.minute()), n),
            's' => (i64::from(t.second()), n),
            _ => (i64::from(t.nanosecond() / 1_000_000), n.max(3)),
        };
        out.push_str(&format!("{v:0width$}"));
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = DateTime::parse_from_rfc3339("2017-06-01T05:04:03.120+08:00").unwrap();
        assert_eq!(format_java(&t, "yyyy-MM-dd HH:mm:ss"), "2017-06-01 05:04:03");
        assert_eq!(format_java(&t, "yyyyMMdd"), "20170601");
        assert_eq!(format_java(&t, "yy/M/d H'h' SSS"), "17/6/1 5h 120");
        assert!(validate_java_format("yyyy-MM-dd'T'HH").is_ok());
        let e = validate_java_format("yyyy-ww").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidTimeFormat);
        assert!(e.message().contains("'w'"), "{e}");
    }
}
