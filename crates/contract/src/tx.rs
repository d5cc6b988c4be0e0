//! Transactions: canonical binary encoding with bounds, and signatures by the sender's identity
//! key.
//!
//! ```text
//! transaction = version (u8 = 1) || sender (96, compressed G2 identity key) || nonce (u64)
//!               || body || signature (48, compressed G1)
//! body        = tag (u8) || fields
//! signed      = Purpose::Transaction digest of
//!               bytes(chain id) || sender || nonce || body
//! ```
//!
//! Every variable-length field has a bound that is checked before anything is allocated
//! (`keyquorum_dkg::wire`), trailing bytes are an error, and re-encoding a decoded transaction
//! gives back its bytes, so a transaction has exactly one encoding and one hash. Decoding
//! validates what it can without state (key and point encodings, UTF-8); the contract checks the
//! rest. Decoding never panics (a property test feeds it random bytes).
//!
//! The chain id is not in the encoding but in the signed message, so a transaction signed for
//! one chain fails signature verification on another; the nonce is the sender's transaction
//! count, so a transaction cannot be replayed on the same chain either.

use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::{self, EncryptionPublicKey};
use keyquorum_crypto::tbls::{MinPk, PartialSignature};
use keyquorum_crypto::verifiable_encrypt::{self, VerifiableEncryptionPublicKey};
use keyquorum_dkg::identity::{
    self, IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose, SIGNATURE_LEN,
};
use keyquorum_dkg::params::MAX_PARTICIPANTS;
use keyquorum_dkg::wire::{Reader, WireError, Writer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::DkgVariant;
use crate::hex::Bytes;

/// Encoding version.
pub const TX_VERSION: u8 = 1;
/// Longest libp2p peer id accepted (a multihash of a public key is at most 42 bytes today).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Most addresses per node.
pub const MAX_ADDRESSES: usize = 8;
/// Longest address string (a multiaddr in text form).
pub const MAX_ADDRESS_LEN: usize = 256;
/// Length of an encoded threshold-BLS partial signature (32-byte index, compressed G2).
pub const PARTIAL_LEN: usize = 32 + 96;
/// Fixed part of a transaction: version, sender, nonce, body tag, signature.
const TX_OVERHEAD: usize = 1 + identity::PUBLIC_KEY_LEN + 8 + 1 + SIGNATURE_LEN;

const TAG_REGISTER: u8 = 1;
const TAG_ADD_STAKE: u8 = 2;
const TAG_UNBOND: u8 = 3;
const TAG_DEREGISTER: u8 = 4;
const TAG_UPDATE_NETWORK: u8 = 5;
const TAG_DKG_POST: u8 = 6;
const TAG_MAGIC_BLOCK_SIGNATURE: u8 = 7;
const TAG_TRANSFER: u8 = 8;
const TAG_CLAIM_UNBONDED: u8 = 9;
const TAG_SET_VERIFIABLE_KEY: u8 = 10;
const TAG_SIGNING_KEY_POST: u8 = 11;
const TAG_CANCEL_LEAVE: u8 = 12;

/// Longest encoded signed complaint-variant post for at most `n` players and `n` dealers: a
/// report that complains about every dealer (each complaint carries the dealer's commitment,
/// `n + 1` uncompressed points) bounds the others (justification, Feldman post, disclosures,
/// dispute). Quadratic in `n`, unlike the ack-or-reveal posts.
pub fn max_complaint_post_len(n: usize) -> usize {
    use keyquorum_crypto::verifiable_encrypt::REVEAL_LEN;
    use keyquorum_dkg::complaint::messages::PAIR_CIPHERTEXT_LEN;
    let header = SIGNATURE_LEN + 1 + 32 + 4;
    let commitment = 4 + (n + 1) * Bls12381G1::UNCOMPRESSED_LEN;
    let report = header
        + 4
        + n * (4 + 32 + SIGNATURE_LEN)
        + 4
        + n.div_ceil(8)
        + 4
        + n * (4 + commitment + 4 + PAIR_CIPHERTEXT_LEN + SIGNATURE_LEN + 1 + REVEAL_LEN)
        // A conflicting commitment statement (flag, dealer, hash, signature).
        + 1
        + 4
        + 32
        + SIGNATURE_LEN;
    let justification = header + commitment + 4 + n * (4 + 4 + PAIR_CIPHERTEXT_LEN);
    let disclosure = header + 4 + n * (4 + 32 + 32) + 4 + n * (4 + commitment);
    let dispute = header + 4 + n * (4 + REVEAL_LEN);
    report.max(justification).max(disclosure).max(dispute)
}

/// Longest transaction a contract whose committees have at most `max_n` members and run
/// `variant` accepts; with a signing key ([`crate::signing_key`]) its ceremony's complaint posts
/// (on secp256k1, shorter than the same posts on BLS12-381) fit too.
pub fn max_tx_len_for(max_n: usize, variant: DkgVariant, signing_key: bool) -> usize {
    if signing_key {
        return max_tx_len_for(max_n, DkgVariant::Complaint, false)
            .max(max_tx_len_for(max_n, variant, false));
    }
    match variant {
        DkgVariant::AckReveal => max_tx_len(max_n),
        DkgVariant::Complaint => {
            TX_OVERHEAD + 4 + max_post_len(max_n).max(max_complaint_post_len(max_n))
        }
    }
}

/// Longest encoded signed post (contribution or publication) for a committee of `n`.
pub fn max_post_len(n: usize) -> usize {
    let header = SIGNATURE_LEN + 1 + 32 + 4;
    // Contribution: count, then n + 1 uncompressed points.
    let contribution = header + 4 + (n + 1) * Bls12381G1::UNCOMPRESSED_LEN;
    // Publication: attempt, commitment hash, bitmap, optional aggregate, reveals.
    let publication = header + 4 + 32 + 4 + n.div_ceil(8) + 1 + SIGNATURE_LEN + 4 + n * (4 + 32);
    contribution.max(publication)
}

/// Longest transaction for committees of at most `max_n` (a DkgPost with the longest post).
pub fn max_tx_len(max_n: usize) -> usize {
    TX_OVERHEAD + 4 + max_post_len(max_n)
}

/// Longest transaction any ack-or-reveal configuration accepts (complaint-variant posts grow
/// with `n^2`: [`max_tx_len_for`]).
pub const MAX_TX_LEN: usize =
    TX_OVERHEAD + 4 + SIGNATURE_LEN + 1 + 32 + 4 + 4 + (MAX_PARTICIPANTS + 1) * 96;

/// A node's network identity: libp2p peer id and addresses (multiaddrs as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkIdentity {
    /// libp2p peer id bytes.
    pub peer_id: Bytes,
    /// Addresses, at most [`MAX_ADDRESSES`] of at most [`MAX_ADDRESS_LEN`] bytes.
    pub addresses: Vec<String>,
}

