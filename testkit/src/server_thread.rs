//! A TCP accept loop running on its own OS thread with its own tokio runtime.
//!
//! Both [`crate::S3Server`] and [`crate::FaultProxy`] use this, so they work the same way
//! whether the test is a plain `#[test]`, a `#[tokio::test]` (current-thread or multi-thread),
//! or a child process talking to the endpoint.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How long the runtime may take to finish blocking work (file I/O) once the server stops.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Owns the server thread; dropping it stops the accept loop, aborts open connections and
/// joins the thread.
#[derive(Debug)]
pub(crate) struct ServerThread {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Binds `127.0.0.1:port` (0 = chosen by the OS) and serves every accepted connection
    /// with `on_connection`, which is called inside the server's runtime and is expected to
    /// `tokio::spawn` the connection task. Returns once the listener is bound.
    pub(crate) fn spawn<F>(name: &str, port: u16, on_connection: F) -> io::Result<Self>
    where
        F: Fn(TcpStream) + Send + 'static,
    {
        let std_listener = StdTcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on 127.0.0.1:{port}: {e}"))
        })?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{name}-worker"))
            .enable_all()
            .build()?;
        // Register the socket with this runtime's I/O driver now, so errors reach the caller.
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };

        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, shutdown_rx, on_connection));
                // Drops the connection tasks still running (stalled requests, idle keep-alive
                // connections) and waits a bounded time for in-flight file I/O.
                runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
            })?;

        Ok(Self {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The bound address (always on 127.0.0.1).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The receiver is gone only if the loop already ended; nothing to signal then.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread was already reported by the panic hook; do not
            // panic again inside drop.
            let _ = thread.join();
        }
    }
}

async fn accept_loop<F>(
    listener: TcpListener,
    mut shutdown: oneshot::Receiver<()>,
    on_connection: F,
) where
    F: Fn(TcpStream),
{
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Small request/response exchanges: do not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    on_connection(stream);
                }
                // Per-connection failures (e.g. the peer reset before accept, or too many
                // open files): back off briefly and keep serving the others.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}
