//! Errors of tasks, as strata shows them.
//!
//! Ballista reports a failed task to the scheduler, and the scheduler to the client, as text
//! made with `Debug` (`DataFusionError(Shared(External(BadFile { path: …, line: Some(2), … })))`),
//! from which the error a query would have given in one process cannot be read back. So the
//! executors run their tasks through [`StrataEngine`], which replaces the error of a failed
//! task by strata's [`RemoteError`] for it (the message a query in one process shows),
//! hex-encoded between markers so that no `Debug` escaping changes it on the way; the client
//! finds it in the text the scheduler sends ([`task_error`]). Errors that Ballista acts on (a shuffle
//! fetch that failed, an I/O error it retries) are left as they are.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::JobId;
use ballista_core::error::BallistaError;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use datafusion::arrow::error::ArrowError;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::SessionConfig;
use strata_engine::remote::RemoteError;

const START: &str = "strata-error[";
const END: &str = "]";

/// Ballista's execution engine, whose tasks fail with strata's messages and are reported to
/// `done` when they succeed.
pub(crate) struct StrataEngine {
    inner: DefaultExecutionEngine,
    done: Option<crate::executor::TaskDone>,
}

impl StrataEngine {
    pub(crate) fn new(done: Option<crate::executor::TaskDone>) -> Self {
        Self {
            inner: DefaultExecutionEngine::default(),
            done,
        }
    }
}

impl ExecutionEngine for StrataEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> DFResult<Arc<dyn QueryStageExecutor>> {
        let job = job_id.to_string();
        let inner = self.inner.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(StrataStage {
            inner,
            job,
            stage: stage_id,
            done: self.done.clone(),
        }))
    }
}

/// One task's stage, whose error, if it fails, is strata's message for it.
#[derive(Debug)]
struct StrataStage {
    inner: Arc<dyn QueryStageExecutor>,
    job: String,
    stage: usize,
    done: Option<crate::executor::TaskDone>,
}

impl fmt::Display for StrataStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait]
impl QueryStageExecutor for StrataStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<Vec<ShuffleWritePartition>> {
        let written = self
            .inner
            .execute_query_stage(task_id, context)
            .await
            .map_err(for_the_client)?;
        if let Some(done) = &self.done {
            (done.0)(&format!(
                "task {task_id} of job {} stage {} done",
                self.job, self.stage
            ));
        }
        Ok(written)
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        self.inner.collect_plan_metrics()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> DFResult<Vec<WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}

/// A task's error as the text the client reads back: strata's message, encoded. Errors
/// Ballista acts on stay as they are.
fn for_the_client(e: DataFusionError) -> DataFusionError {
    if ballista_acts_on(&e) {
        return e;
    }
    DataFusionError::Execution(encode(&remote_error(&e).to_text()))
}

/// strata's error for a task's error, seen through the layers Ballista, its shuffles and
/// Arrow wrap around it.
fn remote_error(e: &DataFusionError) -> RemoteError {
    match e {
        DataFusionError::Shared(inner) => remote_error(inner),
        DataFusionError::External(inner) => match inner.downcast_ref::<BallistaError>() {
            Some(BallistaError::DataFusionError(inner)) => remote_error(inner),
            Some(BallistaError::ArrowError(inner)) => RemoteError::of_arrow(inner),
            _ => match inner.downcast_ref::<DataFusionError>() {
                Some(inner) => remote_error(inner),
                None => RemoteError::of(e),
            },
        },
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            ArrowError::ExternalError(ext) => match ext.downcast_ref::<DataFusionError>() {
                Some(inner) => remote_error(inner),
                None => RemoteError::of(e),
            },
            _ => RemoteError::of(e),
        },
        _ => RemoteError::of(e),
    }
}

/// Whether Ballista acts on this error: a shuffle fetch that failed (it runs the stage
/// that wrote the shuffle again) or an I/O error (it retries the task), however deep in
/// the error they are, as Ballista looks for them.
fn ballista_acts_on(e: &DataFusionError) -> bool {
    match e.find_root() {
        DataFusionError::IoError(_) => true,
        DataFusionError::External(inner) => inner
            .downcast_ref::<BallistaError>()
            .is_some_and(ballista_error_acts),
        _ => false,
    }
}

