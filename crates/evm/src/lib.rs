//! # keyquorum-evm
//!
//! The view-change coordinator as a Solidity contract (`contracts/src/Coordinator.sol`) on the
//! EIP-2537 BLS12-381 precompiles, and what a Rust client needs to talk to it: the `sol!`
//! bindings generated from the committed artifact (`contracts/out/Coordinator.json`, compiled
//! by `contracts/build.js` with the pinned solc) and the encodings the contract expects. Its
//! hash-to-curve and pairing checks live in a second contract, [`Bls12381Verifier`]
//! (`contracts/src/Bls12381Verifier.sol`), which the coordinator's constructor creates (so the
//! coordinator's code fixes the verifier it trusts): together they do not fit under EIP-170's
//! 24,576-byte limit on one contract's deployed code.
//!
//! keyquorum keeps keys and signatures compressed (ZCash flags); the precompiles take
//! uncompressed points with every field element padded to 64 bytes and Fp2 elements as `c0`
//! then `c1`. [`g1_point`] and [`g2_point`] convert, after checking the point (on the curve, in
//! the subgroup, canonical). The contract receives both forms where it needs the compressed
//! bytes (identity keys, the group key, the seed-giving signature) and checks that they agree.
//!
//! On a live chain: [`client`] deploys the contract and sends calls from a secp256k1 account,
//! [`follower`] follows its logs at a confirmation depth, checked against the blocks' headers;
//! [`events`] turns those logs into the node's chain
//! events, [`proofs`] builds the fraud proofs of the faults their board replica finds, and
//! [`stagger`] says which member sends each proof when, and [`candidacy`] notices the node's
//! own eviction from the candidate list and brings it back when it can; [`code`] checks that
//! an address holds keyquorum's coordinator and the contracts it created;
//! [`anvil`] starts a local chain for the tests, fetching the pinned anvil with
//! [`anvil_fetch`] when npm has not installed it.
//!
//! The contract's rules, and what it does not do yet, are in the contract's own documentation
//! and in `docs/architecture.md`; `tests/integration/coordinator.rs` runs it in-process with `revm` (Prague).
//!
//! [`BeaconConsumer`] binds `contracts/src/BeaconConsumer.sol`, which verifies the committee's
//! beacon rounds and on-demand signatures in any contract (`docs/solidity.md`;
//! `tests/integration/consumer.rs`).

#![warn(missing_docs)]

use alloy_primitives::{Address, U256, keccak256};
use alloy_sol_types::SolValue;
use blstrs::{G1Affine, G2Affine};
use keyquorum_contract::{BeaconConfig, KeyMode};
use thiserror::Error;

#[allow(missing_docs, clippy::too_many_arguments)]
mod bindings {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        Coordinator,
        "../../contracts/out/Coordinator.json"
    );
}

pub use alloy_primitives;
pub use alloy_signer_local::PrivateKeySigner;
pub use alloy_sol_types;
pub use bindings::Coordinator;

#[allow(missing_docs)]
mod verifier_bindings {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        Bls12381Verifier,
        "../../contracts/out/Bls12381Verifier.json"
    );
}

/// Bindings of `contracts/src/Bls12381Verifier.sol`: keyquorum's BLS signature checks, which
/// the coordinator creates and calls (its `bls()`).
pub use verifier_bindings::Bls12381Verifier;

#[allow(missing_docs)]
mod consumer_bindings {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        BeaconConsumer,
        "../../contracts/out/BeaconConsumer.json"
    );
}

/// Bindings of `contracts/src/BeaconConsumer.sol`: a contract that verifies the committee's
/// beacon rounds and on-demand signatures under one group key.
pub use consumer_bindings::BeaconConsumer;
pub mod anvil;
pub mod anvil_fetch;
pub mod candidacy;
pub mod client;
pub mod code;
pub mod events;
pub mod follower;
pub mod process;
pub mod proofs;
pub mod stagger;

/// The tag at the start of [`Deployment::session_domain`].
pub const SESSION_TAG: &[u8] = b"keyquorum-evm/";

/// One deployment of the coordinator: the chain it runs on (the EVM chain id, `block.chainid`),
/// its address, and the chain name it was configured with (its `chainId` setting, which magic
/// blocks carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The EVM chain id.
    pub chain_id: u64,
    /// The contract's address.
    pub contract: Address,
    /// The configured chain name.
    pub chain_name: String,
    /// The configured beacon (the contract's `beaconConfig()`), which every magic block names.
    pub beacon: BeaconConfig,
    /// Blocks from a view's first round to the earliest start of the next view change (the
    /// contract's `viewLength`): the end of the idle phase an activation begins.
    pub view_length: u64,
}

