//! # keyquorum-beacon
//!
//! A drand-compatible random beacon on the group key of a keyquorum view: the four BLS12-381
//! schemes of drand, chain info and rounds in drand's JSON, the chain hash, the round/time
//! rules, the verifier of rounds, and the threshold round engine that produces rounds from
//! the members' partial signatures. Deterministic and free of I/O: no clock, no storage, no
//! network; the node feeds it time (as a round number), stored rounds and authenticated
//! messages, and carries out its actions.
//!
//! # Specifications
//! - drand: specification (drand documentation, "2.3 Concepts: Specification", at
//!   drand.love/docs), and drand's source for the details the prose leaves open:
//!   `crypto/schemes.go` (schemes, tags, messages, randomness), `common/chain/info.go`
//!   (chain info JSON and chain hash), `chain/time.go` (rounds and time).
//! - IETF BLS signatures (draft-irtf-cfrg-bls-signature-05), basic scheme (`_NUL_` tags), with
//!   hashing to curves by RFC 9380 (`BLS12381G1_XMD:SHA-256_SSWU_RO_`,
//!   `BLS12381G2_XMD:SHA-256_SSWU_RO_`).
//!
//! # Modules
//! - [`scheme`]: the schemes, their tags and messages, randomness.
//! - [`info`]: chain info, its JSON and its hash; keyquorum's link between chains.
//! - [`round`]: rounds in drand's JSON, and [`round::verify_round`], the verifier of rounds
//!   from elsewhere.
//! - [`time`]: round numbers and Unix times.
//! - [`engine`]: the sans-IO threshold round engine of one view.
//! - [`sync`]: fetching a chain's rounds in bounded batches from a node that has them, and the
//!   check that links a fetched round to the stored one before it.
//! - [`sign`]: on-demand threshold signatures on caller-chosen messages, bound to a domain
//!   (IETF BLS proof-of-possession ciphersuite, keys in G1).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod hexfield;
pub mod info;
pub mod round;
pub mod scheme;
pub mod sign;
pub mod sync;
pub mod time;

pub use engine::{
    Action, Engine, EngineConfig, EngineError, Member, MemberId, PartialBeacon, Rejected,
    RoundStore, SigningShare, ViewGroup,
};
pub use error::{InfoError, RoundDecodeError, VerifyError};
pub use info::{ChainInfo, ChainLink};
pub use round::{Round, verify_round, verify_round_number};
pub use scheme::{
    BlsUnchainedG1Rfc9380, BlsUnchainedOnG1, DrandScheme, PedersenBlsChained, PedersenBlsUnchained,
    SchemeId,
};
