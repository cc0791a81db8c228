//! SQL functions pbatch puts over DataFusion's built-ins in every session it
//! plans or runs in (a batch's, a scheduler's, an executor's).
//!
//! [`UtcDateTrunc`]: `date_trunc` on a `date` column ([`DATE_TZ`], UTC).
//! DataFusion's `date_trunc` truncates a timestamp with a zone through
//! chrono-tz value by value (formatting and parsing on the way: 20% of a
//! COUNT DISTINCT per hour over 10M rows), even when the zone is UTC, where
//! a zone-less timestamp's arithmetic gives the same answer. This one drops
//! the zone, lets DataFusion truncate the plain timestamps, and puts the zone
//! back; any other input is DataFusion's as it is.

use crate::schema::DATE_TZ;
use arrow::array::{Array, ArrayRef, make_array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use std::sync::Arc;

/// The functions to register over the defaults.
pub fn session_functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::new_from_impl(UtcDateTrunc::default()))]
}

/// Registers [`session_functions`] in a session's state (over the built-ins
/// of the same names).
pub fn register_functions(state: &mut datafusion::execution::SessionState) -> Result<()> {
    use datafusion::execution::FunctionRegistry;
    for f in session_functions() {
        state.register_udf(f)?;
    }
    Ok(())
}

/// `date_trunc`, with UTC timestamps truncated as zone-less ones (see the
/// module's doc). Names, signature, return type and ordering are DataFusion's.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct UtcDateTrunc {
    inner: datafusion::functions::datetime::date_trunc::DateTruncFunc,
}

/// Zones whose local time is UTC. (A named zone such as `Asia/Shanghai`
/// changed its offset in the past, so its hours and days are left to
/// DataFusion.)
fn is_utc(tz: &str) -> bool {
    tz == DATE_TZ || matches!(tz, "+00:00" | "Z" | "Etc/UTC" | "GMT" | "Etc/GMT")
}

/// The same type without the zone, when the zone is UTC.
fn zoneless(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(unit, Some(tz)) if is_utc(tz) => Some(DataType::Timestamp(*unit, None)),
        _ => None,
    }
}

/// `array` with its type replaced (same buffers, no copy).
fn retyped(array: &ArrayRef, to: DataType) -> Result<ArrayRef> {
    let data = array.to_data().into_builder().data_type(to).build()?;
    Ok(make_array(data))
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = match args.args.get(1) {
            Some(ColumnarValue::Array(a)) => zoneless(a.data_type()).map(|t| (Arc::clone(a), t)),
            _ => None,
        };
        let Some((array, plain)) = input else {
            return self.inner.invoke_with_args(args);
        };
        args.args[1] = ColumnarValue::Array(retyped(&array, plain.clone())?);
        if let Some(f) = args.arg_fields.get_mut(1) {
            *f = Arc::new(f.as_ref().clone().with_data_type(plain.clone()));
        }
        let returns = args.return_field.data_type().clone();
        args.return_field = Arc::new(Field::new(
            args.return_field.name(),
            plain,
            args.return_field.is_nullable(),
        ));
        match self.inner.invoke_with_args(args)? {
            ColumnarValue::Array(out) => Ok(ColumnarValue::Array(retyped(&out, returns)?)),
            // (an array in gives an array out)
            scalar => Ok(scalar),
        }
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray};
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;
    use datafusion::functions::datetime::date_trunc::DateTruncFunc;

    fn call(f: &dyn ScalarUDFImpl, granularity: &str, array: ArrayRef) -> Result<ArrayRef> {
        let fields: Vec<FieldRef> = vec![
            Arc::new(Field::new("g", DataType::Utf8, false)),
            Arc::new(Field::new("ts", array.data_type().clone(), true)),
        ];
        let g = ScalarValue::Utf8(Some(granularity.into()));
        let return_field = f.return_field_from_args(ReturnFieldArgs {
            arg_fields: &fields,
            scalar_arguments: &[Some(&g), None],
        })?;
        let rows = array.len();
        let out = f.invoke_with_args(ScalarFunctionArgs {
            args: vec![ColumnarValue::Scalar(g), ColumnarValue::Array(array)],
            arg_fields: fields,
            number_rows: rows,
            return_field,
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        out.into_array(rows)
    }

    /// Seconds from 1680 to 2260 (DataFusion truncates a zoned timestamp as
    /// nanoseconds, which reach 1677 to 2262), month ends and leap days
    /// among them.
    fn seconds() -> Vec<Option<i64>> {
        let mut v: Vec<Option<i64>> = vec![None, Some(0), Some(-1), Some(1), Some(951_782_399), Some(951_868_800)];
        let mut s: i64 = -9_151_488_000; // 1680-01-01
        while s < 9_056_736_000 {
            v.push(Some(s));
            v.push(Some(s - 1));
            s += 2_629_746 + 3_607; // a month and an hour and 7 s
        }
        v
    }

    #[test]
    fn utc_timestamps_truncate_as_datafusion_truncates_them() {
        let ours = UtcDateTrunc::default();
        let theirs = DateTruncFunc::new();
        let granularities = [
            "microsecond",
            "millisecond",
            "second",
            "minute",
            "hour",
            "day",
            "week",
            "month",
            "quarter",
            "year",
        ];
        for tz in ["UTC", "+00:00", "Asia/Shanghai", "+08:00"] {
            let secs = seconds();
            let arrays: Vec<ArrayRef> = vec![
                Arc::new(TimestampSecondArray::from(secs.clone()).with_timezone(tz)),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        secs.iter()
                            .map(|s| s.map(|s| s * 1_000_000 + 123_456))
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone(tz),
                ),
                Arc::new(
                    TimestampNanosecondArray::from(
                        secs.iter()
                            .map(|s| s.map(|s| s * 1_000_000_000 - 7))
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone(tz),
                ),
            ];
            for array in arrays {
                for g in granularities {
                    let want = call(&theirs, g, Arc::clone(&array)).unwrap();
                    let got = call(&ours, g, Arc::clone(&array)).unwrap();
                    assert_eq!(got.data_type(), want.data_type(), "{tz} {g}");
                    assert_eq!(got.to_data(), want.to_data(), "{tz} {g} {}", array.data_type());
                }
            }
        }
        // a bad granularity is DataFusion's error
        let a: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC"));
        let e = call(&ours, "fortnight", a).unwrap_err().to_string();
        assert!(e.contains("fortnight"), "{e}");
    }

    #[test]
    fn a_utc_hour_keeps_its_zone_and_its_nulls() {
        // the reason for this function: zone-less arithmetic, not per-value
        // zone lookups (DataFusion takes the fast path only without a zone)
        let a: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![Some(3_600_000_001), None]).with_timezone("UTC"));
        let out = call(&UtcDateTrunc::default(), "hour", a).unwrap();
        let out = out.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(out.value(0), 3_600_000_000);
        assert!(out.is_null(1));
        assert_eq!(out.timezone(), Some("UTC"));
    }
}
