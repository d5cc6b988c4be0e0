//! Hashing helpers: RFC 9380 `expand_message_xmd` (SHA-256) and transcript hashing.

use sha2::{Digest, Sha256};

/// RFC 9380 section 5.3.1 `expand_message_xmd` with SHA-256, for a fixed output length `L`.
///
/// `L` must be at most 255 * 32 and the DST at most 255 bytes (longer DSTs are hashed as in
/// section 5.3.3).
pub fn expand_message_xmd<const L: usize>(msg: &[u8], dst: &[u8]) -> [u8; L] {
    const B: usize = 32; // SHA-256 output
    const R: usize = 64; // SHA-256 block
    assert!(L <= 255 * B && L > 0, "output length out of range");
    let long_dst;
    let dst = if dst.len() > 255 {
        let mut h = Sha256::new();
        h.update(b"H2C-OVERSIZE-DST-");
        h.update(dst);
        long_dst = h.finalize();
        &long_dst[..]
    } else {
        dst
    };
    let ell = L.div_ceil(B);
    let dst_prime_len = [dst.len() as u8];
    let mut h = Sha256::new();
    h.update([0u8; R]);
    h.update(msg);
    h.update((L as u16).to_be_bytes());
    h.update([0u8]);
    h.update(dst);
    h.update(dst_prime_len);
    let b0 = h.finalize();
    let mut out = [0u8; L];
    let mut prev = {
        let mut h = Sha256::new();
        h.update(b0);
        h.update([1u8]);
        h.update(dst);
        h.update(dst_prime_len);
        h.finalize()
    };
    for i in 1..=ell {
        let start = (i - 1) * B;
        let end = (start + B).min(L);
        out[start..end].copy_from_slice(&prev[..end - start]);
        if i < ell {
            let mut x = [0u8; B];
            for (j, xj) in x.iter_mut().enumerate() {
                *xj = b0[j] ^ prev[j];
            }
            let mut h = Sha256::new();
            h.update(x);
            h.update([(i + 1) as u8]);
            h.update(dst);
            h.update(dst_prime_len);
            prev = h.finalize();
        }
    }
    out
}

/// Domain-separated SHA-256 over length-prefixed parts, for transcripts and ids.
///
/// Each part is prefixed by its length as u64 big-endian, so distinct part lists never collide.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((tag.len() as u64).to_be_bytes());
    h.update(tag.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9380 appendix K.1, expand_message_xmd(SHA-256), DST "QUUX-V01-CS02-with-expander-SHA256-128".
    #[test]
    fn rfc9380_expand_message_xmd_vectors() {
        let dst = b"QUUX-V01-CS02-with-expander-SHA256-128";
        let out: [u8; 32] = expand_message_xmd(b"", dst);
        assert_eq!(
            hex::encode(out),
            "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"
        );
        let out: [u8; 32] = expand_message_xmd(b"abc", dst);
        assert_eq!(
            hex::encode(out),
            "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"
        );
        let out: [u8; 128] = expand_message_xmd(b"", dst);
        assert_eq!(
            hex::encode(out),
            "af84c27ccfd45d41914fdff5df25293e221afc53d8ad2ac06d5e3e29485dadbee0d121587713a3e0dd4d5e69e93eb7cd4f5df4cd103e188cf60cb02edc3edf18eda8576c412b18ffb658e3dd6ec849469b979d444cf7b26911a08e63cf31f9dcc541708d3491184472c2c29bb749d4286b004ceb5ee6b9a7fa5b646c993f0ced"
        );
    }

    #[test]
    fn tagged_hash_separates_parts() {
        assert_ne!(
            tagged_hash("t", &[b"ab", b"c"]),
            tagged_hash("t", &[b"a", b"bc"])
        );
        assert_ne!(tagged_hash("t1", &[b"x"]), tagged_hash("t2", &[b"x"]));
    }
}
