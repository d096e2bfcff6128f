//! Calls gathered into one piece of work: the first starts a timer, and the gathered calls go
//! together once arrivals have paused for a moment (from the last one), a window has passed
//! since the first, or there are as many as one piece of work takes. Each call waits for its
//! own answer. Dataverse's webhook deliveries ([`crate::burst`]) and SALESmanago's rule calls
//! ([`crate::rules`]) are gathered so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A pause in arrivals this long ends the gathering: the sender has sent what it had under way
/// (it sends a few at a time, each waiting for its answer), so waiting longer gains nothing.
const IDLE: Duration = Duration::from_millis(10);

struct Waiting<T, A> {
    items: Vec<(T, oneshot::Sender<A>)>,
    first: Instant,
    last: Instant,
}

/// Calls of type `T` waiting for answers of type `A`.
pub(crate) struct Gather<T, A> {
    window: Duration,
    most: usize,
    waiting: Mutex<Waiting<T, A>>,
}

impl<T: Send + 'static, A: Send + 'static> Gather<T, A> {
    /// Gathers for `window` at most, and at most `most` calls.
    pub(crate) fn new(window: Duration, most: usize) -> Gather<T, A> {
        let now = Instant::now();
        Gather { window, most: most.max(1), waiting: Mutex::new(Waiting { items: Vec::new(), first: now, last: now }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<T, A>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `item`, and has `go` do the gathered calls when they are due (on its own task);
    /// the item's answer comes through the receiver returned (dropped: the work panicked).
    pub(crate) fn add<S, F>(self: &Arc<Self>, item: T, state: S, go: fn(S, Vec<T>) -> F) -> oneshot::Receiver<A>
    where
        S: Send + 'static,
        F: std::future::Future<Output = Vec<A>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let (first, full) = {
            let mut waiting = self.lock();
            let now = Instant::now();
            if waiting.items.is_empty() {
                waiting.first = now;
            }
            waiting.last = now;
            waiting.items.push((item, reply));
            (waiting.items.len() == 1, waiting.items.len() >= self.most)
        };
        if full || first {
            let gather = self.clone();
            tokio::spawn(async move {
                if !full {
                    gather.until_due().await;
                }
                gather.flush(state, go).await;
            });
        }
        answer
    }

    /// Waits until arrivals have paused for [`IDLE`] (from the last one, not a whole `IDLE`
    /// more), or the window has passed since the first.
    async fn until_due(&self) {
        let idle = IDLE.min(self.window);
        loop {
            let due = {
                let waiting = self.lock();
                (!waiting.items.is_empty()).then(|| (waiting.last + idle).min(waiting.first + self.window))
            };
            match due {
                Some(due) if due > Instant::now() => tokio::time::sleep_until(due.into()).await,
                _ => return,
            }
        }
    }

    async fn flush<S, F>(&self, state: S, go: fn(S, Vec<T>) -> F)
    where
        F: std::future::Future<Output = Vec<A>>,
    {
        let taken = std::mem::take(&mut self.lock().items);
        if taken.is_empty() {
            return;
        }
        let (items, replies): (Vec<T>, Vec<_>) = taken.into_iter().unzip();
        let answers = go(state, items).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}
