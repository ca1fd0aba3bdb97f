//! Authentication and client identity, settled before a call reaches the service so that
//! no method can forget them.
//!
//! - The handshake checks credentials (with a configured token, a password or bearer
//!   token equal to it) and hands back a fresh session token: `authorization: Bearer
//!   <session token>` on later calls both authorizes them and names the client's session.
//! - With a configured token, every other call must carry it or a live session token.
//!   Clients that send the server's token directly keep working.
//! - Every call but the handshake is given its client (see `sessions`): by session token,
//!   by the `strata_session` cookie, or by its connection, in which case the response sets
//!   the cookie. The service finds the client in the request's extensions.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_flight::HandshakeResponse;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use futures::Stream;
use futures::future::BoxFuture;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::server::TlsConnectInfo;
use tonic::{Response, Status};

use crate::sessions::{COOKIE, Client, ConnectionId, Naming, Sessions};

/// The gRPC path of the handshake, the one call that may come without a bearer token.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// The handshake's response stream.
pub(crate) type HandshakeStream =
    Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// The token clients must present, if any, and the clients' sessions.
#[derive(Clone, Debug)]
pub(crate) struct Auth {
    token: Option<Arc<str>>,
    sessions: Arc<Sessions>,
}

impl Auth {
    pub fn new(token: Option<String>, sessions: Arc<Sessions>) -> Self {
        Self {
            token: token.map(Arc::from),
            sessions,
        }
    }

    /// Answers a handshake. With a configured token, the basic credentials' password (any
    /// user name) or a bearer token must be that token (or a live session token); without
    /// one, any credentials are accepted. Either way a new session is opened, and its token
    /// handed back as the bearer token for later calls.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<Response<HandshakeStream>, Status> {
        let header = metadata
            .get("authorization")
            .map(|v| v.to_str().map(str::trim))
            .transpose()
            .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
        if let Some(expected) = &self.token {
            let offered = match header {
                Some(h) if starts_with_ignore_case(h, "Basic ") => basic_password(&h[6..])
                    .ok_or_else(|| {
                        Status::unauthenticated(
                            "the Basic credentials are not base64 of user:password",
                        )
                    })?,
                Some(h) if starts_with_ignore_case(h, "Bearer ") => h[7..].trim().to_string(),
                _ => {
                    return Err(Status::unauthenticated(
                        "this server needs credentials: a password (the server's token) with any user name, or an authorization: Bearer header",
                    ));
                }
            };
            if !same(offered.as_bytes(), expected.as_bytes())
                && !self.sessions.knows_token(&offered)
            {
                return Err(Status::unauthenticated("wrong credentials"));
            }
        }
        let token = self.sessions.open_with_token()?;
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("the token cannot be sent in a header"))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let stream: HandshakeStream = Box::pin(futures::stream::iter([Ok(reply)]));
        let mut response = Response::new(stream);
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    /// The client of a call, and the cookie to set on its response; UNAUTHENTICATED when
    /// a token is configured and the call carries neither it nor a live session token.
    fn identify(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<(Arc<Client>, Option<String>), Status> {
        let bearers = bearer_tokens(headers);
        let is_server_token = |t: &str| {
            self.token
                .as_ref()
                .is_some_and(|expected| same(t.as_bytes(), expected.as_bytes()))
        };
        let bearer = bearers.iter().copied().find(|t| !is_server_token(t));
        if self.token.is_some()
            && !bearers.iter().any(|t| is_server_token(t))
            && !bearer.is_some_and(|t| self.sessions.knows_token(t))
        {
            return Err(Status::unauthenticated(
                "missing, wrong or expired token: send authorization: Bearer <token>, or handshake with the token as password first (again, if the session expired)",
            ));
        }
        let connection = extensions.get::<ConnectionId>().copied().or_else(|| {
            extensions
                .get::<TlsConnectInfo<ConnectionId>>()
                .map(|info| *info.get_ref())
        });
        self.sessions.resolve(&Naming {
            bearer,
            cookie: session_cookie(headers),
            connection,
        })
    }

    /// The layer that checks tokens and names each call's client.
    pub fn layer(&self) -> IdentifyLayer {
        IdentifyLayer { auth: self.clone() }
    }
}

/// The bearer tokens of a call's `authorization` headers.
fn bearer_tokens(headers: &http::HeaderMap) -> Vec<&str> {
    headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| starts_with_ignore_case(v, "Bearer "))
        .map(|v| v[7..].trim())
        .collect()
}

/// The value of the `strata_session` cookie, if a call sends it.
fn session_cookie(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The password of `base64(user:password)`, padded or not (Go's Flight client leaves the
/// padding out).
fn basic_password(encoded: &str) -> Option<String> {
    let unpadded = encoded.trim().trim_end_matches('=');
    let decoded = STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_string())
}

/// Compares in time that does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A tower layer checking the token of every call but the handshake, and putting the
/// call's client into its extensions.
#[derive(Clone, Debug)]
pub(crate) struct IdentifyLayer {
    auth: Auth,
}

impl<S> tower::Layer<S> for IdentifyLayer {
    type Service = Identify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Identify {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`IdentifyLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Identify<S> {
    inner: S,
    auth: Auth,
}

impl<S, B> tower::Service<http::Request<B>> for Identify<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if request.uri().path() == HANDSHAKE_PATH {
            return Box::pin(self.inner.call(request));
        }
        match self.auth.identify(request.headers(), request.extensions()) {
            Err(status) => Box::pin(futures::future::ready(Ok(status.into_http()))),
            Ok((client, cookie)) => {
                request.extensions_mut().insert(client);
                let response = self.inner.call(request);
                let cookie = cookie.and_then(|c| http::HeaderValue::try_from(c).ok());
                Box::pin(async move {
                    let mut response = response.await?;
                    if let Some(cookie) = cookie {
                        response
                            .headers_mut()
                            .append(http::header::SET_COOKIE, cookie);
                    }
                    Ok(response)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secrets"));
        assert_eq!(basic_password("dXNlcjpwYTpzcw==").as_deref(), Some("pa:ss"));
        assert_eq!(basic_password("dXNlcjpwYTpzcw").as_deref(), Some("pa:ss"));
    }

    #[test]
    fn reads_bearers_and_the_session_cookie() {
        let mut headers = http::HeaderMap::new();
        assert!(bearer_tokens(&headers).is_empty());
        assert_eq!(session_cookie(&headers), None);
        headers.append(
            http::header::AUTHORIZATION,
            "bearer  t0ken ".parse().expect("header"),
        );
        headers.append(
            http::header::AUTHORIZATION,
            "Basic dXNlcjpwYTpzcw==".parse().expect("header"),
        );
        assert_eq!(bearer_tokens(&headers), vec!["t0ken"]);
        headers.append(
            http::header::COOKIE,
            "a=1; strata_session=abc ; b=2".parse().expect("header"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
    }
}
