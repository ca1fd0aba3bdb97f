//! Failpoints: named steps of a write at which a test can make the process die, to check
//! that a kill at that moment loses nothing and leaves every table reading right.
//!
//! `STRATA_FAILPOINT=<name>` aborts the process (no unwinding, no cleanup, as `kill -9`
//! would) the first time the write reaches the step of that name. Unset, a failpoint costs
//! one load of a cached value. The names:
//!
//! | name | where |
//! |---|---|
//! | `after_data_files` | a Parquet write's files are staged, nothing is moved or committed |
//! | `during_swap` | half of a Parquet write's staged files are moved into the table's folder |
//! | `before_catalog_commit` | every file is in place, the catalog commit is next |
//! | `after_catalog_commit` | the catalog commit landed; the replaced files are not removed yet |
//! | `before_delta_commit` | a Delta write's data files are written, its commit is next |
//! | `after_delta_commit` | a Delta commit landed; for CREATE TABLE the catalog commit is next |

use std::sync::OnceLock;

/// The environment variable naming the failpoint to fire.
pub const ENV: &str = "STRATA_FAILPOINT";

/// Every failpoint, for tests and `--help`-like listings.
pub const NAMES: [&str; 6] = [
    "after_data_files",
    "during_swap",
    "before_catalog_commit",
    "after_catalog_commit",
    "before_delta_commit",
    "after_delta_commit",
];

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Aborts the process if `STRATA_FAILPOINT` names this step.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("strata: failpoint {name} reached; aborting");
        std::process::abort();
    }
}