impl NetworkIdentity {
    /// Checks the bounds that decoding enforces (for values built in code).
    pub fn validate(&self) -> Result<(), TxDecodeError> {
        if self.peer_id.0.is_empty() || self.peer_id.0.len() > MAX_PEER_ID_LEN {
            return Err(TxDecodeError::Network("peer id must be 1 to 64 bytes"));
        }
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(TxDecodeError::Network("too many addresses"));
        }
        for a in &self.addresses {
            check_address(a)?;
        }
        Ok(())
    }

    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.peer_id.0);
        w.u32(self.addresses.len() as u32);
        for a in &self.addresses {
            w.bytes(a.as_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, TxDecodeError> {
        let peer_id = r.bytes("peer id", MAX_PEER_ID_LEN)?.to_vec();
        let count = r.count("addresses", MAX_ADDRESSES)?;
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let raw = r.bytes("address", MAX_ADDRESS_LEN)?;
            let s = core::str::from_utf8(raw)
                .map_err(|_| TxDecodeError::Network("address is not UTF-8"))?;
            check_address(s)?;
            addresses.push(s.to_string());
        }
        let n = NetworkIdentity {
            peer_id: Bytes(peer_id),
            addresses,
        };
        n.validate()?;
        Ok(n)
    }
}

fn check_address(a: &str) -> Result<(), TxDecodeError> {
    if a.is_empty() || a.len() > MAX_ADDRESS_LEN {
        return Err(TxDecodeError::Network("address must be 1 to 256 bytes"));
    }
    // Addresses end up in JSON, logs and dialers: no control characters.
    if a.chars().any(|c| c.is_control()) {
        return Err(TxDecodeError::Network(
            "address contains control characters",
        ));
    }
    Ok(())
}