fn ballista_error_acts(e: &BallistaError) -> bool {
    match e {
        BallistaError::FetchFailed(..) | BallistaError::IoError(_) | BallistaError::Cancelled => {
            true
        }
        BallistaError::DataFusionError(inner) => ballista_acts_on(inner),
        _ => false,
    }
}

fn encode(message: &str) -> String {
    use std::fmt::Write;
    let mut text = String::from(START);
    for byte in message.bytes() {
        let _ = write!(text, "{byte:02x}");
    }
    text.push_str(END);
    text
}

/// The error of a failed task in the text a scheduler reports, if a strata executor put
/// one there.
pub(crate) fn task_error(text: &str) -> Option<RemoteError> {
    let (_, rest) = text.split_once(START)?;
    let (hex, _) = rest.split_once(END)?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    RemoteError::from_text(std::str::from_utf8(&bytes).ok()?)
}

/// The message of a gRPC status as Ballista's errors show it (`Status { code: …, message:
/// "…", … }`), unescaped; the text itself when it holds none.
pub(crate) fn status_message(text: &str) -> String {
    let Some((_, rest)) = text.split_once("message: \"") else {
        return text.to_string();
    };
    let mut message = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return message,
            '\\' => match chars.next() {
                Some('n') => message.push('\n'),
                Some('t') => message.push('\t'),
                Some('r') => message.push('\r'),
                Some('0') => message.push('\0'),
                Some('u') => {
                    let code: String = chars
                        .by_ref()
                        .skip_while(|&c| c == '{')
                        .take_while(|&c| c != '}')
                        .collect();
                    if let Some(c) = u32::from_str_radix(&code, 16).ok().and_then(char::from_u32) {
                        message.push(c);
                    }
                }
                Some(other) => message.push(other),
                None => break,
            },
            other => message.push(other),
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_error_is_seen_through_the_layers_around_it() {
        let decoding = || {
            DataFusionError::ArrowError(
                Box::new(ArrowError::ParquetError("snappy: corrupt".into())),
                None,
            )
        };
        let wrapped = DataFusionError::Shared(Arc::new(DataFusionError::External(Box::new(
            BallistaError::DataFusionError(Box::new(DataFusionError::External(Box::new(
                decoding(),
            )))),
        ))));
        assert_eq!(remote_error(&wrapped), RemoteError::of(&decoding()));
        // Ballista turns an Arrow error it meets in a shuffle into one of its own.
        let shuffled = DataFusionError::External(Box::new(BallistaError::ArrowError(Box::new(
            ArrowError::ParquetError("snappy: corrupt".into()),
        ))));
        assert_eq!(remote_error(&shuffled), RemoteError::of(&decoding()));
        let text = RemoteError::of(&decoding()).to_text();
        assert!(
            text.contains("\"undecodable\":\"") && text.contains("snappy: corrupt"),
            "{text}"
        );
    }

    #[test]
    fn a_task_error_survives_debug_formatting() {
        let error = DataFusionError::Execution(
            "cannot read 'a \"b\".ndjson' at line 2: malformed JSON\nnext: ü".into(),
        );
        let sent = RemoteError::of(&error);
        let reported = format!(
            "Job 1 failed: Task failed: {:?}\n",
            for_the_client(DataFusionError::Shared(Arc::new(error)))
        );
        assert_eq!(task_error(&reported), Some(sent));
        assert_eq!(task_error("Job 1 failed: no marker"), None);
    }

    #[test]
    fn status_messages_are_unescaped() {
        let text = r#"Execution error: Status { code: InvalidArgument, message: "Could not parse plan: \"x\"\nnext \u{e9}", metadata: MetadataMap { headers: {} }, source: None }"#;
        assert_eq!(status_message(text), "Could not parse plan: \"x\"\nnext é");
        assert_eq!(status_message("plain"), "plain");
    }
}
