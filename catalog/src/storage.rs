//! Where storage settings come from and how a bucket becomes an object store.
//!
//! S3 settings are layered: the standard AWS environment variables first, then the `[s3]`
//! table of a config file (`strata.toml`), then command-line flags; a later layer overrides
//! an earlier one key by key. Secrets are held in [`Secret`], which never prints its value.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::{
    BackoffConfig, ClientOptions, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    RetryConfig,
};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A credential: usable by the store, shown as `****` by `Debug` and `Display`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for handing to the store; never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Retries: transient failures (HTTP 5xx, 429, dropped connections, timeouts) are retried
/// with exponential backoff and jitter, at most this many times and for at most this long.
pub const DEFAULT_MAX_RETRIES: usize = 6;
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// A request that gets no complete answer within this time is abandoned (and retried when
/// that is safe).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of S3-compatible storage (AWS S3, MinIO, and the like). Every field is optional
/// so that layers can be merged; see [`S3Options::overlay`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// `http(s)://host:port` of an S3-compatible server; AWS itself when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Allow plain `http://` endpoints (local MinIO).
    pub allow_http: Option<bool>,
    /// Path-style requests (`endpoint/bucket/key`), which MinIO-like servers need. Defaults
    /// to on when an endpoint is set, off for AWS.
    pub path_style: Option<bool>,
    pub max_retries: Option<usize>,
    pub retry_timeout_secs: Option<f64>,
    pub request_timeout_secs: Option<f64>,
    pub connect_timeout_secs: Option<f64>,
}

