//! Compression frames for the row formats (json, csv, text).
//!
//! Frame choices (see the table in `pbatch_model::FORMAT_COMPRESSION`):
//! gzip members (`gzip -d`), bzip2 streams (`bzip2 -d`), the LZ4 *frame*
//! format (`lz4 -d`, python `lz4.frame`), the snappy *framing* format
//! (python-snappy, cramjam) and zlib-wrapped deflate as Hadoop's
//! `DefaultCodec` writes it (`zlib-flate -uncompress`, `pigz -dz`).

use pbatch_model::{Compression, Error, ErrorCode, Result};
use std::io::{self, Write};

/// A writer that compresses into `W` and must be finished.
pub(crate) enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Lz4(lz4_flex::frame::FrameEncoder<W>),
    Snappy(Box<snap::write::FrameEncoder<W>>),
    Deflate(flate2::write::ZlibEncoder<W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(w: W, c: &Compression) -> Result<Self> {
        Ok(match c {
            Compression::None => Encoder::Plain(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(w, flate2::Compression::new(6))),
            Compression::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(w, bzip2::Compression::new(6))),
            Compression::Lz4 => Encoder::Lz4(lz4_flex::frame::FrameEncoder::new(w)),
            Compression::Snappy => Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(w))),
            Compression::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(w, flate2::Compression::new(6))),
            other => {
                return Err(Error::new(
                    ErrorCode::InvalidJobExportSpec,
                    format!("compression {other} is not available for row formats"),
                ));
            }
        })
    }

    /// Writes the frame's trailer and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
            Encoder::Lz4(e) => e.finish().map_err(io::Error::other),
            Encoder::Snappy(e) => e.into_inner().map_err(|e| io::Error::other(e.to_string())),
            Encoder::Deflate(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Bzip2(e) => e.write(buf),
            Encoder::Lz4(e) => e.write(buf),
            Encoder::Snappy(e) => e.write(buf),
            Encoder::Deflate(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Bzip2(e) => e.flush(),
            Encoder::Lz4(e) => e.flush(),
            Encoder::Snappy(e) => e.flush(),
            Encoder::Deflate(e) => e.flush(),
        }
    }
}
