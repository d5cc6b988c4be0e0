//! Signed address records: the binding from a validator identity to a libp2p
//! peer and its addresses.
//!
//! Validators know each other by identity key from the chain, but libp2p
//! dials peer ids. Each node therefore publishes a record signed with its
//! identity key into the DHT under `SHA-256("keyquorum-addr-v1" || identity)`,
//! so the key is computable from chain data alone and nobody else's record can
//! collide with it. DHT nodes are untrusted: whoever reads a record re-checks
//! the key, the identity, the signature and the peer id, and takes the highest
//! sequence number so that a replayed old record loses to a fresh one.
//!
//! The encoding is a hand-written, length-prefixed layout rather than a serde
//! format because the signed bytes must be canonical: the signature covers a
//! domain tag plus exactly the fields that are on the wire, in a fixed order,
//! and decoding rejects anything that would not re-encode identically
//! (trailing bytes, oversize fields).

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use sha2::{Digest, Sha256};

use crate::error::RecordError;
use crate::identity::{IdentitySigner, IdentityVerifier};

/// Prefix hashed with the identity key to derive the DHT key.
pub const DHT_KEY_DOMAIN: &[u8] = b"keyquorum-addr-v1";
/// Prefix of the signed message, so the identity key's signatures on
/// address records cannot be confused with its other uses.
pub const SIGNATURE_DOMAIN: &[u8] = b"keyquorum-addr-record-v1\0";

const VERSION: u8 = 1;
/// Upper bound on an encoded record; also bounds what a DHT node stores.
pub const MAX_RECORD_BYTES: usize = 4096;
/// Upper bound on the number of advertised addresses.
pub const MAX_ADDRESSES: usize = 16;
const MAX_KEY_BYTES: usize = 512;
const MAX_SIG_BYTES: usize = 512;
const MAX_ADDR_BYTES: usize = 256;

/// DHT key under which the record of `identity_public_key` is stored.
pub fn dht_key(identity_public_key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DHT_KEY_DOMAIN);
    h.update(identity_public_key);
    h.finalize().into()
}

/// A validator's signed statement "my identity is reachable as `peer_id` at
/// `addresses`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRecord {
    pub identity_public_key: Vec<u8>,
    pub peer_id: PeerId,
    pub addresses: Vec<Multiaddr>,
    /// Monotonic version; readers keep the highest one.
    pub sequence: u64,
    pub signature: Vec<u8>,
}

impl AddressRecord {
    /// Builds and signs a record. Any `/p2p/..` suffix is stripped from the
    /// addresses since the peer id is carried separately.
    pub fn new_signed(
        signer: &dyn IdentitySigner,
        peer_id: PeerId,
        addresses: Vec<Multiaddr>,
        sequence: u64,
    ) -> Result<Self, RecordError> {
        let mut addresses: Vec<Multiaddr> = addresses.into_iter().map(strip_p2p).collect();
        addresses.dedup();
        if addresses.len() > MAX_ADDRESSES {
            return Err(RecordError::TooLarge);
        }
        let mut record = AddressRecord {
            identity_public_key: signer.public_key(),
            peer_id,
            addresses,
            sequence,
            signature: Vec::new(),
        };
        let msg = record.signing_message()?;
        record.signature = signer.sign(&msg);
        if record.encode()?.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        Ok(record)
    }

    /// DHT key of this record's identity.
    pub fn dht_key(&self) -> [u8; 32] {
        dht_key(&self.identity_public_key)
    }

