/*!
`$(var)` expansion for pbatch: system variables, user variables, job params.

Every place that may hold magic variables (SQL, `fileFilter`, `keyPrefix`,
hdfs paths) goes through [`Expander::expand`]. Variables are evaluated at the
batch's `batchTime`, in the zone that time carries, so a rerun expands to
exactly what the first run did.

- System variables: `year`, `mon`, `day`, `hour`, `min`, `sec` (two digits
  except the year), `date` (`yyyy-MM-dd`) and `now` (`yyyy-MM-dd HH:mm:ss`).
- User variables of type `time`: `$(now)` plus or minus terms such as `5d`,
  `2h`, `30m`, formatted with a Java-style pattern (`yyyy-MM-dd HH:mm:ss`).
- User variables of type `string` and job params: constant text.

An undefined variable is an error naming it and where it appeared. `$$(`
writes a literal `$(`.

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

pub use format::{format_java, validate_java_format};

use chrono::{DateTime, Duration, FixedOffset};
use pbatch_model::{Error, ErrorCode, Result, VarType, VariableSpec};
use std::collections::HashMap;

/// Names of the system variables.
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

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    /// A time variable: offset from the batch time, and its format.
    Time(Duration, String),
}

/// Expands `$(var)` at one batch time.
#[derive(Debug, Clone)]
pub struct Expander {
    batch_time: DateTime<FixedOffset>,
    vars: HashMap<String, Value>,
}

impl Expander {
    /// An expander knowing only the system variables.
    pub fn new(batch_time: DateTime<FixedOffset>) -> Self {
        let mut vars = HashMap::new();
        for (name, fmt) in SYSTEM_VARIABLES {
            vars.insert(
                (*name).to_string(),
                Value::Time(Duration::zero(), (*fmt).to_string()),
            );
        }
        Self { batch_time, vars }
    }

    /// The batch time.
    pub fn batch_time(&self) -> DateTime<FixedOffset> {
        self.batch_time
    }

    /// Adds a user variable (validated: time expression and format).
    pub fn with_variable(mut self, v: &VariableSpec) -> Result<Self> {
        let value = match v.ty {
            VarType::Time => {
                validate_java_format(&v.format)
                    .map_err(|e| e.context(format!("variable {}", v.name)))?;
                Value::Time(
                    parse_time_expr(&v.value)
                        .map_err(|e| e.context(format!("variable {}", v.name)))?,
                    v.format.clone(),
                )
            }
            _ => Value::Text(v.value.clone()),
        };
        self.vars.insert(v.name.clone(), value);
        Ok(self)
    }

    /// Adds a constant (a job param), shadowing variables of the same name.
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.vars
            .insert(name.to_string(), Value::Text(value.to_string()));
        self
    }

    /// Whether `name` is defined and is a time variable.
    pub fn is_time_variable(&self, name: &str) -> Option<bool> {
        self.vars.get(name).map(|v| matches!(v, Value::Time(..)))
    }

    /// The value of one variable.
    pub fn value(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| match v {
            Value::Text(t) => t.clone(),
            Value::Time(d, fmt) => format_java(&(self.batch_time + *d), fmt),
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
        let mut rest = text;
        let mut n = 0;
        while let Some(i) = rest.find("$(") {
            if rest[..i].ends_with('$') {
                // `$$(` is a literal `$(`
                out.push_str(&rest[..i - 1]);
                out.push_str("$(");
                rest = &rest[i + 2..];
                continue;
            }
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else {
                return Err(Error::new(
                    ErrorCode::UndefinedVariable,
                    format!("{place}: \"$(\" without a closing \")\" (write $$( for a literal $()"),
                ));
            };
            let name = after[..end].trim();
            match self.value(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(Error::new(
                        ErrorCode::UndefinedVariable,
                        format!("{place}: variable $({name}) is not defined"),
                    ));
                }
            }
            n += 1;
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok((out, n))
    }
}

/// Parses `$(now)` followed by terms like `-5d`, `+2h`, `-30m` into an offset.
pub fn parse_time_expr(expr: &str) -> Result<Duration> {
    let bad = |why: &str| {
        Error::new(
            ErrorCode::InvalidVariableValue,
            format!("time value {expr:?} is invalid: {why} (e.g. $(now)-5d, $(now)-1d-2h)"),
        )
    };
    let e: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(mut rest) = e.strip_prefix("$(now)") else {
        return Err(bad("it must start with $(now)"));
    };
    let mut total = Duration::zero();
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
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit = rest
            .chars()
            .next()
            .ok_or_else(|| bad("missing unit d, h or m"))?;
        let d = match unit {
            'd' => Duration::try_days(n),
            'h' => Duration::try_hours(n),
            'm' => Duration::try_minutes(n),
            _ => return Err(bad("unit must be d, h or m")),
        }
        .ok_or_else(|| bad("offset too large"))?;
        total += d * sign;
        rest = &rest[1..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Expander {
        Expander::new(DateTime::parse_from_rfc3339(s).unwrap())
    }

    #[test]
    fn system_variables_at_batch_time() {
        let ex = at("2024-02-29T23:05:09+08:00");
        assert_eq!(
            ex.expand(
                "$(year)/$(mon)/$(day) $(hour):$(min):$(sec) | $(date) | $(now)",
                "sql"
            )
            .unwrap(),
            "2024/02/29 23:05:09 | 2024-02-29 | 2024-02-29 23:05:09"
        );
    }

    #[test]
    fn undefined_and_literal() {
        let ex = at("2024-01-01T00:00:00Z");
        let e = ex.expand("select $(nope)", "computation.code").unwrap_err();
        assert_eq!(e.code(), ErrorCode::UndefinedVariable);
        assert!(
            e.message().contains("computation.code") && e.message().contains("nope"),
            "{e}"
        );
        assert_eq!(ex.expand("a $$(year) b", "x").unwrap(), "a $(year) b");
        assert!(ex.expand("a $(year", "x").is_err());
        assert_eq!(
            ex.expand_counting("k/$(year)/", "x").unwrap(),
            ("k/2024/".to_string(), 1)
        );
    }

    #[test]
    fn user_time_variable() {
        let v = VariableSpec {
            name: "fiveDaysAgo".into(),
            ty: VarType::Time,
            value: "$(now)-5d".into(),
            format: "yyyyMMdd HH".into(),
        };
        let ex = at("2024-03-02T01:00:00Z")
            .with_variable(&v)
            .unwrap()
            .with_param("p", "x");
        assert_eq!(
            ex.expand("$(fiveDaysAgo)|$(p)", "sql").unwrap(),
            "20240226 01|x"
        );
        assert_eq!(
            parse_time_expr("$(now)-1d-2h+30m").unwrap(),
            Duration::minutes(-24 * 60 - 120 + 30)
        );
        assert!(parse_time_expr("now-1d").is_err());
        assert!(parse_time_expr("$(now)-1w").is_err());
    }
}
