//! # keyquorum-node
//!
//! The validator daemon (`keyquorum node`): it follows the chain, registers itself with its
//! stake, and takes part in every view change on its own, one process per validator, talking to
//! its peers over `keyquorum-net` and to the chain through the [`chain::ChainClient`] trait.
//!
//! ## Design
//! - [`driver::Driver`] is the deterministic core. It turns chain blocks (in height order,
//!   events in block order) and peer messages into inputs for the engine's
//!   `AckRevealParticipant`, and the participant's actions into [`driver::Effect`]s. The contract's
//!   events carry the board inputs exactly (`PostAccepted`/`PostRejected` with the post bytes,
//!   `BoardDeadline`), so the node never derives a deadline itself and its board equals the
//!   contract's.
//! - [`store`] persists, in one redb transaction per block or message batch, every input
//!   consumed and the node's state (an empty block, which moves only the cursor, is written
//!   with the next change); the participant's seed is sealed before `Start`. Effects
//!   leave the process only after the commit, so `kill -9` at any point and a restart replay
//!   the participant to the same state and the same outputs, byte for byte: a restarted dealer
//!   cannot send two different commitments or shares.
//! - [`runtime`] carries out effects: deliveries over request-response with retries until the
//!   peer answers or the ceremony ends, a pull of missed deals after a restart, and a
//!   transaction queue that signs with consecutive nonces and submits through one task, so
//!   transactions reach the mempool in nonce order (the contract takes them strictly in order).
//! - Keys ([`keys`], [`keystore`]): one master seed in an Argon2id + ChaCha20-Poly1305
//!   keystore; identity, share-encryption, libp2p and storage keys are derived from it. Shares
//!   and seeds are stored sealed under the storage key; no secret is ever logged.
//! - Observability ([`status`], [`metrics`], [`report`]): the driver records typed
//!   observations and one reporter outside it writes `/status` (view, phase, committee, qualified set,
//!   1-based share index, group key, traffic) and OpenMetrics `/metrics`; structured logs with
//!   `tracing`.
//! - [`beacon`]: the random beacon of the active view: the committee exchanges partial
//!   signatures over `keyquorum-net`, the round engine of `keyquorum-beacon` combines them, and
//!   the rounds are verified, stored in redb and served in drand's HTTP format.
//! - [`sign`]: threshold signatures on demand (`POST /sign`): the member asked collects `t`
//!   verified partial signatures of the active view's committee over `keyquorum-net` and
//!   returns the combined BLS signature.
//! - [`config::Fault`]: honest deviations for the demo (silent, wrong shares, equivocation,
//!   crash, bad beacon partials, and seed 003's dealer faults in the signing-key ceremony).

#![warn(missing_docs)]

pub mod account;
pub mod activation;
pub mod beacon;
pub mod chain;
pub mod cli;
pub mod config;
pub mod data_file;
pub mod driver;
pub mod keys;
pub mod keystore;
pub mod metrics;
pub mod network;
pub mod ports;
pub mod repeat_log;
pub mod report;
pub mod runtime;
pub mod sections_node;
pub mod sections_store;
pub mod sign;
pub mod status;
pub mod store;

pub use chain::{ChainClient, ContractMachine, DevchainClient};
pub use config::{Fault, NodeConfig};
pub use driver::Driver;
pub use keys::NodeKeys;