/// Which key a magic-block partial signature is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignerRole {
    /// A member of the new committee, under the new group key (key confirmation).
    New,
    /// A member of the previous committee, under the previous group key (the link that lets
    /// anyone holding the genesis key follow the chain of magic blocks).
    Old,
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxBody {
    /// Join the registry with the sender's identity key.
    Register {
        /// Proof of possession of the identity key (rogue-key protection for ack aggregation).
        pop: IdentitySignature,
        /// Key that DKG shares are encrypted to.
        encryption_key: EncryptionPublicKey,
        /// How peers reach the node.
        network: NetworkIdentity,
        /// Initial stake, locked from the sender's balance.
        stake: u64,
    },
    /// Increase the sender's stake, locking more of its balance.
    AddStake {
        /// Amount added.
        amount: u64,
    },
    /// Decrease the sender's stake: the amount stops counting at once and can be claimed back
    /// to the balance after the unbonding period.
    Unbond {
        /// Amount unbonded.
        amount: u64,
    },
    /// Leave the registry; the whole stake starts unbonding.
    Deregister,
    /// Stay after all: cancels the sender's scheduled deregistration (a `Deregister` sent while
    /// its stake was locked, which has not taken effect yet).
    CancelLeave,
    /// Move balance to another account (created if new).
    Transfer {
        /// The recipient's identity key.
        to: IdentityPublicKey,
        /// Amount.
        amount: u64,
    },
    /// Move every unbonding amount whose period is over back to the balance.
    ClaimUnbonded,
    /// Replace the sender's network identity.
    UpdateNetwork {
        /// The new identity.
        network: NetworkIdentity,
    },
    /// Set the sender's key for verifiable share encryption, which complaint-variant
    /// ceremonies need from every member (once per node; no proof of possession is needed: a
    /// node that registers someone else's key only makes its own shares unreadable to itself).
    SetVerifiableKey {
        /// The key.
        key: VerifiableEncryptionPublicKey,
    },
    /// An encoded signed post for the current ceremony: a `keyquorum_dkg::messages::SignedPost`
    /// (ack-or-reveal) or a `keyquorum_dkg::complaint::messages::SignedComplaintPost`
    /// (complaint variant).
    DkgPost {
        /// The signed post.
        post: Vec<u8>,
    },
    /// An encoded `keyquorum_dkg::complaint::messages::SignedComplaintPost` on secp256k1 for
    /// the running signing-key ceremony ([`crate::signing_key`]).
    SigningKeyPost {
        /// The signed post.
        post: Vec<u8>,
    },
    /// A partial signature on the pending magic block.
    MagicBlockSignature {
        /// View of the magic block.
        view: u64,
        /// Its hash.
        block_hash: [u8; 32],
        /// Under the new or the previous key.
        role: SignerRole,
        /// The partial signature (its index is the signer's index in that committee).
        partial: PartialSignature<MinPk>,
    },
}

