//! Magic variables: `POST /v2/variables/<name>` and lists.

use crate::de::{Keys, null_default};
use crate::names::check_name;
use crate::vocab::VarType;
use crate::{ErrorCode, Result, model_err};
use serde::{Deserialize, Serialize};

/// A variable as created and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableSpec {
    /// Name (the URL's name wins; the SDK repeats it in the body).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// time or string.
    #[serde(rename = "type")]
    pub ty: VarType,
    /// `$(now)-5d` for time, any text for string.
    #[serde(default, deserialize_with = "null_default")]
    pub value: String,
    /// Java-style date format, time only.
    #[serde(default, deserialize_with = "null_default")]
    pub format: String,
}

impl VariableSpec {
    /// The keys of a variable body (the seed has no code of its own for one).
    pub const KEYS: Keys = Keys::only(ErrorCode::InvalidRequestBody);
}

impl VariableSpec {
    /// Validates name, type and the presence of value / format. The time
    /// expression and format are checked by `pbatch-magic`.
    pub fn validate(&self, name: &str) -> Result<()> {
        check_name(ErrorCode::InvalidVariableName, "variable name", name)?;
        match &self.ty {
            VarType::Time => {
                if self.value.trim().is_empty() {
                    return model_err!(
                        InvalidVariableValue,
                        "variable {name}: a time variable needs a value such as $(now)-5d"
                    );
                }
                if self.format.trim().is_empty() {
                    return model_err!(
                        InvalidTimeFormat,
                        "variable {name}: a time variable needs a format such as yyyy-MM-dd HH:mm:ss"
                    );
                }
            }
            VarType::String => {
                if self.value.chars().count() > 1024 {
                    return model_err!(
                        InvalidVariableValue,
                        "variable {name}: value is longer than 1024 characters"
                    );
                }
            }
            VarType::Other(t) => {
                return model_err!(
                    InvalidVariableType,
                    "variable {name}: type {t:?} is invalid; use time or string"
                );
            }
        }
        Ok(())
    }
}

/// `GET /v2/variables?type=...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableList {
    /// Variables.
    pub variables: Vec<VariableSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let v: VariableSpec = serde_json::from_str(
            r#"{"name":"fiveDaysAgo","type":"time","value":"$(now)-5d","format":"yyyy-MM-dd HH:mm:ss"}"#,
        )
        .unwrap();
        v.validate("fiveDaysAgo").unwrap();
        let v: VariableSpec = serde_json::from_str(r#"{"type":"time","value":"$(now)"}"#).unwrap();
        assert_eq!(v.validate("x").unwrap_err().code(), ErrorCode::InvalidTimeFormat);
        let v: VariableSpec = serde_json::from_str(r#"{"type":"number","value":"1"}"#).unwrap();
        assert_eq!(v.validate("x").unwrap_err().code(), ErrorCode::InvalidVariableType);
        let v: VariableSpec = serde_json::from_str(r#"{"type":"string","value":"1"}"#).unwrap();
        assert_eq!(v.validate("a-b").unwrap_err().code(), ErrorCode::InvalidVariableName);
    }
}
