//! The valtype x Arrow type table.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use pbatch_model::{SchemaEntry, ValType};
use std::sync::Arc;

/// The time zone of `date` columns.
pub const DATE_TZ: &str = "UTC";

/// Builds the Arrow type of a valtype (a fn, since `DataType` is not const).
pub type ArrowTypeFn = fn() -> DataType;

/// valtype -> Arrow type. `date` holds RFC 3339 strings parsed to UTC microseconds.
pub const VALTYPE_ARROW: &[(ValType, ArrowTypeFn)] = &[
    (ValType::Boolean, || DataType::Boolean),
    (ValType::Long, || DataType::Int64),
    (ValType::Float, || DataType::Float64),
    (ValType::String, || DataType::Utf8),
    (ValType::Date, || {
        DataType::Timestamp(TimeUnit::Microsecond, Some(DATE_TZ.into()))
    }),
];

fn arrow_type(v: &ValType) -> DataType {
    VALTYPE_ARROW
        .iter()
        .find(|(t, _)| t == v)
        .map(|(_, f)| f())
        .unwrap_or(DataType::Utf8)
}

/// The Arrow schema of a datasource schema. Every field is nullable: a
/// `required` field is checked on the data, not by the reader.
pub fn arrow_schema(schema: &[SchemaEntry]) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .iter()
            .map(|f| Field::new(&f.key, arrow_type(&f.valtype), true))
            .collect::<Vec<_>>(),
    ))
}

/// The valtype an Arrow type maps to (for inferred and job output schemas).
pub fn valtype_of(dt: &DataType) -> ValType {
    match dt {
        DataType::Boolean => ValType::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ValType::Long,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => ValType::Float,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => ValType::Date,
        _ => ValType::String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        for (v, f) in VALTYPE_ARROW {
            assert_eq!(&valtype_of(&f()), v);
        }
        let s = arrow_schema(&[SchemaEntry::new("ts", ValType::Date)]);
        assert_eq!(
            s.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
    }
}
