//! The node's own execution of the embedded chain's contract: every block the node follows is
//! re-executed before the node acts on it.
//!
//! The chain's blocks carry the raw transactions (each signed by its sender) and, as the
//! chain's claims, every transaction's events and the events of each block's end. The node
//! acts on those events: a `CommitteeSelected` seats it, a `MagicBlockCreated` asks for its
//! signature. A chain that ran another contract than the one it announced, or none, could seat
//! a committee its stakes do not choose, credit a stake nobody locked, or start a ceremony with
//! a threshold of its own; the node's checks of a ceremony spec and of a magic block compare
//! them only with the events. So the node runs the contract itself: from the genesis
//! configuration the chain serves (`/query/config`, refused when it is not the one the
//! operator pinned, if any), it applies every block's transactions and end, and compares what
//! its contract emits with what the block records ([`keyquorum_devchain::Replay`], the rule
//! the chain itself runs over its stored blocks at every start). The first block that differs
//! is refused and nothing from it on reaches the driver: the node stops following, says so in
//! its log, in `/status` (`chain_refused`) and in `/metrics` (`keyquorum_chain_refused`),
//! and starts no send for that chain's ceremonies (no transaction, no deal, ack or pull; a
//! delivery already under way may finish, and peers' pulls of a deal it made are still
//! answered); the beacon and the signing service of the last view it verified keep running.
//! A block refused before any of it ran (a gap, a broken hash chain: another chain at the
//! node's endpoint) leaves the replica as it was, so the node tries the chain again and follows
//! on once it serves the blocks after the replica's; a block that ran and differs is refused
//! until the node restarts.
//!
//! The node and the chain must run the same contract version: a contract that changed an
//! event, a refusal's reason or an outcome is another contract, and its blocks are refused.
//!
//! Cost: the node's contract checks every post the chain's contract checked (one signature per
//! post, the board's rules), on top of the participant's own batched checks; a restarted node
//! re-executes the chain from its first block before it follows again, as the chain does when
//! it restarts.

use keyquorum_contract::{Contract, ContractConfig};
use keyquorum_devchain::api::Block;
use keyquorum_devchain::{Replay, ReplayError};
use sha2::{Digest, Sha256};

use super::devchain::ContractMachine;

/// How many applied blocks a replica remembers (a digest of each), to check a block served
/// again that it already applied (a follower asking twice for one height).
const RECENT_BLOCKS: usize = 1024;

/// SHA-256 of a block's JSON: its records as well as its header, which the block hash alone
/// does not cover.
fn block_digest(block: &Block) -> [u8; 32] {
    let json = serde_json::to_vec(block).expect("a block serializes");
    Sha256::digest(json).into()
}

/// SHA-256 of a contract configuration's JSON (the digest an operator pins).
pub fn config_digest(config: &ContractConfig) -> [u8; 32] {
    let json = serde_json::to_vec(config).expect("a contract configuration serializes");
    Sha256::digest(json).into()
}

/// Why the node refused to follow the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// The chain's genesis configuration is not the one the operator pinned.
    #[error("the chain's contract configuration has digest {served}, not the pinned {pinned}")]
    ConfigNotPinned {
        /// Hex digest of the configuration the chain serves.
        served: String,
        /// Hex digest the operator pinned.
        pinned: String,
    },
    /// The chain's genesis configuration does not make a contract.
    #[error("the chain's contract configuration is invalid: {0}")]
    ConfigInvalid(String),
    /// A block the node's contract does not reproduce.
    #[error(transparent)]
    Block(#[from] ReplayError),
    /// The chain serves no contract configuration, or one this node cannot read.
    #[error(
        "the chain serves no contract configuration this node can read ({0}); a chain from \
         before nodes re-executed it is followed with --trust-chain"
    )]
    ConfigUnavailable(String),
    /// A block already applied was asked for again, too long ago for the replica to know it
    /// (not a refusal: the replica cannot tell, so the caller asks again later).
    #[error("block {height} was applied too long ago to be checked again")]
    NotKept {
        /// The block's height.
        height: u64,
    },
    /// Re-executing was cancelled (the runtime stopping); the replica is rebuilt from the
    /// chain's first block at the next call. Not a refusal.
    #[error("re-executing the blocks from {height} was interrupted")]
    Interrupted {
        /// First block of the batch being re-executed.
        height: u64,
    },
    /// The end of a block panicked in the node's contract.
    #[error("re-executing the blocks from {height} panicked: {detail}")]
    Panicked {
        /// First block of the batch being re-executed.
        height: u64,
        /// The panic.
        detail: String,
    },
}

impl ReplicaError {
    /// Whether the chain is refused for good (everything but [`ReplicaError::NotKept`] and
    /// [`ReplicaError::Interrupted`]).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            ReplicaError::NotKept { .. } | ReplicaError::Interrupted { .. }
        )
    }

    /// Height of the refused block (0 for the configuration).
    pub fn height(&self) -> u64 {
        match self {
            ReplicaError::Block(e) => e.height(),
            ReplicaError::Panicked { height, .. }
            | ReplicaError::NotKept { height }
            | ReplicaError::Interrupted { height } => *height,
            ReplicaError::ConfigNotPinned { .. }
            | ReplicaError::ConfigInvalid(_)
            | ReplicaError::ConfigUnavailable(_) => 0,
        }
    }
}

/// The contract re-executed from genesis, block by block.
pub struct Replica {
    replay: Replay<ContractMachine>,
    /// `(height, digest)` of the last blocks applied ([`block_digest`]), oldest first.
    recent: std::collections::VecDeque<(u64, [u8; 32])>,
}