impl S3Options {
    /// Reads the standard AWS variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP`.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`S3Options::from_env`], reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let allow_http = match get("AWS_ALLOW_HTTP") {
            Some(v) => Some(parse_bool(&v).ok_or_else(|| Error::InvalidConfig {
                source_name: "environment".into(),
                reason: format!("AWS_ALLOW_HTTP is '{v}'; use true or false"),
            })?),
            None => None,
        };
        let mut options = Self {
            endpoint: get("AWS_ENDPOINT_URL").or_else(|| get("AWS_ENDPOINT_URL_S3")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY").map(Secret),
            session_token: get("AWS_SESSION_TOKEN").map(Secret),
            allow_http,
            ..Default::default()
        };
        options.take_endpoint_credentials();
        Ok(options)
    }

    /// Moves credentials written into the endpoint URL (`http://KEY:SECRET@host:9000`) out of
    /// it: the endpoint keeps only scheme, host and port, so no request URL or message carries
    /// them, and they become the access key and secret unless those are set on their own.
    pub fn take_endpoint_credentials(&mut self) {
        let Some(endpoint) = &self.endpoint else {
            return;
        };
        let Ok(mut url) = url::Url::parse(endpoint) else {
            return;
        };
        if url.username().is_empty() && url.password().is_none() {
            return;
        }
        let decode = |s: &str| {
            let bytes = s.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match (bytes[i], hex) {
                    (b'%', Some(b)) => {
                        out.push(b);
                        i += 3;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        let user = decode(url.username());
        let password = url.password().map(decode);
        if self.access_key_id.is_none() && !user.is_empty() {
            self.access_key_id = Some(user);
        }
        if self.secret_access_key.is_none()
            && let Some(password) = password.filter(|p| !p.is_empty())
        {
            self.secret_access_key = Some(Secret(password));
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut clean = url.to_string();
        if !endpoint.ends_with('/') && clean.ends_with('/') && url.path() == "/" {
            clean.pop();
        }
        self.endpoint = Some(clean);
    }

    /// Sets every field that `other` sets: `other` is the later, stronger layer.
    pub fn overlay(&mut self, other: &S3Options) {
        let mut other = other.clone();
        other.take_endpoint_credentials();
        let other = &other;
        fn take<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        take(&mut self.endpoint, &other.endpoint);
        take(&mut self.region, &other.region);
        take(&mut self.access_key_id, &other.access_key_id);
        take(&mut self.secret_access_key, &other.secret_access_key);
        take(&mut self.session_token, &other.session_token);
        take(&mut self.allow_http, &other.allow_http);
        take(&mut self.path_style, &other.path_style);
        take(&mut self.max_retries, &other.max_retries);
        take(&mut self.retry_timeout_secs, &other.retry_timeout_secs);
        take(&mut self.request_timeout_secs, &other.request_timeout_secs);
        take(&mut self.connect_timeout_secs, &other.connect_timeout_secs);
    }

    /// The endpoint requests go to, for messages: the configured one, or AWS's.
    pub fn endpoint_name(&self) -> String {
        match &self.endpoint {
            Some(e) => mask_credentials(e.trim_end_matches('/')),
            None => format!("AWS S3 ({})", self.region.as_deref().unwrap_or("us-east-1")),
        }
    }

    /// An object store for one bucket, with strata's retry and timeout policy.
    pub fn build_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut clean = self.clone();
        clean.take_endpoint_credentials();
        let this = &clean;
        let invalid = |reason: String| Error::InvalidConfig {
            source_name: format!("S3 settings for bucket '{bucket}'"),
            reason,
        };
        let seconds = |v: Option<f64>, default: Duration, name: &str| -> Result<Duration> {
            match v {
                None => Ok(default),
                Some(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
                Some(s) => Err(invalid(format!(
                    "{name} must be a positive number, not {s}"
                ))),
            }
        };
        let retry: RetryConfig = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(4),
                base: 2.0,
            },
            max_retries: this.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            retry_timeout: seconds(
                this.retry_timeout_secs,
                DEFAULT_RETRY_TIMEOUT,
                "retry_timeout_secs",
            )?,
        };
        let client = ClientOptions::new()
            .with_timeout(seconds(
                this.request_timeout_secs,
                DEFAULT_REQUEST_TIMEOUT,
                "request_timeout_secs",
            )?)
            .with_connect_timeout(seconds(
                this.connect_timeout_secs,
                DEFAULT_CONNECT_TIMEOUT,
                "connect_timeout_secs",
            )?)
            .with_allow_http(this.allow_http.unwrap_or(false));
        // Start from the environment for what strata does not model itself (web identity,
        // container credentials), then apply the merged settings on top.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry.clone())
            .with_client_options(client)
            .with_allow_http(this.allow_http.unwrap_or(false))
            // Commits are create-if-absent puts (`If-None-Match: *`).
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_region(this.region.as_deref().unwrap_or("us-east-1"));
        if let Some(endpoint) = &this.endpoint {
            let endpoint = endpoint.trim_end_matches('/');
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(invalid(format!(
                    "the endpoint '{endpoint}' must start with http:// or https://"
                )));
            }
            if endpoint.starts_with("http://") && !this.allow_http.unwrap_or(false) {
                return Err(invalid(format!(
                    "the endpoint '{endpoint}' is plain http; set AWS_ALLOW_HTTP=true (or allow_http = true in [s3]) to use it"
                )));
            }
            builder = builder.with_endpoint(endpoint);
        }
        let path_style = this.path_style.unwrap_or(this.endpoint.is_some());
        builder = builder.with_virtual_hosted_style_request(!path_style);
        if let Some(key) = &this.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &this.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        if let Some(token) = &this.session_token {
            builder = builder.with_token(token.expose());
        }
        // object_store's messages name no secret, but say nothing of where to look either.
        let store = builder
            .build()
            .map_err(|e| invalid(redact(&e.to_string(), this)))?;
        Ok(Arc::new(RetryBodies {
            inner: Arc::new(store),
            max_retries: retry.max_retries,
        }))
    }

    /// Hides the configured secrets inside a message (belt and braces: no message strata
    /// builds contains them).
    pub fn redact(&self, message: &str) -> String {
        redact(message, self)
    }
}

fn redact(message: &str, options: &S3Options) -> String {
    let mut out = mask_credentials(message);
    for secret in [&options.secret_access_key, &options.session_token]
        .into_iter()
        .flatten()
    {
        if !secret.expose().is_empty() {
            out = out.replace(secret.expose(), "****");
        }
    }
    out
}

