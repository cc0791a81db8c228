//! Codecs for pbatch's own tables and scans; Ballista's codecs for the rest.
//!
//! A pbatch node is [`TAG`], then a little-endian u32 length and that many
//! bytes of JSON (the node's parts), then, for a scan, its table's schema as
//! DataFusion's protobuf. A protobuf message never starts with a zero byte
//! (field number 0 does not exist), so the tag cannot be mistaken for one of
//! Ballista's nodes.

use crate::write::{WriteExec, WriteTable};
use arrow::datatypes::{Schema, SchemaRef};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use pbatch_sink::RemoteWrite;
use pbatch_source::{RowFileSource, RowScanExec, RowScanParts, RowTable, RowTableParts};
use prost::Message;
use std::sync::Arc;
use url::Url;

/// Starts every pbatch scan and row table.
const TAG: &[u8] = b"\0pbatch1";

/// Starts a batch's export table and its writer ([`crate::write`]).
const WRITE_TAG: &[u8] = b"\0pbatchW";

fn codec_err(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("pbatch codec: {what}: {e}"))
}

/// Appends `TAG`, the parts' JSON and (when given) the schema.
fn encode<T: serde::Serialize>(parts: &T, schema: Option<&Schema>, buf: &mut Vec<u8>) -> DfResult<()> {
    encode_tagged(TAG, parts, schema, buf)
}

fn encode_tagged<T: serde::Serialize>(
    tag: &[u8],
    parts: &T,
    schema: Option<&Schema>,
    buf: &mut Vec<u8>,
) -> DfResult<()> {
    let json = serde_json::to_vec(parts).map_err(|e| codec_err("encoding", e))?;
    let len = u32::try_from(json.len()).map_err(|e| codec_err("encoding", e))?;
    buf.extend_from_slice(tag);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&json);
    if let Some(schema) = schema {
        let proto = datafusion_proto::protobuf::Schema::try_from(schema).map_err(|e| codec_err("schema", e))?;
        proto.encode(buf).map_err(|e| codec_err("schema", e))?;
    }
    Ok(())
}

/// The parts and the schema bytes after them; None when `buf` is not ours.
fn decode<T: serde::de::DeserializeOwned>(buf: &[u8]) -> Option<DfResult<(T, &[u8])>> {
    decode_tagged(TAG, buf)
}

fn decode_tagged<'a, T: serde::de::DeserializeOwned>(tag: &[u8], buf: &'a [u8]) -> Option<DfResult<(T, &'a [u8])>> {
    let rest = buf.strip_prefix(tag)?;
    Some((|| {
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| codec_err("decoding", "truncated"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(codec_err("decoding", "truncated"));
        }
        let (json, rest) = rest.split_at(len);
        let parts = serde_json::from_slice(json).map_err(|e| codec_err("decoding", e))?;
        Ok((parts, rest))
    })())
}

fn decode_schema(bytes: &[u8]) -> DfResult<SchemaRef> {
    let proto = datafusion_proto::protobuf::Schema::decode(bytes).map_err(|e| codec_err("schema", e))?;
    let schema = Schema::try_from(&proto).map_err(|e| codec_err("schema", e))?;
    Ok(Arc::new(schema))
}

/// Stores a pbatch scan may name: a plan from the wire reads nothing else
/// (no `file://` of the executor's own disk).
const SCAN_SCHEMES: &[&str] = &["kodo", "hdfs", "viewfs", "fusion"];

fn store_of(ctx: &TaskContext, url: &str) -> DfResult<Arc<dyn object_store::ObjectStore>> {
    let url = Url::parse(url).map_err(|e| codec_err(url, e))?;
    if !SCAN_SCHEMES.contains(&url.scheme()) {
        return Err(codec_err(
            "decoding",
            format!("a row scan of {url} (not a pbatch store)"),
        ));
    }
    ctx.runtime_env().object_store_registry.get_store(&url)
}

/// A writer from the wire writes only under its job's data dir (the
/// engine's staging folder there), never elsewhere on an executor's disk.
fn check_staging(ctx: &TaskContext, staging: &std::path::Path) -> DfResult<()> {
    let config = ctx.session_config();
    let data_dir = crate::stores::JobOptions::of(config)
        .map(|o| std::path::PathBuf::from(&o.data_dir))
        .filter(|d| d.is_absolute());
    let inside = data_dir.is_some_and(|d| staging.starts_with(d))
        && !staging.components().any(|c| c == std::path::Component::ParentDir);
    if inside {
        Ok(())
    } else {
        Err(codec_err(
            "decoding",
            format!("a writer into {} (outside the job's data dir)", staging.display()),
        ))
    }
}

