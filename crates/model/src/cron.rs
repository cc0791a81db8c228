//! The crontab dialect of the batch API: Qiniu's tools use robfig/cron v1's
//! default parser, so a spec is 5 or 6 fields, **seconds first**, day of
//! week optional: `sec min hour dom month [dow]`.
//!
//! - bounds: sec 0-59, min 0-59, hour 0-23, dom 1-31, month 1-12 (or
//!   `jan`..`dec`), dow 0-6 (or `sun`..`sat`);
//! - `*` and `?` mean any; lists `a,b`; ranges `a-b`; steps `a-b/n`, `*/n`,
//!   and `N/n` means `N-max/n` (so `0 0 0/1 * *` is every hour on the hour);
//! - when dom or dow is `*`/`?`, both must match, otherwise either;
//! - descriptors `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
//!   (`@midnight`), `@hourly`, and `@every <duration>` (`@every 1h30m`).
//!
//! Times are wall-clock times; the scheduler resolves them in its zone.

use crate::{Error, ErrorCode, Result};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

/// The fields of a crontab as bitsets (bit n = value n allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronFields {
    /// Seconds.
    pub sec: u64,
    /// Minutes.
    pub min: u64,
    /// Hours.
    pub hour: u64,
    /// Days of month.
    pub dom: u64,
    /// Months.
    pub month: u64,
    /// Days of week (0 = Sunday).
    pub dow: u64,
    /// dom was `*` or `?`.
    pub dom_any: bool,
    /// dow was `*` or `?`.
    pub dow_any: bool,
}

/// A parsed crontab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cron {
    /// Fields matched against the wall clock.
    Fields(CronFields),
    /// `@every d`: a fixed interval from the previous run.
    Every(Duration),
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn bad(expr: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::InvalidBatchSpec,
        format!("scheduler.spec.crontab {expr:?}: {why} (5 or 6 fields, seconds first, e.g. \"0 0 0/1 * *\")"),
    )
}

fn value(expr: &str, field: &str, s: &str, names: &[&str], offset: u32) -> Result<u32> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>()
        .map_err(|_| bad(expr, format!("{field} value {s:?} is not a number")))
}

/// Parses one field into a bitset; returns (bits, was_any).
fn field(expr: &str, name: &str, text: &str, min: u32, max: u32, names: &[&str], offset: u32) -> Result<(u64, bool)> {
    let mut bits = 0u64;
    let mut any = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| bad(expr, format!("{name} step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(bad(expr, format!("{name} step is 0")));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            if step.is_none() {
                any = true;
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(expr, name, a, names, offset)?,
                value(expr, name, b, names, offset)?,
            )
        } else {
            let v = value(expr, name, range, names, offset)?;
            // `N/n` means `N-max/n`
            (v, if step.is_some() { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(bad(expr, format!("{name} {range:?} is outside {min}-{max}")));
        }
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, any))
}

/// Parses a Go duration such as `1h30m`, `10m`, `90s`.
fn go_duration(expr: &str, text: &str) -> Result<Duration> {
    let mut total = Duration::zero();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad(expr, "@every needs a duration such as 1h30m"));
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad(expr, format!("duration {text:?} is invalid")));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad(expr, "duration too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let d = match &rest[..unit_len] {
            "h" => Duration::try_hours(n),
            "m" => Duration::try_minutes(n),
            "s" => Duration::try_seconds(n),
            "ms" => Duration::try_milliseconds(n),
            u => return Err(bad(expr, format!("duration unit {u:?} is not h, m, s or ms"))),
        }
        .ok_or_else(|| bad(expr, "duration too large"))?;
        total += d;
        rest = &rest[unit_len..];
    }
    if total < Duration::seconds(1) {
        return Err(bad(expr, "@every must be at least 1s"));
    }
    Ok(total)
}

impl Cron {
    /// Parses a crontab of the batch API's dialect (`E18614` naming the problem).
    pub fn parse(expr: &str) -> Result<Cron> {
        let e = expr.trim();
        let spec = match e {
            "@yearly" | "@annually" => "0 0 0 1 1 *",
            "@monthly" => "0 0 0 1 * *",
            "@weekly" => "0 0 0 * * 0",
            "@daily" | "@midnight" => "0 0 0 * * *",
            "@hourly" => "0 0 * * * *",
            _ if e.starts_with("@every ") => return Ok(Cron::Every(go_duration(expr, &e[7..])?)),
            _ if e.starts_with('@') => return Err(bad(expr, "unknown descriptor")),
            _ => e,
        };
        let f: Vec<&str> = spec.split_whitespace().collect();
        if !(5..=6).contains(&f.len()) {
            return Err(bad(expr, format!("has {} fields", f.len())));
        }
        let (sec, _) = field(expr, "second", f[0], 0, 59, &[], 0)?;
        let (min, _) = field(expr, "minute", f[1], 0, 59, &[], 0)?;
        let (hour, _) = field(expr, "hour", f[2], 0, 23, &[], 0)?;
        let (dom, dom_any) = field(expr, "day of month", f[3], 1, 31, &[], 0)?;
        let (month, _) = field(expr, "month", f[4], 1, 12, MONTHS, 1)?;
        let (dow, dow_any) = match f.get(5) {
            Some(d) => field(expr, "day of week", d, 0, 6, DAYS, 0)?,
            None => (0x7f, true),
        };
        Ok(Cron::Fields(CronFields {
            sec,
            min,
            hour,
            dom,
            month,
            dow,
            dom_any,
            dow_any,
        }))
    }

