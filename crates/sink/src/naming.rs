//! Final file names of a file export.

use pbatch_model::{Compression, ExportFormat, codec, format_extension};

/// The suffix added to a variable-free `keyPrefix` (seed, note 2).
pub const TIMESTAMP_SUFFIX_FORMAT: &str = "yyyy-MM-dd-HH-mm-ss";

/// How the files of one export are named.
///
/// - `Parts`: `<prefix>part-00000<ext>` ... (`<prefix>part-00000-<token><ext>` in append mode).
/// - `Exact`: a manual job's `keyPrefix` is the file name; with several
///   files they are `<name>-00000`, `<name>-00001`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// Files under a prefix.
    Parts {
        /// The expanded prefix (what saveMode looks at).
        prefix: String,
        /// Format + codec extension, e.g. `.json.gz`.
        ext: String,
    },
    /// One named file (or numbered siblings).
    Exact {
        /// The file name.
        name: String,
        /// Extension of the staged file.
        ext: String,
    },
}

impl Naming {
    /// The full extension (`.csv.gz`) of a format and compression.
    pub fn extension_of(format: &ExportFormat, compression: &Compression) -> String {
        let codec_ext = codec(format, compression).map(|(ext, _)| ext).unwrap_or("");
        format!("{}{codec_ext}", format_extension(format))
    }

    /// The staged files' extension.
    pub fn extension(&self) -> &str {
        match self {
            Naming::Parts { ext, .. } | Naming::Exact { ext, .. } => ext,
        }
    }

    /// What existing output saveMode considers: every key starting with this.
    pub fn scope(&self) -> &str {
        match self {
            Naming::Parts { prefix, .. } => prefix,
            Naming::Exact { name, .. } => name,
        }
    }

    /// The key of file `i` of `n` in partition directory `dir` (`""` or `col=v/`).
    /// A manual job's file name becomes a folder when the export is partitioned.
    pub fn key(&self, dir: &str, i: usize, n: usize, token: &str, append: bool) -> String {
        match self {
            Naming::Parts { prefix, ext } if append => {
                format!("{prefix}{dir}part-{i:05}-{token}{ext}")
            }
            Naming::Parts { prefix, ext } => format!("{prefix}{dir}part-{i:05}{ext}"),
            Naming::Exact { name, ext } if !dir.is_empty() => {
                let t = if append { format!("-{token}") } else { String::new() };
                format!("{name}/{dir}part-{i:05}{t}{ext}")
            }
            Naming::Exact { name, .. } if n == 1 && !append => name.clone(),
            Naming::Exact { name, .. } if append => format!("{name}-{i:05}-{token}"),
            Naming::Exact { name, .. } => format!("{name}-{i:05}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ext = Naming::extension_of(&ExportFormat::Csv, &Compression::Gzip);
        assert_eq!(ext, ".csv.gz");
        assert_eq!(
            Naming::extension_of(&ExportFormat::Parquet, &Compression::Snappy),
            ".parquet"
        );
        let p = Naming::Parts {
            prefix: "out/2024-01-01/".into(),
            ext,
        };
        assert_eq!(p.key("", 3, 4, "t", false), "out/2024-01-01/part-00003.csv.gz");
        assert_eq!(p.key("", 0, 1, "t", true), "out/2024-01-01/part-00000-t.csv.gz");
        assert_eq!(p.key("k=a/", 0, 1, "t", false), "out/2024-01-01/k=a/part-00000.csv.gz");
        let e = Naming::Exact {
            name: "r/report.csv".into(),
            ext: ".csv".into(),
        };
        assert_eq!(e.key("", 0, 1, "t", false), "r/report.csv");
        assert_eq!(e.key("", 1, 2, "t", false), "r/report.csv-00001");
        assert_eq!(e.key("k=a/", 0, 1, "t", false), "r/report.csv/k=a/part-00000.csv");
    }
}
