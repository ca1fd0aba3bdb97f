//! Authentication: the Flight handshake (basic credentials in, a bearer token out) and,
//! with a configured token, a check of `authorization: Bearer <token>` on every other call,
//! made before the call reaches the service so that no method can forget it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_flight::HandshakeResponse;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use futures::Stream;
use futures::future::{Either, Ready, ready};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Response, Status};

/// The gRPC path of the handshake, the one call that may come without a bearer token.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// The handshake's response stream.
pub(crate) type HandshakeStream =
    Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// The token clients must present, if any.
#[derive(Clone, Debug, Default)]
pub(crate) struct Auth {
    token: Option<Arc<str>>,
}

impl Auth {
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(Arc::from),
        }
    }

    /// Answers a handshake. With a configured token, the basic credentials' password (any
    /// user name) or a bearer token must be that token, and the token is handed back; without
    /// one, any credentials are accepted and a fresh token, checked by nobody, is returned.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<Response<HandshakeStream>, Status> {
        let header = metadata
            .get("authorization")
            .map(|v| v.to_str().map(str::trim))
            .transpose()
            .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
        let token = match &self.token {
            Some(expected) => {
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
                if !same(offered.as_bytes(), expected.as_bytes()) {
                    return Err(Status::unauthenticated("wrong credentials"));
                }
                expected.to_string()
            }
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
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

    /// Whether a call's headers carry the configured token (always, without one).
    fn allows(&self, headers: &http::HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| starts_with_ignore_case(v, "Bearer "))
            .any(|v| same(v[7..].trim().as_bytes(), expected.as_bytes()))
    }

    /// The layer that refuses calls without the token.
    pub fn layer(&self) -> RequireTokenLayer {
        RequireTokenLayer { auth: self.clone() }
    }
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

/// A tower layer checking the bearer token of every call but the handshake.
#[derive(Clone, Debug)]
pub(crate) struct RequireTokenLayer {
    auth: Auth,
}

impl<S> tower::Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`RequireTokenLayer`].
#[derive(Clone, Debug)]
pub(crate) struct RequireToken<S> {
    inner: S,
    auth: Auth,
}

impl<S, B> tower::Service<http::Request<B>> for RequireToken<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() == HANDSHAKE_PATH || self.auth.allows(request.headers()) {
            Either::Left(self.inner.call(request))
        } else {
            let status = Status::unauthenticated(
                "missing or wrong token: send authorization: Bearer <token>, or handshake with the token as password first",
            );
            Either::Right(ready(Ok(status.into_http())))
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
    fn checks_bearer_headers() {
        let auth = Auth::new(Some("t0ken".into()));
        let mut headers = http::HeaderMap::new();
        assert!(!auth.allows(&headers));
        headers.insert(
            http::header::AUTHORIZATION,
            "Bearer nope".parse().expect("header"),
        );
        assert!(!auth.allows(&headers));
        headers.insert(
            http::header::AUTHORIZATION,
            "Bearer t0ken".parse().expect("header"),
        );
        assert!(auth.allows(&headers));
        assert!(Auth::new(None).allows(&http::HeaderMap::new()));
    }
}
