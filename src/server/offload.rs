//! Large request bodies are parsed on a small pool of blocking threads, so
//! a 16 MB rule set does not stall the async workers (and every other
//! request with them). At most two such parses run at once; more wait.

use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// Bodies below this are parsed in place (a few hundred rules).
const INLINE_BYTES: usize = 64 * 1024;

static BIG_PARSES: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// Runs `work` (a parse of `size` bytes) in place when small, else on the
/// blocking pool, one of at most two at a time.
pub async fn parse<T: Send + 'static>(size: usize, work: impl FnOnce() -> T + Send + 'static) -> T {
    if size < INLINE_BYTES {
        return work();
    }
    let Ok(_permit) = BIG_PARSES.acquire().await else {
        return work();
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