    /// The first time strictly after `t` the schedule fires (wall-clock), or
    /// `None` when it never does within five years (e.g. `0 0 0 31 2 *`).
    pub fn next_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let f = match self {
            Cron::Every(d) => return t.checked_add_signed(*d),
            Cron::Fields(f) => *f,
        };
        let (sec, min, hour, month) = (f.sec, f.min, f.hour, f.month);
        let has = |bits: u64, v: u32| bits & (1 << v) != 0;
        let day_ok = |d: NaiveDate| {
            let a = has(f.dom, d.day());
            let b = has(f.dow, d.weekday().num_days_from_sunday());
            if f.dom_any || f.dow_any { a && b } else { a || b }
        };
        let start = t.with_nanosecond(0)? + Duration::seconds(1);
        let limit = start.date().year() + 5;
        let mut date = start.date();
        let mut first_day = true;
        while date.year() <= limit {
            if !has(month, date.month()) {
                // first day of the next month
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                date = NaiveDate::from_ymd_opt(y, m, 1)?;
                first_day = false;
                continue;
            }
            if day_ok(date) {
                let from = if first_day {
                    start.time()
                } else {
                    chrono::NaiveTime::MIN
                };
                for h in from.hour()..24 {
                    if !has(hour, h) {
                        continue;
                    }
                    let m0 = if first_day && h == from.hour() {
                        from.minute()
                    } else {
                        0
                    };
                    for m in m0..60 {
                        if !has(min, m) {
                            continue;
                        }
                        let s0 = if first_day && h == from.hour() && m == from.minute() {
                            from.second()
                        } else {
                            0
                        };
                        for s in s0..60 {
                            if has(sec, s) {
                                return date.and_hms_opt(h, m, s);
                            }
                        }
                    }
                }
            }
            date = date.succ_opt()?;
            first_day = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn next(expr: &str, from: &str) -> String {
        Cron::parse(expr)
            .unwrap()
            .next_after(t(from))
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    #[test]
    fn seed_and_robfig_examples() {
        // the seed's example: every hour on the hour
        assert_eq!(next("0 0 0/1 * *", "2026-11-25 01:00:00"), "2026-11-25 02:00:00");
        assert_eq!(next("0 0 0/1 * *", "2026-11-25 01:59:59"), "2026-11-25 02:00:00");
        assert_eq!(next("0 0 1 * * *", "2026-11-25 01:00:00"), "2026-11-26 01:00:00");
        assert_eq!(next("*/15 * * * *", "2026-11-25 01:00:07"), "2026-11-25 01:00:15");
        assert_eq!(
            next("0 30 9-17/4 * * mon-fri", "2026-11-27 17:30:00"),
            "2026-11-30 09:30:00"
        );
        assert_eq!(next("0 0 0 29 feb ?", "2026-03-01 00:00:00"), "2028-02-29 00:00:00");
        assert_eq!(next("0 0 0 31 * *", "2026-11-01 00:00:00"), "2026-12-31 00:00:00");
        assert_eq!(next("@hourly", "2026-12-31 23:10:00"), "2027-01-01 00:00:00");
        assert_eq!(next("@weekly", "2026-11-25 00:00:00"), "2026-11-29 00:00:00");
        assert_eq!(next("@every 1h30m", "2026-11-25 00:00:00"), "2026-11-25 01:30:00");
        // dom and dow both restricted: either matches
        assert_eq!(next("0 0 0 1 * sun", "2026-11-25 00:00:00"), "2026-11-29 00:00:00");
        // dow restricted, dom any: both must match (any dom)
        assert_eq!(next("0 0 0 * * 1", "2026-11-25 00:00:00"), "2026-11-30 00:00:00");
        assert!(
            Cron::parse("0 0 0 31 2 *")
                .unwrap()
                .next_after(t("2026-01-01 00:00:00"))
                .is_none()
        );
    }

    #[test]
    fn errors_name_the_problem() {
        for (expr, words) in [
            ("0 0 * *", "4 fields"),
            ("0 60 * * *", "minute"),
            ("0 0 0 0 * *", "day of month"),
            ("0 0 * * 13", "month"),
            ("0 0 * * * 7", "day of week"),
            ("0 0 */0 * *", "step is 0"),
            ("x 0 * * *", "second value \"x\""),
            ("@sometimes", "descriptor"),
            ("@every 5 minutes", "duration"),
        ] {
            let e = Cron::parse(expr).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidBatchSpec);
            assert!(e.message().contains(words), "{expr}: {e}");
        }
    }
}
