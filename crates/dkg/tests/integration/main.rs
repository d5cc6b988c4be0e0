//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod ackreveal;
mod batch_equivalence;
mod batched;
mod board;
mod ceremony;
mod complaint;
mod fixtures;
mod fuzz_boards;
mod fuzz_decoders;
mod rules;
mod vectors;
