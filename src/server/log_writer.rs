//! Log lines written to stderr by a thread of their own, in batches: a
//! request only queues its line. A line that finds the queue full is
//! dropped and counted (`sgbridge_log_lines_dropped_total`), so a slow or
//! blocked stderr never slows a request.
//!
//! Not `tracing-appender`'s non-blocking writer: its guard prints to
//! stdout when the queue is full at exit, and stdout is the audit stream.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

enum Msg {
    Line(Vec<u8>),
    /// Answered once everything queued before it is written.
    Flushed(SyncSender<()>),
}

/// The `MakeWriter` the log subscriber writes through.
pub struct LogWriter {
    queue: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

/// Writes what is queued when dropped (waiting a second at most).
pub struct LogGuard {
    queue: SyncSender<Msg>,
}

/// Starts the writer thread over `out`, `queue` lines waiting at most.
pub fn start(out: impl Write + Send + 'static, queue: usize) -> std::io::Result<(LogWriter, LogGuard)> {
    let (tx, rx) = sync_channel(queue);
    std::thread::Builder::new()
        .name("sgbridge-log".into())
        .spawn(move || write_all(out, &rx))?;
    let dropped = Arc::new(AtomicU64::new(0));
    super::metrics::count_dropped_log_lines(dropped.clone());
    Ok((
        LogWriter {
            queue: tx.clone(),
            dropped,
        },
        LogGuard { queue: tx },
    ))
}

fn write_all(out: impl Write, rx: &Receiver<Msg>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        pause_for_the_rest();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                // A log that cannot be written has nowhere to say so.
                Msg::Line(line) => drop(out.write_all(&line)),
                Msg::Flushed(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Lines come in bursts: after the first, the thread waits a moment and
/// takes what has come meanwhile, so a busy server wakes it some hundred
/// times a second, not once a line (a wake-up per line on the server's one
/// core halved the requests it served).
pub(super) fn pause_for_the_rest() {
    #[allow(clippy::disallowed_methods)] // its own thread, not a tokio worker
    std::thread::sleep(BATCH_WINDOW);
}

/// How long a line may wait for others before it is written.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (ack, flushed) = sync_channel(1);
        let queue = self.queue.clone();
        // A full queue may drain; a blocked stderr will not: the asking
        // thread may stay blocked, the exit waits a second at most.
        let asked = std::thread::Builder::new()
            .name("sgbridge-log-flush".into())
            .spawn(move || queue.send(Msg::Flushed(ack)));
        if asked.is_ok() {
            let _ = flushed.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// One event's line, queued when the subscriber is done with it.
pub struct Line<'a> {
    text: Vec<u8>,
    to: &'a LogWriter,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        if self.to.queue.try_send(Msg::Line(text)).is_err() {
            self.to.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            text: Vec::with_capacity(256),
            to: self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    /// A sink that never returns from a write until the test ends.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stderr_drops_lines_and_counts_them_without_waiting() {
        let (_hold, stuck) = std::sync::mpsc::channel();
        let (writer, guard) = start(Stuck(stuck), 4).unwrap();
        for i in 0..100 {
            writeln!(writer.make_writer(), "line {i}").unwrap();
        }
        // At most the queue and the one line in the thread's hands were kept.
        assert!(writer.dropped.load(Ordering::Relaxed) >= 95);
        std::mem::forget(guard);
    }

    #[test]
    fn lines_are_written_in_order_and_flushed_by_the_guard() {
        #[derive(Clone, Default)]
        struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let (writer, guard) = start(out.clone(), 1024).unwrap();
        for i in 0..100 {
            writeln!(writer.make_writer(), "line {i}").unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let want: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, want);
        assert_eq!(writer.dropped.load(Ordering::Relaxed), 0);
    }
}