    /// The exact bytes covered by the signature.
    pub fn signing_message(&self) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(SIGNATURE_DOMAIN);
        self.encode_unsigned(&mut out)?;
        Ok(out)
    }

    /// Canonical encoding (unsigned fields followed by the signature).
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::with_capacity(256);
        self.encode_unsigned(&mut out)?;
        put_bytes16(&mut out, &self.signature, MAX_SIG_BYTES)?;
        if out.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        Ok(out)
    }

    fn encode_unsigned(&self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        out.push(VERSION);
        put_bytes16(out, &self.identity_public_key, MAX_KEY_BYTES)?;
        let peer = self.peer_id.to_bytes();
        let peer_len = u8::try_from(peer.len()).map_err(|_| RecordError::TooLarge)?;
        out.push(peer_len);
        out.extend_from_slice(&peer);
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(RecordError::TooLarge);
        }
        // Bounded by MAX_ADDRESSES, so the cast cannot truncate.
        out.push(self.addresses.len() as u8);
        for addr in &self.addresses {
            put_bytes16(out, addr.as_ref(), MAX_ADDR_BYTES)?;
        }
        out.extend_from_slice(&self.sequence.to_be_bytes());
        Ok(())
    }

    /// Parses a record without checking its signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        let mut r = Reader { buf: bytes };
        if r.u8()? != VERSION {
            return Err(RecordError::Malformed("unsupported version"));
        }
        let identity_public_key = r.bytes16(MAX_KEY_BYTES)?.to_vec();
        let peer_len = usize::from(r.u8()?);
        let peer_id = PeerId::from_bytes(r.take(peer_len)?)
            .map_err(|_| RecordError::Malformed("invalid peer id"))?;
        let count = usize::from(r.u8()?);
        if count > MAX_ADDRESSES {
            return Err(RecordError::Malformed("too many addresses"));
        }
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let raw = r.bytes16(MAX_ADDR_BYTES)?;
            let addr = Multiaddr::try_from(raw.to_vec())
                .map_err(|_| RecordError::Malformed("invalid multiaddr"))?;
            addresses.push(addr);
        }
        let sequence = u64::from_be_bytes(
            r.take(8)?
                .try_into()
                .map_err(|_| RecordError::Malformed("truncated"))?,
        );
        let signature = r.bytes16(MAX_SIG_BYTES)?.to_vec();
        if !r.buf.is_empty() {
            return Err(RecordError::Malformed("trailing bytes"));
        }
        Ok(AddressRecord {
            identity_public_key,
            peer_id,
            addresses,
            sequence,
            signature,
        })
    }

    /// Checks the identity signature and that every address that names a
    /// peer names the record's own peer.
    pub fn verify_signature(&self, verifier: &dyn IdentityVerifier) -> Result<(), RecordError> {
        for addr in &self.addresses {
            if let Some(Protocol::P2p(p)) = addr.iter().last()
                && p != self.peer_id
            {
                return Err(RecordError::PeerMismatch);
            }
        }
        let msg = self.signing_message()?;
        if verifier.verify(&self.identity_public_key, &msg, &self.signature) {
            Ok(())
        } else {
            Err(RecordError::BadSignature)
        }
    }
}

/// What a verified record must match, depending on where it came from.
#[derive(Default, Clone, Copy)]
pub struct Expect<'a> {
    /// DHT key the record was stored under.
    pub dht_key: Option<&'a [u8]>,
    /// Identity we were looking for.
    pub identity: Option<&'a [u8]>,
    /// Peer that presented the record over an authenticated connection.
    pub peer: Option<&'a PeerId>,
}

/// Decodes `bytes` and runs every check in `expect` plus the signature.
/// Cheap structural checks go first so that garbage never reaches the
/// (possibly expensive) signature verification.
pub fn verify_record_bytes(
    bytes: &[u8],
    expect: Expect<'_>,
    verifier: &dyn IdentityVerifier,
) -> Result<AddressRecord, RecordError> {
    let record = AddressRecord::decode(bytes)?;
    if let Some(key) = expect.dht_key
        && key != record.dht_key().as_slice()
    {
        return Err(RecordError::KeyMismatch);
    }
    if let Some(id) = expect.identity
        && id != record.identity_public_key.as_slice()
    {
        return Err(RecordError::IdentityMismatch);
    }
    if let Some(peer) = expect.peer
        && *peer != record.peer_id
    {
        return Err(RecordError::PeerMismatch);
    }
    record.verify_signature(verifier)?;
    Ok(record)
}

