//! Fraud proofs built from the chain's own posts: the calls of the coordinator's
//! `proveBadAckAggregate` and `proveBadReveal` for a publication the Rust board refused as a
//! fault of its dealer. The translator ([`crate::events::Translator`]) builds one whenever its
//! board replica names such a fault, from the bytes the contract logged, so what a node submits
//! is what its own board found; the contract checks the proof again and slashes the dealer once
//! per ceremony, paying the sender its share. The committee's members take turns sending it
//! ([`crate::stagger`]).
//!
//! Equivocation (`proveEquivocation`) is not built here: the contract takes one contribution per
//! dealer and ceremony, so two signed contributions of one dealer never both reach the log, and
//! a node's board replica never sees the second.

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;
use keyquorum_crypto::Bls12381G1;
use keyquorum_dkg::board::FaultKind;
use keyquorum_dkg::messages::{Post, SignedPost};

use crate::{Coordinator, G1Evidence, g1_evidence, g2_point};

/// A proof of a dealer's fault, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultProof {
    /// The contract's ceremony id.
    pub ceremony: U256,
    /// The dealer's account.
    pub culprit: Address,
    /// The board's name of the fault (`bad_ack_signature`, `bad_reveal`), as the contract's
    /// `Slashed` event names it.
    pub fault: &'static str,
    /// The ABI-encoded call.
    pub calldata: Vec<u8>,
}

/// What the contract needs besides the refused publication.
pub struct ProofContext<'a> {
    /// The contract's ceremony id.
    pub ceremony: U256,
    /// The dealers' accounts by dealer position: the committee in seat order, or for a
    /// reshare the active view's members in their magic block's order.
    pub dealers: &'a [Address],
    /// The committee's identity keys (compressed G2) in seat order.
    pub identities: &'a [[u8; 96]],
    /// The dealer's contribution as the contract logged it (`SignedPost::encode`).
    pub contribution: Option<&'a [u8]>,
}

/// The proof of `fault`, which the board found in `post` (a `SignedPost::encode` of a
/// publication, as logged), if the contract can check it: `None` for a fault it has no proof
/// for, for a post that is not a publication, or for inputs that do not fit (a seat outside the
/// committee, an identity key that is no point), which the board would not have accepted. An
/// ack aggregate that is no point of the group is proven too ([`G1Evidence`]).
pub fn fault_proof(ctx: &ProofContext<'_>, post: &[u8], fault: &FaultKind) -> Option<FaultProof> {
    let n = ctx.identities.len();
    let signed = SignedPost::<Bls12381G1>::decode(post, n).ok()?;
    let Post::Publication(publication) = &signed.post else {
        return None;
    };
    let culprit = *ctx.dealers.get(publication.dealer as usize)?;
    let (name, calldata) = match fault {
        FaultKind::BadAckSignature => {
            let aggregate = publication.ack_signature.as_ref()?;
            // A point to pair with the ackers' keys, or the evidence that the posted bytes are
            // none (the keys then tell whether the identity could be an honest sum).
            let ackers = publication
                .acks
                .iter()
                .map(|&j| {
                    let key = ctx.identities.get(j as usize)?;
                    Some(Bytes::copy_from_slice(&g2_point(key).ok()?))
                })
                .collect::<Option<Vec<_>>>()?;
            let aggregate_point = match g1_evidence(&aggregate.0) {
                G1Evidence::Point(point) => point.to_vec(),
                G1Evidence::NoPoint(witness) => witness,
            };
            let call = Coordinator::proveBadAckAggregateCall {
                id: ctx.ceremony,
                signedPost: Bytes::copy_from_slice(post),
                aggregatePoint: aggregate_point.into(),
                ackerPoints: ackers,
            };
            ("bad_ack_signature", call.abi_encode())
        }
        FaultKind::BadReveal { player } => {
            let contribution = ctx.contribution?;
            let call = Coordinator::proveBadRevealCall {
                id: ctx.ceremony,
                contribution: Bytes::copy_from_slice(contribution),
                publication: Bytes::copy_from_slice(post),
                player: *player,
            };
            ("bad_reveal", call.abi_encode())
        }
        _ => return None,
    };
    Some(FaultProof {
        ceremony: ctx.ceremony,
        culprit,
        fault: name,
        calldata,
    })
}
