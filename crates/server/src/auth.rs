//! Pandora request signatures (research pandora-api.md §2).
//!
//! `Authorization: Pandora <AK>:<sig>` signs
//! `METHOD\nContent-MD5\nContent-Type\nDate\n<X-Qiniu-* headers><path>` with
//! HMAC-SHA1 of the secret key, URL-safe base64 with padding; the Date must
//! be within 15 minutes of the server's clock. The token form
//! `Pandora <AK>:<sig>:<encodedDesc>` signs a JSON description of the one
//! request it allows (method, path, expiry).

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// How far a request's `Date` may be from the server's clock.
pub const DATE_WINDOW_SECS: i64 = 15 * 60;

/// Access key -> secret key.
#[derive(Debug, Clone, Default)]
pub struct Keys(HashMap<String, Vec<u8>>);

impl Keys {
    /// Resolves `[server] keys` (pairs, tables, secret files).
    pub fn parse(keys: &[pbatch_engine::ServerKey]) -> pbatch_model::Result<Self> {
        let mut map = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            let (ak, sk) = k.resolve(i)?;
            map.insert(ak, sk.into_bytes());
        }
        Ok(Self(map))
    }

    /// No keys: the server does not check signatures (loopback only).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keys from (AK, SK) pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(a, s)| ((*a).to_string(), s.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// The secret key of `ak`.
    pub(crate) fn secret(&self, ak: &str) -> Option<&[u8]> {
        self.0.get(ak).map(Vec::as_slice)
    }

    /// Whether `sk` is `ak`'s secret key (constant time in the secret).
    pub(crate) fn pair_matches(&self, ak: &str, sk: &[u8]) -> bool {
        self.secret(ak)
            .is_some_and(|s| s.len() == sk.len() && bool::from(s.ct_eq(sk)))
    }
}

/// What a signature covers, read off the request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Method as sent.
    pub method: &'a str,
    /// URL path (no query).
    pub path: &'a str,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `Content-MD5`.
    pub content_md5: Option<&'a str>,
    /// `Content-Type`, exactly as sent.
    pub content_type: Option<&'a str>,
    /// `Date`.
    pub date: Option<&'a str>,
    /// Every `X-Qiniu-*` header (name in any case, first value).
    pub qiniu_headers: Vec<(&'a str, &'a str)>,
}

/// Go's canonical header case: `x-qiniu-foo-bar` -> `X-Qiniu-Foo-Bar`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The canonical `X-Qiniu-*` part: sorted by canonical name, each
/// `\n<lowercase name>:<value>`; empty without such headers.
pub fn canonical_qiniu_headers(headers: &[(&str, &str)]) -> String {
    let mut hs: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (canonical(n), *v))
        .filter(|(n, _)| n.len() > "X-Qiniu-".len() && n.starts_with("X-Qiniu-"))
        .collect();
    hs.sort_by(|a, b| a.0.cmp(&b.0));
    hs.iter()
        .map(|(n, v)| format!("\n{}:{v}", n.to_ascii_lowercase()))
        .collect()
}

/// The exact bytes an AK/SK signature covers.
pub fn string_to_sign(r: &Request<'_>) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        r.method,
        r.content_md5.unwrap_or(""),
        r.content_type.unwrap_or(""),
        r.date.unwrap_or(""),
        canonical_qiniu_headers(&r.qiniu_headers),
        r.path
    )
}

pub(crate) fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length
    let mut mac = match <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// URL-safe base64 (with padding) of HMAC-SHA1(`sk`, `msg`).
pub fn sign(sk: &[u8], msg: &str) -> String {
    URL_SAFE.encode(hmac_sha1(sk, msg.as_bytes()))
}

/// Compares a received signature with the expected one in constant time;
/// the unpadded form is accepted too.
pub(crate) fn sig_matches(received: &str, expected_raw: &[u8]) -> bool {
    let decoded = URL_SAFE
        .decode(received)
        .or_else(|_| URL_SAFE_NO_PAD.decode(received.trim_end_matches('=')));
    match decoded {
        Ok(d) => d.len() == expected_raw.len() && bool::from(d.ct_eq(expected_raw)),
        Err(_) => false,
    }
}

