// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title BLS12-381 signatures on the EIP-2537 precompiles.
/// @notice Hash-to-curve (RFC 9380: expand_message_xmd with SHA-256, hash_to_field, the
/// precompiles' SSWU maps, which clear the cofactor) and pairing checks for both BLS layouts
/// keyquorum uses: identity keys in G2 with signatures in G1
/// (`BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`) and group keys in G1 with threshold
/// signatures in G2 (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`).
///
/// Points are in the precompiles' encoding: an Fp element is 64 bytes (16 zero bytes, then 48
/// bytes big-endian), an Fp2 element is c0 then c1, a G1 point x then y (128 bytes), a G2 point
/// x then y (256 bytes). Keys and signatures reach keyquorum compressed (48 or 96 bytes,
/// ZCash flags); the callers supply both forms and `matchesCompressed*` checks that they name
/// the same point, which costs two comparisons instead of a square root. Curve and subgroup
/// membership is checked by the pairing precompile, which refuses points outside G1 or G2.
library Bls12381 {
    address internal constant G1ADD = address(0x0b);
    address internal constant G1MSM = address(0x0c);
    address internal constant G2ADD = address(0x0d);
    address internal constant PAIRING_CHECK = address(0x0f);
    address internal constant MAP_FP_TO_G1 = address(0x10);
    address internal constant MAP_FP2_TO_G2 = address(0x11);
    address internal constant MODEXP = address(0x05);

    // p as its top 16 bytes and low 32 bytes, and (p - 1) / 2 likewise: y is the
    // "lexicographically largest" root (the compressed sign flag) when y > (p - 1) / 2.
    uint256 internal constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 internal constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;
    uint256 internal constant HALF_HI = 0x0d0088f51cbff34d258dd3db21a5d66b;
    uint256 internal constant HALF_LO = 0xb23ba5c279c2895fb39869507b587b120f55ffff58a9ffffdcff7fffffffd555;

    /// G1's generator.
    bytes internal constant G1 =
        hex"0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb0000000000000000000000000000000008b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1";
    /// -G1 (the negated generator), for checking e(pk, H(m)) * e(-G1, sig) == 1.
    bytes internal constant NEG_G1 =
        hex"0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb00000000000000000000000000000000114d1d6855d545a8aa7d76c8cf2e21f267816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca";
    /// -G2, for checking e(H(m), pk) * e(sig, -G2) == 1.
    bytes internal constant NEG_G2 =
        hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb80000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed";

    error PrecompileFailed(address precompile);

    /// RFC 9380 section 5.3.1, expand_message_xmd with SHA-256 (DST at most 255 bytes, output
    /// a multiple of 32 bytes, at most 255 * 32).
    function expandMessageXmd(bytes memory message, bytes memory dst, uint256 lenInBytes)
        internal
        pure
        returns (bytes memory out)
    {
        require(dst.length <= 255 && lenInBytes % 32 == 0 && lenInBytes <= 255 * 32, "xmd bounds");
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        bytes32 b0 = sha256(abi.encodePacked(new bytes(64), message, uint16(lenInBytes), uint8(0), dstPrime));
        bytes32 bi = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        out = new bytes(lenInBytes);
        uint256 blocks = lenInBytes / 32;
        for (uint256 i = 1; i <= blocks; i++) {
            assembly {
                mstore(add(out, mul(i, 32)), bi)
            }
            if (i < blocks) {
                bi = sha256(abi.encodePacked(b0 ^ bi, uint8(i + 1), dstPrime));
            }
        }
    }

    /// The 64-byte big-endian integer at `uniform[offset..offset + 64]` reduced mod p, as a
    /// 64-byte field element (MODEXP with exponent 1).
    function reduce(bytes memory uniform, uint256 offset) internal view returns (bytes32 hi, bytes32 lo) {
        bytes memory input = abi.encodePacked(
            uint256(64), uint256(1), uint256(48), _slice64(uniform, offset), uint8(1), bytes16(uint128(P_HI)), P_LO
        );
        (bool ok, bytes memory r) = MODEXP.staticcall(input);
        if (!ok || r.length != 48) revert PrecompileFailed(MODEXP);
        assembly {
            // r = 48 bytes: the top 16 go right-aligned in the first word, the rest in the second.
            hi := shr(128, mload(add(r, 32)))
            lo := mload(add(r, 48))
        }
    }

    function _slice64(bytes memory b, uint256 offset) private pure returns (bytes memory s) {
        s = new bytes(64);
        assembly {
            mstore(add(s, 32), mload(add(add(b, 32), offset)))
            mstore(add(s, 64), mload(add(add(b, 64), offset)))
        }
    }

    /// hash_to_curve into G1 (`..._XMD:SHA-256_SSWU_RO_`): two field elements, each mapped,
    /// the images added (the precompile clears the cofactor of each; clearing is linear).
    function hashToG1(bytes memory message, bytes memory dst) internal view returns (bytes memory) {
        bytes memory u = expandMessageXmd(message, dst, 128);
        (bytes32 h0, bytes32 l0) = reduce(u, 0);
        (bytes32 h1, bytes32 l1) = reduce(u, 64);
        bytes memory p0 = _call(MAP_FP_TO_G1, abi.encodePacked(h0, l0), 128);
        bytes memory p1 = _call(MAP_FP_TO_G1, abi.encodePacked(h1, l1), 128);
        return _call(G1ADD, abi.encodePacked(p0, p1), 128);
    }

    /// hash_to_curve into G2: four field elements (two Fp2 elements, c0 then c1), mapped and
    /// added.
    function hashToG2(bytes memory message, bytes memory dst) internal view returns (bytes memory) {
        bytes memory u = expandMessageXmd(message, dst, 256);
        bytes memory e0;
        bytes memory e1;
        {
            (bytes32 a, bytes32 b) = reduce(u, 0);
            (bytes32 c, bytes32 d) = reduce(u, 64);
            e0 = abi.encodePacked(a, b, c, d);
        }
        {
            (bytes32 a, bytes32 b) = reduce(u, 128);
            (bytes32 c, bytes32 d) = reduce(u, 192);
            e1 = abi.encodePacked(a, b, c, d);
        }
        bytes memory p0 = _call(MAP_FP2_TO_G2, e0, 256);
        bytes memory p1 = _call(MAP_FP2_TO_G2, e1, 256);
        return _call(G2ADD, abi.encodePacked(p0, p1), 256);
    }

    function g1Add(bytes memory a, bytes memory b) internal view returns (bytes memory) {
        return _call(G1ADD, abi.encodePacked(a, b), 128);
    }

    /// `scalar * G1` (the MSM precompile with one pair; the scalar is taken mod r).
    function g1MulGenerator(bytes32 scalar) internal view returns (bytes memory) {
        return _call(G1MSM, abi.encodePacked(G1, scalar), 128);
    }

    function g2Add(bytes memory a, bytes memory b) internal view returns (bytes memory) {
        return _call(G2ADD, abi.encodePacked(a, b), 256);
    }

    function _call(address precompile, bytes memory input, uint256 outLen) private view returns (bytes memory out) {
        bool ok;
        (ok, out) = precompile.staticcall(input);
        if (!ok || out.length != outLen) revert PrecompileFailed(precompile);
    }

    /// Whether the product of the pairings of the (G1, G2) pairs in `input` is one. False, not a
    /// revert, for points off the curve or outside the subgroup: a bad key or signature is an
    /// answer, not an error.
    function pairingIsOne(bytes memory input) internal view returns (bool) {
        (bool ok, bytes memory out) = PAIRING_CHECK.staticcall(input);
        return ok && out.length == 32 && uint256(bytes32(out)) == 1;
    }

    /// Identity-key layout (MinSig): e(H(m), pk) == e(sig, G2), for `hashed` = hashToG1(m).
    function verifyG1Signature(bytes memory pkG2, bytes memory hashed, bytes memory sigG1)
        internal
        view
        returns (bool)
    {
        if (pkG2.length != 256 || sigG1.length != 128) return false;
        return pairingIsOne(abi.encodePacked(hashed, pkG2, sigG1, NEG_G2));
    }

    /// Group-key layout (MinPk): e(pk, H(m)) == e(G1, sig), for `hashed` = hashToG2(m).
    function verifyG2Signature(bytes memory pkG1, bytes memory hashed, bytes memory sigG2)
        internal
        view
        returns (bool)
    {
        if (pkG1.length != 128 || sigG2.length != 256) return false;
        return pairingIsOne(abi.encodePacked(pkG1, hashed, NEG_G1, sigG2));
    }

    /// Reads the 64-byte field element at `offset` of `b` as (top word, low word).
    function _fp(bytes memory b, uint256 offset) private pure returns (uint256 hi, uint256 lo) {
        assembly {
            hi := mload(add(add(b, 32), offset))
            lo := mload(add(add(b, 64), offset))
        }
    }

    function _isLarger(uint256 hi, uint256 lo) private pure returns (bool) {
        return hi > HALF_HI || (hi == HALF_HI && lo > HALF_LO);
    }

    /// Whether the 48 bytes `x` (flags cleared) equal the field element `(hi, lo)`.
    function _sameX(bytes memory compressed, uint256 at, uint256 hi, uint256 lo, bool first) private pure returns (bool) {
        uint256 cHi;
        uint256 cLo;
        assembly {
            // The 48 bytes at `at`: top 16 into cHi, the next 32 into cLo.
            cHi := shr(128, mload(add(add(compressed, 32), at)))
            cLo := mload(add(add(compressed, 48), at))
        }
        if (first) cHi &= 0x1fffffffffffffffffffffffffffffff;
        return cHi == hi && cLo == lo && hi >> 128 == 0;
    }

    /// Whether the compressed G1 point (48 bytes) and the 128-byte point are the same point
    /// (not the identity): the compression flag set, the infinity flag clear, equal x, and the
    /// sign flag telling the same root as y.
    function matchesCompressedG1(bytes memory compressed, bytes memory point) internal pure returns (bool) {
        if (compressed.length != 48 || point.length != 128) return false;
        uint8 flags = uint8(compressed[0]);
        if (flags & 0x80 == 0 || flags & 0x40 != 0) return false;
        (uint256 xHi, uint256 xLo) = _fp(point, 0);
        if (!_sameX(compressed, 0, xHi, xLo, true)) return false;
        (uint256 yHi, uint256 yLo) = _fp(point, 64);
        // The precompiles' identity is all zeros, which the compressed x = 0 would match.
        if ((xHi | xLo | yHi | yLo) == 0) return false;
        return _isLarger(yHi, yLo) == (flags & 0x20 != 0);
    }

    /// Whether `compressed` (48 bytes in the ZCash encoding) provably encodes no point of G1
    /// that a signature can be: the identity (the infinity flag), a missing compression flag,
    /// an x at or above p, or
    /// an x for which x^3 + 4 has no square root, shown by `witness`, a square root of
    /// -(x^3 + 4) (p is 3 mod 4, so -1 is no square and exactly one of a and -a is one for a
    /// nonzero a; x^3 + 4 is never zero, as the curve has no point of order two). A point on the
    /// curve outside the subgroup is not covered: the pairing precompile refuses it.
    function isNoG1Point(bytes memory compressed, bytes memory witness) internal view returns (bool) {
        if (compressed.length != 48) return true;
        uint8 flags = uint8(compressed[0]);
        if (flags & 0x80 == 0 || flags & 0x40 != 0) return true;
        uint256 xHi;
        uint256 xLo;
        assembly {
            xHi := shr(128, mload(add(compressed, 32)))
            xLo := mload(add(compressed, 48))
        }
        xHi &= 0x1fffffffffffffffffffffffffffffff;
        if (xHi > P_HI || (xHi == P_HI && xLo >= P_LO)) return true;
        if (witness.length != 48) return false;
        bytes memory x = abi.encodePacked(bytes16(uint128(xHi)), xLo);
        (uint256 cubeHi, uint256 cubeLo) = _powModP(x, 3);
        (uint256 squareHi, uint256 squareLo) = _powModP(witness, 2);
        // Both below p, so x^3 + 4 + w^2 is 0 mod p exactly when it is p or 2p.
        unchecked {
            uint256 lo = cubeLo + squareLo;
            uint256 hi = cubeHi + squareHi + (lo < cubeLo ? 1 : 0);
            uint256 sumLo = lo + 4;
            if (sumLo < lo) hi += 1;
            uint256 twoPLo = P_LO << 1;
            uint256 twoPHi = (P_HI << 1) | (P_LO >> 255);
            return (hi == P_HI && sumLo == P_LO) || (hi == twoPHi && sumLo == twoPLo);
        }
    }

    /// `base^exponent mod p` for a 48-byte `base`, as (top 16 bytes, low 32 bytes).
    function _powModP(bytes memory base, uint8 exponent) private view returns (uint256 hi, uint256 lo) {
        bytes memory input =
            abi.encodePacked(uint256(48), uint256(1), uint256(48), base, exponent, bytes16(uint128(P_HI)), P_LO);
        (bool ok, bytes memory r) = MODEXP.staticcall(input);
        if (!ok || r.length != 48) revert PrecompileFailed(MODEXP);
        assembly {
            hi := shr(128, mload(add(r, 32)))
            lo := mload(add(r, 48))
        }
    }

    /// The same for G2 (96 bytes compressed: x.c1 with the flags, then x.c0; the sign is that
    /// of y.c1, or of y.c0 when y.c1 is zero).
    function matchesCompressedG2(bytes memory compressed, bytes memory point) internal pure returns (bool) {
        if (compressed.length != 96 || point.length != 256) return false;
        uint8 flags = uint8(compressed[0]);
        if (flags & 0x80 == 0 || flags & 0x40 != 0) return false;
        (uint256 x0Hi, uint256 x0Lo) = _fp(point, 0);
        (uint256 x1Hi, uint256 x1Lo) = _fp(point, 64);
        if (!_sameX(compressed, 0, x1Hi, x1Lo, true) || !_sameX(compressed, 48, x0Hi, x0Lo, false)) return false;
        (uint256 y0Hi, uint256 y0Lo) = _fp(point, 128);
        (uint256 y1Hi, uint256 y1Lo) = _fp(point, 192);
        if ((x0Hi | x0Lo | x1Hi | x1Lo | y0Hi | y0Lo | y1Hi | y1Lo) == 0) return false;
        bool larger = (y1Hi | y1Lo) != 0 ? _isLarger(y1Hi, y1Lo) : _isLarger(y0Hi, y0Lo);
        return larger == (flags & 0x20 != 0);
    }
}
