//! The section key chain: the genesis key, then each later section key with its parent key's
//! signature over the new key's 48 compressed bytes (seed 002, "Post successful DKG": the current
//! elders sign the new SAP's key with the current section key).
//!
//! A split gives two children of one parent: each child section's chain ends in its own key,
//! and both chains share every link before it. A chain is checked only against a genesis key the
//! verifier already trusts ([`KeyChain::verify_from`]).
//!
//! The JSON form is the list of links `[{"key", "parent_key", "signature"}]`, each field in hex.

use keyquorum_crypto::tbls::{self, MinPk};
use serde::{Deserialize, Serialize};

use crate::keys::{PublicKey, Signature, decode_key, decode_signature, key_bytes, signature_bytes};

/// Longest chain accepted from JSON; far beyond any real section's history, and it bounds the
/// work of verifying a hostile chain.
pub const MAX_CHAIN_LINKS: usize = 1 << 16;

/// One link: `key`, signed by `parent_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The new section key.
    pub key: PublicKey,
    /// The section key it descends from.
    pub parent_key: PublicKey,
    /// `parent_key`'s signature over `key`'s 48 compressed bytes.
    pub signature: Signature,
}

impl Link {
    /// Checks the signature over the key bytes.
    pub fn verify(&self) -> Result<(), ChainError> {
        tbls::verify::<MinPk>(&self.parent_key, &key_bytes(&self.key), &self.signature)
            .map_err(|_| ChainError::BadSignature)
    }
}

/// Why a chain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A link's parent is not the key before it (the genesis key for the first link).
    #[error("link {position} names a parent that is not the previous key")]
    WrongParent {
        /// Position of the offending link.
        position: usize,
    },
    /// A link's signature does not verify under its parent key.
    #[error("a link's signature does not verify")]
    BadSignature,
    /// A key or signature failed to decode.
    #[error("bad encoding: {0}")]
    Encoding(String),
    /// More links than [`MAX_CHAIN_LINKS`].
    #[error("chain too long")]
    TooLong,
}

/// The keys a section has held since genesis, each signed by its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<LinkJson>", into = "Vec<LinkJson>")]
pub struct KeyChain {
    links: Vec<Link>,
}

impl KeyChain {
    /// The chain holding only the genesis key (no links).
    pub fn genesis() -> Self {
        KeyChain { links: Vec::new() }
    }

    /// The chain from links, unchecked: call [`KeyChain::verify_from`].
    pub fn from_links(links: Vec<Link>) -> Result<Self, ChainError> {
        if links.len() > MAX_CHAIN_LINKS {
            return Err(ChainError::TooLong);
        }
        Ok(KeyChain { links })
    }

    /// The links, oldest first.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// How many keys the chain holds, genesis included: the generation of a DKG session started
    /// on it.
    pub fn key_count(&self) -> u64 {
        self.links.len() as u64 + 1
    }

    /// The newest key, given the genesis key the chain starts from.
    pub fn last_key(&self, genesis: &PublicKey) -> PublicKey {
        self.links.last().map_or(*genesis, |l| l.key)
    }

    /// Checks that every link's parent is the key before it, starting at `genesis`, and that
    /// every signature verifies.
    pub fn verify_from(&self, genesis: &PublicKey) -> Result<(), ChainError> {
        self.verify_extending(genesis, &KeyChain::genesis())
    }

