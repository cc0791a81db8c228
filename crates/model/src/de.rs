//! Deserialization helpers for what the SDKs really send: `null` for empty
//! lists, `""` for unset enums. Errors name the field's path
//! (`spec.fileCount: invalid type ...`).

use serde::{Deserialize, Deserializer};

/// `null` (or absence, with `#[serde(default)]`) becomes `T::default()`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `""` and `null` become `None`; any other string is parsed by `T`.
pub(crate) fn empty_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Ok(Some(T::from(s))),
    }
}

/// Parses a JSON body, mapping serde's error to `E18007` with its position
/// (or `E18006` for an empty body).
pub fn parse_body<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> crate::Result<T> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(crate::Error::new(
            crate::ErrorCode::EmptyRequestBody,
            format!("{what}: the body is empty"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." || path == "?" {
            String::new()
        } else {
            format!("{path}: ")
        };
        crate::Error::new(crate::ErrorCode::InvalidRequestBody, format!("{what}: {at}{inner}"))
    })
}

/// Converts a JSON value into `T`, naming the field on failure (`E18007`).
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(field: &str, value: serde_json::Value) -> crate::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." || path == "?" {
            field.to_string()
        } else {
            format!("{field}.{path}")
        };
        crate::Error::new(crate::ErrorCode::InvalidRequestBody, format!("{at}: {inner}"))
    })
}
