//! SQLite's writer: one thread that runs the registrations' batches (see
//! `group_commit`), with every statement it makes executed in place.
//!
//! diesel-async drives a SQLite connection by sending each statement to tokio's
//! blocking pool and waiting for the answer: two thread hand-offs per statement,
//! which under load cost more than SQLite's own work (a registration makes about
//! ten). SQLite has a single writer anyway, so the batches get a thread of their
//! own: statements made on it run right there, on whichever pooled connection the
//! batch holds, and the thread does nothing else. Everywhere else statements still go
//! through the blocking pool, so no request handler's thread ever blocks on SQLite.

use std::cell::Cell;
use std::error::Error;
use std::pin::Pin;

use diesel_async::sync_connection_wrapper::SpawnBlocking;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// Set on the writer's thread only.
    static ON_WRITER: Cell<bool> = const { Cell::new(false) };
}

type Answer<'a, R> =
    Pin<Box<dyn Future<Output = Result<R, Box<dyn Error + Send + Sync + 'static>>> + Send + 'a>>;

/// Runs a SQLite connection's statements in place on the writer's thread, on the
/// blocking pool of the runtime the connection was opened on everywhere else.
pub(crate) struct Spawner(Option<Handle>);

impl SpawnBlocking for Spawner {
    fn spawn_blocking<'a, R>(&mut self, task: impl FnOnce() -> R + Send + 'static) -> Answer<'a, R>
    where
        R: Send + 'static,
    {
        if ON_WRITER.get() {
            return Box::pin(std::future::ready(Ok(task())));
        }
        let Some(handle) = self.0.clone().or_else(|| Handle::try_current().ok()) else {
            return Box::pin(std::future::ready(Err(
                "no tokio runtime to run the SQLite statement on".into(),
            )));
        };
        Box::pin(async move { handle.spawn_blocking(task).await.map_err(Into::into) })
    }

    fn get_runtime() -> Self {
        Self(Handle::try_current().ok())
    }
}

/// The writer's thread and its single-threaded runtime; the thread ends when this
/// is dropped.
pub(crate) struct Writer {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl Writer {
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                ON_WRITER.set(true);
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}
