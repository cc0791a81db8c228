//! Named fault points of the commit, for crash tests.
//!
//! With the `failpoints` feature (tests turn it on), `PBATCH_FAILPOINTS`
//! names points and what happens there, `;`-separated, read once at the
//! first commit: `commit.after_point=return` aborts the process right after
//! the commit point; `commit.after_file=return(2)` aborts after the second
//! file of an export; `commit.after_file=sleep(3000)` waits 3 s after each
//! file. Any `fail` crate action works; `return` means abort. Without the
//! feature every point compiles to nothing.
//!
//! Points, in the order a commit meets them:
//! - `commit.before_point`: everything staged and synced, journal not yet written;
//! - `commit.after_point`: the journal is durable, nothing moved yet;
//! - `commit.after_file`: after each file of an export (`return(k)`: after the k-th);
//! - `commit.before_manifest`: an export's files and deletions done, its `_SUCCESS` not written;
//! - `commit.between_exports`: one export whole, the next not begun.

/// Reads `PBATCH_FAILPOINTS` once.
#[cfg(feature = "failpoints")]
pub(crate) fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(spec) = std::env::var("PBATCH_FAILPOINTS") else {
            return;
        };
        for item in spec.split(';').filter(|s| !s.trim().is_empty()) {
            let Some((name, action)) = item.split_once('=') else {
                tracing::warn!(item, "PBATCH_FAILPOINTS: expected name=action");
                continue;
            };
            if let Err(e) = fail::cfg(name.trim(), action.trim()) {
                tracing::warn!(item, error = %e, "PBATCH_FAILPOINTS: bad action");
            }
        }
    });
}

#[cfg(not(feature = "failpoints"))]
pub(crate) fn setup() {}

/// A named point, met for the `n`-th time in its scope (the n-th file of
/// an export, the n-th export). `return` aborts the process there;
/// `return(k)` aborts only when `n == k`.
#[cfg(feature = "failpoints")]
pub(crate) fn point(name: &str, n: usize) {
    if let Some(arg) = fail::eval(name, |arg| arg) {
        let k = arg.and_then(|a| a.trim().parse::<usize>().ok()).unwrap_or(n);
        if n == k {
            tracing::error!(point = name, n, "fault injected: aborting");
            std::process::abort()
        }
    }
}

#[cfg(not(feature = "failpoints"))]
pub(crate) fn point(_name: &str, _n: usize) {}
