//! Datasources: `POST /v2/datasources/<name>` and friends.

use crate::de::{Keys, fields_of, from_value, null_default, parse_body};
use crate::names::{BUCKET, check_name, check_path_text};
use crate::vocab::{DatasourceType, FileType, ValType};
use crate::{Error, ErrorCode, Result, model_err};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Characters a kodo key prefix or an hdfs path may not hold.
pub const PATH_FORBIDDEN: &[char] = &['\\', '<', '>'];

/// One schema field (`RepoSchemaEntry` in the SDK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaEntry {
    /// Field name.
    pub key: String,
    /// Field type.
    pub valtype: ValType,
    /// Whether a record must carry the field.
    #[serde(default)]
    pub required: bool,
    /// Free text; the SDK always sends `null`.
    #[serde(default)]
    pub description: Option<String>,
}

impl SchemaEntry {
    /// A field that is not required.
    pub fn new(key: impl Into<String>, valtype: ValType) -> Self {
        Self {
            key: key.into(),
            valtype,
            required: false,
            description: None,
        }
    }
}

/// The csv field delimiter when a spec gives none (a csv datasource or
/// export must give one; schema retrieval may not).
pub const CSV_DEFAULT_DELIMITER: u8 = b',';

/// The column separator of a text export when its spec gives none.
pub const TEXT_DEFAULT_DELIMITER: u8 = b'\t';

/// The one parser of a `delimiter` field (datasources and exports alike): one
/// ASCII character other than a quote or line break; `\t` may be written as
/// the two characters backslash, t. `None` or empty: no delimiter given.
pub fn parse_delimiter(field: &str, d: Option<&str>) -> Result<Option<u8>> {
    match d {
        None | Some("") => Ok(None),
        Some("\\t") => Ok(Some(b'\t')),
        Some(d) if d.len() == 1 && d.is_ascii() && d != "\n" && d != "\r" && d != "\"" => Ok(Some(d.as_bytes()[0])),
        Some(d) => model_err!(
            InvalidRepoSpec,
            "{field} {d:?} must be a single ASCII character other than a quote or line break"
        ),
    }
}

/// Checks a given delimiter (see [`parse_delimiter`]).
pub fn check_delimiter(field: &str, d: &str) -> Result<()> {
    parse_delimiter(field, Some(d)).map(|_| ())
}

/// Validates a schema: key names, supported valtypes, no duplicate keys.
pub fn validate_schema(schema: &[SchemaEntry]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, f) in schema.iter().enumerate() {
        check_name(ErrorCode::InvalidFieldName, &format!("schema[{i}].key"), &f.key)?;
        if let Some(why) = f.valtype.unsupported_reason() {
            return model_err!(
                UnsupportedFieldType,
                "schema[{i}] ({}): valtype {:?} is not supported ({why}); use one of {}",
                f.key,
                f.valtype.as_str(),
                ValType::VALUES.join(", ")
            );
        }
        if !seen.insert(f.key.as_str()) {
            return model_err!(InvalidFieldName, "schema[{i}].key {:?} appears twice", f.key);
        }
    }
    Ok(())
}

/// `spec` of a kodo datasource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KodoSourceSpec {
    /// Bucket name.
    pub bucket: String,
    /// Key prefixes; an object is read when its key starts with one of them
    /// (plus the job src's `fileFilter`).
    #[serde(default, deserialize_with = "null_default")]
    pub key_prefixes: Vec<String>,
    /// File type.
    pub file_type: FileType,
    /// csv only: the field delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// csv only: whether the first line is a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains_header: Option<bool>,
}

/// `spec` of an hdfs datasource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HdfsSourceSpec {
    /// `hdfs://host:port/path` URLs; magic variables allowed.
    #[serde(default, deserialize_with = "null_default")]
    pub paths: Vec<String>,
    /// File type.
    pub file_type: FileType,
    /// csv only: the field delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// csv only: whether the first line is a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains_header: Option<bool>,
}

