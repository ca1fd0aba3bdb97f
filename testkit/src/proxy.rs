//! [`FaultProxy`]: an HTTP proxy that injects errors, dropped connections and stalls.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::server_thread::ServerThread;

/// Which faults a [`FaultProxy`] injects.
///
/// For every request subject to faults (see `methods`) the proxy draws one number `u` in
/// `[0, 1)` from an RNG seeded with `seed`, and
/// - `u < error_rate`: answers HTTP 503 / 500 (alternating) itself;
/// - else `u < error_rate + drop_rate`: closes the connection without a response;
/// - else `u < error_rate + drop_rate + stall_rate`: waits `stall`, then forwards normally;
/// - else `u < error_rate + drop_rate + stall_rate + truncate_rate`: forwards the request,
///   and answers with the server's status and headers (its `Content-Length` included) but
///   only the first half of the body, then closes the connection: a body cut short, as when
///   a connection is reset mid-transfer. A response with an empty body is forwarded whole;
/// - else forwards normally.
///
/// Errors and drops are decided before forwarding, so such a request never reaches the
/// server. With sequential requests the same seed gives the same faults on every run.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Share of requests answered with HTTP 503 (alternating with 500) without forwarding them.
    pub error_rate: f64,
    /// Share of requests whose connection is closed without forwarding and without a response.
    pub drop_rate: f64,
    /// Share of requests held for `stall` before being forwarded normally.
    pub stall_rate: f64,
    /// How long a stalled request is held.
    pub stall: Duration,
    /// Share of requests whose response body is cut short (see above).
    pub truncate_rate: f64,
    /// Seed of the RNG choosing which requests fail.
    pub seed: u64,
    /// Only requests with these HTTP methods (e.g. `"PUT"`, case-insensitive) are subject to
    /// faults; empty = all methods.
    pub methods: Vec<String>,
}

impl Faults {
    /// No faults: every request is forwarded at once.
    pub fn none() -> Self {
        Faults {
            error_rate: 0.0,
            drop_rate: 0.0,
            stall_rate: 0.0,
            stall: Duration::ZERO,
            truncate_rate: 0.0,
            seed: 0,
            methods: Vec::new(),
        }
    }

    fn applies_to(&self, method: &Method) -> bool {
        self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method.as_str()))
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

/// Counters of a [`FaultProxy`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests received (faulted or not).
    pub requests: u64,
    /// Requests answered with an injected 503 / 500.
    pub errors: u64,
    /// Requests whose connection was closed without a response.
    pub drops: u64,
    /// Requests held for [`Faults::stall`] before being forwarded.
    pub stalls: u64,
    /// Responses whose body was cut short.
    pub truncations: u64,
}