impl Deployment {
    /// The domain of ceremony `ceremony_number` of view `view`'s session id (the contract's
    /// `_sessionId`): the tag, the chain id (32 bytes, big-endian), the contract's address,
    /// then `/{chain name}/view/{view}/session/{ceremony number}`. The chain id and address
    /// bind every session id, and so every post and magic block signature, to this deployment:
    /// another with the same name and committee has other session ids, and refuses the posts.
    pub fn session_domain(&self, view: u64, ceremony_number: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(SESSION_TAG.len() + 32 + 20 + self.chain_name.len() + 40);
        out.extend_from_slice(SESSION_TAG);
        out.extend_from_slice(&U256::from(self.chain_id).to_be_bytes::<32>());
        out.extend_from_slice(self.contract.as_slice());
        out.extend_from_slice(
            format!("/{}/view/{view}/session/{ceremony_number}", self.chain_name).as_bytes(),
        );
        out
    }
}

/// The tag at the start of [`registration_payload`].
pub const REGISTER_TAG: &[u8] = b"keyquorum-evm/register/v1";

/// The coordinator's `Config.keyMode` and `CommitteeSelected.keyMode` for a key mode: the tag a
/// magic block encodes it with.
pub fn key_mode_tag(mode: KeyMode) -> u8 {
    match mode {
        KeyMode::Fresh => 1,
        KeyMode::Reshare => 2,
    }
}

/// The key mode of a `CommitteeSelected.keyMode` tag, if it is one.
pub fn key_mode_of(tag: u8) -> Option<KeyMode> {
    match tag {
        1 => Some(KeyMode::Fresh),
        2 => Some(KeyMode::Reshare),
        _ => None,
    }
}

/// A compressed point that is not a valid point of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid compressed {0} point")]
pub struct PointError(&'static str);

fn pad(out: &mut [u8], at: usize, fp: &[u8]) {
    out[at + 16..at + 64].copy_from_slice(fp);
}

/// A compressed G1 point (48 bytes) in the precompile encoding (128 bytes).
pub fn g1_point(compressed: &[u8; 48]) -> Result<[u8; 128], PointError> {
    let p: G1Affine =
        Option::from(G1Affine::from_compressed(compressed)).ok_or(PointError("G1"))?;
    let raw = p.to_uncompressed();
    let mut out = [0u8; 128];
    pad(&mut out, 0, &raw[..48]);
    pad(&mut out, 64, &raw[48..]);
    Ok(out)
}

/// What a fraud proof of a forged G1 signature shows the contract for the signature's posted
/// bytes (`proveBadAckAggregate`'s `aggregatePoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum G1Evidence {
    /// A point of the curve other than the identity, in the precompile encoding: the pairing
    /// decides (a point outside the subgroup, which the pairing precompile refuses, included).
    Point([u8; 128]),
    /// No such point (`Bls12381.isNoG1Point`): a square root of `-(x^3 + 4)` (48 bytes) for an
    /// x whose `x^3 + 4` has none, or empty when the flags or an x at or above p show it.
    NoPoint(Vec<u8>),
}

/// The evidence for the 48 bytes `compressed` posted as a G1 signature ([`G1Evidence`]).
pub fn g1_evidence(compressed: &[u8; 48]) -> G1Evidence {
    use alloy_primitives::ruint::Uint;
    type Fp = Uint<384, 6>;
    // The identity is the only point with the infinity flag.
    let flags = compressed[0];
    if flags & 0x80 == 0 || flags & 0x40 != 0 {
        return G1Evidence::NoPoint(Vec::new());
    }
    if let Some(p) = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(compressed)) {
        let raw = p.to_uncompressed();
        let mut out = [0u8; 128];
        pad(&mut out, 0, &raw[..48]);
        pad(&mut out, 64, &raw[48..]);
        return G1Evidence::Point(out);
    }
    let mut x = *compressed;
    x[0] &= 0x1f;
    let x = Fp::from_be_bytes(x);
    let p = Fp::from_be_bytes(FIELD_MODULUS);
    if x >= p {
        return G1Evidence::NoPoint(Vec::new());
    }
    // x^3 + 4 is never zero on this curve; with none of its roots, -(x^3 + 4) has one, since
    // p = 3 mod 4 makes -1 a non-square and (p + 1) / 4 the exponent of a square root.
    let minus_rhs = p - x.mul_mod(x, p).mul_mod(x, p).add_mod(Fp::from(4u8), p);
    let root = minus_rhs.pow_mod((p + Fp::from(1u8)) >> 2, p);
    if root.mul_mod(root, p) != minus_rhs {
        // x has a y after all (the decoding failed on its flags): nothing to show.
        return G1Evidence::NoPoint(Vec::new());
    }
    G1Evidence::NoPoint(root.to_be_bytes::<48>().to_vec())
}

/// The BLS12-381 base field modulus, big-endian.
const FIELD_MODULUS: [u8; 48] = [
    0x1a, 0x01, 0x11, 0xea, 0x39, 0x7f, 0xe6, 0x9a, 0x4b, 0x1b, 0xa7, 0xb6, 0x43, 0x4b, 0xac, 0xd7,
    0x64, 0x77, 0x4b, 0x84, 0xf3, 0x85, 0x12, 0xbf, 0x67, 0x30, 0xd2, 0xa0, 0xf6, 0xb0, 0xf6, 0x24,
    0x1e, 0xab, 0xff, 0xfe, 0xb1, 0x53, 0xff, 0xff, 0xb9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xab,
];

