/*!
`$(var)` expansion for pbatch: system variables, user variables, job params.

Every place that may hold magic variables (SQL, `fileFilter`, `keyPrefix`,
hdfs paths) goes through [`Expander::expand`]. Variables are evaluated at the
batch's `batchTime` in the engine's [`Zone`], so a rerun expands to exactly
what the first run did.

- System variables: `year`, `mon`, `day`, `hour`, `min`, `sec` (two digits
  except the year), `date` (`yyyy-MM-dd`) and `now` (`yyyy-MM-dd HH:mm:ss`).
- User variables of type `time`: `$(now)` plus or minus terms such as `5d`,
  `2h`, `30m`, formatted with a Java-style pattern (`yyyy-MM-dd HH:mm:ss`).
  Days are calendar days in the zone (the wall-clock time is kept across a
  DST change); hours and minutes are elapsed time.
- User variables of type `string` and job params: constant text.

An undefined variable is an error naming it and where it appeared. `$$(`
writes a literal `$(`. Fusion `fileFilter` hour ranges are parsed by
[`Expander::hour_range`].

Sits at the bottom of the workspace with `pbatch-model` (its only pbatch
dependency); `pbatch-exec` and `pbatch-sink` expand through it.

```
use chrono::{DateTime, FixedOffset};
use pbatch_magic::Expander;
let t: DateTime<FixedOffset> = "2017-06-01T05:00:00+08:00".parse().unwrap();
let ex = Expander::new(t);
assert_eq!(ex.expand("audit-log/xxx-log-$(year)-$(mon)-$(day)", "fileFilter").unwrap(),
           "audit-log/xxx-log-2017-06-01");
```
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod format;
mod zone;

pub use format::{format_java, validate_java_format};
pub use zone::Zone;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Timelike, Utc};
use pbatch_model::{Error, ErrorCode, Result, VarType, VariableSpec};
use std::collections::HashMap;

/// Names of the system variables and their formats.
pub const SYSTEM_VARIABLES: &[(&str, &str)] = &[
    ("year", "yyyy"),
    ("mon", "MM"),
    ("day", "dd"),
    ("hour", "HH"),
    ("min", "mm"),
    ("sec", "ss"),
    ("date", "yyyy-MM-dd"),
    ("now", "yyyy-MM-dd HH:mm:ss"),
];

/// The system variables as `VariableSpec`s (for `GET /v2/variables?type=system`).
pub fn system_variables() -> Vec<VariableSpec> {
    SYSTEM_VARIABLES
        .iter()
        .map(|(name, fmt)| VariableSpec {
            name: (*name).to_string(),
            ty: VarType::Time,
            value: "$(now)".to_string(),
            format: (*fmt).to_string(),
        })
        .collect()
}

/// Whether `name` is a system variable (user variables may not shadow one).
pub fn is_system_variable(name: &str) -> bool {
    SYSTEM_VARIABLES.iter().any(|(n, _)| *n == name)
}

/// An offset from the batch time: calendar days plus elapsed minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeOffset {
    /// Calendar days (wall-clock time kept).
    pub days: i64,
    /// Elapsed minutes (hours are 60 of them).
    pub minutes: i64,
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Time(TimeOffset, String),
}

/// Expands `$(var)` at one batch time.
#[derive(Debug, Clone)]
pub struct Expander {
    instant: DateTime<Utc>,
    zone: Zone,
    vars: HashMap<String, Value>,
}

impl Expander {
    /// System variables at `batch_time`, evaluated in the zone of its offset.
    pub fn new(batch_time: DateTime<FixedOffset>) -> Self {
        Self::in_zone(batch_time.to_utc(), Zone::Fixed(*batch_time.offset()))
    }

    /// System variables at `instant`, evaluated in `zone`.
    pub fn in_zone(instant: DateTime<Utc>, zone: Zone) -> Self {
        let mut vars = HashMap::new();
        for (name, fmt) in SYSTEM_VARIABLES {
            vars.insert(
                (*name).to_string(),
                Value::Time(TimeOffset::default(), (*fmt).to_string()),
            );
        }
        Self { instant, zone, vars }
    }

    /// The batch time as wall-clock time of the zone.
    pub fn batch_time(&self) -> DateTime<FixedOffset> {
        self.zone.local(self.instant)
    }

    /// The zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// Adds a user variable (validated: time expression and format).
    pub fn with_variable(mut self, v: &VariableSpec) -> Result<Self> {
        let value = match v.ty {
            VarType::Time => {
                validate_java_format(&v.format).map_err(|e| e.context(format!("variable {}", v.name)))?;
                let off = parse_time_expr(&v.value).map_err(|e| e.context(format!("variable {}", v.name)))?;
                Value::Time(off, v.format.clone())
            }
            _ => Value::Text(v.value.clone()),
        };
        self.vars.insert(v.name.clone(), value);
        Ok(self)
    }

    /// Adds a constant (a job param), shadowing variables of the same name.
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), Value::Text(value.to_string()));
        self
    }

    /// Whether `name` is defined (`Some`) and is a time variable (`Some(true)`).
    pub fn is_time_variable(&self, name: &str) -> Option<bool> {
        self.vars.get(name).map(|v| matches!(v, Value::Time(..)))
    }

    /// The instant a time variable stands for, in the zone.
    pub fn time_of(&self, name: &str) -> Option<DateTime<FixedOffset>> {
        match self.vars.get(name)? {
            Value::Time(off, _) => Some(self.apply(*off)),
            Value::Text(_) => None,
        }
    }

    fn apply(&self, off: TimeOffset) -> DateTime<FixedOffset> {
        let t = self.zone.add_days(self.instant, off.days) + Duration::minutes(off.minutes);
        self.zone.local(t)
    }

    /// Every defined name (system variables, user variables, params), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.vars.keys().cloned().collect();
        out.sort();
        out
    }

    /// The value of one variable.
    pub fn value(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| match v {
            Value::Text(t) => t.clone(),
            Value::Time(off, fmt) => format_java(&self.apply(*off), fmt),
        })
    }

    /// Expands every `$(name)` in `text`; `place` names where the text came
    /// from, for the error message.
    pub fn expand(&self, text: &str, place: &str) -> Result<String> {
        Ok(self.expand_counting(text, place)?.0)
    }

    /// Like [`expand`](Self::expand), also returning how many variables were replaced.
    pub fn expand_counting(&self, text: &str, place: &str) -> Result<(String, usize)> {
        let mut out = String::with_capacity(text.len());
        let mut n = 0;
        for piece in pieces(text, place)? {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => match self.value(name) {
                    Some(v) => {
                        out.push_str(&v);
                        n += 1;
                    }
                    None => {
                        return Err(Error::new(
                            ErrorCode::UndefinedVariable,
                            format!("{place}: variable $({name}) is not defined"),
                        ));
                    }
                },
            }
        }
        Ok((out, n))
    }

    /// Parses a fusion `fileFilter` hour range, `A ~ B`, where each side is a
    /// fixed `yyyy-MM-dd HH:mm` or holds time variables only (`$(fiveDaysAgo)`).
    /// Returns `[start, end)` truncated to the hour, in the zone. An undefined
    /// variable is `E18705`, a string variable `E18704`.
    pub fn hour_range(&self, filter: &str) -> Result<(DateTime<FixedOffset>, DateTime<FixedOffset>)> {
        let bad = |why: String| {
            Error::new(
                ErrorCode::PathFilterError,
                format!(
                    "fileFilter {filter:?}: {why} (write e.g. \"2017-06-01 05:00 ~ 2017-07-01 05:00\" or \"$(fiveDaysAgo) ~ $(now)\")"
                ),
            )
        };
        let sides: Vec<&str> = filter.split('~').map(str::trim).collect();
        if sides.len() != 2 {
            return Err(bad("expected one '~' between two times".into()));
        }
        let mut ends = Vec::with_capacity(2);
        for side in sides {
            let mut only_var = None;
            let ps = pieces(side, "fileFilter")?;
            for p in &ps {
                if let Piece::Var(name) = p {
                    match self.is_time_variable(name) {
                        None => {
                            return Err(Error::new(
                                ErrorCode::FusionFilterUndefinedVariable,
                                format!("fileFilter {filter:?}: variable $({name}) is not defined"),
                            ));
                        }
                        Some(false) => {
                            return Err(Error::new(
                                ErrorCode::FusionFilterStringVariable,
                                format!(
                                    "fileFilter {filter:?}: $({name}) is a string variable; only time variables may appear"
                                ),
                            ));
                        }
                        Some(true) => only_var = Some(*name),
                    }
                }
            }
            let t = match (ps.as_slice(), only_var) {
                ([Piece::Var(_)], Some(name)) => self
                    .time_of(name)
                    .ok_or_else(|| bad(format!("$({name}) has no time")))?,
                _ => {
                    let text = self.expand(side, "fileFilter")?;
                    let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H"]
                        .iter()
                        .find_map(|f| NaiveDateTime::parse_from_str(&text, f).ok())
                        .ok_or_else(|| bad(format!("{text:?} is not a time like yyyy-MM-dd HH:mm")))?;
                    self.zone.from_local(naive)
                }
            };
            let hour = t
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(t);
            ends.push(hour);
        }
        let (start, end) = (ends[0], ends[1]);
        if start > end {
            return Err(bad(format!("start {start} is after end {end}")));
        }
        Ok((start, end))
    }
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits text into literal pieces and variable names; `$$(` is a literal `$(`.
fn pieces<'a>(text: &'a str, place: &str) -> Result<Vec<Piece<'a>>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("$(") {
        if rest[..i].ends_with('$') {
            out.push(Piece::Text(&rest[..i - 1]));
            out.push(Piece::Text("$("));
            rest = &rest[i + 2..];
            continue;
        }
        out.push(Piece::Text(&rest[..i]));
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else {
            return Err(Error::new(
                ErrorCode::UndefinedVariable,
                format!("{place}: \"$(\" without a closing \")\" (write $$( for a literal $()"),
            ));
        };
        out.push(Piece::Var(after[..end].trim()));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Parses `$(now)` followed by terms like `-5d`, `+2h`, `-30m`.
pub fn parse_time_expr(expr: &str) -> Result<TimeOffset> {
    let bad = |why: &str| {
        Error::new(
            ErrorCode::InvalidVariableValue,
            format!("time value {expr:?} is invalid: {why} (e.g. $(now)-5d, $(now)-1d-2h)"),
        )
    };
    if expr.len() > 256 {
        return Err(bad("it is longer than 256 characters"));
    }
    let e: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(mut rest) = e.strip_prefix("$(now)") else {
        return Err(bad("it must start with $(now)"));
    };
    let mut total = TimeOffset::default();
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(bad("expected + or -")),
        };
        rest = &rest[1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        match rest.chars().next() {
            Some('d') => total.days += sign * n,
            Some('h') => total.minutes += sign * n * 60,
            Some('m') => total.minutes += sign * n,
            _ => return Err(bad("unit must be d, h or m")),
        }
        rest = &rest[1..];
        if total.days.abs() > MAX_OFFSET_DAYS || total.minutes.abs() > MAX_OFFSET_DAYS * 1440 {
            return Err(bad("the offset is over 100 years"));
        }
    }
    Ok(total)
}

/// The largest offset a time variable may have, in days (100 years).
const MAX_OFFSET_DAYS: i64 = 36_500;

#[cfg(test)]
mod tests;