impl TxBody {
    /// A short name for logs and events.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Register { .. } => "register",
            TxBody::AddStake { .. } => "add_stake",
            TxBody::Unbond { .. } => "unbond",
            TxBody::Deregister => "deregister",
            TxBody::CancelLeave => "cancel_leave",
            TxBody::Transfer { .. } => "transfer",
            TxBody::ClaimUnbonded => "claim_unbonded",
            TxBody::UpdateNetwork { .. } => "update_network",
            TxBody::SetVerifiableKey { .. } => "set_verifiable_key",
            TxBody::DkgPost { .. } => "dkg_post",
            TxBody::SigningKeyPost { .. } => "signing_key_post",
            TxBody::MagicBlockSignature { .. } => "magic_block_signature",
        }
    }

    /// Canonical encoding of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        w.finish()
    }

    fn encode_into(&self, w: &mut Writer) {
        match self {
            TxBody::Register {
                pop,
                encryption_key,
                network,
                stake,
            } => {
                w.u8(TAG_REGISTER)
                    .fixed(&pop.0)
                    .fixed(encryption_key.as_bytes());
                network.encode(w);
                w.u64(*stake);
            }
            TxBody::AddStake { amount } => {
                w.u8(TAG_ADD_STAKE).u64(*amount);
            }
            TxBody::Unbond { amount } => {
                w.u8(TAG_UNBOND).u64(*amount);
            }
            TxBody::Deregister => {
                w.u8(TAG_DEREGISTER);
            }
            TxBody::CancelLeave => {
                w.u8(TAG_CANCEL_LEAVE);
            }
            TxBody::Transfer { to, amount } => {
                w.u8(TAG_TRANSFER).fixed(to.as_bytes()).u64(*amount);
            }
            TxBody::ClaimUnbonded => {
                w.u8(TAG_CLAIM_UNBONDED);
            }
            TxBody::UpdateNetwork { network } => {
                w.u8(TAG_UPDATE_NETWORK);
                network.encode(w);
            }
            TxBody::SetVerifiableKey { key } => {
                w.u8(TAG_SET_VERIFIABLE_KEY).fixed(&key.to_bytes());
            }
            TxBody::DkgPost { post } => {
                w.u8(TAG_DKG_POST).bytes(post);
            }
            TxBody::SigningKeyPost { post } => {
                w.u8(TAG_SIGNING_KEY_POST).bytes(post);
            }
            TxBody::MagicBlockSignature {
                view,
                block_hash,
                role,
                partial,
            } => {
                w.u8(TAG_MAGIC_BLOCK_SIGNATURE)
                    .u64(*view)
                    .fixed(block_hash)
                    .u8(match role {
                        SignerRole::New => 0,
                        SignerRole::Old => 1,
                    })
                    .fixed(&partial.to_bytes());
            }
        }
    }

    fn decode(r: &mut Reader<'_>, max_post: usize) -> Result<Self, TxDecodeError> {
        Ok(match r.u8()? {
            TAG_REGISTER => {
                let pop = IdentitySignature(r.array()?);
                let encryption_key =
                    encrypt::EncryptionPublicKey::from_bytes(r.fixed(encrypt::PUBLIC_KEY_LEN)?)
                        .map_err(|_| TxDecodeError::EncryptionKey)?;
                let network = NetworkIdentity::decode(r)?;
                let stake = r.u64()?;
                TxBody::Register {
                    pop,
                    encryption_key,
                    network,
                    stake,
                }
            }
            TAG_ADD_STAKE => TxBody::AddStake { amount: r.u64()? },
            TAG_UNBOND => TxBody::Unbond { amount: r.u64()? },
            TAG_DEREGISTER => TxBody::Deregister,
            TAG_CANCEL_LEAVE => TxBody::CancelLeave,
            TAG_TRANSFER => TxBody::Transfer {
                to: IdentityPublicKey::from_bytes(r.fixed(identity::PUBLIC_KEY_LEN)?)
                    .map_err(|_| TxDecodeError::RecipientKey)?,
                amount: r.u64()?,
            },
            TAG_CLAIM_UNBONDED => TxBody::ClaimUnbonded,
            TAG_UPDATE_NETWORK => TxBody::UpdateNetwork {
                network: NetworkIdentity::decode(r)?,
            },
            TAG_SET_VERIFIABLE_KEY => TxBody::SetVerifiableKey {
                key: VerifiableEncryptionPublicKey::from_bytes(
                    r.fixed(verifiable_encrypt::POINT_LEN)?,
                )
                .map_err(|_| TxDecodeError::VerifiableKey)?,
            },
            TAG_DKG_POST => TxBody::DkgPost {
                post: r.bytes("dkg post", max_post)?.to_vec(),
            },
            TAG_SIGNING_KEY_POST => TxBody::SigningKeyPost {
                post: r.bytes("signing-key post", max_post)?.to_vec(),
            },
            TAG_MAGIC_BLOCK_SIGNATURE => {
                let view = r.u64()?;
                let block_hash = r.array()?;
                let role = match r.u8()? {
                    0 => SignerRole::New,
                    1 => SignerRole::Old,
                    tag => {
                        return Err(WireError::UnknownTag {
                            what: "signer role",
                            tag,
                        }
                        .into());
                    }
                };
                let partial = PartialSignature::<MinPk>::from_bytes(r.fixed(PARTIAL_LEN)?)
                    .map_err(|_| TxDecodeError::Partial)?;
                TxBody::MagicBlockSignature {
                    view,
                    block_hash,
                    role,
                    partial,
                }
            }
            tag => {
                return Err(WireError::UnknownTag {
                    what: "transaction body",
                    tag,
                }
                .into());
            }
        })
    }
}

