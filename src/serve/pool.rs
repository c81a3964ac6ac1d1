//! Many requests to one server with a bounded number in flight: a fixed set of worker threads
//! (as many as the concurrency, never one per request) takes the next request as each answer
//! comes back; answers reach the caller's thread in the order they arrive, so the store is
//! written from one thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use super::chat::{ChatAnswer, ChatRequest};
use super::client::Client;
use crate::error::{Error, Result};

/// One request and what to call it in an error (`prompt sorry44/1-3`).
#[derive(Debug, Clone)]
pub struct Job {
    /// The request.
    pub request: ChatRequest,
    /// Its name in errors.
    pub what: String,
}

/// Send every job with at most the client's concurrency in flight. `on_answer(index, answer)`
/// runs on the calling thread for each answer as it arrives. The first error (from the server
/// after its retries, or from `on_answer`) stops new requests; the answers of requests already
/// in flight are still delivered to `on_answer`, then that error is returned. Cancelling stops
/// new requests the same way and returns [`Error::Cancelled`].
pub fn send_all(
    client: &Client,
    jobs: &[Job],
    cancel: &AtomicBool,
    on_answer: &mut dyn FnMut(usize, ChatAnswer) -> Result<()>,
) -> Result<()> {
    send_each(
        client.settings().concurrency,
        jobs.len(),
        &|i| match jobs.get(i) {
            Some(job) => client.chat(&job.request, &job.what, cancel),
            None => Err(Error::Invalid(format!("no request {i} to send"))),
        },
        cancel,
        on_answer,
    )
}

/// [`send_all`] for any request: `send(i)` makes request `i` (0..`count`) on a worker thread,
/// at most `concurrency` at once, and what it returns reaches `on_answer` on the calling
/// thread. Judges use it to mix chat and text completions, and to turn one request's
/// failure into that answer's verdict rather than the whole run's error.
pub fn send_each<T: Send>(
    concurrency: usize,
    count: usize,
    send: &(dyn Fn(usize) -> Result<T> + Sync),
    cancel: &AtomicBool,
    on_answer: &mut dyn FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    if count == 0 {
        return Ok(());
    }
    let workers = concurrency.min(count).max(1);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut first_error: Option<Error> = None;
    let mut delivered = 0usize;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<(usize, Result<T>)>();
        for w in 0..workers {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            std::thread::Builder::new()
                .name(format!("aligndiff-request-{w}"))
                .spawn_scoped(scope, move || loop {
                    if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    if tx.send((i, send(i))).is_err() {
                        break;
                    }
                })
                .map_err(|e| Error::Invalid(format!("cannot start a request thread: {e}")))?;
        }
        drop(tx);
        for (i, result) in rx {
            match result {
                Ok(answer) => {
                    delivered += 1;
                    if let Err(e) = on_answer(i, answer) {
                        stop.store(true, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                }
                Err(Error::Cancelled) => {}
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
        Ok(())
    })?;
    match first_error {
        Some(e) => Err(e),
        // Workers stop early only on an error or a cancel: anything undelivered was cancelled.
        None if delivered < count => Err(Error::Cancelled),
        None => Ok(()),
    }
}