/// An HTTP/1.1 (and h2c) proxy on `127.0.0.1` that forwards requests to an upstream server,
/// injecting the faults described by [`Faults`].
///
/// Forwarded requests keep their method, path, query, headers (including the original `Host`,
/// which SigV4 signatures cover) and body byte for byte; hop-by-hop headers (`Connection`,
/// `Transfer-Encoding`, ...) are not forwarded. Bodies are buffered in memory. If the
/// upstream cannot be reached the proxy answers 502.
///
/// Runs on its own thread and runtime like [`crate::S3Server`]; dropping it stops it.
pub struct FaultProxy {
    state: Arc<ProxyState>,
    thread: ServerThread,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint())
            .field("upstream", &self.state.upstream)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (port chosen by the OS) forwarding to `upstream`
    /// (`"http://127.0.0.1:PORT"`), injecting `faults`. Returns once the listener is bound.
    ///
    /// # Errors
    /// If `upstream` is not an `http://host:port` URL, or binding the socket or starting the
    /// runtime fails.
    pub fn start(upstream: &str, faults: Faults) -> io::Result<FaultProxy> {
        let upstream = parse_upstream(upstream)?;
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let state = Arc::new(ProxyState {
            upstream,
            client,
            faults: Mutex::new(FaultState::new(faults)),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            truncations: AtomicU64::new(0),
            lost_responses: Mutex::new(Vec::new()),
        });

        let conn_state = Arc::clone(&state);
        let thread = ServerThread::spawn("strata-fault-proxy", 0, move |stream| {
            let state = Arc::clone(&conn_state);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let state = Arc::clone(&state);
                    async move { state.handle(req).await }
                });
                // An injected drop ends the connection with an error: expected.
                let _ = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        })?;
        Ok(FaultProxy { state, thread })
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        self.thread.endpoint()
    }

    /// Replaces the faults (e.g. none while setting up, then faults on). The RNG is re-seeded
    /// with `faults.seed`, so what follows is reproducible on its own.
    pub fn set_faults(&self, faults: Faults) {
        *self.state.lock_faults() = FaultState::new(faults);
    }

    /// Makes the next `times` requests with `method` whose path contains `path_contains` be
    /// forwarded (the server acts on them) and then have their connection closed without the
    /// response: the client cannot tell whether the request took effect. Independent of
    /// [`Faults`]; counted as drops.
    pub fn lose_responses(&self, method: &str, path_contains: &str, times: u64) {
        self.state.lock_lost().push((
            method.to_ascii_uppercase(),
            path_contains.to_string(),
            times,
        ));
    }

    /// How many responses [`FaultProxy::lose_responses`] asked for are still to be lost.
    pub fn responses_to_lose(&self) -> u64 {
        self.state.lock_lost().iter().map(|(_, _, n)| n).sum()
    }

    /// Counters since the proxy started.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            requests: self.state.requests.load(Ordering::Relaxed),
            errors: self.state.errors.load(Ordering::Relaxed),
            drops: self.state.drops.load(Ordering::Relaxed),
            stalls: self.state.stalls.load(Ordering::Relaxed),
            truncations: self.state.truncations.load(Ordering::Relaxed),
        }
    }
}

/// An `http://127.0.0.1:PORT` where nothing listens: connecting is refused at once.
///
/// The port was free a moment ago (bound and released), so another process taking it in
/// between is unlikely but possible.
pub fn closed_endpoint() -> String {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        // Port 1 (tcpmux) is practically never served.
        .unwrap_or(1);
    format!("http://127.0.0.1:{port}")
}

struct FaultState {
    faults: Faults,
    rng: StdRng,
}

impl FaultState {
    fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        FaultState { faults, rng }
    }
}

enum Action {
    Forward,
    Error,
    Drop,
    Stall(Duration),
    Truncate,
}

struct ProxyState {
    /// `http://host:port` without a trailing slash.
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Mutex<FaultState>,
    requests: AtomicU64,
    errors: AtomicU64,
    drops: AtomicU64,
    stalls: AtomicU64,
    truncations: AtomicU64,
    /// (method, path substring, how many more) of responses to lose after forwarding.
    lost_responses: Mutex<Vec<(String, String, u64)>>,
}

/// The proxy's response body: whole, or cut short with an error that makes hyper close the
/// connection before the promised length.
type ProxyBody = BoxBody<Bytes, DroppedConnection>;

fn whole(body: Bytes) -> ProxyBody {
    Full::new(body).map_err(|never| match never {}).boxed()
}

fn cut_short(body: Bytes) -> ProxyBody {
    let half = body.slice(..body.len() / 2);
    let frames = futures::stream::iter([
        Ok(Frame::data(half)),
        Err(DroppedConnection("injected truncation")),
    ]);
    StreamBody::new(frames).boxed()
}

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug)]
struct DroppedConnection(&'static str);

impl fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection dropped: {}", self.0)
    }
}

impl std::error::Error for DroppedConnection {}

