//! Deserialization helpers for what the SDKs really send: `null` for empty
//! lists, `""` for unset enums. Errors name the field's path
//! (`spec.fileCount: invalid type ...`).

use crate::ErrorCode;
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

/// Where a body's keys are checked: the code a resource refuses an unknown
/// key with, the fields read at nested places, and the keys that are known
/// but read nowhere.
///
/// A key no field reads is refused (`keyPrefix` for `keyPrefixes` would
/// otherwise read the whole bucket), naming the key and the closest known
/// one. The exceptions, [`Keys::sdk`], are keys the public SDKs send (or
/// pbatch's own GET answers carry, so a GET body can be PUT back) that
/// pbatch has no use for.
#[derive(Debug, Clone, Copy)]
pub struct Keys {
    /// The refusal's code, e.g. `E18207` for a job.
    pub code: ErrorCode,
    /// Fields read at each nested place (`"srcs"`, `"scheduler.spec"`);
    /// array indexes are left out. The top level's come from the type.
    pub nested: &'static [(&'static str, Fields)],
    /// Known keys that are accepted and ignored, as `place.key`
    /// (`"container.status"`) or `key` at the top.
    pub sdk: &'static [&'static str],
}

/// The fields a type reads: `fields_of::<T>`.
pub type Fields = fn() -> &'static [&'static str];

impl Keys {
    /// Only the type's own fields, refused with `code`.
    pub const fn only(code: ErrorCode) -> Self {
        Self {
            code,
            nested: &[],
            sdk: &[],
        }
    }
}

/// The field names a struct deserializes (serde's `FIELDS`, aliases
/// included); empty for anything else.
pub fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldsOf(&mut fields));
    fields
}

/// A deserializer that holds no data: it only records the field list a
/// struct's `Deserialize` hands to `deserialize_struct`, then fails.
struct FieldsOf<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldsOf<'_> {
    type Error = Stop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// One step of a path: an object key or an array index.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_ignored::Path<'_>, out: &mut Vec<Step>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            steps(parent, out);
            out.push(Step::Index(*index));
        }
        Path::Map { parent, key } => {
            steps(parent, out);
            out.push(Step::Key(key.clone()));
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => steps(parent, out),
    }
}

/// An ignored key: where it is shown (`srcs[0].fileFiltr`), its place
/// without indexes (`srcs`) and the key itself.
struct Unknown {
    shown: String,
    place: String,
    key: String,
}

impl Unknown {
    fn new(prefix: &str, path: &serde_ignored::Path<'_>) -> Self {
        let mut all = Vec::new();
        steps(path, &mut all);
        let key = match all.pop() {
            Some(Step::Key(k)) => k,
            Some(Step::Index(i)) => i.to_string(),
            None => String::new(),
        };
        let mut shown = prefix.to_string();
        let mut place = prefix.to_string();
        for s in &all {
            match s {
                Step::Key(k) => {
                    for out in [&mut shown, &mut place] {
                        if !out.is_empty() {
                            out.push('.');
                        }
                        out.push_str(k);
                    }
                }
                Step::Index(i) => shown.push_str(&format!("[{i}]")),
            }
        }
        if !shown.is_empty() {
            shown.push('.');
        }
        shown.push_str(&key);
        Self { shown, place, key }
    }

    fn is_sdk(&self, keys: &Keys) -> bool {
        keys.sdk.iter().any(|k| match k.rsplit_once('.') {
            Some((place, key)) => place == self.place && key == self.key,
            None => self.place.is_empty() && *k == self.key,
        })
    }

    /// The refusal, with the closest field read at the key's place.
    fn error(&self, what: &str, keys: &Keys, top: (&str, &'static [&'static str])) -> crate::Error {
        let fields = if self.place == top.0 {
            top.1
        } else {
            keys.nested
                .iter()
                .find(|(p, _)| *p == self.place)
                .map(|(_, f)| f())
                .unwrap_or(&[])
        };
        let hint = match closest(&self.key, fields) {
            Some(f) => format!(" (did you mean `{f}`?)"),
            None if fields.is_empty() => String::new(),
            None => format!(" (known keys here: {})", fields.join(", ")),
        };
        let what = if what.is_empty() {
            String::new()
        } else {
            format!("{what}: ")
        };
        crate::Error::new(keys.code, format!("{what}unknown key `{}`{hint}", self.shown))
    }
}