/// Why bytes are not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxDecodeError {
    /// Longer than the configured bound.
    #[error("transaction of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length.
        len: usize,
        /// Bound.
        max: usize,
    },
    /// Unknown encoding version.
    #[error("unknown transaction version {0}")]
    Version(u8),
    /// Framing: truncated, trailing bytes, bounds, unknown tags.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The sender key is not a valid identity key.
    #[error("invalid sender identity key")]
    SenderKey,
    /// A transfer's recipient is not a valid identity key.
    #[error("invalid recipient identity key")]
    RecipientKey,
    /// The encryption key is not a valid X25519 public key.
    #[error("invalid share-encryption key")]
    EncryptionKey,
    /// The verifiable-encryption key is not a valid secp256k1 point.
    #[error("invalid verifiable-encryption key")]
    VerifiableKey,
    /// The partial signature does not decode (index zero or non-canonical, point invalid).
    #[error("invalid partial signature encoding")]
    Partial,
    /// Network identity out of bounds.
    #[error("invalid network identity: {0}")]
    Network(&'static str),
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The sender's identity key (also the key being registered by `Register`).
    pub sender: IdentityPublicKey,
    /// The sender's transaction count.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
    /// Sender's signature over the chain id, sender, nonce and body.
    pub signature: IdentitySignature,
}

/// The message a transaction signature covers.
pub fn signing_payload(
    chain_id: &str,
    sender: &IdentityPublicKey,
    nonce: u64,
    body: &TxBody,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(chain_id.as_bytes())
        .fixed(sender.as_bytes())
        .u64(nonce);
    body.encode_into(&mut w);
    w.finish()
}

impl Transaction {
    /// Builds and signs a transaction.
    pub fn sign(chain_id: &str, key: &IdentityKeypair, nonce: u64, body: TxBody) -> Self {
        let payload = signing_payload(chain_id, key.public(), nonce, &body);
        Transaction {
            sender: key.public().clone(),
            nonce,
            signature: key.sign(Purpose::Transaction, &payload),
            body,
        }
    }

    /// Whether the signature is the sender's over this transaction on `chain_id`.
    pub fn verify_signature(&self, chain_id: &str) -> bool {
        self.sender
            .verify_digest(&self.signed_digest(chain_id), &self.signature)
    }

