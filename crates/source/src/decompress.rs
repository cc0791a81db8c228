//! Which compression a file has, and a reader that undoes it.
//!
//! The file's name decides first (`.gz`, `.bz2`, `.lz4`, `.snappy` / `.sz`,
//! `.deflate` / `.zz` / `.zlib`, `.zst`, `.xz`); a name without a known
//! extension is sniffed by its first bytes, for the codecs whose magic cannot
//! be mistaken for text (gzip, bzip2, zstd, xz, the LZ4 frame, the snappy
//! framing format). zlib's two-byte header is only trusted with a deflate
//! extension: `x^` starts a line of text as well as a zlib stream.
//!
//! Every codec the file exporter writes (`pbatch_sink`'s frame choices) reads
//! back here: gzip members, bzip2 streams, LZ4 frames, snappy framing, zlib
//! (or raw) deflate, plus zstd and xz from other tools. Concatenated members
//! and frames are all read.

use std::io::{self, Read};

/// A compression a source file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Plain bytes.
    None,
    /// gzip (one or more members).
    Gzip,
    /// bzip2 (one or more streams).
    Bzip2,
    /// The LZ4 frame format.
    Lz4,
    /// The snappy framing format.
    Snappy,
    /// zlib-wrapped deflate, or raw deflate.
    Deflate,
    /// zstd frames.
    Zstd,
    /// xz streams.
    Xz,
}

/// Extension x codec: the one table naming and sniffing read.
const EXTENSIONS: &[(&str, Codec)] = &[
    (".gz", Codec::Gzip),
    (".gzip", Codec::Gzip),
    (".bz2", Codec::Bzip2),
    (".lz4", Codec::Lz4),
    (".snappy", Codec::Snappy),
    (".sz", Codec::Snappy),
    (".deflate", Codec::Deflate),
    (".zz", Codec::Deflate),
    (".zlib", Codec::Deflate),
    (".zst", Codec::Zstd),
    (".zstd", Codec::Zstd),
    (".xz", Codec::Xz),
];

/// Magic bytes x codec, for names without a known extension.
const MAGICS: &[(&[u8], Codec)] = &[
    (&[0x1f, 0x8b], Codec::Gzip),
    (&[0x28, 0xb5, 0x2f, 0xfd], Codec::Zstd),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Codec::Xz),
    (&[0x04, 0x22, 0x4d, 0x18], Codec::Lz4),
    (
        &[0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'],
        Codec::Snappy,
    ),
];

impl Codec {
    /// The codec a file name says, if it says one.
    pub fn from_name(key: &str) -> Option<Codec> {
        let k = key.to_ascii_lowercase();
        EXTENSIONS.iter().find(|(ext, _)| k.ends_with(ext)).map(|(_, c)| *c)
    }

    /// The codec the first bytes of a file show (`None` for plain data).
    pub fn sniff(head: &[u8]) -> Codec {
        if let Some((_, c)) = MAGICS.iter().find(|(m, _)| head.starts_with(m)) {
            return *c;
        }
        // "BZh" + block size digit + the block magic (pi's digits)
        if head.len() >= 10 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) && head[4..10] == *b"1AY&SY"
        {
            return Codec::Bzip2;
        }
        Codec::None
    }

    /// The codec of `key` whose first bytes are `head`.
    pub fn detect(key: &str, head: &[u8]) -> Codec {
        Codec::from_name(key).unwrap_or_else(|| Codec::sniff(head))
    }

    /// A lowercase word for messages.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Lz4 => "lz4",
            Codec::Snappy => "snappy",
            Codec::Deflate => "deflate",
            Codec::Zstd => "zstd",
            Codec::Xz => "xz",
        }
    }

    /// A reader of the decompressed bytes of `r`, whose first bytes are
    /// `head` (already read from the file, and put back in front here).
    pub fn open<'a>(self, head: Vec<u8>, r: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
        let zlib_header =
            head.len() >= 2 && head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
        let r = io::Cursor::new(head).chain(r);
        Ok(match self {
            Codec::None => Box::new(r),
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
            Codec::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(r)),
            Codec::Snappy => Box::new(snap::read::FrameDecoder::new(r)),
            Codec::Deflate if zlib_header => Box::new(flate2::read::ZlibDecoder::new(r)),
            Codec::Deflate => Box::new(flate2::read::DeflateDecoder::new(r)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
            Codec::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        })
    }
}

/// Reads up to `n` bytes from the start of `r` (fewer only at its end).
pub(crate) fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn all_codecs(plain: &[u8]) -> Vec<(Codec, &'static str, Vec<u8>)> {
        let mut out = Vec::new();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).unwrap();
        // two members, as `cat a.gz b.gz` makes
        let mut two = gz.finish().unwrap();
        let again = two.clone();
        two.extend_from_slice(&again);
        out.push((Codec::Gzip, ".gz", two));
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(plain).unwrap();
        out.push((Codec::Bzip2, ".bz2", bz.finish().unwrap()));
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(plain).unwrap();
        out.push((Codec::Lz4, ".lz4", lz.finish().unwrap()));
        let mut sz = snap::write::FrameEncoder::new(Vec::new());
        sz.write_all(plain).unwrap();
        out.push((Codec::Snappy, ".snappy", sz.into_inner().unwrap()));
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(plain).unwrap();
        out.push((Codec::Deflate, ".deflate", zl.finish().unwrap()));
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(plain).unwrap();
        out.push((Codec::Deflate, ".deflate", raw.finish().unwrap()));
        out.push((Codec::Zstd, ".zst", zstd::encode_all(plain, 1).unwrap()));
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(plain).unwrap();
        out.push((Codec::Xz, ".xz", xz.finish().unwrap()));
        out
    }

    #[test]
    fn every_codec_reads_back_by_name_and_by_magic() {
        let plain = b"{\"a\":1}\n{\"a\":2}\n".repeat(100);
        for (codec, ext, bytes) in all_codecs(&plain) {
            let expected = if codec == Codec::Gzip {
                plain.repeat(2)
            } else {
                plain.clone()
            };
            let mut r = io::Cursor::new(bytes);
            let head = read_head(&mut r, 16).unwrap();
            assert_eq!(Codec::detect(&format!("f.json{ext}"), &head), codec);
            if codec != Codec::Deflate {
                assert_eq!(Codec::detect("f", &head), codec, "{codec:?} by magic");
            }
            let mut out = Vec::new();
            codec.open(head, r).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, expected, "{codec:?}");
        }
    }

    #[test]
    fn text_is_never_taken_for_a_codec() {
        for head in [&b"x^abc,1\n"[..], b"BZh is a word\n", b"{\"a\":1}", b"", b"\x1f"] {
            assert_eq!(Codec::detect("data.csv", head), Codec::None, "{head:?}");
        }
        assert_eq!(Codec::detect("logs/part-0.JSON.GZ", b""), Codec::Gzip);
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let e = Codec::Gzip
            .open(vec![0x1f, 0x8b, 0, 0], &b"garbage"[..])
            .unwrap()
            .read_to_end(&mut out);
        assert!(e.is_err());
    }
}
