//! fn-train over a real loopback socket: training, one-job-at-a-time, cancellation,
//! deadlines, CloudEvents, auth, bad input, privacy, shutdown.

mod common;
mod errors;
mod events;
mod hostile;
mod jobs;
mod privacy;
mod training;