    /// What the sender signed on `chain_id`: the [`Purpose::Transaction`] digest of the
    /// signing payload.
    pub fn signed_digest(&self, chain_id: &str) -> [u8; 32] {
        Purpose::Transaction.digest(&signing_payload(
            chain_id,
            &self.sender,
            self.nonce,
            &self.body,
        ))
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TX_VERSION)
            .fixed(self.sender.as_bytes())
            .u64(self.nonce);
        self.body.encode_into(&mut w);
        w.fixed(&self.signature.0);
        w.finish()
    }

    /// The sender's public key bytes and the nonce of an encoded transaction, read from its
    /// fixed header without decoding the rest (`None` if it is too short or of another
    /// version). For clients that follow their own transactions in blocks: the chain has
    /// already decoded and checked every transaction it applied.
    pub fn peek_sender_and_nonce(bytes: &[u8]) -> Option<(&[u8], u64)> {
        const SENDER: std::ops::Range<usize> = 1..1 + identity::PUBLIC_KEY_LEN;
        if bytes.len() < TX_OVERHEAD || bytes[0] != TX_VERSION {
            return None;
        }
        let nonce = bytes.get(SENDER.end..SENDER.end + 8)?;
        Some((&bytes[SENDER], u64::from_be_bytes(nonce.try_into().ok()?)))
    }

    /// Decodes a transaction of at most `max_len` bytes (see [`max_tx_len`]).
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, TxDecodeError> {
        if bytes.len() > max_len {
            return Err(TxDecodeError::TooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(TxDecodeError::Version(version));
        }
        let sender = IdentityPublicKey::from_bytes(r.fixed(identity::PUBLIC_KEY_LEN)?)
            .map_err(|_| TxDecodeError::SenderKey)?;
        let nonce = r.u64()?;
        let body = TxBody::decode(&mut r, max_len)?;
        let signature = IdentitySignature(r.array()?);
        r.finish()?;
        Ok(Transaction {
            sender,
            nonce,
            body,
            signature,
        })
    }
}