/// The known name closest to `key`, if it is close enough to be a typo:
/// equal but for case, within a third of its length in edits, or the start
/// of exactly one known name (`delay` for `delaySeconds`).
fn closest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    let starting: Vec<&'static str> = known
        .iter()
        .filter(|k| lower.len() >= 3 && k.to_ascii_lowercase().starts_with(&lower))
        .copied()
        .collect();
    if let [only] = starting.as_slice() {
        return Some(only);
    }
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len().max(key.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Deserializes `T` from `de`, refusing a key no field reads (see [`Keys`]).
/// `prefix` is the path of `de`'s value inside the body (`""` or `"spec"`).
fn strict<'de, T, D>(what: &str, prefix: &str, de: D, keys: &Keys) -> crate::Result<T>
where
    T: serde::de::DeserializeOwned,
    D: Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    let mut unknown: Vec<Unknown> = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(Unknown::new(prefix, &path));
    let parsed = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut note));
    let top = (prefix, fields_of::<T>());
    // An unknown key is the likelier cause of a failure too ("missing field
    // `bucket`" after "bucke"), so it is named first.
    if let Some(u) = unknown.iter().find(|u| !u.is_sdk(keys)) {
        return Err(u.error(what, keys, top));
    }
    parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = match (prefix, path.as_str()) {
            ("", "." | "?") => String::new(),
            (p, "." | "?") => format!("{p}: "),
            ("", path) => format!("{path}: "),
            (p, path) => format!("{p}.{path}: "),
        };
        let what = if what.is_empty() {
            String::new()
        } else {
            format!("{what}: ")
        };
        crate::Error::new(ErrorCode::InvalidRequestBody, format!("{what}{at}{inner}"))
    })
}

