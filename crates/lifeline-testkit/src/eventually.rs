//! `assert_eventually!`: poll a condition with short backoff until it holds or a patience runs out, instead of
//! sleeping for a guessed time.
//!
//! Two forms:
//! - `assert_eventually!(cond, patience = Duration::from_secs(5))` inside an `async` context (the usual
//!   `#[tokio::test]`): `cond` may contain `.await`, and waiting uses `tokio::time::sleep` so the runtime keeps
//!   serving whatever the condition depends on.
//! - `assert_eventually!(blocking cond, patience = ...)` in plain synchronous code: waits with `std::thread::sleep`.
//!
//! Both accept an optional trailing format string and arguments that are added to the panic message. Polls start
//! at 5 ms apart and back off to at most [`MAX_BACKOFF`]; the condition is evaluated one last time at the deadline.

use std::time::Duration;

#[doc(hidden)]
pub use tokio as __tokio;

/// The longest pause between two evaluations of the condition: 100 ms.
pub const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The first pause between two evaluations of the condition: 5 ms.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// The next pause after `current`: doubled, capped at [`MAX_BACKOFF`] and at the time `remaining`.
#[doc(hidden)]
pub fn __next_backoff(current: Duration, remaining: Duration) -> (Duration, Duration) {
    let now = current.min(remaining);
    (now, (current * 2).min(MAX_BACKOFF))
}

/// Polls `cond` until it is true or `patience` (a [`std::time::Duration`]) has passed, then panics naming the
/// condition, the time waited, the number of attempts and the optional message.
///
/// ```no_run
/// # async fn demo(peer: &lifeline_testkit::peers::Peer) {
/// use std::time::Duration;
/// lifeline_testkit::assert_eventually!(
///     peer.sessions_active().await == Some(0),
///     patience = Duration::from_secs(5),
///     "the probe left a session behind"
/// );
/// # }
/// ```
#[macro_export]
macro_rules! assert_eventually {
    (blocking $cond:expr, patience = $patience:expr $(,)?) => {
        $crate::assert_eventually!(blocking $cond, patience = $patience, "")
    };
    (blocking $cond:expr, patience = $patience:expr, $($msg:tt)+) => {{
        let patience: ::std::time::Duration = $patience;
        let start = ::std::time::Instant::now();
        let mut backoff = $crate::eventually::FIRST_BACKOFF;
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            if $cond {
                break;
            }
            let elapsed = start.elapsed();
            if elapsed >= patience {
                panic!(
                    "assert_eventually!({}) still false after {:?} ({} attempts). {}",
                    stringify!($cond), elapsed, attempts, format!($($msg)+)
                );
            }
            let (now, next) = $crate::eventually::__next_backoff(backoff, patience - elapsed);
            backoff = next;
            ::std::thread::sleep(now);
        }
    }};
    ($cond:expr, patience = $patience:expr $(,)?) => {
        $crate::assert_eventually!($cond, patience = $patience, "")
    };
    ($cond:expr, patience = $patience:expr, $($msg:tt)+) => {{
        let patience: ::std::time::Duration = $patience;
        let start = ::std::time::Instant::now();
        let mut backoff = $crate::eventually::FIRST_BACKOFF;
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            if $cond {
                break;
            }
            let elapsed = start.elapsed();
            if elapsed >= patience {
                panic!(
                    "assert_eventually!({}) still false after {:?} ({} attempts). {}",
                    stringify!($cond), elapsed, attempts, format!($($msg)+)
                );
            }
            let (now, next) = $crate::eventually::__next_backoff(backoff, patience - elapsed);
            backoff = next;
            $crate::eventually::__tokio::time::sleep(now).await;
        }
    }};
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[test]
    fn blocking_form_returns_once_the_condition_holds() {
        let n = AtomicU32::new(0);
        crate::assert_eventually!(blocking n.fetch_add(1, Ordering::SeqCst) >= 3, patience = Duration::from_secs(2));
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }

    #[test]
    #[should_panic(expected = "still false after")]
    fn blocking_form_panics_with_the_condition_and_message() {
        crate::assert_eventually!(blocking 1 + 1 == 3, patience = Duration::from_millis(30), "math is {}", "stable");
    }

    #[tokio::test]
    async fn async_form_may_await_in_the_condition() {
        let n = AtomicU32::new(0);
        let bump = || async { n.fetch_add(1, Ordering::SeqCst) + 1 };
        crate::assert_eventually!(bump().await >= 3, patience = Duration::from_secs(2));
    }

    #[tokio::test]
    async fn async_form_panic_names_the_condition() {
        let outcome = tokio::spawn(async {
            crate::assert_eventually!(false, patience = Duration::from_millis(20), "custom {}", 7);
        })
        .await;
        let panic = outcome.expect_err("must panic").into_panic();
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("assert_eventually!(false)") && msg.contains("custom 7"),
            "{msg}"
        );
    }
}
