//! # keyquorum-sections
//!
//! Sections as seed 002 describes them, with no chain: a section's elders hold shares of a
//! section key; each change of elders runs a DKG among the new elder candidates, which the
//! current elders authorise and then hand over to the new key. Deterministic and sans-IO:
//! messages come in with typed values, messages go out as [`coordinator::Output`]s; node keys
//! and DKG results come from outside.
//!
//! # Steps
//! 1. Genesis (seed 002, "When does DKG happen?"): the first node draws the genesis section key
//!    alone ([`sap::genesis`]), no DKG.
//! 2. Elder selection ([`elders`]): the oldest [`elders::ELDER_COUNT`] members, ties by name,
//!    without the members held absent ([`absence`]); a DKG only when the set changes; a split
//!    by the next name bit once both halves are large enough.
//! 3. Signed start ([`session::DkgStart`], [`coordinator::Coordinator::handle_start`]): each
//!    current elder signs the start; a candidate starts the DKG only with signatures of a
//!    [`session::supermajority`] of the current elders ("Pre-DKG preparations").
//! 4. The DKG ([`dkg`]): keyquorum's ack-or-reveal engine among the candidates, its board
//!    agreed by the candidates' votes instead of a chain; it ends with our share of the new key,
//!    or with the candidates to blame.
//! 5. Failure agreement ([`coordinator::Coordinator::handle_failure`], checked by the elders in
//!    [`coordinator::Coordinator::handle_failure_agreement`]): more than
//!    `n - supermajority(n)` candidates signing the same non-participant set restart the DKG
//!    without them ("Handling a failure"), and keep them out of later selections until each
//!    states it runs at a later generation ([`absence`]).
//! 6. Handover ([`sap`], [`coordinator::Coordinator::handle_sap_share`],
//!    [`coordinator::Coordinator::handle_link_share`]): the new elders sign the new SAP with their
//!    new key shares; the current elders sign the new key with the current section key; a SAP
//!    applies only with both ([`coordinator::Coordinator::apply_sap`]), and extends the
//!    [`chain::KeyChain`] ("Post successful DKG"). An elder links one successor per key: one
//!    child, or the two halves of a split ([`successor`]).
//! 7. Catch-up ([`catch_up`], [`coordinator::Coordinator::catch_up`]): a node that missed
//!    handovers takes a peer's longer key chain and signed SAP, checked link by link from its
//!    own newest key, and follows its own half across splits.
//!
//! Every output goes to the recipients [`routing::deliveries`] names, and every message has one
//! canonical, bounded wire encoding ([`wire::Message`]). What a node
//! persists to resume after a crash, and the storage interface, are in [`store`].
//!
//! Safety and liveness, as far as this code backs them, are stated in `docs/protocol.md`
//! ("Sections").
//!
//! # What it cannot survive
//! - More than `n - supermajority(n)` of the `n` current elders down (a super-minority): no
//!   start is authorised and no new SAP is signed by the current key, so the elders cannot
//!   change until enough come back.
//! - More than `n - supermajority(n)` candidates down or faulty, or honest candidates that saw
//!   different posts before a deadline: the DKG fails and no failure agreement forms, so the
//!   session waits to be superseded by the elders' next start.
//! - Partitions: rounds are decided by matching votes, not by consensus; a side without a
//!   supermajority of the elders hands nothing over. A node that missed a SAP catches up only
//!   when it is given a peer's answer ([`catch_up`]): asking peers is the caller's job.
//! - Membership (joins, leaves, ages) is not agreed here: the caller feeds each elder its member
//!   list, and elders with different lists sign different starts.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod absence;
pub mod catch_up;
pub mod chain;
pub mod coordinator;
pub mod dkg;
pub mod elders;
pub mod keys;
pub mod member_lists;
pub mod name;
pub mod routing;
pub mod sap;
pub mod session;
pub mod simulation;
pub mod store;
pub mod successor;
pub mod wire;

pub use chain::KeyChain;
pub use name::{Name, Prefix};
pub use session::{SessionId, supermajority};
