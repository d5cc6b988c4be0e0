// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Bls12381} from "./Bls12381.sol";

/// @title Verifies keyquorum's beacon rounds and on-demand signatures under one group key.
/// @notice A contract that consumes a keyquorum committee's output needs only the view's group
/// key (G1) and the EIP-2537 precompiles. Two kinds of signature are made with that key:
///
/// - beacon rounds, drand-compatible: `pedersen-bls-chained` signs
///   `sha256(previous_signature || round)` and `pedersen-bls-unchained` signs `sha256(round)`
///   (`round` as 8 bytes big-endian), both under `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_`;
///   a round's randomness is `sha256(signature)` over the 96-byte compressed signature;
/// - on-demand signatures (`POST /sign`), in Ethereum's proof-of-possession ciphersuite
///   (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`) over
///   `"keyquorum/sign/v1" || uint8(len(domain)) || domain || message`, the domain 1 to 64 bytes
///   of printable ASCII (0x20..=0x7e), the message at most 65536 bytes.
///
/// One deployment follows one beacon chain: the scheme (chained or not) and, for the chained
/// scheme, the chain's genesis seed (drand's `groupHash`, round 1's previous signature) are
/// fixed at construction, so a round has exactly one valid signature and one randomness.
///
/// What is checked where: lengths, the domain and the message bound here, with typed errors;
/// that a compressed point and its EIP-2537 form name the same point by
/// `Bls12381.matchesCompressed*`; that points are on the curve and in the subgroup by the
/// pairing precompile (EIP-2537), which refuses any other point. The group key is checked once,
/// at construction (a pairing with the G2 identity, which the precompile evaluates only after
/// checking both points); each signature is checked by the verifying pairing itself, so a
/// signature off the curve or outside G2 fails as `BadSignature`.
contract BeaconConsumer {
    bytes internal constant BEACON_DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
    bytes internal constant SIGN_DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
    bytes internal constant SIGN_TAG = "keyquorum/sign/v1";
    uint256 internal constant MAX_DOMAIN_LEN = 64;
    uint256 internal constant MAX_MESSAGE_LEN = 65536;

    /// Whether rounds are `pedersen-bls-chained` (else `pedersen-bls-unchained`).
    bool public immutable chained;
    /// The chain's genesis seed: the previous signature of chained round 1.
    bytes32 public immutable genesisSeed;

    // The group key, compressed (48 bytes) and in the precompile encoding (128 bytes), held in
    // code rather than storage so that a verification reads no storage slot.
    bytes32 private immutable keyHi;
    bytes16 private immutable keyLo;
    bytes32 private immutable point0;
    bytes32 private immutable point1;
    bytes32 private immutable point2;
    bytes32 private immutable point3;

    /// The randomness of every round verified through `verifyRound`.
    mapping(uint64 => bytes32) public randomnessOf;

    event RoundVerified(uint64 indexed round, bytes32 randomness);

    /// The key's two forms differ, it is the identity, or it is off the curve or outside G1.
    error BadGroupKey();
    /// An input of fixed length has another.
    error BadLength(string field, uint256 expected, uint256 actual);
    /// Round 0 is never signed.
    error RoundZero();
    /// Chained: round 1 must carry the genesis seed, later rounds a 96-byte signature.
    /// Unchained: no previous signature.
    error BadPreviousSignature(uint64 round);
    /// The compressed signature and its EIP-2537 form are not the same point.
    error SignatureMismatch();
    /// The pairing check fails: a wrong signature, or a point off the curve or outside G2.
    error BadSignature();
    /// A second, different randomness for a recorded round (only possible if the group key
    /// signed two previous signatures for one round).
    error RoundConflict(uint64 round);
    /// The domain is empty, longer than 64 bytes or not printable ASCII.
    error BadDomain();
    /// The message is longer than 65536 bytes.
    error MessageTooLong(uint256 length);

    /// @param groupKey_ the group key compressed (48 bytes, as in the magic block and drand's
    /// chain info)
    /// @param groupKeyPoint_ the same key in the EIP-2537 encoding (128 bytes)
    /// @param chained_ whether the chain's scheme is `pedersen-bls-chained`
    /// @param genesisSeed_ the chain's genesis seed (used by the chained scheme only)
    constructor(bytes memory groupKey_, bytes memory groupKeyPoint_, bool chained_, bytes32 genesisSeed_) {
        if (!Bls12381.matchesCompressedG1(groupKey_, groupKeyPoint_)) revert BadGroupKey();
        if (!Bls12381.pairingIsOne(abi.encodePacked(groupKeyPoint_, new bytes(256)))) revert BadGroupKey();
        bytes32 hi;
        bytes32 lo;
        assembly {
            hi := mload(add(groupKey_, 32))
            lo := mload(add(groupKey_, 64))
        }
        keyHi = hi;
        keyLo = bytes16(lo);
        (point0, point1, point2, point3) = abi.decode(groupKeyPoint_, (bytes32, bytes32, bytes32, bytes32));
        chained = chained_;
        genesisSeed = genesisSeed_;
    }

    /// The group key, compressed.
    function groupKey() external view returns (bytes memory) {
        return abi.encodePacked(keyHi, keyLo);
    }

    /// The group key in the EIP-2537 encoding.
    function groupKeyPoint() public view returns (bytes memory) {
        return abi.encodePacked(point0, point1, point2, point3);
    }

    /// Verifies round `round` and records its randomness (`randomnessOf`, `RoundVerified`).
    /// @param previousSignature chained: round `round - 1`'s compressed signature, or the
    /// genesis seed for round 1; unchained: empty
    /// @param signature the round's compressed signature (96 bytes), whose sha256 is the
    /// randomness
    /// @param signaturePoint the same signature in the EIP-2537 encoding (256 bytes)
    /// @return randomness `sha256(signature)`
    function verifyRound(
        uint64 round,
        bytes calldata previousSignature,
        bytes calldata signature,
        bytes calldata signaturePoint
    ) external returns (bytes32 randomness) {
        randomness = roundRandomness(round, previousSignature, signature, signaturePoint);
        bytes32 known = randomnessOf[round];
        if (known == 0) {
            randomnessOf[round] = randomness;
            emit RoundVerified(round, randomness);
        } else if (known != randomness) {
            revert RoundConflict(round);
        }
    }

    /// `verifyRound` without recording: the randomness of a valid round, or a revert.
    function roundRandomness(
        uint64 round,
        bytes calldata previousSignature,
        bytes calldata signature,
        bytes calldata signaturePoint
    ) public view returns (bytes32) {
        if (round == 0) revert RoundZero();
        if (signature.length != 96) revert BadLength("signature", 96, signature.length);
        if (signaturePoint.length != 256) revert BadLength("signaturePoint", 256, signaturePoint.length);
        bytes32 digest;
        if (chained) {
            bool possible = round == 1
                ? previousSignature.length == 32 && bytes32(previousSignature) == genesisSeed
                : previousSignature.length == 96;
            if (!possible) revert BadPreviousSignature(round);
            digest = sha256(abi.encodePacked(previousSignature, round));
        } else {
            if (previousSignature.length != 0) revert BadPreviousSignature(round);
            digest = sha256(abi.encodePacked(round));
        }
        if (!Bls12381.matchesCompressedG2(signature, signaturePoint)) revert SignatureMismatch();
        _verify(abi.encodePacked(digest), BEACON_DST, signaturePoint);
        return sha256(signature);
    }

    /// Reverts unless `signaturePoint` (the EIP-2537 encoding, 256 bytes, of the signature
    /// `POST /sign` returned) is the group's signature on `(domain, message)`.
    function verifySigned(string calldata domain, bytes calldata message, bytes calldata signaturePoint)
        external
        view
    {
        bytes calldata d = bytes(domain);
        if (d.length == 0 || d.length > MAX_DOMAIN_LEN) revert BadDomain();
        for (uint256 i = 0; i < d.length; i++) {
            if (d[i] < 0x20 || d[i] > 0x7e) revert BadDomain();
        }
        if (message.length > MAX_MESSAGE_LEN) revert MessageTooLong(message.length);
        if (signaturePoint.length != 256) revert BadLength("signaturePoint", 256, signaturePoint.length);
        _verify(abi.encodePacked(SIGN_TAG, uint8(d.length), d, message), SIGN_DST, signaturePoint);
    }

    function _verify(bytes memory signed, bytes memory dst, bytes calldata signaturePoint) internal view {
        bytes memory hashed = Bls12381.hashToG2(signed, dst);
        if (!Bls12381.verifyG2Signature(groupKeyPoint(), hashed, signaturePoint)) revert BadSignature();
    }
}