/// Retries what object_store's own retries leave out: a response body cut short or reset
/// mid-transfer on a listing. object_store retries a request until its response headers
/// arrive, and re-requests the rest of a GET whose body breaks off (a ranged GET that must
/// answer with the same ETag); but a listing whose body breaks off fails at once. Here the
/// listing is asked again, a paged `list` going on after the last key it returned, so
/// nothing is listed twice or left out.
#[derive(Debug)]
struct RetryBodies {
    inner: Arc<dyn ObjectStore>,
    max_retries: usize,
}

impl fmt::Display for RetryBodies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// An error from a response whose body broke off (truncated, reset): safe to ask again.
fn is_body_error(error: &object_store::Error) -> bool {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    [
        "response body",
        "error decoding response body",
        "error reading a body",
        "connection closed before message completed",
        "end of file before message length reached",
        "connection reset",
        "IncompleteMessage",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

async fn body_backoff(attempt: usize) {
    let millis = 50u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

impl RetryBodies {
    /// A listing from `offset` on (exclusive), resumed after the last key it gave when its
    /// body breaks off.
    fn resumable_list(
        &self,
        prefix: Option<&object_store::path::Path>,
        offset: Option<&object_store::path::Path>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        struct State {
            inner: Arc<dyn ObjectStore>,
            prefix: Option<object_store::path::Path>,
            last: Option<object_store::path::Path>,
            stream: BoxStream<'static, object_store::Result<ObjectMeta>>,
            retries: usize,
            max_retries: usize,
        }
        let open = |inner: &Arc<dyn ObjectStore>,
                    prefix: Option<&object_store::path::Path>,
                    last: Option<&object_store::path::Path>| match last {
            Some(after) => inner.list_with_offset(prefix, after),
            None => inner.list(prefix),
        };
        let state = State {
            inner: Arc::clone(&self.inner),
            prefix: prefix.cloned(),
            last: offset.cloned(),
            stream: open(&self.inner, prefix, offset),
            retries: 0,
            max_retries: self.max_retries,
        };
        futures::stream::unfold(state, move |mut state| async move {
            loop {
                match state.stream.next().await {
                    Some(Ok(meta)) => {
                        state.last = Some(meta.location.clone());
                        return Some((Ok(meta), state));
                    }
                    Some(Err(e)) if is_body_error(&e) && state.retries < state.max_retries => {
                        tracing::info!("listing broke off ({e}); listing again from where it was");
                        body_backoff(state.retries).await;
                        state.retries += 1;
                        state.stream =
                            open(&state.inner, state.prefix.as_ref(), state.last.as_ref());
                    }
                    Some(Err(e)) => return Some((Err(e), state)),
                    None => return None,
                }
            }
        })
        .boxed()
    }
}

#[async_trait::async_trait]
impl ObjectStore for RetryBodies {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &object_store::path::Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<object_store::path::Path>>,
    ) -> BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.resumable_list(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&object_store::path::Path>,
        offset: &object_store::path::Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.resumable_list(prefix, Some(offset))
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<ListResult> {
        let mut attempt = 0;
        loop {
            match self.inner.list_with_delimiter(prefix).await {
                Err(e) if is_body_error(&e) && attempt < self.max_retries => {
                    tracing::info!("listing broke off ({e}); listing again");
                    body_backoff(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Masks the password of every URL written in `text` (`http://KEY:SECRET@host` becomes
/// `http://KEY:***@host`), for messages, logs and anything else shown: a credential inside a
/// URL is never printed.
pub fn mask_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; user info ends at its
        // last '@'.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Explains a storage failure in words a user can act on, naming the endpoint and bucket.
pub fn explain_storage_error(
    error: &object_store::Error,
    options: &S3Options,
    bucket: &str,
) -> String {
    let endpoint = options.endpoint_name();
    let detail = redact(&error.to_string(), options);
    // Listing errors arrive as generic errors with the server's reply inside.
    let missing =
        matches!(error, object_store::Error::NotFound { .. }) || detail.contains("NoSuchBucket");
    let refused = matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "403 Forbidden",
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    ]
    .iter()
    .any(|s| detail.contains(s));
    if missing {
        format!(
            "bucket '{bucket}' was not found at {endpoint}; create it first, or check the bucket name ({detail})"
        )
    } else if refused {
        format!(
            "{endpoint} refused access to bucket '{bucket}'; check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or [s3] in strata.toml) ({detail})"
        )
    } else {
        format!("cannot reach bucket '{bucket}' at {endpoint}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_key_by_key_and_secrets_do_not_print() {
        let env = S3Options::from_vars(|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("env-key".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".into()),
            "AWS_REGION" => Some("eu-west-1".into()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".into()),
            "AWS_ALLOW_HTTP" => Some("true".into()),
            _ => None,
        })
        .expect("env");
        let mut merged = env.clone();
        merged.overlay(&S3Options {
            region: Some("us-west-2".into()),
            ..Default::default()
        });
        merged.overlay(&S3Options {
            access_key_id: Some("flag-key".into()),
            ..Default::default()
        });
        assert_eq!(merged.region.as_deref(), Some("us-west-2"));
        assert_eq!(merged.access_key_id.as_deref(), Some("flag-key"));
        assert_eq!(merged.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            merged.secret_access_key.as_ref().map(Secret::expose),
            Some("env-secret")
        );
        let shown = format!("{merged:?}");
        assert!(!shown.contains("env-secret"), "{shown}");
        assert_eq!(merged.redact("x env-secret y"), "x **** y");
        merged.build_store("bucket").expect("store");
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        assert_eq!(
            mask_credentials("GET http://KEY:PASS@127.0.0.1:9000/b/k failed"),
            "GET http://KEY:***@127.0.0.1:9000/b/k failed"
        );
        assert_eq!(
            mask_credentials("a https://u:p%40ss@h, s3://bucket/x and http://h:1/p"),
            "a https://u:***@h, s3://bucket/x and http://h:1/p"
        );
        assert_eq!(mask_credentials("'s3://k:s@b'"), "'s3://k:***@b'");
        assert_eq!(mask_credentials("no url: a@b"), "no url: a@b");
        assert_eq!(mask_credentials("http://user@h/"), "http://user@h/");

        // The endpoint keeps no credentials; they become the key and secret.
        let env = S3Options::from_vars(|name| match name {
            "AWS_ENDPOINT_URL" => Some("http://KEY:PA%2FSS@127.0.0.1:9000".into()),
            "AWS_ALLOW_HTTP" => Some("true".into()),
            _ => None,
        })
        .expect("env");
        assert_eq!(env.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(env.access_key_id.as_deref(), Some("KEY"));
        assert_eq!(
            env.secret_access_key.as_ref().map(Secret::expose),
            Some("PA/SS")
        );
        assert!(!format!("{env:?}").contains("PA"), "{env:?}");
        let mut layered = S3Options::default();
        layered.overlay(&S3Options {
            endpoint: Some("http://K:SECRET@h:1".into()),
            allow_http: Some(true),
            ..Default::default()
        });
        assert_eq!(layered.endpoint_name(), "http://h:1");
        // Set on their own, the key and secret win over the URL's.
        let own = S3Options {
            endpoint: Some("http://K:URLSECRET@h:1".into()),
            secret_access_key: Some(Secret::new("own")),
            allow_http: Some(true),
            ..Default::default()
        };
        assert_eq!(own.endpoint_name(), "http://K:***@h:1");
        own.build_store("b").expect("store");
    }

    #[test]
    fn bad_settings_are_explained() {
        let bad = S3Options::from_vars(|name| (name == "AWS_ALLOW_HTTP").then(|| "maybe".into()));
        assert!(
            bad.expect_err("must fail")
                .to_string()
                .contains("AWS_ALLOW_HTTP")
        );
        let http = S3Options {
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..Default::default()
        };
        let e = http.build_store("b").expect_err("must fail").to_string();
        assert!(e.contains("allow_http"), "{e}");
        let timeout = S3Options {
            request_timeout_secs: Some(-1.0),
            ..Default::default()
        };
        assert!(timeout.build_store("b").is_err());
    }
}