    /// How many links, from the first, this chain and `other` have in common.
    pub fn shared_links(&self, other: &KeyChain) -> usize {
        self.links
            .iter()
            .zip(&other.links)
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// [`KeyChain::verify_from`]'s answer, given that `verified` verifies from the same
    /// `genesis` (the caller's word): the links this chain shares with it, from the first, are
    /// not checked again. A chain that shares none is checked whole.
    pub fn verify_extending(
        &self,
        genesis: &PublicKey,
        verified: &KeyChain,
    ) -> Result<(), ChainError> {
        let shared = self.shared_links(verified);
        let mut parent = match shared {
            0 => *genesis,
            n => self.links[n - 1].key,
        };
        for (position, link) in self.links.iter().enumerate().skip(shared) {
            if link.parent_key != parent {
                return Err(ChainError::WrongParent { position });
            }
            link.verify()?;
            parent = link.key;
        }
        Ok(())
    }

    /// Appends a link after checking it extends the newest key.
    pub fn push(&mut self, genesis: &PublicKey, link: Link) -> Result<(), ChainError> {
        if link.parent_key != self.last_key(genesis) {
            return Err(ChainError::WrongParent {
                position: self.links.len(),
            });
        }
        if self.links.len() >= MAX_CHAIN_LINKS {
            return Err(ChainError::TooLong);
        }
        link.verify()?;
        self.links.push(link);
        Ok(())
    }
}

/// The JSON form of a link: hex of the compressed points.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkJson {
    key: String,
    parent_key: String,
    signature: String,
}

impl From<KeyChain> for Vec<LinkJson> {
    fn from(chain: KeyChain) -> Self {
        chain
            .links
            .iter()
            .map(|l| LinkJson {
                key: hex::encode(key_bytes(&l.key)),
                parent_key: hex::encode(key_bytes(&l.parent_key)),
                signature: hex::encode(signature_bytes(&l.signature)),
            })
            .collect()
    }
}

impl TryFrom<Vec<LinkJson>> for KeyChain {
    type Error = ChainError;

