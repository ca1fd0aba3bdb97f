//! Clients and their sessions. Each client of the server gets its own engine session, forked
//! from the server's (see `Session::fork`): its own `USE` zone, `SET` settings and storage
//! counters, over the same warehouse, stores and memory pool. With it go the client's
//! tickets and prepared statements, which no other client can use.
//!
//! A client is named, in this order, by the bearer token its handshake handed out, by the
//! `strata_session` cookie the server set on an earlier response (ADBC's and JDBC's cookie
//! middleware send it back), or by its connection (one gRPC channel is one connection). A
//! client named by its connection is given the cookie too, so that it keeps its session on
//! other connections if it sends the cookie back. Sessions idle for longer than the
//! server's idle time are dropped, with their tickets and prepared statements; so is a
//! session named only by its connection when that connection closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_engine::Session;
use tonic::Status;

use crate::prepared::PreparedStatements;
use crate::ticket::Tickets;

/// The cookie that names a client's session.
pub(crate) const COOKIE: &str = "strata_session";

/// Idle sessions are looked for at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Sessions kept at most; past this, opening one ends the least recently used, so that
/// clients opening sessions in a loop cannot grow the server without bound.
const MAX_CLIENTS: usize = 4096;

/// 128 random bits as hex: session tokens, cookies and ticket ids.
pub(crate) fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One client: its session, tickets and prepared statements.
pub(crate) struct Client {
    pub session: Session,
    pub tickets: Tickets,
    pub prepared: PreparedStatements,
    /// The value of the cookie that names this client.
    cookie: String,
    /// Whether a call has sent the cookie back (the client then keeps its session when its
    /// first connection closes).
    cookie_sent: std::sync::atomic::AtomicBool,
    last_used: Mutex<Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client { .. }")
    }
}

impl Client {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*self.last_used.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A connection's number, unique for the life of the server; tonic hands it to every call
/// made on the connection (see `lib.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionId(pub u64);

impl ConnectionId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// What names the client of a call, from its headers and connection.
#[derive(Debug, Default)]
pub(crate) struct Naming<'a> {
    /// A bearer token that is not the server's own token.
    pub bearer: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub connection: Option<ConnectionId>,
}

/// The clients of a server, by the keys that name them (`token:…`, `cookie:…`,
/// `connection:…`; one client may have several).
pub(crate) struct Sessions {
    base: Arc<Session>,
    idle: Duration,
    ticket_expiry: Duration,
    state: Mutex<State>,
}

struct State {
    by_key: HashMap<String, Arc<Client>>,
    last_sweep: Instant,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("idle", &self.idle)
            .field("ticket_expiry", &self.ticket_expiry)
            .finish_non_exhaustive()
    }
}

fn token_key(token: &str) -> String {
    format!("token:{token}")
}

fn cookie_key(cookie: &str) -> String {
    format!("cookie:{cookie}")
}

fn connection_key(connection: ConnectionId) -> String {
    format!("connection:{}", connection.0)
}

