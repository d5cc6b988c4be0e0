//! Test fixtures shared by the test suites of keyquorum's crates, behind the `testing` feature:
//! crates enable it in their dev-dependencies only, so nothing here is built into a node.
//!
//! - [`ceremony`]: deterministic member keys, ceremony configurations and a lock-step driver
//!   that runs participants over a perfect network;
//! - [`fuzzing`]: case counts (`KQ_FUZZ_CASES`), corpora from golden vector files and byte
//!   mutations for the proptest fuzz harnesses;
//! - [`golden`]: the reader and writer of golden vector files (`KQ_UPDATE_VECTORS`).
//!
//! Fixtures panic on misuse (they are test code); none of them is used by the protocol.

pub mod ceremony;
pub mod fuzzing;
pub mod golden;