/// The hash of a transaction: SHA-256 of its bytes.
pub fn tx_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_crypto::encrypt::EncryptionSecretKey;
    use keyquorum_crypto::secret::Secret;
    use keyquorum_crypto::tbls;
    use proptest::prelude::*;

    fn key(i: u8) -> IdentityKeypair {
        IdentityKeypair::from_seed(&[i; 32]).unwrap()
    }

    fn network() -> NetworkIdentity {
        NetworkIdentity {
            peer_id: Bytes(vec![0, 36, 8, 1, 18, 32]),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        }
    }

    fn samples() -> Vec<Transaction> {
        let k = key(1);
        let partial = tbls::partial_sign::<MinPk>(
            &Secret::new(<Bls12381G1 as Curve>::Scalar::from(5u64)),
            <Bls12381G1 as Curve>::Scalar::from(3u64),
            b"m",
        );
        let bodies = vec![
            TxBody::Register {
                pop: k.proof_of_possession(),
                encryption_key: EncryptionSecretKey::from_seed(&[1; 32]).public_key(),
                network: network(),
                stake: 10,
            },
            TxBody::AddStake { amount: 5 },
            TxBody::Unbond { amount: 5 },
            TxBody::Deregister,
            TxBody::CancelLeave,
            TxBody::Transfer {
                to: key(2).public().clone(),
                amount: 7,
            },
            TxBody::ClaimUnbonded,
            TxBody::UpdateNetwork { network: network() },
            TxBody::SetVerifiableKey {
                key:
                    keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionSecretKey::from_bytes(
                        &[3; 32],
                    )
                    .unwrap()
                    .public_key(),
            },
            TxBody::DkgPost {
                post: vec![1, 2, 3],
            },
            TxBody::SigningKeyPost {
                post: vec![4, 5, 6],
            },
            TxBody::MagicBlockSignature {
                view: 2,
                block_hash: [9; 32],
                role: SignerRole::Old,
                partial,
            },
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| Transaction::sign("chain", &k, i as u64, b))
            .collect()
    }

    #[test]
    fn roundtrip_and_signature() {
        for tx in samples() {
            let bytes = tx.encode();
            let back = Transaction::decode(&bytes, MAX_TX_LEN).unwrap();
            assert_eq!(back, tx);
            assert_eq!(back.encode(), bytes);
            assert!(back.verify_signature("chain"));
            assert!(!back.verify_signature("other-chain"));
            let (sender, nonce) = Transaction::peek_sender_and_nonce(&bytes).unwrap();
            assert_eq!((sender, nonce), (tx.sender.as_bytes().as_slice(), tx.nonce));
            assert!(Transaction::peek_sender_and_nonce(&bytes[..20]).is_none());
            let mut other = back.clone();
            other.nonce += 1;
            assert!(!other.verify_signature("chain"));
            // Every truncation fails cleanly; so does a trailing byte.
            for cut in 0..bytes.len() {
                assert!(Transaction::decode(&bytes[..cut], MAX_TX_LEN).is_err());
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(Transaction::decode(&long, MAX_TX_LEN).is_err());
        }
    }

    #[test]
    fn bounds() {
        let tx = &samples()[0];
        let bytes = tx.encode();
        assert_eq!(
            Transaction::decode(&bytes, 10),
            Err(TxDecodeError::TooLarge {
                len: bytes.len(),
                max: 10
            })
        );
        let mut bad = tx.clone();
        if let TxBody::Register { network, .. } = &mut bad.body {
            network.addresses = vec!["a".into(); MAX_ADDRESSES + 1];
        }
        assert!(matches!(
            Transaction::decode(&bad.encode(), MAX_TX_LEN),
            Err(TxDecodeError::Wire(WireError::TooLong { .. }))
        ));
        let mut bad = tx.clone();
        if let TxBody::Register { network, .. } = &mut bad.body {
            network.addresses = vec!["a\nb".into()];
        }
        assert!(matches!(
            Transaction::decode(&bad.encode(), MAX_TX_LEN),
            Err(TxDecodeError::Network(_))
        ));
        let mut bad = tx.clone();
        if let TxBody::Register { network, .. } = &mut bad.body {
            network.peer_id = Bytes(Vec::new());
        }
        assert!(matches!(
            Transaction::decode(&bad.encode(), MAX_TX_LEN),
            Err(TxDecodeError::Network(_))
        ));
        let mut v = bytes.clone();
        v[0] = 2;
        assert_eq!(
            Transaction::decode(&v, MAX_TX_LEN),
            Err(TxDecodeError::Version(2))
        );
        let mut v = bytes.clone();
        v[1..97].fill(0);
        assert_eq!(
            Transaction::decode(&v, MAX_TX_LEN),
            Err(TxDecodeError::SenderKey)
        );
        // A transfer to bytes that are not an identity key does not decode (funds would be
        // lost to a key nobody holds).
        let transfer = Transaction::sign(
            "chain",
            &key(1),
            0,
            TxBody::Transfer {
                to: key(2).public().clone(),
                amount: 1,
            },
        );
        let mut v = transfer.encode();
        let to = 1 + 96 + 8 + 1;
        v[to..to + 96].fill(0);
        assert_eq!(
            Transaction::decode(&v, MAX_TX_LEN),
            Err(TxDecodeError::RecipientKey)
        );
        assert!(max_tx_len(MAX_PARTICIPANTS) <= MAX_TX_LEN);
        assert!(max_tx_len(4) < max_tx_len(5));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Transaction::decode(&bytes, MAX_TX_LEN);
        }

        #[test]
        fn mutated_transactions_never_panic(
            which in 0usize..9,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let tx = &samples()[which];
            let mut bytes = tx.encode();
            for (pos, v) in flips {
                let len = bytes.len();
                bytes[pos % len] ^= v;
            }
            if let Ok(back) = Transaction::decode(&bytes, MAX_TX_LEN) {
                // Whatever decodes re-encodes to the same bytes (one encoding per transaction).
                prop_assert_eq!(back.encode(), bytes);
            }
        }
    }
}