/// Why a request was refused (logged; the client only sees `bad token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenDesc {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    expires: i64,
    #[serde(default, rename = "contentMD5")]
    content_md5: String,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    headers: String,
    #[serde(default)]
    method: String,
}

/// Checks a request's `Authorization` against `keys` at time `now`.
pub fn verify(keys: &Keys, r: &Request<'_>, now: DateTime<Utc>) -> Result<(), Refused> {
    let refuse = |why: &str| Err(Refused(why.to_string()));
    let Some(auth) = r.authorization else {
        return refuse("no Authorization header");
    };
    let Some(rest) = auth.strip_prefix("Pandora ") else {
        return refuse("Authorization does not start with \"Pandora \"");
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ak, sig) = match parts.as_slice() {
        [ak, sig] | [ak, sig, _] => (*ak, *sig),
        _ => return refuse("Authorization is not AK:sig or AK:sig:token"),
    };
    let Some(sk) = keys.0.get(ak) else {
        return refuse("unknown access key");
    };
    if let [_, _, desc] = parts.as_slice() {
        if !sig_matches(sig, &hmac_sha1(sk, desc.as_bytes())) {
            return refuse("token signature mismatch");
        }
        let raw = URL_SAFE
            .decode(desc)
            .or_else(|_| URL_SAFE_NO_PAD.decode(desc.trim_end_matches('=')));
        let Ok(raw) = raw else {
            return refuse("token description is not base64");
        };
        let Ok(d) = serde_json::from_slice::<TokenDesc>(&raw) else {
            return refuse("token description is not JSON");
        };
        if d.expires < now.timestamp() {
            return refuse("token expired");
        }
        if !d.method.eq_ignore_ascii_case(r.method) || d.resource != r.path {
            return refuse("token is for another request");
        }
        if !d.content_type.is_empty() && Some(d.content_type.as_str()) != r.content_type {
            return refuse("token content type differs");
        }
        if !d.content_md5.is_empty() && Some(d.content_md5.as_str()) != r.content_md5 {
            return refuse("token Content-MD5 differs");
        }
        if !d.headers.is_empty() && d.headers != canonical_qiniu_headers(&r.qiniu_headers) {
            return refuse("token headers differ");
        }
        return Ok(());
    }
    let Some(date) = r.date else {
        return refuse("no Date header");
    };
    let Ok(t) = DateTime::parse_from_rfc2822(date) else {
        return refuse("Date is not RFC 1123");
    };
    if (now - t.to_utc()).num_seconds().abs() > DATE_WINDOW_SECS {
        return refuse("Date is more than 15 minutes from the server's clock");
    }
    if !sig_matches(sig, &hmac_sha1(sk, string_to_sign(r).as_bytes())) {
        return refuse("signature mismatch");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Mon, 02 Jan 2006 15:04:05 GMT";

    fn keys() -> Keys {
        Keys::parse(&[pbatch_engine::ServerKey::Pair("AK_EXAMPLE:SK_EXAMPLE".to_string())]).unwrap()
    }

    fn at_date() -> DateTime<Utc> {
        DateTime::parse_from_rfc2822(DATE).unwrap().to_utc()
    }

    /// The vectors of research pandora-api.md §2.1 (produced by the Go SDK).
    #[test]
    fn sdk_signature_vectors() {
        let cases = [
            (
                Request {
                    method: "POST",
                    path: "/v2/datasources/ds1",
                    content_type: Some("application/json"),
                    date: Some(DATE),
                    ..Default::default()
                },
                "POST\n\napplication/json\nMon, 02 Jan 2006 15:04:05 GMT\n/v2/datasources/ds1",
                "UqMfsutbzsZ_N-cebiAwQzU7c0k=",
            ),
            (
                Request {
                    method: "GET",
                    path: "/v2/jobs",
                    date: Some(DATE),
                    ..Default::default()
                },
                "GET\n\n\nMon, 02 Jan 2006 15:04:05 GMT\n/v2/jobs",
                "seJAOmcJDXR9ffaO6uiWy__TcXI=",
            ),
            (
                Request {
                    method: "POST",
                    path: "/v2/batch/actions/rerun",
                    content_type: Some("application/json"),
                    date: Some(DATE),
                    qiniu_headers: vec![("x-qiniu-b", "2"), ("X-Qiniu-A", "1")],
                    ..Default::default()
                },
                "POST\n\napplication/json\nMon, 02 Jan 2006 15:04:05 GMT\n\nx-qiniu-a:1\nx-qiniu-b:2/v2/batch/actions/rerun",
                "kpxLJ5KH4TlfEaReMSe1EDnHKS4=",
            ),
        ];
        for (mut r, sts, sig) in cases {
            assert_eq!(string_to_sign(&r), sts);
            assert_eq!(sign(b"SK_EXAMPLE", sts), sig);
            let header = format!("Pandora AK_EXAMPLE:{sig}");
            r.authorization = Some(&header);
            assert_eq!(verify(&keys(), &r, at_date()), Ok(()));
            // unpadded is accepted; another path, a stale date or another key is not
            let unpadded = format!("Pandora AK_EXAMPLE:{}", sig.trim_end_matches('='));
            r.authorization = Some(&unpadded);
            assert_eq!(verify(&keys(), &r, at_date()), Ok(()));
            r.authorization = Some(&header);
            assert!(verify(&keys(), &r, at_date() + chrono::Duration::minutes(16)).is_err());
            assert!(verify(&keys(), &r, at_date() - chrono::Duration::minutes(16)).is_err());
            assert_eq!(verify(&keys(), &r, at_date() + chrono::Duration::minutes(14)), Ok(()));
            let other = Request {
                path: "/v2/jobs/x",
                ..r.clone()
            };
            assert!(verify(&keys(), &other, at_date()).is_err());
            let wrong_ak = header.replace("AK_EXAMPLE", "AK_OTHER");
            r.authorization = Some(&wrong_ak);
            assert!(verify(&keys(), &r, at_date()).is_err());
        }
    }

    /// The token vector of §2.2.
    #[test]
    fn sdk_token_vector() {
        let token = "Pandora AK_EXAMPLE:xb0IMnv0MODECePxK_0Rzx2j0Z4=:eyJyZXNvdXJjZSI6Ii92Mi9qb2JzL2pvYjEvaGlzdG9yeSIsImV4cGlyZXMiOjQxMDI0NDQ4MDAsImNvbnRlbnRNRDUiOiIiLCJjb250ZW50VHlwZSI6IiIsImhlYWRlcnMiOiIiLCJtZXRob2QiOiJHRVQifQ==";
        let mut r = Request {
            method: "GET",
            path: "/v2/jobs/job1/history",
            authorization: Some(token),
            content_type: Some("application/json"),
            ..Default::default()
        };
        let now = Utc::now();
        assert_eq!(verify(&keys(), &r, now), Ok(()));
        r.method = "DELETE";
        assert!(verify(&keys(), &r, now).is_err(), "a token allows one method");
        r.method = "GET";
        r.path = "/v2/jobs/job2/history";
        assert!(verify(&keys(), &r, now).is_err(), "and one path");
        r.path = "/v2/jobs/job1/history";
        let after = DateTime::from_timestamp(4_102_444_801, 0).unwrap();
        assert!(verify(&keys(), &r, after).is_err(), "expired");
        let tampered = token.replace("xb0I", "xb0J");
        r.authorization = Some(&tampered);
        assert!(verify(&keys(), &r, now).is_err());
    }

    #[test]
    fn malformed_headers_are_refused_not_panicking() {
        for a in [
            "",
            "Pandora",
            "Pandora ",
            "Basic x",
            "Pandora a:b:c:d",
            "Pandora AK_EXAMPLE:",
            "Pandora AK_EXAMPLE:%%%",
        ] {
            let r = Request {
                method: "GET",
                path: "/v2/jobs",
                authorization: Some(a),
                date: Some(DATE),
                ..Default::default()
            };
            assert!(verify(&keys(), &r, at_date()).is_err(), "{a:?}");
        }
        let pair = |p: &str| pbatch_engine::ServerKey::Pair(p.to_string());
        assert!(Keys::parse(&[pair("nocolon")]).is_err());
        assert!(Keys::parse(&[pair(":sk")]).is_err());
    }
}
