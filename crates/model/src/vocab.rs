//! Closed vocabularies of the wire format (`valtype`, `fileType`, `format`, ...).
//!
//! The SDKs send lowercase words where the seed capitalises them, so every
//! vocabulary matches case-insensitively. A word outside the vocabulary
//! still deserializes (as `Other`) so that validation, not serde, refuses it
//! with the right error code and a message listing the accepted values.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! vocab {
    ($(#[$doc:meta])* $name:ident { $( $variant:ident = $wire:literal $(| $alias:literal)* ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( #[doc = concat!("`", $wire, "`")] $variant, )*
            /// A word outside the vocabulary, kept for the error message.
            Other(String),
        }

        impl $name {
            /// The accepted wire words, for error messages.
            pub const VALUES: &'static [&'static str] = &[ $( $wire, )* ];

            /// Parses case-insensitively; unknown words become `Other`.
            pub fn parse(s: &str) -> Self {
                $(
                    if s.eq_ignore_ascii_case($wire) $(|| s.eq_ignore_ascii_case($alias))* {
                        return $name::$variant;
                    }
                )*
                $name::Other(s.to_string())
            }

            /// The canonical wire word (or the unknown word as given).
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(s) => s,
                }
            }

            /// Whether the word is in the vocabulary.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::parse(&s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

vocab! {
    /// A schema field's `valtype`. `array`, `map`, `jsonstring` and `ip`
    /// are known to the SDK but unsupported by batch jobs.
    ValType {
        Boolean = "boolean",
        Long = "long",
        Float = "float",
        String = "string",
        Date = "date",
    }
}

vocab! {
    /// A datasource's `type`.
    DatasourceType { Kodo = "kodo", Hdfs = "hdfs", Fusion = "fusion" }
}

vocab! {
    /// A source file's `fileType`.
    FileType { Json = "json", Csv = "csv", Text = "text", Parquet = "parquet" }
}

vocab! {
    /// A job src's `type`.
    SrcType { Datasource = "datasource", Job = "job" }
}

vocab! {
    /// `computation.type`.
    ComputationType { Sql = "sql" }
}

vocab! {
    /// `scheduler.type`.
    SchedulerType { Crontab = "crontab", Loop = "loop", Manual = "manual", Depend = "depend" }
}

vocab! {
    /// An export's `type`.
    ExportType {
        Kodo = "kodo",
        Hdfs = "hdfs",
        Http = "http",
        Logdb = "logdb",
        Tsdb = "tsdb",
        Report = "report",
    }
}

vocab! {
    /// A file export's `format`.
    ExportFormat { Json = "json", Csv = "csv", Text = "text", Orc = "orc", Parquet = "parquet" }
}

vocab! {
    /// A file export's `compression`.
    Compression {
        None = "none",
        Bzip2 = "bzip2",
        Gzip = "gzip",
        Lz4 = "lz4",
        Snappy = "snappy",
        Deflate = "deflate",
        Zlib = "zlib",
        Lzo = "lzo",
    }
}

vocab! {
    /// A file or report export's `saveMode`.
    SaveMode {
        Overwrite = "overwrite",
        Append = "append",
        ErrorIfExists = "errorIfExists",
        Ignore = "ignore",
    }
}

vocab! {
    /// An HTTP export's `format`.
    HttpFormat { Text = "text", Json = "json" }
}

vocab! {
    /// A variable's `type`.
    VarType { Time = "time", String = "string" }
}

impl ValType {
    /// Valtypes the SDK knows that batch jobs refuse, with why.
    pub fn unsupported_reason(&self) -> Option<&'static str> {
        match self {
            ValType::Other(s) => match s.to_ascii_lowercase().as_str() {
                "array" | "map" | "jsonstring" | "ip" | "geo_point" | "object" => {
                    Some("nested and special types are not supported by batch datasources")
                }
                _ => Some("unknown valtype"),
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_and_other() {
        assert_eq!(SrcType::parse("DataSource"), SrcType::Datasource);
        assert_eq!(DatasourceType::parse("HDFS"), DatasourceType::Hdfs);
        assert_eq!(SaveMode::parse("errorifexists"), SaveMode::ErrorIfExists);
        assert_eq!(ValType::parse("ip"), ValType::Other("ip".into()));
        assert!(ValType::parse("ip").unsupported_reason().is_some());
        let v: ValType = serde_json::from_str("\"LONG\"").unwrap();
        assert_eq!(v, ValType::Long);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"long\"");
    }
}
