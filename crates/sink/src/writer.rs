//! One output file of one format.

use crate::codec::Encoder;
use crate::error::{Error, Result};
use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel};
use parquet::file::properties::WriterProperties;
use pbatch_model::{Compression, ErrorCode, ExportFormat};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Format options of a file writer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FormatOptions {
    /// Format.
    pub format: ExportFormat,
    /// Compression (already checked against the table).
    pub compression: Compression,
    /// csv / text delimiter.
    pub delimiter: u8,
    /// csv header line.
    pub header: bool,
}

// One value per open file: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Parquet(Box<ArrowWriter<BufWriter<File>>>),
    // orc-rust buffers whole stripes itself and does not flush on close: give it the file.
    Orc(orc_rust::arrow_writer::ArrowWriter<File>, SchemaRef),
    Csv(arrow::csv::Writer<Encoder<BufWriter<File>>>),
    Json(arrow::json::LineDelimitedWriter<Encoder<BufWriter<File>>>),
    Text(Encoder<BufWriter<File>>, u8),
}

/// Writes record batches into one file.
pub(crate) struct FileWriter {
    inner: Inner,
    path: PathBuf,
    rows: u64,
}

fn io_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::foreign(
        ErrorCode::ExportFailed,
        crate::error::fs_message("writing", path, &e),
        e,
    )
}

/// The schema ORC can take: types orc-rust cannot write are cast first
/// (views and large strings to Utf8, decimals to Float64, zoned timestamps to UTC,
/// anything else to its string form).
pub(crate) fn orc_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = match f.data_type() {
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::Boolean
                | DataType::Date32 => f.data_type().clone(),
                DataType::Timestamp(u, None) => DataType::Timestamp(*u, None),
                DataType::Timestamp(u, Some(_)) => DataType::Timestamp(*u, Some("UTC".into())),
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => DataType::Int64,
                DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Float16 | DataType::UInt64 => {
                    DataType::Float64
                }
                DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
                DataType::BinaryView => DataType::Binary,
                _ => DataType::Utf8,
            };
            Field::new(f.name(), dt, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn cast_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c, f.data_type()).map_err(|e| {
                    Error::new(
                        ErrorCode::FieldTypeError,
                        format!(
                            "column {} ({}) cannot be written as {}: {e}",
                            f.name(),
                            c.data_type(),
                            f.data_type()
                        ),
                    )
                })
            }
        })
        .collect::<Result<_>>()?;
    RecordBatch::try_new(Arc::clone(schema), cols).map_err(|e| Error::internal(e.to_string()))
}

impl FileWriter {
    pub(crate) fn create(path: &Path, schema: &SchemaRef, opts: &FormatOptions) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(path, e))?;
        }
        let raw = File::create(path).map_err(|e| io_err(path, e))?;
        if opts.format == ExportFormat::Orc {
            let orc = orc_schema(schema);
            let mut b = orc_rust::arrow_writer::ArrowWriterBuilder::new(raw, Arc::clone(&orc));
            b = match opts.compression {
                Compression::Snappy => b.with_compression(orc_rust::compression::CompressionType::Snappy),
                Compression::Zlib => b.with_compression(orc_rust::compression::CompressionType::Zlib),
                _ => b,
            };
            return Ok(Self {
                inner: Inner::Orc(b.try_build().map_err(|e| io_err(path, e))?, orc),
                path: path.to_path_buf(),
                rows: 0,
            });
        }
        let file = BufWriter::with_capacity(1 << 20, raw);
        let inner = match &opts.format {
            ExportFormat::Parquet => {
                let c = match opts.compression {
                    Compression::Snappy => PqCompression::SNAPPY,
                    Compression::Gzip => PqCompression::GZIP(GzipLevel::default()),
                    _ => PqCompression::UNCOMPRESSED,
                };
                let props = WriterProperties::builder().set_compression(c).build();
                Inner::Parquet(Box::new(
                    ArrowWriter::try_new(file, Arc::clone(schema), Some(props)).map_err(|e| io_err(path, e))?,
                ))
            }
            ExportFormat::Csv => Inner::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(opts.header)
                    .with_delimiter(opts.delimiter)
                    .build(Encoder::new(file, &opts.compression)?),
            ),
            ExportFormat::Json => Inner::Json(arrow::json::LineDelimitedWriter::new(Encoder::new(
                file,
                &opts.compression,
            )?)),
            ExportFormat::Text => Inner::Text(Encoder::new(file, &opts.compression)?, opts.delimiter),
            ExportFormat::Orc | ExportFormat::Other(_) => {
                let f = opts.format.as_str();
                return Err(Error::new(
                    ErrorCode::InvalidJobExportSpec,
                    format!("format {f:?} is not supported"),
                ));
            }
        };
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let path = &self.path;
        match &mut self.inner {
            Inner::Parquet(w) => w.write(batch).map_err(|e| io_err(path, e))?,
            Inner::Orc(w, schema) => {
                let b = cast_batch(batch, schema)?;
                w.write(&b).map_err(|e| io_err(path, e))?
            }
            Inner::Csv(w) => w.write(batch).map_err(|e| io_err(path, e))?,
            Inner::Json(w) => w.write(batch).map_err(|e| io_err(path, e))?,
            Inner::Text(w, delimiter) => write_text(w, batch, *delimiter).map_err(|e| io_err(path, e))?,
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finishes the file; returns (rows, bytes).
    pub(crate) fn finish(self) -> Result<(u64, u64)> {
        let path = self.path;
        let file = match self.inner {
            Inner::Parquet(w) => (*w).into_inner().map_err(|e| io_err(&path, e))?,
            Inner::Orc(w, _) => {
                w.close().map_err(|e| io_err(&path, e))?;
                let bytes = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?.len();
                return Ok((self.rows, bytes));
            }
            Inner::Csv(w) => w.into_inner().finish().map_err(|e| io_err(&path, e))?,
            Inner::Json(mut w) => {
                w.finish().map_err(|e| io_err(&path, e))?;
                w.into_inner().finish().map_err(|e| io_err(&path, e))?
            }
            Inner::Text(w, _) => w.finish().map_err(|e| io_err(&path, e))?,
        };
        let mut file = file;
        file.flush().map_err(|e| io_err(&path, e))?;
        drop(file);
        let bytes = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?.len();
        Ok((self.rows, bytes))
    }
}

/// Text: one line per row; one column as is, several joined by `delimiter`.
/// Nulls are written as empty strings.
fn write_text<W: Write>(w: &mut W, batch: &RecordBatch, delimiter: u8) -> std::io::Result<()> {
    let cols: Vec<StringArray> = batch
        .columns()
        .iter()
        .map(|c| {
            cast(c, &DataType::Utf8).map_err(std::io::Error::other).and_then(|a| {
                a.as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| std::io::Error::other("cast to Utf8 did not give strings"))
            })
        })
        .collect::<std::io::Result<_>>()?;
    for row in 0..batch.num_rows() {
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                w.write_all(&[delimiter])?;
            }
            if c.is_valid(row) {
                w.write_all(c.value(row).as_bytes())?;
            }
        }
        w.write_all(b"\n")?;
    }
    Ok(())
}
