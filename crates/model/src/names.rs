//! Naming and text rules shared by every resource.

use crate::{Error, ErrorCode, Result};
use regex::Regex;
use std::sync::LazyLock;

/// Resource names (datasource, job, export, variable, workflow, schema key):
/// `^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`.
pub static NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$"));
/// A src's `tableName`: 1-128 characters, letters, digits, `_`, starting with a letter.
pub static TABLE_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z][a-zA-Z0-9_]{0,127}$"));
/// A job param's name: 1-64 characters, starting with a letter or `_`.
pub static PARAM_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$"));
/// A kodo bucket: 4-63 letters, digits and `-`.
pub static BUCKET: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9-]{4,63}$"));
/// A loop spec: number + `m` or `h`, or `0`.
pub static LOOP: LazyLock<Regex> = LazyLock::new(|| re(r"^(0|[0-9]+[mh])$"));

/// The longest loop interval: one year.
pub const MAX_LOOP_MINUTES: u64 = 366 * 24 * 60;

/// A loop spec (`0`, `Nm`, `Nh`) in minutes; `None` when it is not one or
/// is longer than [`MAX_LOOP_MINUTES`].
pub fn loop_minutes(spec: &str) -> Option<u64> {
    let spec = spec.trim();
    if spec.is_empty() || spec == "0" {
        return Some(0);
    }
    if !LOOP.is_match(spec) {
        return None;
    }
    let (num, per) = match (spec.strip_suffix('m'), spec.strip_suffix('h')) {
        (Some(n), _) => (n, 1),
        (_, Some(n)) => (n, 60),
        _ => return None,
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .filter(|m| *m <= MAX_LOOP_MINUTES)
}
/// A container type such as `2U4G`.
pub static CONTAINER_TYPE: LazyLock<Regex> = LazyLock::new(|| re(r"^([0-9]+)U([0-9]+)G$"));

fn re(pattern: &str) -> Regex {
    // The patterns above are literals checked by the tests below.
    #[allow(clippy::unwrap_used)]
    Regex::new(pattern).unwrap()
}

/// Checks `value` against a resource-name pattern, naming `what` on failure.
pub fn check_name(code: ErrorCode, what: &str, value: &str) -> Result<()> {
    if NAME.is_match(value) {
        Ok(())
    } else {
        Err(Error::new(
            code,
            format!("{what} {value:?} is invalid: use 1-128 letters, digits or '_', starting with a letter or '_'"),
        ))
    }
}

/// Checks a key prefix or path: at most `max` characters, none of `forbidden`.
pub fn check_path_text(field: &str, value: &str, max: usize, forbidden: &[char]) -> Result<()> {
    let len = value.chars().count();
    if len > max {
        return Err(Error::new(
            ErrorCode::FieldTooLong,
            format!("{field} {value:?} is {len} characters long; at most {max} are allowed"),
        ));
    }
    if let Some(c) = value.chars().find(|c| forbidden.contains(c)) {
        let list: String = forbidden.iter().collect();
        return Err(Error::new(
            ErrorCode::IllegalPathCharacter,
            format!("{field} {value:?} contains {c:?}; none of {list:?} may appear"),
        ));
    }
    Ok(())
}

/// Checks a key (prefix) stays inside its bucket: relative, with no `.` or
/// `..` segment (`E18638`).
pub fn check_relative_key(field: &str, value: &str) -> Result<()> {
    if value.starts_with('/') {
        return Err(Error::new(
            ErrorCode::IllegalPathCharacter,
            format!("{field} {value:?} starts with '/': keys are relative to the bucket"),
        ));
    }
    if value.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(Error::new(
            ErrorCode::IllegalPathCharacter,
            format!("{field} {value:?} has a '.' or '..' segment: keys may not leave their prefix"),
        ));
    }
    Ok(())
}

/// Percent-decodes a URL path: the one rule for hdfs source and
/// export paths (`%20` in a path is a space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(NAME.is_match("_a1"));
        assert!(NAME.is_match(&"a".repeat(128)));
        assert!(!NAME.is_match(&"a".repeat(129)));
        assert!(!NAME.is_match("1a"));
        assert!(!NAME.is_match("a-b"));
        assert!(TABLE_NAME.is_match("t1"));
        assert!(!TABLE_NAME.is_match("_t"));
        assert!(BUCKET.is_match("my-bucket"));
        assert!(!BUCKET.is_match("abc"));
        assert!(LOOP.is_match("0") && LOOP.is_match("15m") && LOOP.is_match("2h"));
        assert!(!LOOP.is_match("5s") && !LOOP.is_match("m"));
        assert_eq!(loop_minutes("15m"), Some(15));
        assert_eq!(loop_minutes("2h"), Some(120));
        assert_eq!(loop_minutes("0"), Some(0));
        assert_eq!(loop_minutes("10000000000h"), None, "longer than a year");
        assert_eq!(loop_minutes("99999999999999999999m"), None, "overflows");
        assert_eq!(loop_minutes("5s"), None);
        assert!(CONTAINER_TYPE.is_match("16U64G"));
    }

    #[test]
    fn path_text() {
        assert!(check_path_text("keyPrefix", "a/b-$(year)", 128, &[':', '\\', '<', '>']).is_ok());
        let e = check_path_text("keyPrefix", "a:b", 128, &[':', '\\', '<', '>']).unwrap_err();
        assert_eq!(e.code(), ErrorCode::IllegalPathCharacter);
        assert!(e.message().contains("keyPrefix"), "{e}");
        let e = check_path_text("path", &"x".repeat(129), 128, &['\\']).unwrap_err();
        assert_eq!(e.code(), ErrorCode::FieldTooLong);
        assert!(check_relative_key("k", "a/b..c/$(date)/").is_ok());
        for bad in ["/tmp/x", "../x", "a/../../b", "./a", "a/./b"] {
            assert_eq!(
                check_relative_key("k", bad).unwrap_err().code(),
                ErrorCode::IllegalPathCharacter,
                "{bad}"
            );
        }
    }
}