/// `spec` of a fusion (CDN log) datasource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FusionSourceSpec {
    /// CDN domains (exactly one is supported).
    #[serde(default, deserialize_with = "null_default")]
    pub domains: Vec<String>,
    /// Hour range `yyyy-MM-dd HH:mm ~ yyyy-MM-dd HH:mm`, or with variables.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_filter: String,
}

/// The type-specific part of a datasource (`type` + `spec` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "spec", rename_all = "lowercase")]
pub enum SourceSpec {
    /// Object storage.
    Kodo(KodoSourceSpec),
    /// HDFS.
    Hdfs(HdfsSourceSpec),
    /// CDN logs.
    Fusion(FusionSourceSpec),
}

impl SourceSpec {
    /// Parses `spec` according to `type` (case-insensitive).
    pub fn from_parts(ty: &DatasourceType, spec: serde_json::Value) -> Result<Self> {
        Ok(match ty {
            DatasourceType::Kodo => SourceSpec::Kodo(from_value("spec", spec, &SPEC_KEYS)?),
            DatasourceType::Hdfs => SourceSpec::Hdfs(from_value("spec", spec, &SPEC_KEYS)?),
            DatasourceType::Fusion => {
                let spec = if spec.is_null() { serde_json::json!({}) } else { spec };
                SourceSpec::Fusion(from_value("spec", spec, &SPEC_KEYS)?)
            }
            DatasourceType::Other(t) => {
                return model_err!(
                    InvalidRepoSpec,
                    "type {t:?} is not a datasource type; use one of {}",
                    DatasourceType::VALUES.join(", ")
                );
            }
        })
    }

    /// The datasource type.
    pub fn kind(&self) -> DatasourceType {
        match self {
            SourceSpec::Kodo(_) => DatasourceType::Kodo,
            SourceSpec::Hdfs(_) => DatasourceType::Hdfs,
            SourceSpec::Fusion(_) => DatasourceType::Fusion,
        }
    }

    /// File type, csv delimiter and header flag (fusion has a fixed line format).
    pub fn file_format(&self) -> Option<(&FileType, Option<&str>, Option<bool>)> {
        match self {
            SourceSpec::Kodo(k) => Some((&k.file_type, k.delimiter.as_deref(), k.contains_header)),
            SourceSpec::Hdfs(h) => Some((&h.file_type, h.delimiter.as_deref(), h.contains_header)),
            SourceSpec::Fusion(_) => None,
        }
    }

    /// Validates the spec's own rules.
    pub fn validate(&self) -> Result<()> {
        match self {
            SourceSpec::Kodo(k) => {
                if !BUCKET.is_match(&k.bucket) {
                    return model_err!(
                        InvalidRepoSpec,
                        "spec.bucket {:?} is invalid: use 4-63 letters, digits or '-'",
                        k.bucket
                    );
                }
                for (i, p) in k.key_prefixes.iter().enumerate() {
                    check_path_text(&format!("spec.keyPrefixes[{i}]"), p, 128, PATH_FORBIDDEN)?;
                }
            }
            SourceSpec::Hdfs(h) => {
                if h.paths.is_empty() {
                    return model_err!(InvalidRepoSpec, "spec.paths is empty: give at least one hdfs:// path");
                }
                for (i, p) in h.paths.iter().enumerate() {
                    let field = format!("spec.paths[{i}]");
                    if !p.starts_with("hdfs://") && !p.starts_with("$(") {
                        return model_err!(
                            InvalidRepoSpec,
                            "{field} {p:?} is not an hdfs:// URL (e.g. hdfs://192.168.1.1:9000/usr/local)"
                        );
                    }
                    check_path_text(&field, p, 1024, PATH_FORBIDDEN)?;
                }
            }
            SourceSpec::Fusion(f) => {
                if f.domains.len() != 1 || f.domains[0].trim().is_empty() {
                    return model_err!(
                        InvalidRepoSpec,
                        "spec.domains must hold exactly one domain, got {:?}",
                        f.domains
                    );
                }
                let n = f.file_filter.chars().count();
                if n > 64 {
                    return model_err!(
                        FieldTooLong,
                        "spec.fileFilter {:?} is {n} characters long; at most 64 are allowed",
                        f.file_filter
                    );
                }
            }
        }
        if let Some((ft, delimiter, header)) = self.file_format() {
            if !ft.is_known() {
                return model_err!(
                    InvalidRepoSpec,
                    "spec.fileType {:?} is not supported; use one of {}",
                    ft.as_str(),
                    FileType::VALUES.join(", ")
                );
            }
            if *ft == FileType::Csv {
                match delimiter {
                    None | Some("") => {
                        return model_err!(InvalidRepoSpec, "spec.delimiter is required when spec.fileType is csv");
                    }
                    Some(d) => check_delimiter("spec.delimiter", d)?,
                }
                if header.is_none() {
                    return model_err!(
                        InvalidRepoSpec,
                        "spec.containsHeader is required when spec.fileType is csv"
                    );
                }
            }
        }
        Ok(())
    }
}