/// Parses a JSON body, mapping serde's error to `E18007` with its position
/// (or `E18006` for an empty body) and refusing unknown keys (see [`Keys`]).
pub fn parse_body<T: serde::de::DeserializeOwned>(what: &str, body: &[u8], keys: &Keys) -> crate::Result<T> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(crate::Error::new(
            crate::ErrorCode::EmptyRequestBody,
            format!("{what}: the body is empty"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let v = strict(what, "", &mut *de, keys)?;
    de.end()
        .map_err(|e| crate::Error::new(ErrorCode::InvalidRequestBody, format!("{what}: {e}")))?;
    Ok(v)
}

/// Converts the JSON value at `field` into `T`, naming the field on failure
/// (`E18007`) and refusing unknown keys (see [`Keys`]).
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(
    field: &str,
    value: serde_json::Value,
    keys: &Keys,
) -> crate::Result<T> {
    strict("", field, value, keys)
}

#[cfg(test)]
mod tests {
    use crate::{
        DatasourceDesc, DatasourceSpec, ErrorCode, ExportDesc, ExportSpec, JobDesc, JobSpec, SchemaEntry, ValType,
        VariableSpec, WorkflowSpec, parse_body,
    };

    fn refusal(r: crate::Result<impl std::fmt::Debug>) -> (ErrorCode, String) {
        match r {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(e) => (e.code(), e.to_string()),
        }
    }

    #[test]
    fn misspelled_keys_are_refused_with_the_resource_code_and_the_closest_key() {
        let (code, msg) = refusal(DatasourceSpec::from_json(
            br#"{"region":"nb","type":"kodo","spec":{"bucket":"b123","keyPrefix":["p/"],"fileType":"json"}}"#,
        ));
        assert_eq!(code, ErrorCode::InvalidRepoSpec);
        assert!(
            msg.contains("unknown key `spec.keyPrefix` (did you mean `keyPrefixes`?)"),
            "{msg}"
        );

        let (code, msg) = refusal(ExportSpec::from_json(
            br#"{"type":"kodo","spec":{"bucket":"b123","keyPrefix":"x/","format":"json","savemode":"append"}}"#,
            None,
        ));
        assert_eq!(code, ErrorCode::InvalidJobExportSpec);
        assert!(
            msg.contains("unknown key `spec.savemode` (did you mean `saveMode`?)"),
            "{msg}"
        );

        // nested places name their index and suggest from their own fields
        let (code, msg) = refusal(JobSpec::from_json(
            br#"{"srcs":[{"name":"a","type":"datasource","tableName":"t"},{"name":"b","type":"datasource","tableName":"u","filefilter":"x"}],
                 "computation":{"code":"select 1","type":"sql"},"scheduler":{"type":"crontab","spec":{"cron":"0 * * * *"}}}"#,
        ));
        assert_eq!(code, ErrorCode::InvalidJobSpec);
        assert!(
            msg.contains("unknown key `srcs[1].filefilter` (did you mean `fileFilter`?)"),
            "{msg}"
        );

        // a misspelled required key is named rather than "missing field"
        let (_, msg) = refusal(JobSpec::from_json(
            br#"{"srcs":[],"computaton":{"code":"select 1","type":"sql"}}"#,
        ));
        assert!(
            msg.contains("unknown key `computaton` (did you mean `computation`?)"),
            "{msg}"
        );

        // nothing close: the known keys are listed
        let (code, msg) = refusal(parse_body::<VariableSpec>(
            "variable",
            br#"{"name":"v","type":"string","value":"x","zzz":1}"#,
            &VariableSpec::KEYS,
        ));
        assert_eq!(code, ErrorCode::InvalidRequestBody);
        assert!(
            msg.contains("unknown key `zzz` (known keys here: name, type, value, format)"),
            "{msg}"
        );
    }

    #[test]
    fn keys_the_sdks_send_and_get_answers_carry_are_accepted() {
        // schema entries of refused valtypes carry elemtype / schema; GET adds fromDag
        let d = DatasourceSpec::from_json(
            br#"{"region":"nb","type":"kodo","spec":{"bucket":"b123","keyPrefixes":null,"fileType":"json"},"fromDag":false,
                 "schema":[{"key":"a","valtype":"long","required":true,"description":null,"elemtype":"","schema":null}],
                 "noVerifySchema":false,"workflow":""}"#,
        )
        .unwrap();
        assert_eq!(
            d.schema,
            vec![SchemaEntry {
                required: true,
                ..SchemaEntry::new("a", ValType::Long)
            }]
        );

        // what GET answers can be sent back as they are
        let job = JobSpec::from_json(
            br#"{"srcs":[{"name":"a","fileFilter":"","type":"datasource","tableName":"t"}],
                 "computation":{"code":"select 1","type":"sql"},"container":{"type":"1U2G","count":1,"status":"running"}}"#,
        )
        .unwrap();
        let got = serde_json::to_vec(&JobDesc {
            name: "j".into(),
            spec: job.clone(),
            schema: vec![SchemaEntry::new("x", ValType::String)],
        })
        .unwrap();
        let mut got: serde_json::Value = serde_json::from_slice(&got).unwrap();
        got["workflow"] = "".into();
        assert_eq!(JobSpec::from_json(got.to_string().as_bytes()).unwrap(), job);

        let export = ExportSpec::from_json(
            br#"{"type":"kodo","spec":{"bucket":"b123","keyPrefix":"x/","format":"json","saveMode":""}}"#,
            None,
        )
        .unwrap();
        let mut got = serde_json::to_value(ExportDesc {
            name: Some("e".into()),
            spec: export.clone(),
        })
        .unwrap();
        got["workflow"] = "".into();
        assert_eq!(ExportSpec::from_json(got.to_string().as_bytes(), None).unwrap(), export);

        let got = serde_json::to_vec(&DatasourceDesc {
            name: "d".into(),
            spec: d.clone(),
        })
        .unwrap();
        assert_eq!(DatasourceSpec::from_json(&got).unwrap(), d);

        let w: WorkflowSpec = parse_body(
            "workflow",
            br#"{"name":"w","region":"nb","nodes":{},"comment":"","createTime":"x","updateTime":"y","status":"Ready","canStart":true,"isManualWorkflow":false}"#,
            &WorkflowSpec::KEYS,
        )
        .unwrap();
        assert_eq!(w.region, "nb");
    }

    #[test]
    fn trailing_text_after_the_body_is_refused() {
        let (code, msg) = refusal(parse_body::<VariableSpec>(
            "variable",
            br#"{"name":"v","type":"string","value":"x"} {}"#,
            &VariableSpec::KEYS,
        ));
        assert_eq!(code, ErrorCode::InvalidRequestBody);
        assert!(msg.contains("trailing characters"), "{msg}");
    }
}