/// Removes a trailing `/p2p/<peer>` component, if any.
pub fn strip_p2p(mut addr: Multiaddr) -> Multiaddr {
    if let Some(Protocol::P2p(_)) = addr.iter().last() {
        addr.pop();
    }
    addr
}

/// Splits the trailing `/p2p/<peer>` component off an address.
pub fn split_p2p(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some((peer, strip_p2p(addr.clone()))),
        _ => None,
    }
}

fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8], max: usize) -> Result<(), RecordError> {
    if bytes.len() > max {
        return Err(RecordError::TooLarge);
    }
    let len = u16::try_from(bytes.len()).map_err(|_| RecordError::TooLarge)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Malformed("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn bytes16(&mut self, max: usize) -> Result<&'a [u8], RecordError> {
        let raw = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([raw[0], raw[1]]));
        if len > max {
            return Err(RecordError::Malformed("field too long"));
        }
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestIdentity, verify_test_signature};

    fn sample(id: &TestIdentity, seq: u64) -> AddressRecord {
        let peer = PeerId::random();
        let addrs = vec![
            "/ip4/127.0.0.1/tcp/4001".parse().unwrap(),
            format!("/ip4/10.0.0.1/tcp/4002/p2p/{peer}")
                .parse()
                .unwrap(),
        ];
        AddressRecord::new_signed(id, peer, addrs, seq).unwrap()
    }

    #[test]
    fn roundtrip_and_verify() {
        let id = TestIdentity::generate();
        let rec = sample(&id, 7);
        assert!(rec.addresses.iter().all(|a| split_p2p(a).is_none()));
        let bytes = rec.encode().unwrap();
        let back = AddressRecord::decode(&bytes).unwrap();
        assert_eq!(back, rec);
        let key = rec.dht_key();
        let ok = verify_record_bytes(
            &bytes,
            Expect {
                dht_key: Some(&key),
                identity: Some(&id.public_key()),
                peer: Some(&rec.peer_id),
            },
            &verify_test_signature,
        );
        assert_eq!(ok.unwrap(), rec);
    }

    #[test]
    fn tampering_is_detected() {
        let id = TestIdentity::generate();
        let other = TestIdentity::generate();
        let rec = sample(&id, 1);

        let mut bumped = rec.clone();
        bumped.sequence += 1;
        assert_eq!(
            bumped.verify_signature(&verify_test_signature),
            Err(RecordError::BadSignature)
        );

        let mut stolen = sample(&other, 1);
        stolen.identity_public_key = id.public_key();
        assert_eq!(
            stolen.verify_signature(&verify_test_signature),
            Err(RecordError::BadSignature)
        );

        let bytes = rec.encode().unwrap();
        let wrong_key = dht_key(&other.public_key());
        assert_eq!(
            verify_record_bytes(
                &bytes,
                Expect {
                    dht_key: Some(&wrong_key),
                    ..Expect::default()
                },
                &verify_test_signature
            ),
            Err(RecordError::KeyMismatch)
        );
        assert_eq!(
            verify_record_bytes(
                &bytes,
                Expect {
                    peer: Some(&PeerId::random()),
                    ..Expect::default()
                },
                &verify_test_signature
            ),
            Err(RecordError::PeerMismatch)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let id = TestIdentity::generate();
        let bytes = sample(&id, 3).encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(AddressRecord::decode(&bytes[..cut]).is_err());
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(AddressRecord::decode(&trailing).is_err());
        // Pseudo-random bit flips: must be rejected or, at worst, decode to a
        // record whose signature fails.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = bytes.clone();
            let i = (state as usize) % b.len();
            b[i] ^= 1 << ((state >> 60) & 7);
            if let Ok(r) = AddressRecord::decode(&b) {
                let _ = r.verify_signature(&verify_test_signature);
            }
        }
    }
}
