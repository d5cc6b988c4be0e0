//! Blocks as stored in the database and served by `/events`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state_machine::{TxHash, TxRejection};

/// Hash of the (nonexistent) block before height 1.
pub const GENESIS_PARENT: [u8; 32] = [0; 32];

/// A committed block: the ordered transactions with their outcomes and the events of the
/// state machine. Serialized as JSON both in the database and on the wire; byte strings and
/// hashes are lowercase hex.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Height, starting at 1.
    pub height: u64,
    /// `sha256("keyquorum-devchain/block/v1" || height || parent_hash || time_ms || n || tx hashes)`.
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
    /// Hash of the block at `height - 1` (zeros for height 1).
    #[serde(with = "hex32")]
    pub parent_hash: [u8; 32],
    /// Wall-clock production time in Unix milliseconds. Informational only: the state machine
    /// sees heights, never times.
    pub time_ms: u64,
    /// Transactions in order, each with its events or its rejection.
    pub txs: Vec<TxReceipt>,
    /// Events returned by [`StateMachine::end_block`](crate::StateMachine::end_block).
    pub end_block_events: Vec<serde_json::Value>,
}

/// One transaction inside a block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxReceipt {
    /// Hash returned by `check_tx` when the transaction was accepted.
    #[serde(with = "hex32")]
    pub hash: TxHash,
    /// The raw transaction.
    #[serde(with = "hex_bytes")]
    pub tx: Vec<u8>,
    /// Events emitted by `apply_tx` (empty when rejected).
    pub events: Vec<serde_json::Value>,
    /// Set when `apply_tx` refused the transaction; the state did not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<TxRejection>,
}

/// Computes a block hash from its header fields and transaction hashes.
pub fn block_hash<'a>(
    height: u64,
    parent_hash: &[u8; 32],
    time_ms: u64,
    tx_hashes: impl ExactSizeIterator<Item = &'a TxHash>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"keyquorum-devchain/block/v1");
    h.update(height.to_be_bytes());
    h.update(parent_hash);
    h.update(time_ms.to_be_bytes());
    h.update((tx_hashes.len() as u64).to_be_bytes());
    for tx in tx_hashes {
        h.update(tx);
    }
    h.finalize().into()
}

impl Block {
    /// Recomputes the hash from the block's fields.
    pub fn computed_hash(&self) -> [u8; 32] {
        block_hash(
            self.height,
            &self.parent_hash,
            self.time_ms,
            self.txs.iter().map(|r| &r.hash),
        )
    }
}

/// Parses a 64-character hex string into a hash.
pub fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::parse_hash(&s).ok_or_else(|| D::Error::custom("expected 32 bytes of hex"))
    }
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_roundtrip_and_hash() {
        let txs = vec![TxReceipt {
            hash: [7; 32],
            tx: b"hello".to_vec(),
            events: vec![serde_json::json!({"a": 1})],
            rejected: None,
        }];
        let hash = block_hash(3, &[1; 32], 99, txs.iter().map(|r| &r.hash));
        let b = Block {
            height: 3,
            hash,
            parent_hash: [1; 32],
            time_ms: 99,
            txs,
            end_block_events: vec![],
        };
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains(&hex::encode(b"hello")));
        let back: Block = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.computed_hash(), hash);
        assert!(parse_hash("zz").is_none());
    }
}
