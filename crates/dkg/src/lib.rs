//! # keyquorum-dkg
//!
//! Distributed key generation and resharing as sans-IO state machines: messages, board posts and
//! deadlines in; messages, posts and results out. No sockets, clocks or threads; randomness comes
//! from a seed given by the caller, so every run is reproducible and a crashed participant
//! recovers by replaying its inputs.
//!
//! Two protocol variants share the ceremony, identity, wire and board layers:
//! - [`ackreveal`]: the Züs view-change flow (seeds 000, 001) with the board as broadcast: dealers
//!   post Feldman commitments, players ack valid shares, dealers publish aggregate acks or reveal
//!   shares, and everyone computes the qualified set from the board ([`board`]).
//! - [`complaint`]: Pedersen commitments, complaints and justifications, a maximum clique of mutual
//!   validity, and reconstruction of dealers that fail in the Feldman phase (seed 003, after
//!   Gennaro, Jarecki, Krawczyk and Rabin).
//!
//! Both produce fresh keys or reshare an existing key to a new committee (same group key).

#![warn(missing_docs)]

pub mod ackreveal;
pub mod board;
pub mod ceremony;
pub mod complaint;
pub mod identity;
pub mod messages;
pub mod params;
pub mod participant;
pub mod preverify;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use ceremony::{Ceremony, CeremonyConfig, Member, Reshare, SessionId, Variant};
pub use params::Params;
pub use participant::Participant;