/// A compressed G2 point (96 bytes) in the precompile encoding (256 bytes). The compressed and
/// uncompressed ZCash forms put `c1` before `c0`; the precompiles put `c0` first.
pub fn g2_point(compressed: &[u8; 96]) -> Result<[u8; 256], PointError> {
    let p: G2Affine =
        Option::from(G2Affine::from_compressed(compressed)).ok_or(PointError("G2"))?;
    let raw = p.to_uncompressed();
    let mut out = [0u8; 256];
    pad(&mut out, 0, &raw[48..96]);
    pad(&mut out, 64, &raw[..48]);
    pad(&mut out, 128, &raw[144..192]);
    pad(&mut out, 192, &raw[96..144]);
    Ok(out)
}

/// A G2 point in the precompile encoding (256 bytes, as [`g2_point`] gives it) compressed
/// again (96 bytes), after checking it is a point of the group: how a signature the contract
/// took as a point is shown and checked off chain.
pub fn g2_compressed(point: &[u8]) -> Result<[u8; 96], PointError> {
    let bad = PointError("G2");
    if point.len() != 256 || (0..4).any(|i| point[64 * i..64 * i + 16].iter().any(|b| *b != 0)) {
        return Err(bad);
    }
    let fp = |i: usize| &point[64 * i + 16..64 * (i + 1)];
    // The ZCash form puts c1 before c0.
    let mut raw = [0u8; 192];
    raw[..48].copy_from_slice(fp(1));
    raw[48..96].copy_from_slice(fp(0));
    raw[96..144].copy_from_slice(fp(3));
    raw[144..].copy_from_slice(fp(2));
    let p: G2Affine = Option::from(G2Affine::from_uncompressed(&raw)).ok_or(bad)?;
    Ok(p.to_compressed())
}

/// What an identity key signs (purpose `Transaction`) to register with `account` on the
/// contract at `contract` of chain `chain_id`: the contract's `_registrationPayload`.
pub fn registration_payload(
    chain_id: u64,
    contract: Address,
    account: Address,
    encryption_key: &[u8; 32],
    peer_id: &[u8],
    addresses: &[String],
) -> Vec<u8> {
    let network = keccak256(
        (
            alloy_primitives::Bytes::copy_from_slice(peer_id),
            addresses.to_vec(),
        )
            .abi_encode_params(),
    );
    let mut out = Vec::with_capacity(REGISTER_TAG.len() + 32 + 20 + 20 + 32 + 32);
    out.extend_from_slice(REGISTER_TAG);
    out.extend_from_slice(&U256::from(chain_id).to_be_bytes::<32>());
    out.extend_from_slice(contract.as_slice());
    out.extend_from_slice(account.as_slice());
    out.extend_from_slice(encryption_key);
    out.extend_from_slice(network.as_slice());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use group::prime::PrimeCurveAffine;

    /// The generators in the precompile encoding are the constants the contract negates.
    #[test]
    fn generators_convert_to_the_precompile_layout() {
        let g1 = g1_point(&G1Affine::generator().to_compressed()).unwrap();
        assert_eq!(&g1[..16], &[0u8; 16]);
        assert_eq!(
            hex_of(&g1[16..64]),
            "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
        );
        let g2 = g2_point(&G2Affine::generator().to_compressed()).unwrap();
        // x.c0 first.
        assert_eq!(
            hex_of(&g2[80..128]),
            "13e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        );
        assert_eq!(
            hex_of(&g2[16..64]),
            "024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        );
        let back = g2_compressed(&g2).unwrap();
        assert_eq!(back, G2Affine::generator().to_compressed());
        assert!(g2_compressed(&g2[..255]).is_err());
        let mut off_curve = g2;
        off_curve[255] ^= 1;
        assert!(g2_compressed(&off_curve).is_err());
        let mut high = g2;
        high[0] = 1;
        assert!(g2_compressed(&high).is_err());
        assert!(g1_point(&[0u8; 48]).is_err());
        assert!(g2_point(&[0xffu8; 96]).is_err());
    }

    /// A known answer of the session domain: the contract's `_sessionId` builds the same bytes
    /// (`tests/integration/coordinator.rs` checks the session ids it computes against the DKG's from this).
    #[test]
    fn session_domain_binds_chain_id_and_contract() {
        let d = Deployment {
            chain_id: 31337,
            contract: Address::repeat_byte(0x5a),
            chain_name: "kq".into(),
            beacon: BeaconConfig::default(),
            view_length: 100,
        };
        let domain = d.session_domain(2, 1);
        assert_eq!(
            hex_of(&domain),
            format!(
                "{}{}{}{}",
                hex_of(b"keyquorum-evm/"),
                "0000000000000000000000000000000000000000000000000000000000007a69",
                "5a".repeat(20),
                hex_of(b"/kq/view/2/session/1")
            )
        );
        let other_chain = Deployment {
            chain_id: 1,
            ..d.clone()
        };
        let other_contract = Deployment {
            contract: Address::repeat_byte(0x5b),
            ..d.clone()
        };
        assert_ne!(other_chain.session_domain(2, 1), domain);
        assert_ne!(other_contract.session_domain(2, 1), domain);
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
