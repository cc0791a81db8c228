//! Hive-style partitioning: `col=value/` directories.

use arrow::array::{Array, StringArray, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use pbatch_model::{Error, ErrorCode, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The directory value of a null partition value (Hive's and Spark's).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Escapes a partition value as Hive's `escapePathName` does: `%XX` for
/// control characters and `"#%'*/:=?\{[]^` and DEL.
pub(crate) fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        let needs = (c as u32) < 0x20 || c == '\u{7f}' || "\"#%'*/:=?\\{[]^".contains(c);
        if needs {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        NULL_PARTITION.to_string()
    } else {
        out
    }
}

/// Splits a job's output by partition columns.
#[derive(Debug, Clone)]
pub(crate) struct Partitioner {
    /// Indices of the partition columns, in partitionBy order.
    keys: Vec<(usize, String)>,
    /// Indices of the columns written into the files.
    data: Vec<usize>,
    /// The files' schema (the output without the partition columns).
    pub(crate) file_schema: SchemaRef,
}

impl Partitioner {
    /// Checks the columns exist (E18314 naming the missing one) and leaves at least one data column.
    pub(crate) fn new(schema: &Schema, partition_by: &[String], export: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for c in partition_by {
            let i = schema.index_of(c).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::new(
                    ErrorCode::ExportFieldNotFound,
                    format!(
                        "export {export}: spec.partitionBy column {c:?} is not in the job's output (columns: {})",
                        names.join(", ")
                    ),
                )
            })?;
            keys.push((i, c.clone()));
        }
        let data: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !keys.iter().any(|(k, _)| k == i))
            .collect();
        if data.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidJobExportSpec,
                format!(
                    "export {export}: spec.partitionBy names every output column; no column would be left for the files"
                ),
            ));
        }
        let file_schema = Arc::new(schema.project(&data).map_err(|e| Error::internal(e.to_string()))?);
        Ok(Self {
            keys,
            data,
            file_schema,
        })
    }

    /// The batch's rows grouped by partition directory (`a=1/b=x/`), without the partition columns.
    pub(crate) fn split(&self, batch: &RecordBatch) -> Result<BTreeMap<String, RecordBatch>> {
        let cols: Vec<(String, StringArray)> = self
            .keys
            .iter()
            .map(|(i, name)| {
                let a = cast(batch.column(*i), &DataType::Utf8)
                    .map_err(|e| Error::new(ErrorCode::FieldTypeError, format!("partition column {name}: {e}")))?;
                let s = a
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| Error::internal("cast to Utf8 did not give strings"))?;
                Ok((name.clone(), s))
            })
            .collect::<Result<_>>()?;
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut dir = String::new();
        let names: Vec<String> = cols.iter().map(|(n, _)| escape_value(n)).collect();
        for row in 0..batch.num_rows() {
            dir.clear();
            for ((_, s), name) in cols.iter().zip(&names) {
                dir.push_str(name);
                dir.push('=');
                if s.is_valid(row) {
                    dir.push_str(&escape_value(s.value(row)));
                } else {
                    dir.push_str(NULL_PARTITION);
                }
                dir.push('/');
            }
            groups.entry(dir.clone()).or_default().push(row as u32);
        }
        let projected = batch.project(&self.data).map_err(|e| Error::internal(e.to_string()))?;
        let mut out = BTreeMap::new();
        for (dir, rows) in groups {
            let idx = UInt32Array::from(rows);
            let part = take_record_batch(&projected, &idx).map_err(|e| Error::internal(e.to_string()))?;
            out.insert(dir, part);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::Field;

    #[test]
    fn escapes_like_hive() {
        assert_eq!(escape_value("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape_value("2026-11-25 01:00:00"), "2026-11-25 01%3A00%3A00");
        assert_eq!(escape_value("plain"), "plain");
        assert_eq!(escape_value(""), NULL_PARTITION);
        assert_eq!(escape_value("../../x"), "..%2F..%2Fx");
    }

    #[test]
    fn splits_and_drops_partition_columns() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec![Some("a"), None, Some("a"), Some("x/y")])),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        let p = Partitioner::new(&schema, &["k".to_string()], "e").unwrap();
        let parts = p.split(&batch).unwrap();
        let dirs: Vec<&String> = parts.keys().collect();
        assert_eq!(dirs, vec!["k=__HIVE_DEFAULT_PARTITION__/", "k=a/", "k=x%2Fy/"]);
        assert_eq!(parts["k=a/"].num_rows(), 2);
        assert_eq!(parts["k=a/"].num_columns(), 1);
        let e = Partitioner::new(&schema, &["nope".to_string()], "e").unwrap_err();
        assert_eq!(e.code(), ErrorCode::ExportFieldNotFound);
        assert!(e.message().contains("nope") && e.message().contains("k, v"), "{e}");
        assert!(Partitioner::new(&schema, &["k".to_string(), "v".to_string()], "e").is_err());
    }
}
