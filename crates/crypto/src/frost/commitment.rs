//! Nonce commitments and the commitment list (RFC 9591 sections 4.3 and 5.1).
//!
//! Each signer publishes `(D_i, E_i) = (d_i G, e_i G)`. The coordinator gathers them into the
//! commitment list, sorted by identifier without repeats, which every signer and the coordinator
//! hash into the binding factors with `encode_group_commitment_list` (section 4.3).

use k256::AffinePoint;

use super::ciphersuite::{deserialize_element, serialize_element};
use super::error::FrostError;
use super::keys::Identifier;

/// Length of an encoded [`SigningCommitments`]: two compressed points.
pub const COMMITMENTS_LEN: usize = 66;
/// Length of one encoded list entry: identifier, hiding and binding commitment.
pub const ENTRY_LEN: usize = 32 + COMMITMENTS_LEN;

/// A signer's hiding and binding nonce commitments; neither is the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningCommitments {
    hiding: AffinePoint,
    binding: AffinePoint,
}

impl SigningCommitments {
    /// Commitments from two points; identity points are refused.
    pub fn new(hiding: AffinePoint, binding: AffinePoint) -> Result<Self, FrostError> {
        serialize_element(&hiding)?;
        serialize_element(&binding)?;
        Ok(SigningCommitments { hiding, binding })
    }

    /// `D_i`.
    pub fn hiding(&self) -> &AffinePoint {
        &self.hiding
    }

    /// `E_i`.
    pub fn binding(&self) -> &AffinePoint {
        &self.binding
    }

    /// `SerializeElement(D_i) || SerializeElement(E_i)`.
    pub fn to_bytes(&self) -> [u8; COMMITMENTS_LEN] {
        let mut out = [0u8; COMMITMENTS_LEN];
        // Both points were checked non-identity at construction.
        out[..33].copy_from_slice(&serialize_element(&self.hiding).unwrap_or([0; 33]));
        out[33..].copy_from_slice(&serialize_element(&self.binding).unwrap_or([0; 33]));
        out
    }

    /// Decodes two canonical, non-identity compressed points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrostError> {
        crate::group::expect_len(bytes, COMMITMENTS_LEN)?;
        Ok(SigningCommitments {
            hiding: deserialize_element(&bytes[..33])?,
            binding: deserialize_element(&bytes[33..])?,
        })
    }
}

/// The commitment list of one signing operation: strictly ascending identifiers, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentList {
    entries: Vec<(Identifier, SigningCommitments)>,
}

impl CommitmentList {
    /// Sorts the entries by identifier; repeats, an empty list or more than `max_signers`
    /// entries are refused.
    pub fn new(
        mut entries: Vec<(Identifier, SigningCommitments)>,
        max_signers: usize,
    ) -> Result<Self, FrostError> {
        if entries.len() > max_signers {
            return Err(FrostError::TooManySigners {
                max: max_signers,
                actual: entries.len(),
            });
        }
        if entries.is_empty() {
            return Err(FrostError::NotEnoughSigners { needed: 1, got: 0 });
        }
        entries.sort_by_key(|e| e.0);
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(FrostError::DuplicateIdentifier(w[0].0));
        }
        Ok(CommitmentList { entries })
    }

    /// The entries in ascending identifier order.
    pub fn entries(&self) -> &[(Identifier, SigningCommitments)] {
        &self.entries
    }

    /// Number of signers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: a list has at least one entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The signers' identifiers, ascending.
    pub fn participants(&self) -> Vec<Identifier> {
        self.entries.iter().map(|e| e.0).collect()
    }

    /// Position of a signer in the list.
    pub fn position(&self, id: &Identifier) -> Option<usize> {
        self.entries.binary_search_by(|e| e.0.cmp(id)).ok()
    }

    /// `encode_group_commitment_list` (RFC 9591 section 4.3): for each entry,
    /// `SerializeScalar(id) || SerializeElement(D) || SerializeElement(E)`. It is also the wire
    /// encoding, which [`CommitmentList::from_bytes`] reads back.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for (id, c) in &self.entries {
            out.extend_from_slice(&id.to_bytes());
            out.extend_from_slice(&c.to_bytes());
        }
        out
    }

    /// Decodes [`CommitmentList::encode`]'s output; the list must already be strictly ascending
    /// (one encoding per list) and hold at most `max_signers` entries.
    pub fn from_bytes(bytes: &[u8], max_signers: usize) -> Result<Self, FrostError> {
        if !bytes.len().is_multiple_of(ENTRY_LEN) {
            return Err(FrostError::Decode(crate::error::DecodeError::Length {
                expected: (bytes.len() / ENTRY_LEN + 1) * ENTRY_LEN,
                actual: bytes.len(),
            }));
        }
        let count = bytes.len() / ENTRY_LEN;
        if count > max_signers {
            return Err(FrostError::TooManySigners {
                max: max_signers,
                actual: count,
            });
        }
        let mut entries: Vec<(Identifier, SigningCommitments)> = Vec::with_capacity(count);
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let id = Identifier::from_bytes(&chunk[..32])?;
            if let Some(last) = entries.last()
                && last.0 >= id
            {
                return Err(FrostError::UnsortedCommitments);
            }
            entries.push((id, SigningCommitments::from_bytes(&chunk[32..])?));
        }
        CommitmentList::new(entries, max_signers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ProjectivePoint;

    fn commitments(k: u64) -> SigningCommitments {
        let g = ProjectivePoint::GENERATOR;
        SigningCommitments::new(
            group::Curve::to_affine(&(g * k256::Scalar::from(k))),
            group::Curve::to_affine(&(g * k256::Scalar::from(k + 100))),
        )
        .unwrap()
    }

    fn id(i: u64) -> Identifier {
        Identifier::from_u64(i).unwrap()
    }

    #[test]
    fn list_is_sorted_and_round_trips() {
        let list =
            CommitmentList::new(vec![(id(3), commitments(3)), (id(1), commitments(1))], 8).unwrap();
        assert_eq!(list.participants(), vec![id(1), id(3)]);
        let bytes = list.encode();
        assert_eq!(bytes.len(), 2 * ENTRY_LEN);
        assert_eq!(CommitmentList::from_bytes(&bytes, 8).unwrap(), list);
    }

    #[test]
    fn bad_lists_are_refused() {
        assert_eq!(
            CommitmentList::new(vec![(id(1), commitments(1)), (id(1), commitments(2))], 8),
            Err(FrostError::DuplicateIdentifier(id(1)))
        );
        assert!(matches!(
            CommitmentList::new(vec![(id(1), commitments(1)), (id(2), commitments(2))], 1),
            Err(FrostError::TooManySigners { .. })
        ));
        let sorted = CommitmentList::new(vec![(id(1), commitments(1)), (id(2), commitments(2))], 8)
            .unwrap()
            .encode();
        let mut swapped = sorted[ENTRY_LEN..].to_vec();
        swapped.extend_from_slice(&sorted[..ENTRY_LEN]);
        assert_eq!(
            CommitmentList::from_bytes(&swapped, 8),
            Err(FrostError::UnsortedCommitments)
        );
        assert!(CommitmentList::from_bytes(&sorted[..ENTRY_LEN - 1], 8).is_err());
        assert!(CommitmentList::from_bytes(&[], 8).is_err());
        // An identity commitment is refused.
        let mut identity = sorted.clone();
        identity[32..65].fill(0);
        assert!(CommitmentList::from_bytes(&identity, 8).is_err());
        assert!(SigningCommitments::new(AffinePoint::IDENTITY, AffinePoint::GENERATOR).is_err());
    }
}
