// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Bls12381} from "./Bls12381.sol";

/// @title keyquorum's BLS12-381 signature schemes, deployed once and called by the coordinator.
/// @notice Hash-to-curve and the pairing check of both layouts keyquorum signs with, behind
/// three stateless view functions: identity keys in G2 signing in G1 (a transaction, post or
/// endorsement: `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`; a proof of possession:
/// `BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`) and group keys in G1 signing in G2
/// (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`). They are a separate contract because the
/// coordinator's rules and these checks do not fit in one contract under EIP-170's 24,576-byte
/// limit; the hashing and pairing code is the heavier part (the field constants, `-G1` and `-G2`
/// among it) and needs no storage, so it moves out whole. Keys and signatures are points in the
/// precompile encoding (`Bls12381`); every answer is a bool, false for a point off the curve or
/// outside its subgroup.
contract Bls12381Verifier {
    bytes internal constant SIG_DST_G1 = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
    bytes internal constant POP_DST_G1 = "BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
    bytes internal constant SIG_DST_G2 = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    /// Whether the ack aggregate `compressed` (48 bytes, as posted) is no signature of the
    /// ackers' summed identity key `aggregatePk` on the ack payload of the publication bytes
    /// `head` (its bytes 1 to 73: session, dealer and commitment hash, as the nodes' ack
    /// signs them: `keyquorum_dkg::messages::ack_payload`): 1 if it is proven forged, 0 if
    /// not, 2 if `point` is not the posted point. With a 128-byte `point` (the posted bytes as a
    /// point), the pairing decides: a point off the curve proves nothing (the addition
    /// precompile reverts for one, and on the curve x and the sign leave only the posted
    /// point), while one outside the subgroup, which the pairing precompile refuses, does: an
    /// aggregate of valid acks is in the group. Otherwise the posted bytes must be no point a
    /// signature can be (`Bls12381.isNoG1Point`, `point` its square-root witness or empty),
    /// the identity counting only when the ackers' summed key is not the identity too.
    function isForgedAckAggregate(
        bytes memory compressed,
        bytes memory point,
        bytes memory aggregatePk,
        bytes calldata head
    ) external view returns (uint8) {
        if (point.length != 128) {
            // The identity is what valid acks sum to when the ackers' keys do (k and -k both
            // have proofs of possession): a forgery only under another key.
            if (uint8(compressed[0]) & 0x40 != 0 && keccak256(aggregatePk) == keccak256(new bytes(256))) return 0;
            return Bls12381.isNoG1Point(compressed, point) ? 1 : 0;
        }
        if (!Bls12381.matchesCompressedG1(compressed, point)) return 2;
        Bls12381.g1Add(point, new bytes(128));
        bytes memory ack = abi.encodePacked(head[0:32], head[36:40], head[40:72]);
        bytes32 digest = sha256(abi.encodePacked(uint64(16), "keyquorum/ack/v1", uint64(ack.length), ack));
        bytes memory hashed = Bls12381.hashToG1(abi.encodePacked(digest), SIG_DST_G1);
        return Bls12381.verifyG1Signature(aggregatePk, hashed, point) ? 0 : 1;
    }

    /// Whether `sigG1` is the identity key `pkG2`'s signature on `message`.
    function verifyIdentitySignature(bytes memory pkG2, bytes memory message, bytes memory sigG1)
        external
        view
        returns (bool)
    {
        return Bls12381.verifyG1Signature(pkG2, Bls12381.hashToG1(message, SIG_DST_G1), sigG1);
    }

    /// Whether `pop` proves possession of the identity key `pkG2`, whose compressed bytes
    /// (`compressed`, what the proof signs) the caller has matched to the point.
    function verifyProofOfPossession(bytes memory pkG2, bytes memory compressed, bytes memory pop)
        external
        view
        returns (bool)
    {
        return Bls12381.verifyG1Signature(pkG2, Bls12381.hashToG1(compressed, POP_DST_G1), pop);
    }

    /// Whether `sigG2` is the group key `pkG1`'s signature on `message`.
    function verifyGroupSignature(bytes memory pkG1, bytes memory message, bytes memory sigG2)
        external
        view
        returns (bool)
    {
        return Bls12381.verifyG2Signature(pkG1, Bls12381.hashToG2(message, SIG_DST_G2), sigG2);
    }
}