impl ProxyState {
    fn lock_faults(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // The state stays consistent even if a holder panicked.
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_lost(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, u64)>> {
        self.lost_responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this request's response is to be lost (and counts it off).
    fn lose_response(&self, method: &Method, path: &str) -> bool {
        let mut lost = self.lock_lost();
        for (m, p, n) in lost.iter_mut() {
            if *n > 0 && m == method.as_str() && path.contains(p.as_str()) {
                *n -= 1;
                return true;
            }
        }
        false
    }

    fn decide(&self, method: &Method) -> Action {
        let mut state = self.lock_faults();
        if !state.faults.applies_to(method) {
            return Action::Forward;
        }
        let u: f64 = state.rng.random();
        let f = &state.faults;
        if u < f.error_rate {
            Action::Error
        } else if u < f.error_rate + f.drop_rate {
            Action::Drop
        } else if u < f.error_rate + f.drop_rate + f.stall_rate {
            Action::Stall(f.stall)
        } else if u < f.error_rate + f.drop_rate + f.stall_rate + f.truncate_rate {
            Action::Truncate
        } else {
            Action::Forward
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, DroppedConnection> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        // Read the whole request first: the decision and the forwarded request do not depend
        // on how the client paced its upload, and a dropped connection is closed cleanly
        // (the client sees "connection closed before message completed", not a reset while
        // it is still sending).
        let body = body
            .collect()
            .await
            .map_err(|_| DroppedConnection("client request body incomplete"))?
            .to_bytes();

        match self.decide(&parts.method) {
            Action::Forward => {}
            Action::Error => {
                let n = self.errors.fetch_add(1, Ordering::Relaxed);
                let (status, code) = if n.is_multiple_of(2) {
                    (StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
                };
                return Ok(error_response(status, code).map(whole));
            }
            Action::Drop => {
                self.drops.fetch_add(1, Ordering::Relaxed);
                return Err(DroppedConnection("injected fault"));
            }
            Action::Stall(stall) => {
                self.stalls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(stall).await;
            }
            Action::Truncate => {
                let response = self.forward(parts, body).await;
                if response.body().is_empty() {
                    return Ok(response.map(whole));
                }
                self.truncations.fetch_add(1, Ordering::Relaxed);
                let (mut parts, body) = response.into_parts();
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                return Ok(Response::from_parts(parts, cut_short(body)));
            }
        }
        let lose = self.lose_response(&parts.method, parts.uri.path());
        let response = self.forward(parts, body).await;
        if lose {
            self.drops.fetch_add(1, Ordering::Relaxed);
            return Err(DroppedConnection("response lost after forwarding"));
        }
        Ok(response.map(whole))
    }

    async fn forward(&self, parts: hyper::http::request::Parts, body: Bytes) -> Response<Bytes> {
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let uri: Uri = match format!("{}{path_and_query}", self.upstream).parse() {
            Ok(uri) => uri,
            Err(e) => return bad_gateway(&format!("cannot build upstream URI: {e}")),
        };

        let mut headers = parts.headers;
        // HTTP/2 clients send the authority instead of a Host header; SigV4 signed it as Host.
        if !headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
            && let Ok(value) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, value);
        }
        remove_hop_by_hop(&mut headers);

        let mut upstream_req = Request::new(Full::new(body));
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.headers_mut() = headers;

        let resp = match self.client.request(upstream_req).await {
            Ok(resp) => resp,
            Err(e) => return bad_gateway(&format!("upstream request failed: {e}")),
        };
        let (mut parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return bad_gateway(&format!("upstream response body failed: {e}")),
        };
        remove_hop_by_hop(&mut parts.headers);
        Response::from_parts(parts, body)
    }
}

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1).
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

fn error_response(status: StatusCode, code: &str) -> Response<Bytes> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Error><Code>{code}</Code><Message>fault injected by strata-testkit FaultProxy</Message></Error>"
    );
    xml_response(status, body)
}

fn bad_gateway(message: &str) -> Response<Bytes> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Error><Code>BadGateway</Code><Message>strata-testkit FaultProxy: {message}</Message></Error>"
    );
    xml_response(StatusCode::BAD_GATEWAY, body)
}

fn xml_response(status: StatusCode, body: String) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

/// Validates `http://host:port` and returns it without a trailing slash.
fn parse_upstream(upstream: &str) -> io::Result<String> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("upstream {upstream:?} {why}; expected http://HOST:PORT"),
        )
    };
    let uri: Uri = upstream.parse().map_err(|_| invalid("is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("is not an http:// URL"));
    }
    let authority = uri.authority().ok_or_else(|| invalid("has no host"))?;
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(invalid("has a path"));
    }
    Ok(format!("http://{authority}"))
}