/// The keys of a datasource body: its own, plus what the SDK sends for
/// schema fields pbatch refuses by valtype, and what a GET answer carries.
const DATASOURCE_KEYS: Keys = Keys {
    code: ErrorCode::InvalidRepoSpec,
    nested: &[("schema", fields_of::<SchemaEntry>)],
    sdk: &["name", "fromDag", "schema.elemtype", "schema.schema"],
};

/// The keys of a datasource's `spec`: only the type's own.
const SPEC_KEYS: Keys = Keys::only(ErrorCode::InvalidRepoSpec);

/// A datasource as created (`CreateDatasourceInput`) and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceSpec {
    /// Region (`nb`).
    pub region: String,
    /// Type and spec.
    #[serde(flatten)]
    pub source: SourceSpec,
    /// Fields.
    pub schema: Vec<SchemaEntry>,
    /// `true`: take `schema` as given; `false`: infer and check it.
    pub no_verify_schema: bool,
    /// Owning workflow (`""` = none).
    pub workflow: String,
    /// pbatch's addition: skip (and count in the run message) records that
    /// do not parse, lack a `required` field or hold a value of the wrong
    /// type, instead of failing the batch. Sent only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub omit_invalid: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDatasource {
    #[serde(default)]
    region: Option<String>,
    #[serde(rename = "type")]
    ty: Option<DatasourceType>,
    #[serde(default)]
    spec: serde_json::Value,
    #[serde(default, deserialize_with = "null_default")]
    schema: Vec<SchemaEntry>,
    #[serde(default)]
    no_verify_schema: Option<bool>,
    #[serde(default, alias = "workflowName")]
    workflow: Option<String>,
    #[serde(default)]
    omit_invalid: Option<bool>,
}

impl DatasourceSpec {
    /// Parses a create body (not yet validated).
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let raw: RawDatasource = parse_body("datasource", body, &DATASOURCE_KEYS)?;
        let Some(ty) = raw.ty else {
            return model_err!(
                InvalidRepoSpec,
                "type is missing; use one of {}",
                DatasourceType::VALUES.join(", ")
            );
        };
        Ok(Self {
            region: raw.region.unwrap_or_default(),
            source: SourceSpec::from_parts(&ty, raw.spec)?,
            schema: raw.schema,
            no_verify_schema: raw.no_verify_schema.unwrap_or(false),
            workflow: raw.workflow.unwrap_or_default(),
            omit_invalid: raw.omit_invalid.unwrap_or(false),
        })
    }

    /// Validates every rule of the seed; `regions` are the accepted regions.
    pub fn validate(&self, name: &str, regions: &[String]) -> Result<()> {
        check_name(ErrorCode::InvalidDatasourceName, "datasource name", name)?;
        if !regions.iter().any(|r| r == &self.region) {
            return model_err!(
                RegionMismatch,
                "region {:?} is not served here; use one of {}",
                self.region,
                regions.join(", ")
            );
        }
        self.source.validate()?;
        if !self.workflow.is_empty() {
            check_name(ErrorCode::InvalidWorkflowName, "workflow", &self.workflow)?;
        }
        if self.schema.is_empty() && self.no_verify_schema {
            return model_err!(
                EmptySchema,
                "schema is empty while noVerifySchema is true: give the fields, or set noVerifySchema to false to infer them"
            );
        }
        validate_schema(&self.schema)
    }
}

