//! Helpers for the optimizer rules' tests: a session on a scratch warehouse, a query's
//! physical plan as strata plans it, and results as text.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::physical_plan::ExecutionPlan;

/// A session on a new warehouse in a temporary folder, which lives as long as the guard.
pub(crate) async fn scratch_session() -> (tempfile::TempDir, crate::Session) {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let session = crate::Session::open(&location).await.expect("session");
    (dir, session)
}

/// The physical plan of `query`, after every optimizer rule of the session.
pub(crate) async fn physical_plan(session: &crate::Session, query: &str) -> Arc<dyn ExecutionPlan> {
    session
        .plan_query(query)
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("physical plan")
}

/// The plan as EXPLAIN shows it.
pub(crate) fn shown(plan: &Arc<dyn ExecutionPlan>) -> String {
    datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string()
}

pub(crate) fn pretty(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