impl Replica {
    /// A replica at the genesis of `config`, refused when `pinned` is set and is not its digest.
    /// Without a pin the configuration the chain serves is taken, and a warning says so: the
    /// re-execution then checks that the chain followed its own rules, not that they are the
    /// rules this operator meant to join under (its committee size, stakes, slashing).
    pub fn new(config: ContractConfig, pinned: Option<[u8; 32]>) -> Result<Self, ReplicaError> {
        let served = config_digest(&config);
        match pinned {
            Some(pinned) if pinned != served => {
                return Err(ReplicaError::ConfigNotPinned {
                    served: hex::encode(served),
                    pinned: hex::encode(pinned),
                });
            }
            Some(_) => {}
            None => tracing::warn!(
                digest = %hex::encode(served),
                "no chain configuration digest pinned: re-executing the chain under the \
                 configuration it serves; pin this digest with --chain-config-digest \
                 (chain_config_digest in the file) to refuse a chain started with another"
            ),
        }
        let contract =
            Contract::new(config).map_err(|e| ReplicaError::ConfigInvalid(e.to_string()))?;
        Ok(Replica {
            replay: Replay::new(ContractMachine(contract)),
            recent: Default::default(),
        })
    }

    /// Height of the last block applied (0 before the first).
    pub fn height(&self) -> u64 {
        self.replay.height()
    }

    /// Checks `block`: the next one is re-executed; one already applied must be the same block,
    /// records included; one applied too long ago to remember is [`ReplicaError::NotKept`].
    pub fn check(&mut self, block: &Block) -> Result<(), ReplicaError> {
        if block.height <= self.replay.height() {
            return match self.recent.iter().find(|(h, _)| *h == block.height) {
                Some((_, digest)) if *digest == block_digest(block) => Ok(()),
                Some(_) => Err(ReplayError::Diverged {
                    height: block.height,
                    detail: "served again, it differs from the block applied".into(),
                }
                .into()),
                None => Err(ReplicaError::NotKept {
                    height: block.height,
                }),
            };
        }
        self.replay.apply(block)?;
        if self.recent.len() == RECENT_BLOCKS {
            self.recent.pop_front();
        }
        self.recent.push_back((block.height, block_digest(block)));
        Ok(())
    }

    /// Whether the replica can still apply blocks: no block ran in it and differed (a block
    /// refused before it ran leaves it as it was).
    pub fn intact(&self) -> bool {
        !self.replay.is_poisoned()
    }

    /// The contract after the last block applied.
    pub fn contract(&self) -> &Contract {
        &self.replay.state().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_devchain::{GENESIS_PARENT, StateMachine, block_hash};

    fn config() -> ContractConfig {
        let mut c = ContractConfig::defaults("replica-unit", 4);
        c.genesis.clear();
        c.first_view_change = 3;
        c
    }

    /// `count` empty blocks as an honest chain running `config()` makes them.
    fn blocks(count: u64) -> Vec<Block> {
        let mut sm = ContractMachine(Contract::new(config()).unwrap());
        let mut parent = GENESIS_PARENT;
        (1..=count)
            .map(|height| {
                let end_block_events = sm
                    .end_block(height)
                    .iter()
                    .map(|e| serde_json::to_value(e).unwrap())
                    .collect();
                let hash = block_hash(height, &parent, height, std::iter::empty());
                let b = Block {
                    height,
                    hash,
                    parent_hash: parent,
                    time_ms: height,
                    txs: Vec::new(),
                    end_block_events,
                };
                parent = hash;
                b
            })
            .collect()
    }

    #[test]
    fn a_block_served_again_must_be_the_one_applied_records_included() {
        let chain = blocks(4);
        assert!(
            chain.iter().any(|b| !b.end_block_events.is_empty()),
            "some block has events to change"
        );
        let mut r = Replica::new(config(), Some(config_digest(&config()))).unwrap();
        for b in &chain {
            r.check(b).unwrap();
        }
        // The same block again: fine.
        r.check(&chain[2]).unwrap();
        // The same header with other records (the block hash does not cover them): refused.
        let with_events = chain
            .iter()
            .find(|b| !b.end_block_events.is_empty())
            .unwrap();
        let mut changed = with_events.clone();
        changed.end_block_events.clear();
        assert_eq!(changed.computed_hash(), changed.hash);
        let e = r.check(&changed).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        assert_eq!(e.height(), changed.height);
    }

    #[test]
    fn a_block_of_another_chain_leaves_the_replica_able_to_take_up_its_own() {
        let chain = blocks(4);
        let mut r = Replica::new(config(), None).unwrap();
        r.check(&chain[0]).unwrap();
        // Another chain's block 2: another parent.
        let mut foreign = chain[1].clone();
        foreign.parent_hash = [9; 32];
        foreign.hash = foreign.computed_hash();
        let e = r.check(&foreign).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        assert!(r.intact());
        for b in &chain[1..] {
            r.check(b).unwrap();
        }
        // A block that ran and differs: the replica holds part of it, and takes nothing more.
        let mut lying = blocks(5).pop().unwrap();
        lying
            .end_block_events
            .push(serde_json::json!({"made": "up"}));
        assert!(r.check(&lying).is_err());
        assert!(!r.intact());
        assert!(r.check(&blocks(5)[4]).is_err());
    }

    #[test]
    fn another_configuration_than_the_pinned_one_is_refused() {
        let mut other = config();
        other.first_view_change = 4;
        let e = Replica::new(config(), Some(config_digest(&other)))
            .err()
            .expect("refused");
        assert!(matches!(e, ReplicaError::ConfigNotPinned { .. }), "{e}");
        assert!(e.is_refusal());
        assert!(!ReplicaError::NotKept { height: 1 }.is_refusal());
    }
}