/// Ballista's logical codec, plus pbatch's row tables.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        if let Some(parts) = decode_tagged::<RemoteWrite>(WRITE_TAG, buf) {
            let (write, _) = parts?;
            return Ok(Arc::new(WriteTable::new(schema, write)));
        }
        match decode::<RowTableParts>(buf) {
            None => self.inner.try_decode_table_provider(buf, table_ref, schema, ctx),
            Some(parts) => {
                let (parts, _) = parts?;
                let store = store_of(ctx, &parts.store_url)?;
                // planned as a file scan, which Ballista slices per task
                let table = RowTable::from_parts(parts, schema, store)?.distributed();
                Ok(Arc::new(table))
            }
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        let any: &dyn std::any::Any = node.as_ref();
        if let Some(table) = any.downcast_ref::<WriteTable>() {
            return encode_tagged(WRITE_TAG, table.write(), None, buf);
        }
        match any.downcast_ref::<RowTable>() {
            Some(table) => encode(&table.parts(), None, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Ballista's physical codec, plus pbatch's row scans.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
    /// On an executor: its id, which the scans it decodes report.
    executor: Option<String>,
}

impl PhysicalCodec {
    /// The codec of executor `id`: its scans say they ran there.
    pub fn for_executor(id: &str) -> Self {
        Self {
            executor: Some(id.to_string()),
            ..Self::default()
        }
    }
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some(parts) = decode_tagged::<RemoteWrite>(WRITE_TAG, buf) {
            let (write, _) = parts?;
            check_staging(ctx, write.staging())?;
            let [input] = inputs else {
                return Err(codec_err("decoding", format!("a writer with {} inputs", inputs.len())));
            };
            return Ok(Arc::new(WriteExec::new(Arc::clone(input), write)));
        }
        match decode::<RowScanParts>(buf) {
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
            Some(parts) => {
                let (parts, schema) = parts?;
                let schema = decode_schema(schema)?;
                let store = store_of(ctx, &parts.store_url)?;
                let scan = RowScanExec::from_parts(parts, schema, store)?;
                Ok(Arc::new(match &self.executor {
                    Some(id) => scan.ran_by(id),
                    None => scan,
                }))
            }
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        // a distributed row scan, its file groups sliced to the task's
        if let Some(source) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
            .and_then(|c| c.file_source().downcast_ref::<RowFileSource>().map(|s| (s, c)))
        {
            let (parts, schema) = source.0.scan_parts(source.1);
            return encode(&parts, Some(&schema), buf);
        }
        if let Some(w) = node.downcast_ref::<WriteExec>() {
            return encode_tagged(WRITE_TAG, w.write(), None, buf);
        }
        match node.downcast_ref::<RowScanExec>() {
            // Ballista cannot give a task its slice of this node: a task
            // would run the first partitions whatever its slice
            Some(scan) if scan.partitions() > 1 => Err(DataFusionError::Internal(format!(
                "pbatch codec: a row scan with {} partitions would be read wrong on a cluster \
                 (tasks cannot be given their slice of it)",
                scan.partitions()
            ))),
            Some(scan) => encode(&scan.parts(), Some(&scan.table_schema()), buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionConfig;

    fn task_ctx(data_dir: &str) -> TaskContext {
        let opts = crate::stores::JobOptions {
            data_dir: data_dir.to_string(),
        };
        let config = SessionConfig::new().with_option_extension(opts);
        TaskContext::default().with_session_config(config)
    }

    /// A writer from the wire writes under its job's data dir only.
    #[test]
    fn a_writer_outside_the_data_dir_is_refused() {
        let ctx = task_ctx("/srv/pbatch");
        let ok = std::path::Path::new("/srv/pbatch/.staging/20261125-1-000");
        assert!(check_staging(&ctx, ok).is_ok());
        for bad in [
            "/etc/cron.d",
            "/srv/pbatch/../etc",
            "/srv/pbatch2/.staging",
            ".staging/x",
        ] {
            let e = check_staging(&ctx, std::path::Path::new(bad)).unwrap_err();
            assert!(e.to_string().contains("outside the job's data dir"), "{bad}: {e}");
        }
        // a job that names no data dir has no staging folder
        let e = check_staging(&task_ctx(""), ok).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
    }
}
