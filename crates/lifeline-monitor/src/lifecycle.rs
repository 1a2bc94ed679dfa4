//! How the monitor stops: the grace periods of its phases, as settings. The phases are `lifeline_core`'s,
//! walked by whoever holds the [`lifeline_core::Shutdown`] given to [`crate::Monitor::run`] (the binary, from
//! signals, on [`Lifecycle::drain_plan`]):
//!
//! 1. `Draining`: `/ready` fails at once; probing, recording and the status page go on for
//!    [`Lifecycle::drain_delay`].
//! 2. `Refusing`: no new probe starts; probes in flight finish for at most [`Lifecycle::probe_grace`] and
//!    their results are written.
//! 3. `Forcing` (or the grace running out): probes still in flight are abandoned. Then, bounded: the alerts
//!    the last results queued go out ([`Lifecycle::alert_grace`]), the scheduler lease is released, and the
//!    web server closes its connections ([`Lifecycle::web_grace`]). After [`lifeline_core::Shutdown::abort`]
//!    (a second signal) none of these waits happen.

use std::time::Duration;

use lifeline_core::DrainPlan;

/// Default [`Lifecycle::drain_delay`]: none (readiness drops and probing stops together, as before the
/// monitor had phases).
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::ZERO;
/// Default [`Lifecycle::probe_grace`]: 15 s.
pub const DEFAULT_PROBE_GRACE: Duration = Duration::from_secs(15);
/// Default [`Lifecycle::alert_grace`]: 60 s.
pub const DEFAULT_ALERT_GRACE: Duration = Duration::from_secs(60);
/// Default [`Lifecycle::web_grace`]: 5 s.
pub const DEFAULT_WEB_GRACE: Duration = Duration::from_secs(5);

/// The monitor's grace periods (see the module docs for the phases they bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Lifecycle {
    /// After a stop request, how long the monitor keeps probing with `/ready` failing (a load balancer's
    /// deregistration window). Default [`DEFAULT_DRAIN_DELAY`].
    #[serde(serialize_with = "lifeline_core::config::ser::duration")]
    pub drain_delay: Duration,
    /// How long probes in flight may finish once scheduling stopped, before they are abandoned (their results
    /// lost). Default [`DEFAULT_PROBE_GRACE`].
    #[serde(serialize_with = "lifeline_core::config::ser::duration")]
    pub probe_grace: Duration,
    /// Bound on sending the alerts queued by the last results (and on each lease-loss hand-over).
    /// Default [`DEFAULT_ALERT_GRACE`].
    #[serde(serialize_with = "lifeline_core::config::ser::duration")]
    pub alert_grace: Duration,
    /// Bound on the web server closing its connections at the end. Default [`DEFAULT_WEB_GRACE`].
    #[serde(serialize_with = "lifeline_core::config::ser::duration")]
    pub web_grace: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            drain_delay: DEFAULT_DRAIN_DELAY,
            probe_grace: DEFAULT_PROBE_GRACE,
            alert_grace: DEFAULT_ALERT_GRACE,
            web_grace: DEFAULT_WEB_GRACE,
        }
    }
}

impl Lifecycle {
    /// The drain timetable for `lifeline_core::drain`: `Refusing` after [`Lifecycle::drain_delay`], `Forcing`
    /// [`Lifecycle::probe_grace`] later (earlier when nothing is in flight).
    pub fn drain_plan(&self) -> DrainPlan {
        DrainPlan {
            delay: self.drain_delay,
            timeout: self.drain_delay.saturating_add(self.probe_grace),
        }
    }
}
