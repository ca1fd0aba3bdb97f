//! The queries being streamed and the statements being run, by ticket id, so that
//! CancelFlightInfo and CancelQuery (and shutting down) can stop them. A query leaves the
//! registry when its stream is dropped: when it ends, fails, is cancelled, or its client
//! goes away. Dropping the stream drops DataFusion's, which stops the query's work; a
//! statement stops the same way, by its run being dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use futures::stream::BoxStream;
use futures::{Future, Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;

/// Tickets cancelled before their DoGet began are remembered, up to this many.
const REMEMBERED_CANCELLATIONS: usize = 4096;

/// The running queries of a server. Cloning shares the registry.
#[derive(Clone, Debug, Default)]
pub struct RunningQueries {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// The number of running queries, for waiting until there are none.
    count: watch::Sender<usize>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            count: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// By ticket id, then by fetch: a ticket may be fetched more than once at a time.
    running: HashMap<String, HashMap<u64, CancellationToken>>,
    fetches: u64,
    cancelled: HashSet<String>,
    cancelled_order: VecDeque<String>,
    shutting_down: bool,
}

impl State {
    fn count(&self) -> usize {
        self.running.values().map(HashMap::len).sum()
    }
}

/// What cancelling a ticket did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// The query was running and is stopping.
    Running,
    /// The query was not running; its ticket will not run.
    NotStarted,
}

impl RunningQueries {
    /// How many queries are being streamed (or statements run) now.
    pub fn count(&self) -> usize {
        *self.inner.count.borrow()
    }

    /// Waits until no query is being streamed.
    pub async fn idle(&self) {
        let mut receiver = self.inner.count.subscribe();
        // An error means the sender is gone, which it cannot be while `self` holds it.
        let _ = receiver.wait_for(|n| *n == 0).await;
    }

    /// Waits until at least `n` queries or statements are running.
    pub async fn at_least(&self, n: usize) {
        let mut receiver = self.inner.count.subscribe();
        let _ = receiver.wait_for(|running| *running >= n).await;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a query about to stream; refused if its ticket was cancelled already or
    /// the server is shutting down.
    pub(crate) fn start(&self, id: &str) -> Result<Registration, Status> {
        let token = CancellationToken::new();
        let fetch = {
            let mut state = self.state();
            if state.shutting_down {
                return Err(Status::unavailable("the server is shutting down"));
            }
            if state.cancelled.contains(id) {
                return Err(Status::cancelled("query cancelled"));
            }
            state.fetches += 1;
            let fetch = state.fetches;
            state
                .running
                .entry(id.to_string())
                .or_default()
                .insert(fetch, token.clone());
            self.inner.count.send_replace(state.count());
            fetch
        };
        Ok(Registration {
            queries: self.clone(),
            id: id.to_string(),
            fetch,
            token,
        })
    }

    /// Cancels the query of a ticket, running or not yet started.
    pub(crate) fn cancel(&self, id: &str) -> Cancelled {
        let mut state = self.state();
        if let Some(fetches) = state.running.get(id) {
            fetches.values().for_each(CancellationToken::cancel);
            return Cancelled::Running;
        }
        if state.cancelled.insert(id.to_string()) {
            state.cancelled_order.push_back(id.to_string());
            if state.cancelled_order.len() > REMEMBERED_CANCELLATIONS
                && let Some(oldest) = state.cancelled_order.pop_front()
            {
                state.cancelled.remove(&oldest);
            }
        }
        Cancelled::NotStarted
    }

    /// Cancels every running query and refuses new ones: the server is going down.
    pub(crate) fn shut_down(&self) {
        let mut state = self.state();
        state.shutting_down = true;
        for fetches in state.running.values() {
            fetches.values().for_each(CancellationToken::cancel);
        }
    }

    fn finish(&self, id: &str, fetch: u64) {
        let mut state = self.state();
        if let Some(fetches) = state.running.get_mut(id) {
            fetches.remove(&fetch);
            if fetches.is_empty() {
                state.running.remove(id);
            }
        }
        self.inner.count.send_replace(state.count());
    }
}

/// A query's place in the registry; it leaves when this is dropped.
pub(crate) struct Registration {
    queries: RunningQueries,
    id: String,
    fetch: u64,
    token: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.queries.finish(&self.id, self.fetch);
    }
}

impl Registration {
    /// Completes when the query or statement is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// The query's batches, ending with CANCELLED when the query is cancelled; the inner
    /// stream is dropped at once then.
    pub(crate) fn guard(
        self,
        inner: BoxStream<'static, Result<RecordBatch, FlightError>>,
    ) -> CancellableStream {
        let cancelled = Box::pin(self.token.clone().cancelled_owned());
        CancellableStream {
            inner: Some(inner),
            cancelled,
            _registration: self,
        }
    }
}

/// A query's batches that stop when the query is cancelled.
pub(crate) struct CancellableStream {
    inner: Option<BoxStream<'static, Result<RecordBatch, FlightError>>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Dropped with the stream, which takes the query out of the registry.
    _registration: Registration,
}

impl Stream for CancellableStream {
    type Item = Result<RecordBatch, FlightError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.cancelled.as_mut().poll(cx).is_ready() {
            // Dropping DataFusion's stream stops the query's tasks.
            this.inner = None;
            return Poll::Ready(Some(Err(FlightError::Tonic(Box::new(Status::cancelled(
                "query cancelled",
            ))))));
        }
        match inner.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ticket fetched twice at once is two running queries; cancelling the ticket stops
    /// both, and each leaves when its stream goes.
    #[test]
    fn a_ticket_fetched_twice() {
        let queries = RunningQueries::default();
        let first = queries.start("t").expect("first");
        let second = queries.start("t").expect("second");
        assert_eq!(queries.count(), 2);
        assert_eq!(queries.cancel("t"), Cancelled::Running);
        assert!(first.token.is_cancelled() && second.token.is_cancelled());
        drop(first);
        assert_eq!(queries.count(), 1);
        drop(second);
        assert_eq!(queries.count(), 0);
        // Cancelled before its fetch: the fetch is refused.
        assert_eq!(queries.cancel("u"), Cancelled::NotStarted);
        assert!(queries.start("u").is_err());
        queries.shut_down();
        assert!(queries.start("v").is_err());
    }
}
