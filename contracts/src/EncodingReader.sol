// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Reading keyquorum's encodings on chain: magic blocks (`keyquorum_contract::MagicBlock::
/// encode`) and board publications (`keyquorum_dkg::messages::Post::encode`); deployed once and
/// called by the coordinator.
/// @notice Stateless: the coordinator passes the bytes and what it checks them against. A
/// separate contract because the coordinator's rules do not fit in one contract under
/// EIP-170's 24,576-byte limit with this decoding in it. Its errors are the coordinator's (same
/// signatures), and a failed call passes them on.
contract EncodingReader {
    bytes internal constant MAGIC_BLOCK_TAG = "keyquorum/magic-block/v2";
    uint256 internal constant MAX_COMMITTEE = 256;

    /// The fields of a magic block the coordinator checks.
    struct Header {
        uint64 viewNumber;
        uint32 number;
        uint8 keyMode;
        bytes32 sessionId;
        uint32 n;
        uint32 t;
        uint32 k;
        bytes groupKey;
        /// Where each member's entry starts in the block.
        uint256[] memberAt;
        uint32 memberCount;
        bytes32 previousHash;
        uint64 firstRound;
        uint8 beaconScheme;
        uint32 beaconPeriod;
    }

    error MalformedMagicBlock(string what);
    error BadMagicBlock(string what);
    error MalformedPost();
    error NotAFault();

    /// Reads the fixed fields of a magic block for chain `chainId` and skips over its members,
    /// checking that the encoding is exactly consumed.
    function header(bytes calldata b, bytes calldata chainId) external pure returns (Header memory h) {
        uint256 at = 0;
        bytes calldata field;
        (field, at) = _lengthPrefixed(b, at);
        if (keccak256(field) != keccak256(MAGIC_BLOCK_TAG)) revert MalformedMagicBlock("tag");
        (field, at) = _lengthPrefixed(b, at);
        if (keccak256(field) != keccak256(chainId)) revert BadMagicBlock("chain id");
        if (b.length < at + 8 + 4 + 1 + 32 + 12 + 48 + 4) revert MalformedMagicBlock("truncated");
        h.viewNumber = uint64(bytes8(b[at:at + 8]));
        h.number = uint32(bytes4(b[at + 8:at + 12]));
        h.keyMode = uint8(b[at + 12]);
        h.sessionId = bytes32(b[at + 13:at + 45]);
        h.n = uint32(bytes4(b[at + 45:at + 49]));
        h.t = uint32(bytes4(b[at + 49:at + 53]));
        h.k = uint32(bytes4(b[at + 53:at + 57]));
        h.groupKey = b[at + 57:at + 105];
        h.memberCount = uint32(bytes4(b[at + 105:at + 109]));
        at += 109;
        if (h.memberCount > MAX_COMMITTEE) revert MalformedMagicBlock("members");
        h.memberAt = new uint256[](h.memberCount);
        for (uint256 i = 0; i < h.memberCount; i++) {
            h.memberAt[i] = at;
            at += 8 + 96 + 32;
            (, at) = _lengthPrefixed(b, at);
            if (b.length < at + 4) revert MalformedMagicBlock("truncated");
            uint256 count = uint32(bytes4(b[at:at + 4]));
            at += 4;
            for (uint256 j = 0; j < count; j++) {
                (, at) = _lengthPrefixed(b, at);
            }
            at += 48;
        }
        if (b.length != at + 45) revert MalformedMagicBlock("length");
        h.previousHash = bytes32(b[at:at + 32]);
        h.firstRound = uint64(bytes8(b[at + 32:at + 40]));
        h.beaconScheme = uint8(b[at + 40]);
        h.beaconPeriod = uint32(bytes4(b[at + 41:at + 45]));
    }

    /// `keyquorum_dkg::ceremony::reshare_digest` of the view a magic block defines, which a
    /// later ceremony reshares: the tagged hash of its group key, its threshold and, per member
    /// in the block's order, identity key, encryption key, index (a 32-byte scalar) and public
    /// key share. `header` read it.
    function reshareDigest(bytes calldata b, Header calldata h) external pure returns (bytes32) {
        bytes memory tag = "keyquorum/session-reshare/v1";
        bytes memory head = abi.encodePacked(uint64(tag.length), tag, uint64(48), h.groupKey, uint64(8), uint64(h.t));
        bytes memory buf = new bytes(head.length + 240 * uint256(h.memberCount));
        uint256 ptr;
        assembly {
            ptr := add(buf, 32)
            mcopy(ptr, add(head, 32), mload(head))
            ptr := add(ptr, mload(head))
        }
        for (uint256 i = 0; i < h.memberCount; i++) {
            uint256 at = h.memberAt[i];
            uint256 index = uint64(bytes8(b[at:at + 8]));
            uint256 keys = at + 8;
            (, at) = _lengthPrefixed(b, at + 136);
            uint256 count = uint32(bytes4(b[at:at + 4]));
            at += 4;
            for (uint256 j = 0; j < count; j++) {
                (, at) = _lengthPrefixed(b, at);
            }
            uint256 share = at;
            assembly {
                let base := b.offset
                mstore(ptr, shl(192, 96))
                calldatacopy(add(ptr, 8), add(base, keys), 96)
                mstore(add(ptr, 104), shl(192, 32))
                calldatacopy(add(ptr, 112), add(base, add(keys, 96)), 32)
                mstore(add(ptr, 144), shl(192, 32))
                mstore(add(ptr, 152), index)
                mstore(add(ptr, 184), shl(192, 48))
                calldatacopy(add(ptr, 192), add(base, share), 48)
                ptr := add(ptr, 240)
            }
        }
        return sha256(buf);
    }

    function _lengthPrefixed(bytes calldata b, uint256 at) internal pure returns (bytes calldata field, uint256 next) {
        if (b.length < at + 4) revert MalformedMagicBlock("truncated");
        uint256 len = uint32(bytes4(b[at:at + 4]));
        next = at + 4 + len;
        if (b.length < next) revert MalformedMagicBlock("truncated");
        field = b[at + 4:next];
    }

    /// The players a publication (`Post::encode`) names as acking, as a number (bit i: seat i;
    /// 0 if its bitmap is longer than 256 seats or truncated), and whether it is a final log,
    /// which the board takes in the share phase: all `n` players acked and nothing revealed
    /// (`Board::apply`'s early rule).
    function acks(bytes calldata p, uint32 n) external pure returns (uint256 bits, bool finalLog) {
        if (p.length < 77) return (0, false);
        uint256 bitmapLen = uint32(bytes4(p[73:77]));
        uint256 at = 77 + bitmapLen;
        if (p.length < at + 1) return (0, false);
        uint256 count;
        for (uint256 i = 77; i < at; i++) {
            for (uint8 b = uint8(p[i]); b != 0; b &= b - 1) count++;
            if (bitmapLen <= 32) bits |= uint256(uint8(p[i])) << (8 * (i - 77));
        }
        at += uint8(p[at]) == 1 ? 49 : 1;
        finalLog = p.length >= at + 4 && count == n && uint32(bytes4(p[at:at + 4])) == 0;
    }

    /// The share a publication reveals for `player` (reverts `NotAFault` if it reveals none).
    function revealed(bytes calldata p, uint32 player) external pure returns (bytes32) {
        uint256 at = 77 + uint32(bytes4(p[73:77]));
        if (p.length < at + 1) revert MalformedPost();
        at += uint8(p[at]) == 1 ? 49 : 1;
        if (p.length < at + 4) revert MalformedPost();
        uint256 count = uint32(bytes4(p[at:at + 4]));
        at += 4;
        if (p.length < at + 36 * count) revert MalformedPost();
        for (uint256 i = 0; i < count; i++) {
            if (uint32(bytes4(p[at:at + 4])) == player) return bytes32(p[at + 4:at + 36]);
            at += 36;
        }
        revert NotAFault();
    }
}