/// `PUT /v2/datasources/<name>`: the seed's `{"spec", "schema"}`, where
/// fields may only be added. A whole create body (or a GET answer) is taken
/// too: `noVerifySchema` and `omitInvalid` change, while `type`, `region`
/// and `workflow`, which cannot, must be what they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDatasourceInput {
    /// The new spec (same type as before), if given.
    #[serde(default)]
    pub spec: Option<serde_json::Value>,
    /// The new schema.
    #[serde(default, deserialize_with = "null_default")]
    pub schema: Vec<SchemaEntry>,
    /// The type, which must not change.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<DatasourceType>,
    /// The region, which must not change (`""`: not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The workflow, which must not change.
    #[serde(default, alias = "workflowName", skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The new `noVerifySchema`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_verify_schema: Option<bool>,
    /// The new `omitInvalid`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_invalid: Option<bool>,
}

impl UpdateDatasourceInput {
    /// The keys of an update body: a create body's, and a GET answer's.
    pub const KEYS: Keys = Keys {
        code: ErrorCode::InvalidRepoSpec,
        nested: &[("schema", fields_of::<SchemaEntry>)],
        sdk: &["name", "fromDag", "schema.elemtype", "schema.schema"],
    };

    /// An update to `spec` in whole.
    pub fn to(spec: &DatasourceSpec) -> Result<Self> {
        let body = serde_json::to_value(spec).map_err(|e| Error::internal(format!("datasource: {e}")))?;
        Ok(Self {
            spec: Some(body["spec"].clone()),
            schema: spec.schema.clone(),
            ty: Some(spec.source.kind()),
            region: Some(spec.region.clone()),
            workflow: Some(spec.workflow.clone()),
            no_verify_schema: Some(spec.no_verify_schema),
            omit_invalid: Some(spec.omit_invalid),
        })
    }

    /// `old` with this update applied (not yet validated); refuses
    /// (`E18109`) a change of what cannot change, and (`E18110`) a schema
    /// that drops or retypes a field.
    pub fn apply(&self, name: &str, old: &DatasourceSpec) -> Result<DatasourceSpec> {
        let kind = old.source.kind();
        let given = |field: &str, given: Option<&str>, was: &str, same: fn(&str, &str) -> bool| match given {
            Some(g) if !same(g, was) => model_err!(
                InvalidRepoSpec,
                "{field} {g:?} differs from datasource {name}'s {was:?}; it cannot change (delete the datasource and create it again)"
            ),
            _ => Ok(()),
        };
        given(
            "type",
            self.ty.as_ref().map(DatasourceType::as_str),
            kind.as_str(),
            |a, b| a.eq_ignore_ascii_case(b),
        )?;
        given("region", self.region.as_deref(), &old.region, |a, b| {
            a.is_empty() || a == b
        })?;
        given("workflow", self.workflow.as_deref(), &old.workflow, |a, b| a == b)?;
        let mut new = old.clone();
        if let Some(spec) = &self.spec {
            new.source = SourceSpec::from_parts(&kind, spec.clone())?;
        }
        if !self.schema.is_empty() || old.schema.is_empty() {
            check_schema_only_grows(&old.schema, &self.schema)?;
            new.schema = self.schema.clone();
        }
        if let Some(v) = self.no_verify_schema {
            new.no_verify_schema = v;
        }
        if let Some(v) = self.omit_invalid {
            new.omit_invalid = v;
        }
        Ok(new)
    }
}