    fn try_from(json: Vec<LinkJson>) -> Result<Self, ChainError> {
        if json.len() > MAX_CHAIN_LINKS {
            return Err(ChainError::TooLong);
        }
        let bad = |e: String| ChainError::Encoding(e);
        let key = |s: &str| {
            let bytes = hex::decode(s).map_err(|e| bad(e.to_string()))?;
            decode_key(&bytes).map_err(|e| bad(e.to_string()))
        };
        let links = json
            .iter()
            .map(|l| {
                let sig = hex::decode(&l.signature).map_err(|e| bad(e.to_string()))?;
                Ok(Link {
                    key: key(&l.key)?,
                    parent_key: key(&l.parent_key)?,
                    signature: decode_signature(&sig).map_err(|e| bad(e.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>, ChainError>>()?;
        Ok(KeyChain { links })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use blstrs::Scalar;
    use keyquorum_crypto::secret::Secret;
    use keyquorum_crypto::tbls::public_key;

    pub(crate) fn key(seed: u64) -> (Secret<Scalar>, PublicKey) {
        let sk = Secret::new(Scalar::from(seed + 1000));
        let pk = public_key::<MinPk>(&sk);
        (sk, pk)
    }

    pub(crate) fn link(parent: &(Secret<Scalar>, PublicKey), child: &PublicKey) -> Link {
        Link {
            key: *child,
            parent_key: parent.1,
            signature: tbls::sign::<MinPk>(&parent.0, &key_bytes(child)),
        }
    }

    fn three() -> (PublicKey, Vec<Link>) {
        let (g, k1, k2) = (key(0), key(1), key(2));
        (g.1, vec![link(&g, &k1.1), link(&k1, &k2.1)])
    }

    #[test]
    fn an_honest_chain_verifies_and_round_trips_through_json() {
        let (genesis, links) = three();
        let chain = KeyChain::from_links(links).unwrap();
        chain.verify_from(&genesis).unwrap();
        assert_eq!(chain.key_count(), 3);
        let json = serde_json::to_string(&chain).unwrap();
        assert!(json.starts_with("[{\"key\":\""));
        let back: KeyChain = serde_json::from_str(&json).unwrap();
        assert_eq!(back, chain);
        back.verify_from(&genesis).unwrap();
    }

    #[test]
    fn a_chain_from_another_genesis_is_rejected() {
        let (_, links) = three();
        let chain = KeyChain::from_links(links).unwrap();
        assert_eq!(
            chain.verify_from(&key(9).1),
            Err(ChainError::WrongParent { position: 0 })
        );
    }

    #[test]
    fn a_forged_link_is_rejected() {
        let (genesis, mut links) = three();
        // The attacker claims k1 signed its own key: right parent field, signature by another key.
        let forger = key(7);
        links[1] = Link {
            key: forger.1,
            parent_key: links[0].key,
            signature: tbls::sign::<MinPk>(&forger.0, &key_bytes(&forger.1)),
        };
        let chain = KeyChain::from_links(links).unwrap();
        assert_eq!(chain.verify_from(&genesis), Err(ChainError::BadSignature));
    }

    #[test]
    fn verifying_past_a_verified_chain_checks_the_rest_as_verify_from_does() {
        let (g, k1, k2) = (key(0), key(1), key(2));
        let forger = key(7);
        let first = KeyChain::from_links(vec![link(&g, &k1.1)]).unwrap();
        let good = KeyChain::from_links(vec![link(&g, &k1.1), link(&k1, &k2.1)]).unwrap();
        let forged = KeyChain::from_links(vec![
            link(&g, &k1.1),
            Link {
                key: forger.1,
                parent_key: k1.1,
                signature: tbls::sign::<MinPk>(&forger.0, &key_bytes(&forger.1)),
            },
        ])
        .unwrap();
        let misplaced = KeyChain::from_links(vec![link(&g, &k1.1), link(&g, &k2.1)]).unwrap();
        for verified in [KeyChain::genesis(), first, good.clone()] {
            assert_eq!(good.verify_extending(&g.1, &verified), Ok(()));
            // The forged link is not among the links shared with a verified chain.
            assert_eq!(
                forged.verify_extending(&g.1, &verified),
                Err(ChainError::BadSignature)
            );
            // Positions count from the chain's start, not from the first link checked.
            assert_eq!(
                misplaced.verify_extending(&g.1, &verified),
                Err(ChainError::WrongParent { position: 1 })
            );
        }
        // A chain sharing no link with the verified one is checked whole, from genesis.
        let elsewhere = KeyChain::from_links(vec![link(&k1, &k2.1)]).unwrap();
        assert_eq!(
            elsewhere.verify_extending(&g.1, &good),
            Err(ChainError::WrongParent { position: 0 })
        );
    }

    #[test]
    fn a_wrong_parent_is_rejected() {
        let (g, k1, k2) = (key(0), key(1), key(2));
        // k2 properly signed by genesis, but placed after k1: its parent is not the previous key.
        let chain = KeyChain::from_links(vec![link(&g, &k1.1), link(&g, &k2.1)]).unwrap();
        assert_eq!(
            chain.verify_from(&g.1),
            Err(ChainError::WrongParent { position: 1 })
        );
    }

    #[test]
    fn a_reordered_chain_is_rejected() {
        let (genesis, mut links) = three();
        links.swap(0, 1);
        let chain = KeyChain::from_links(links).unwrap();
        assert!(chain.verify_from(&genesis).is_err());
    }

    #[test]
    fn a_split_gives_two_children_that_both_verify() {
        let (g, k1, left, right) = (key(0), key(1), key(2), key(3));
        let base = vec![link(&g, &k1.1)];
        let mut a = KeyChain::from_links(base.clone()).unwrap();
        let mut b = KeyChain::from_links(base).unwrap();
        a.push(&g.1, link(&k1, &left.1)).unwrap();
        b.push(&g.1, link(&k1, &right.1)).unwrap();
        a.verify_from(&g.1).unwrap();
        b.verify_from(&g.1).unwrap();
        // The sibling cannot follow: its parent is k1, not `left`.
        assert_eq!(
            a.push(&g.1, link(&k1, &right.1)),
            Err(ChainError::WrongParent { position: 2 })
        );
    }

    #[test]
    fn json_with_a_point_off_the_curve_is_rejected() {
        let (_, links) = three();
        let chain = KeyChain::from_links(links).unwrap();
        let json = serde_json::to_string(&chain).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value[0]["key"] = serde_json::Value::String(format!("a0{}", "00".repeat(47)));
        assert!(serde_json::from_value::<KeyChain>(value).is_err());
    }
}
