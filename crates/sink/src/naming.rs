//! Final file names of a file export.

use pbatch_model::{Compression, Error, ErrorCode, ExportFormat, Result, codec, format_extension};
use regex::Regex;

/// The suffix added to a variable-free `keyPrefix` (seed, note 2).
pub(crate) const TIMESTAMP_SUFFIX_FORMAT: &str = "yyyy-MM-dd-HH-mm-ss";

/// How the files of one export are named.
///
/// - `Parts`: `<prefix>part-00000<ext>` ... (`<prefix>part-00000-<token><ext>` in append mode).
/// - `Exact`: a manual job's `keyPrefix` is the file name; with several
///   files they are `<name>-00000`, `<name>-00001`, ...
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Naming {
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
    pub(crate) fn extension_of(format: &ExportFormat, compression: &Compression) -> String {
        let codec_ext = codec(format, compression).map(|(ext, _)| ext).unwrap_or("");
        format!("{}{codec_ext}", format_extension(format))
    }

    /// The staged files' extension.
    pub(crate) fn extension(&self) -> &str {
        match self {
            Naming::Parts { ext, .. } | Naming::Exact { ext, .. } => ext,
        }
    }

    /// What existing output saveMode considers: every key starting with this.
    pub(crate) fn scope(&self) -> &str {
        match self {
            Naming::Parts { prefix, .. } => prefix,
            Naming::Exact { name, .. } => name,
        }
    }

    /// Whether `key` is a file this naming produces: any part number, batch
    /// token or partition folder, and this export's extension. `overwrite`,
    /// `errorIfExists` and `ignore` look at these keys only, so an export never
    /// touches files it could not have written.
    pub(crate) fn owns(&self, key: &str) -> bool {
        match self {
            Naming::Parts { prefix, ext } => key
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| is_part_path(rest, ext)),
            Naming::Exact { name, ext } => {
                key == name
                    || key.strip_prefix(name.as_str()).is_some_and(|rest| {
                        is_numbered(rest) || rest.strip_prefix('/').is_some_and(|r| is_part_path(r, ext))
                    })
            }
        }
    }

    /// The key of file `i` of `n` in partition directory `dir` (`""` or `col=v/`).
    /// A manual job's file name becomes a folder when the export is partitioned.
    pub(crate) fn key(&self, dir: &str, i: usize, n: usize, token: &str, append: bool) -> String {
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

/// `[col=v/...]part-NNNNN[-token]<ext>`.
fn is_part_path(rest: &str, ext: &str) -> bool {
    let mut segs: Vec<&str> = rest.split('/').collect();
    let Some(file) = segs.pop() else { return false };
    segs.iter().all(|s| s.contains('=') && !s.starts_with('='))
        && file
            .strip_prefix("part-")
            .and_then(|f| f.strip_suffix(ext))
            .is_some_and(is_digits_token)
}

/// `-NNNNN[-token]` after an exact name.
fn is_numbered(rest: &str) -> bool {
    rest.strip_prefix('-').is_some_and(is_digits_token)
}

/// `NNNNN` or `NNNNN-token` (token without `/`).
fn is_digits_token(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits == 5 && (s.len() == 5 || (s.as_bytes()[5] == b'-' && s.len() > 6 && !s[6..].contains('/')))
}

/// The pattern of every key an export may ever have written, over all batch
/// times: the raw `keyPrefix` with each system variable replaced by the
/// digits it expands to and any other variable by text without `/`, then the
/// naming's file part. Retention deletes only keys matching it.
pub(crate) fn retention_pattern(raw_key_prefix: &str, exact: bool, timestamp_folder: bool, ext: &str) -> Result<Regex> {
    let mut re = String::from("^");
    let mut rest = raw_key_prefix;
    while let Some(i) = rest.find("$(") {
        re.push_str(&regex::escape(&rest[..i]));
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        re.push_str(match after[..end].trim() {
            "year" => r"\d{4}",
            "mon" | "day" | "hour" | "min" | "sec" => r"\d{2}",
            "date" => r"\d{4}-\d{2}-\d{2}",
            "now" => r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
            _ => "[^/]*",
        });
        rest = &after[end + 1..];
    }
    re.push_str(&regex::escape(rest));
    if timestamp_folder {
        re.push_str(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}/");
    }
    let ext = regex::escape(ext);
    let token = r"\d{5}(-[^/]+)?";
    if exact {
        re.push_str(&format!("(-{token}|/([^/=]+=[^/]*/)*part-{token}{ext})?$"));
    } else {
        re.push_str(&format!("([^/=]+=[^/]*/)*part-{token}{ext}$"));
    }
    Regex::new(&re).map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            format!("retention pattern of {raw_key_prefix:?}: {e}"),
        )
    })
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

    #[test]
    fn owns_only_what_it_writes() {
        let p = Naming::Parts {
            prefix: "d/2026".into(),
            ext: ".json".into(),
        };
        assert!(p.owns("d/2026part-00000.json"));
        assert!(p.owns("d/2026part-00003-20261125-1-2.json"));
        assert!(p.owns("d/2026k=a/j=b/part-00000.json"));
        assert!(
            !p.owns("d/2026-archive/part-00000.json"),
            "another folder under the same text prefix"
        );
        assert!(!p.owns("d/2026part-00000.csv"), "another format");
        assert!(!p.owns("d/2026part-1.json"));
        assert!(
            !p.owns("d/2026notes/part-00000.json"),
            "a folder that is not a partition"
        );
        let e = Naming::Exact {
            name: "r/report".into(),
            ext: ".csv".into(),
        };
        assert!(e.owns("r/report") && e.owns("r/report-00001") && e.owns("r/report/k=1/part-00000.csv"));
        assert!(!e.owns("r/report_final.pdf") && !e.owns("r/reports_2025/important.txt"));
    }

    #[test]
    fn retention_patterns() {
        let r = retention_pattern("daily/$(date)/", false, false, ".parquet").unwrap();
        assert!(r.is_match("daily/2026-11-25/part-00000.parquet"));
        assert!(r.is_match("daily/2026-11-25/day=1/part-00000-tok.parquet"));
        assert!(!r.is_match("daily/2026-11-25/notes.parquet"));
        assert!(!r.is_match("daily/other/part-00000.parquet"));
        let r = retention_pattern("$(date)/", false, false, ".json.gz").unwrap();
        assert!(
            !r.is_match("logs/2026-11-24/part-00000.json.gz"),
            "an input folder of the same bucket"
        );
        assert!(!r.is_match("other_team/2025/part-00000.json.gz"));
        let r = retention_pattern("out/", false, true, ".csv").unwrap();
        assert!(r.is_match("out/2026-11-25-01-00-00/part-00000.csv"));
        assert!(!r.is_match("out/part-00000.csv"));
        let r = retention_pattern("$(date).json", true, false, ".json").unwrap();
        assert!(r.is_match("2026-11-25.json") && r.is_match("2026-11-25.json-00001"));
        assert!(!r.is_match("contracts/signed.pdf"));
        let r = retention_pattern("rep/$(p)-", false, false, ".txt").unwrap();
        assert!(r.is_match("rep/x-part-00000.txt") && !r.is_match("rep/a/b-part-00000.txt"));
    }
}