/// Checks an update only adds fields: none removed, no type changed (E18110).
pub fn check_schema_only_grows(old: &[SchemaEntry], new: &[SchemaEntry]) -> Result<()> {
    for o in old {
        match new.iter().find(|n| n.key == o.key) {
            None => {
                return Err(Error::new(
                    ErrorCode::InvalidFieldFormat,
                    format!("schema field {:?} may not be removed by an update", o.key),
                ));
            }
            Some(n) if n.valtype != o.valtype => {
                return Err(Error::new(
                    ErrorCode::InvalidFieldFormat,
                    format!(
                        "schema field {:?} may not change type from {} to {}",
                        o.key, o.valtype, n.valtype
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One item of `GET /v2/datasources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasourceDesc {
    /// Name.
    pub name: String,
    /// The datasource.
    #[serde(flatten)]
    pub spec: DatasourceSpec,
}

/// `GET /v2/datasources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasourceList {
    /// All datasources.
    pub datasources: Vec<DatasourceDesc>,
}

/// `POST /v2/schemas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveSchemaInput {
    /// What to sample.
    pub source: SourceSpec,
}

impl RetrieveSchemaInput {
    /// Parses `{"type": ..., "spec": ...}`.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            ty: DatasourceType,
            #[serde(default)]
            spec: serde_json::Value,
        }
        let raw: Raw = parse_body("schema retrieval", body, &Keys::only(ErrorCode::InvalidRepoSpec))?;
        Ok(Self {
            source: SourceSpec::from_parts(&raw.ty, raw.spec)?,
        })
    }
}

/// Answer of `POST /v2/schemas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrieveSchemaOutput {
    /// Inferred fields.
    pub schema: Vec<SchemaEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<String> {
        vec!["nb".to_string()]
    }

    const SDK_BODY: &str = r#"{"region":"nb","type":"kodo","spec":{"bucket":"bkt1","keyPrefixes":["p/"],"fileType":"json"},
 "schema":[{"key":"a","valtype":"long","required":true,"description":null},
           {"key":"b","valtype":"string","required":false,"description":null}],
 "noVerifySchema":false,"workflow":""}"#;

    #[test]
    fn parses_what_the_go_sdk_sends() {
        let d = DatasourceSpec::from_json(SDK_BODY.as_bytes()).unwrap();
        d.validate("ds1", &regions()).unwrap();
        assert_eq!(d.schema.len(), 2);
        assert!(d.schema[0].required);
        let SourceSpec::Kodo(k) = &d.source else { panic!() };
        assert_eq!(k.key_prefixes, vec!["p/"]);
        // round trip keeps the wire shape
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["type"], "kodo");
        assert_eq!(v["spec"]["bucket"], "bkt1");
        assert_eq!(v["noVerifySchema"], false);
    }

    #[test]
    fn an_update_takes_a_whole_create_body_and_refuses_what_cannot_change() {
        let old = DatasourceSpec::from_json(SDK_BODY.as_bytes()).unwrap();
        let update = |body: &str| {
            parse_body::<UpdateDatasourceInput>("datasource update", body.as_bytes(), &UpdateDatasourceInput::KEYS)
                .and_then(|u| u.apply("ds1", &old))
        };
        // the create body with omitInvalid on and a field added
        let mut body: serde_json::Value = serde_json::from_str(SDK_BODY).unwrap();
        body["omitInvalid"] = true.into();
        body["fromDag"] = false.into();
        body["schema"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"key":"c","valtype":"date","required":false,"description":null}));
        let new = update(&body.to_string()).unwrap();
        assert!(new.omit_invalid);
        assert_eq!(new.schema.len(), 3);
        assert_eq!(new.source, old.source);
        // what `pbatch apply` sends is the same datasource back
        assert_eq!(
            UpdateDatasourceInput::to(&new).unwrap().apply("ds1", &old).unwrap(),
            new
        );

        body["type"] = "hdfs".into();
        let e = update(&body.to_string()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRepoSpec);
        assert!(
            e.message()
                .contains("type \"hdfs\" differs from datasource ds1's \"kodo\""),
            "{e}"
        );
        body["type"] = "KODO".into();
        body["workflow"] = "w1".into();
        let e = update(&body.to_string()).unwrap_err();
        assert!(e.message().contains("workflow \"w1\" differs"), "{e}");
        let e = update(r#"{"spec":{"bucket":"bkt1","keyPrefixes":["p/"],"fileType":"json","keyprefixes":[]}}"#)
            .unwrap_err();
        assert!(
            e.message()
                .contains("unknown key `spec.keyprefixes` (did you mean `keyPrefixes`?)"),
            "{e}"
        );
    }

    fn err(body: &str) -> Error {
        DatasourceSpec::from_json(body.as_bytes())
            .and_then(|d| d.validate("ds1", &regions()))
            .unwrap_err()
    }

    #[test]
    fn rules() {
        let e = err(r#"{"region":"nb","type":"kodo","spec":{"bucket":"bkt1","fileType":"csv"},"schema":[]}"#);
        assert_eq!(e.code(), ErrorCode::InvalidRepoSpec);
        assert!(e.message().contains("spec.delimiter"), "{e}");
        let e = err(
            r#"{"region":"nb","type":"kodo","spec":{"bucket":"bkt1","fileType":"csv","delimiter":","},"schema":[]}"#,
        );
        assert!(e.message().contains("spec.containsHeader"), "{e}");
        let e = err(r#"{"region":"sh","type":"kodo","spec":{"bucket":"bkt1","fileType":"json"}}"#);
        assert_eq!(e.code(), ErrorCode::RegionMismatch);
        assert!(e.message().contains("\"sh\""), "{e}");
        let e = err(
            r#"{"region":"nb","type":"kodo","spec":{"bucket":"bkt1","fileType":"json"},
            "schema":[{"key":"a","valtype":"ip","required":false}]}"#,
        );
        assert_eq!(e.code(), ErrorCode::UnsupportedFieldType);
        assert!(e.message().contains("\"ip\""), "{e}");
        let e = err(r#"{"region":"nb","type":"s3","spec":{}}"#);
        assert_eq!(e.code(), ErrorCode::InvalidRepoSpec);
        let e = err(r#"{"region":"nb","type":"fusion","spec":{"domains":["a.com","b.com"]}}"#);
        assert_eq!(e.code(), ErrorCode::InvalidRepoSpec);
        let e =
            err(r#"{"region":"nb","type":"kodo","spec":{"bucket":"bkt1","keyPrefixes":["a<b"],"fileType":"json"}}"#);
        assert_eq!(e.code(), ErrorCode::IllegalPathCharacter);
        let e =
            err(r#"{"region":"nb","type":"kodo","spec":{"bucket":"bkt1","fileType":"json"},"noVerifySchema":true}"#);
        assert_eq!(e.code(), ErrorCode::EmptySchema);
        let e = DatasourceSpec::from_json(SDK_BODY.as_bytes())
            .unwrap()
            .validate("1bad", &regions())
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidDatasourceName);
        assert!(e.message().contains("1bad"));
    }

    #[test]
    fn update_only_adds_fields() {
        let old = vec![SchemaEntry::new("a", ValType::Long)];
        let mut new = old.clone();
        new.push(SchemaEntry::new("b", ValType::String));
        check_schema_only_grows(&old, &new).unwrap();
        let e = check_schema_only_grows(&new, &old).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidFieldFormat);
        let changed = vec![SchemaEntry::new("a", ValType::Float)];
        assert!(check_schema_only_grows(&old, &changed).is_err());
    }
}
