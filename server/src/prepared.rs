//! Prepared statements: their text (with `$n` placeholders) and kind, and the
//! parameters last bound to them, by handle. Each client's session holds its own, so a
//! handle is useless to other clients. Handles are held until the client closes them or
//! its session ends; the oldest are forgotten when there are very many.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use bytes::Bytes;
use tonic::Status;

use crate::statement::Kind;

/// Prepared statements kept at most; past this the oldest are forgotten.
const MAX_PREPARED: usize = 10_000;

/// One prepared statement.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The statement with its placeholders written `$1`, `$2`, ….
    pub sql: String,
    pub kind: Kind,
    /// Parameters bound by the last DoPut, one statement run per row.
    bound: Mutex<Option<RecordBatch>>,
}

impl Prepared {
    pub fn new(sql: String, kind: Kind) -> Self {
        Self {
            sql,
            kind,
            bound: Mutex::new(None),
        }
    }

    pub fn bind(&self, params: Option<RecordBatch>) {
        *self.bound.lock().unwrap_or_else(|p| p.into_inner()) = params;
    }

    pub fn bound(&self) -> Option<RecordBatch> {
        self.bound.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The prepared statements of a client.
#[derive(Debug, Default)]
pub(crate) struct PreparedStatements {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    by_handle: HashMap<Bytes, Arc<Prepared>>,
    order: VecDeque<Bytes>,
}

impl PreparedStatements {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a statement; returns its handle.
    pub fn insert(&self, prepared: Prepared) -> Bytes {
        let handle = Bytes::from(format!("strata-prepared-{}", uuid::Uuid::new_v4().simple()));
        let mut state = self.state();
        state.by_handle.insert(handle.clone(), Arc::new(prepared));
        state.order.push_back(handle.clone());
        while state.by_handle.len() > MAX_PREPARED {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            state.by_handle.remove(&oldest);
        }
        handle
    }

    /// The statement of a handle, or NOT_FOUND.
    pub fn get(&self, handle: &[u8]) -> Result<Arc<Prepared>, Status> {
        self.state().by_handle.get(handle).cloned().ok_or_else(|| {
            Status::not_found(format!(
                "prepared statement '{}' not found: it was closed, or this server did not prepare it; prepare it again",
                String::from_utf8_lossy(handle)
            ))
        })
    }

    /// Forgets a statement.
    pub fn remove(&self, handle: &[u8]) -> Result<(), Status> {
        let mut state = self.state();
        if state.by_handle.remove(handle).is_none() {
            return Err(Status::not_found(format!(
                "prepared statement '{}' not found",
                String::from_utf8_lossy(handle)
            )));
        }
        state.order.retain(|h| h.as_ref() != handle);
        Ok(())
    }
}