impl Sessions {
    pub fn new(base: Arc<Session>, idle: Duration, ticket_expiry: Duration) -> Self {
        Self {
            base,
            idle,
            ticket_expiry,
            state: Mutex::new(State {
                by_key: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// The server's own session, which clients' sessions are forked from.
    pub fn base(&self) -> &Session {
        &self.base
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_client(&self) -> Result<Arc<Client>, Status> {
        let session = self
            .base
            .fork()
            .map_err(|e| Status::internal(format!("cannot open a session for this client: {e}")))?;
        Ok(Arc::new(Client {
            session,
            tickets: Tickets::new(self.ticket_expiry),
            prepared: PreparedStatements::default(),
            cookie: random_id(),
            cookie_sent: std::sync::atomic::AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
        }))
    }

    /// A live client under a key; an idle one is dropped instead.
    fn live(&self, state: &mut State, key: &str, now: Instant) -> Option<Arc<Client>> {
        let client = state.by_key.get(key)?;
        if client.idle_for(now) > self.idle {
            let client = Arc::clone(client);
            state.by_key.retain(|_, c| !Arc::ptr_eq(c, &client));
            return None;
        }
        client.touch();
        Some(Arc::clone(client))
    }

    /// Makes room for one more client: ends the least recently used while there are
    /// [`MAX_CLIENTS`] or more.
    fn make_room(state: &mut State, now: Instant) {
        // Every client has a key or two: fewer keys than the cap, fewer clients.
        while state.by_key.len() >= MAX_CLIENTS {
            let mut clients: Vec<&Arc<Client>> = state.by_key.values().collect();
            clients.sort_by_key(|c| Arc::as_ptr(c) as usize);
            clients.dedup_by(|a, b| Arc::ptr_eq(a, b));
            if clients.len() < MAX_CLIENTS {
                return;
            }
            let Some(oldest) = clients.into_iter().max_by_key(|c| c.idle_for(now)).cloned() else {
                return;
            };
            state.by_key.retain(|_, c| !Arc::ptr_eq(c, &oldest));
        }
    }

    /// Drops the sessions idle for too long, now and then.
    fn sweep(&self, state: &mut State, now: Instant) {
        if now.saturating_duration_since(state.last_sweep) < SWEEP_EVERY.min(self.idle) {
            return;
        }
        state.last_sweep = now;
        state.by_key.retain(|_, c| c.idle_for(now) <= self.idle);
    }

    /// A new session named by a fresh bearer token, which the handshake hands out.
    pub fn open_with_token(&self) -> Result<String, Status> {
        let client = self.new_client()?;
        let token = random_id();
        let mut state = self.state();
        Self::make_room(&mut state, Instant::now());
        state.by_key.insert(token_key(&token), client);
        Ok(token)
    }

    /// Whether a bearer token names a live session.
    pub fn knows_token(&self, token: &str) -> bool {
        let mut state = self.state();
        self.live(&mut state, &token_key(token), Instant::now())
            .is_some()
    }

    /// The client a call comes from, and the cookie to set on the response, if the call
    /// did not carry it. Made on the first call of a connection that names no session.
    pub fn resolve(&self, naming: &Naming<'_>) -> Result<(Arc<Client>, Option<String>), Status> {
        let now = Instant::now();
        let mut state = self.state();
        self.sweep(&mut state, now);
        if let Some(token) = naming.bearer
            && let Some(client) = self.live(&mut state, &token_key(token), now)
        {
            return Ok((client, None));
        }
        if let Some(cookie) = naming.cookie
            && let Some(client) = self.live(&mut state, &cookie_key(cookie), now)
        {
            client.cookie_sent.store(true, Ordering::Relaxed);
            return Ok((client, None));
        }
        let connection = naming.connection.ok_or_else(|| {
            Status::internal("the call names no session and came on no known connection")
        })?;
        let key = connection_key(connection);
        let client = match self.live(&mut state, &key, now) {
            Some(client) => client,
            None => {
                let client = self.new_client()?;
                Self::make_room(&mut state, now);
                state.by_key.insert(key, Arc::clone(&client));
                state
                    .by_key
                    .insert(cookie_key(&client.cookie), Arc::clone(&client));
                client
            }
        };
        let cookie = format!("{COOKIE}={}; Path=/; HttpOnly", client.cookie);
        Ok((client, Some(cookie)))
    }

    /// A connection closed: the session it named is forgotten under its connection (it
    /// lives on under its cookie, if the client sends that).
    pub fn connection_closed(&self, connection: ConnectionId) {
        let key = connection_key(connection);
        let mut state = self.state();
        if let Some(client) = state.by_key.remove(&key) {
            // A cookie never sent back names the connection's client only: it goes too.
            if !client.cookie_sent.load(Ordering::Relaxed) {
                state.by_key.remove(&cookie_key(&client.cookie));
            }
        }
    }

    /// Ends a client's session (CloseSession): its tickets and prepared statements go.
    pub fn close(&self, client: &Arc<Client>) {
        self.state().by_key.retain(|_, c| !Arc::ptr_eq(c, client));
    }
}
