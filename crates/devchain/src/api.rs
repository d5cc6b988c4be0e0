//! The HTTP API's messages, defined once: the server ([`http`](crate::http)) serialises them and
//! the [`Client`](crate::Client) decodes them, so the two cannot drift apart.
//!
//! Why here and not in a crate of their own: these types describe this chain's API (its
//! blocks, its mempool answers, its long poll), not chains in general. A node follows a chain
//! through its own chain-agnostic trait and types; the adapter for this chain imports this
//! module and converts, and an adapter for another chain would bring its own API types. The
//! state machine's part of an answer (the `state` of [`Status`], the events of a block, the
//! answers to `/views/...` and `/query/...`) is JSON the chain does not interpret: the state
//! machine defines those types (the coordinator contract in `keyquorum_contract::query`) and
//! a caller names them as type parameters, e.g. `Status<ContractStatus>` or
//! `client.query::<CurrentView>("/views/current")`.
//!
//! Byte strings and hashes are lowercase hex everywhere.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::block::hex32;
pub use crate::block::{Block, TxReceipt};
pub use crate::state_machine::{TxHash, TxRejection};

/// Every error answer (any 4xx or 5xx): a stable machine-readable code and a human-readable
/// reason. The codes: `not_found`, `method_not_allowed`, `bad_path`, `bad_query`, `bad_view`,
/// `bad_hash`, `bad_body`, `empty_tx`, `tx_too_large`, `duplicate_tx`, `mempool_full`, `busy`,
/// `halted`, `storage`, `internal`, and the state machine's own rejection codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable code.
    pub error: String,
    /// Explanation for humans.
    pub reason: String,
}

/// `GET /status`: the chain's head, and the state machine's answer to its `"status"` query
/// (`None` when it has none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status<S = Value> {
    /// Height of the last committed block (0 before the first).
    pub height: u64,
    /// Hash of the last committed block (zeros before the first).
    #[serde(with = "hex32")]
    pub block_hash: [u8; 32],
    /// Accepted transactions not yet in a block.
    pub pending_txs: u64,
    /// The state machine's status.
    pub state: Option<S>,
}

/// The parameters of `GET /events` (all optional).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// First height wanted (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// Most blocks wanted (the server also bounds blocks and bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// How long to wait for block `from` if it does not exist yet (capped by the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// `GET /events`: consecutive committed blocks from `from` (possibly none); poll again with
/// `from = next`. `B` is [`Block`] for a reader; the server sends the stored JSON as it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventsPage<B = Block> {
    /// The first height asked for.
    pub from: u64,
    /// The height to ask for next (`from` + the number of blocks).
    pub next: u64,
    /// The chain's height when it answered.
    pub height: u64,
    /// The blocks, in height order.
    pub blocks: Vec<B>,
}

/// `POST /tx` accepted: the transaction is durably queued and will be in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submitted {
    /// The transaction's hash, as the state machine defines it.
    #[serde(with = "hex32")]
    pub hash: TxHash,
}

/// `GET /tx/{hash}`: where a known transaction is (404 `not_found` when unknown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxLookup {
    /// Accepted, waiting for a block.
    Pending {
        /// The hash asked for.
        #[serde(with = "hex32")]
        hash: TxHash,
    },
    /// In a committed block.
    Included {
        /// The hash asked for.
        #[serde(with = "hex32")]
        hash: TxHash,
        /// The block.
        height: u64,
        /// Position in the block.
        index: u32,
        /// The events it produced (none when refused).
        events: Vec<Value>,
        /// Why the state machine refused it when applying it; the state did not change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejected: Option<TxRejection>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shapes() {
        let s = Status {
            height: 3,
            block_hash: [1; 32],
            pending_txs: 2,
            state: Some(json!({"view": 1})),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["block_hash"], json!(hex::encode([1u8; 32])));
        assert_eq!(v["state"]["view"], 1);
        assert_eq!(serde_json::from_value::<Status>(v).unwrap(), s);

        let inc = TxLookup::Included {
            hash: [2; 32],
            height: 4,
            index: 0,
            events: vec![json!({"type": "set"})],
            rejected: None,
        };
        let v = serde_json::to_value(&inc).unwrap();
        assert_eq!(v["status"], "included");
        assert!(v.get("rejected").is_none());
        assert_eq!(serde_json::from_value::<TxLookup>(v).unwrap(), inc);
        let pending = json!({"status": "pending", "hash": hex::encode([3u8; 32])});
        assert_eq!(
            serde_json::from_value::<TxLookup>(pending).unwrap(),
            TxLookup::Pending { hash: [3; 32] }
        );

        let q = EventsQuery {
            from: Some(5),
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(q).unwrap(), json!({"from": 5}));
        assert!(serde_json::from_value::<ErrorBody>(json!({"error": "x"})).is_err());
    }
}
