//! The engine's time zone: where `$(date)` and friends are evaluated.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use pbatch_model::{Error, ErrorCode, Result};
use std::fmt;
use std::str::FromStr;

/// A time zone: the machine's, a fixed offset, or an IANA zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's local zone (as cron uses).
    #[default]
    Local,
    /// A fixed offset such as `+08:00`.
    Fixed(FixedOffset),
    /// An IANA zone such as `Asia/Shanghai`.
    Named(chrono_tz::Tz),
}

impl FromStr for Zone {
    type Err = Error;

    /// `local`, `UTC`, `+08:00` / `-05:30`, or an IANA name.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("local") || t.is_empty() {
            return Ok(Zone::Local);
        }
        if (t.starts_with('+') || t.starts_with('-'))
            && let Ok(dt) = DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{t}"))
        {
            return Ok(Zone::Fixed(*dt.offset()));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            Error::new(
                ErrorCode::InvalidTimeFormat,
                format!("timezone {s:?} is not an IANA zone (e.g. Asia/Shanghai), an offset (+08:00) or \"local\""),
            )
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Local => f.write_str("local"),
            Zone::Fixed(o) => write!(f, "{o}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

fn resolve<T: TimeZone>(tz: &T, naive: NaiveDateTime) -> DateTime<FixedOffset> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.fixed_offset(),
        // a repeated hour (DST ends): the first of the two, as Java's ZonedDateTime does
        LocalResult::Ambiguous(a, _) => a.fixed_offset(),
        // a skipped hour (DST starts): move forward by the gap, as Java does
        LocalResult::None => {
            let later = naive + chrono::Duration::hours(1);
            match tz.from_local_datetime(&later) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.fixed_offset(),
                LocalResult::None => tz.from_utc_datetime(&naive).fixed_offset(),
            }
        }
    }
}

/// Every instant a wall-clock time names in `tz`: one, two in a repeated
/// hour (earliest first), or, in a skipped hour, the instant the gap moves
/// it forward to.
fn instants_in<T: TimeZone>(tz: &T, naive: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            vec![a.min(b), a.max(b)]
        }
        LocalResult::None => vec![resolve(tz, naive).to_utc()],
    }
}

impl Zone {
    /// Every instant wall-clock time `naive` names in this zone: two in a
    /// repeated hour (DST ends), the moved-forward one in a skipped hour.
    pub fn instants(&self, naive: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self {
            Zone::Local => instants_in(&chrono::Local, naive),
            Zone::Fixed(o) => instants_in(o, naive),
            Zone::Named(tz) => instants_in(tz, naive),
        }
    }

    /// `t` as wall-clock time in this zone.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::Local => t.with_timezone(&chrono::Local).fixed_offset(),
            Zone::Fixed(o) => t.with_timezone(o),
            Zone::Named(tz) => t.with_timezone(tz).fixed_offset(),
        }
    }

    /// A wall-clock time of this zone as an instant (gaps move forward,
    /// repeated hours take the first).
    pub fn from_local(&self, naive: NaiveDateTime) -> DateTime<FixedOffset> {
        match self {
            Zone::Local => resolve(&chrono::Local, naive),
            Zone::Fixed(o) => resolve(o, naive),
            Zone::Named(tz) => resolve(tz, naive),
        }
    }

    /// Moves `t` by whole calendar days in this zone, keeping the wall-clock
    /// time (so `$(now)-1d` across a DST change is "yesterday, same time").
    pub fn add_days(&self, t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        let local = self.local(t).naive_local();
        // offsets are capped at 100 years by parse_time_expr; an overflow
        // (impossible within chrono's ±262,000 years) keeps the time as is
        match local.checked_add_signed(chrono::Duration::days(days)) {
            Some(shifted) => self.from_local(shifted).to_utc(),
            None => t,
        }
    }

    /// The UTC offset at `t`.
    pub fn offset_at(&self, t: DateTime<Utc>) -> FixedOffset {
        self.local(t).offset().fix()
    }
}
