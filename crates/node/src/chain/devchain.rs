//! The adapter for keyquorum's embedded chain (`keyquorum-devchain`): [`DevchainClient`]
//! follows and submits over its HTTP API with the chain's typed client, and
//! [`ContractMachine`] runs the view-change contract as the chain's state machine.
//!
//! `keyquorum-contract` is chain-agnostic and `keyquorum-devchain` is generic over any
//! [`StateMachine`]; neither depends on the other, so both halves of the adapter live here,
//! where the CLI (`keyquorum chain`, `keyquorum demo`) and the node's tests use the same ones.
//! The API's wire types are the chain's own (`keyquorum_devchain::api`); only this module
//! converts them into the node's chain-agnostic types.

use std::sync::Arc;
use std::time::Duration;

use keyquorum_contract::query::ContractStatus;
use keyquorum_contract::{Contract, ContractConfig, Event, Rejection};
use keyquorum_devchain::api::{Block, EventsQuery, Status};
use keyquorum_devchain::{Client, ClientError, StateMachine, TxHash, TxRejection};

use keyquorum_devchain::ReplayError;

use super::replica::{Replica, ReplicaError};
use crate::status::ChainRefusedStatus;

use keyquorum_contract::Transaction;

use super::{
    Blocks, ChainAction, ChainBlock, ChainClient, ChainStatus, ChainTx, MaturedUnbonding, Prepared,
    Sender, SignatureRoute, SubmitOutcome, Unprepared,
};

/// Most blocks asked for in one long poll.
const BLOCKS_PER_POLL: usize = 200;

/// The embedded chain's HTTP API (`keyquorum chain`), over plain HTTP/1.1 on loopback. Clones
/// share one connection pool and one replica.
#[derive(Debug, Clone)]
pub struct DevchainClient {
    api: Client,
    verifier: Option<Arc<Verifier>>,
}

/// Why a call to the embedded chain failed.
#[derive(Debug, thiserror::Error)]
pub enum DevchainError {
    /// The HTTP API (transport, an error answer, an undecodable answer).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The node re-executed the chain and refuses it from this block on
    /// ([`DevchainClient::verifying`]).
    #[error("this node refuses the chain: {0}")]
    Refused(ReplicaError),
}

/// The node's replica of the chain's contract and what it refused.
struct Verifier {
    pinned: Option<[u8; 32]>,
    /// Held across the chain calls of one `blocks` answer: one follower at a time.
    replica: tokio::sync::Mutex<ReplicaState>,
    refused: std::sync::Mutex<Option<ChainRefusedStatus>>,
    /// The replica's active view and unbonding entries after its last block, for
    /// [`ChainClient::matured_unbonding`] (the replica itself is held through a long poll).
    unbonding: std::sync::Mutex<(u64, Unbondings)>,
}

/// Every account's unbonding entries, as the contract keeps them.
type Unbondings = std::collections::BTreeMap<
    keyquorum_contract::state::IdentityKey,
    Vec<keyquorum_contract::state::Unbonding>,
>;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("pinned", &self.pinned.map(hex::encode))
            .finish_non_exhaustive()
    }
}

enum ReplicaState {
    /// The genesis configuration not fetched yet.
    Unstarted,
    Running(Box<Replica>),
    Refused {
        error: ReplicaError,
        /// The replica as it was before the refused block, when none of that block ran: it
        /// can take up the right chain again ([`DevchainClient::lift_refusal`]).
        kept: Option<Box<Replica>>,
    },
}

impl DevchainClient {
    /// A client for `http://host:port` (a trailing slash is allowed) that takes the chain's
    /// blocks as they are served: for queries and tools, not for a node taking part (see
    /// [`DevchainClient::verifying`]).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(DevchainClient {
            api: Client::new(url)?,
            verifier: None,
        })
    }

    /// A client that re-executes every block it serves with its own contract, from the
    /// genesis configuration the chain serves (refused unless its digest is `pinned`, when
    /// set), and refuses the chain from the first block that its contract does not reproduce
    /// ([`crate::chain::replica`]).
    pub fn verifying(url: &str, pinned: Option<[u8; 32]>) -> Result<Self, ClientError> {
        Ok(DevchainClient {
            api: Client::new(url)?,
            verifier: Some(Arc::new(Verifier {
                pinned,
                replica: tokio::sync::Mutex::new(ReplicaState::Unstarted),
                refused: std::sync::Mutex::new(None),
                unbonding: std::sync::Mutex::default(),
            })),
        })
    }

    /// The blocks from `from`, each re-executed by `verifier`'s replica first (after the blocks
    /// between the replica and `from`, when the node starts at a later height).
    async fn verified_blocks(
        &self,
        verifier: &Verifier,
        from: u64,
        wait_ms: u64,
    ) -> Result<Blocks, DevchainError> {
        let mut state = verifier.replica.lock().await;
        let replica = match std::mem::replace(&mut *state, ReplicaState::Unstarted) {
            ReplicaState::Refused { error, kept } => {
                let e = error.clone();
                *state = ReplicaState::Refused { error, kept };
                return Err(DevchainError::Refused(e));
            }
            ReplicaState::Running(r) => r,
            ReplicaState::Unstarted => {
                let config = match self.api.get::<ContractConfig>("/query/config").await {
                    Ok(config) => config,
                    // Not served, or not a configuration this node reads: nothing to re-execute
                    // with, now or later.
                    Err(
                        e @ (ClientError::Api { status: 404, .. }
                        | ClientError::Decode {
                            status: 200..=299, ..
                        }),
                    ) => {
                        let e = ReplicaError::ConfigUnavailable(e.to_string());
                        return Err(self.refuse(verifier, &mut state, e, None));
                    }
                    Err(e) => return Err(e.into()),
                };
                match Replica::new(config, verifier.pinned) {
                    Ok(r) => Box::new(r),
                    Err(e) => return Err(self.refuse(verifier, &mut state, e, None)),
                }
            }
        };
        let (replica, result) = self.replay_and_fetch(replica, from, wait_ms).await;
        if let Some(replica) = &replica {
            let chain = replica.contract().state();
            let snapshot = (chain.current_view, chain.unbonding.clone());
            *verifier.unbonding.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
        }
        match result {
            Err(DevchainError::Refused(e)) if e.is_refusal() => {
                let kept = replica.filter(|r| r.intact());
                Err(self.refuse(verifier, &mut state, e, kept))
            }
            other => {
                if let Some(replica) = replica {
                    *state = ReplicaState::Running(replica);
                }
                other
            }
        }
    }

    /// Lifts the replica's refusal where the right chain can still follow: a refusal of the
    /// configuration (nothing ran yet: the replica starts again from the configuration then
    /// served) or of a block none of which ran (the replica takes up from the block before
    /// it). The blocks served next are checked as any others, so a chain still wrong is
    /// refused again. A block that ran and differs, or a replica lost to a panic, stays
    /// refused: `false`.
    async fn lift_refusal(&self, verifier: &Verifier) -> bool {
        let mut state = verifier.replica.lock().await;
        match std::mem::replace(&mut *state, ReplicaState::Unstarted) {
            ReplicaState::Refused {
                kept: Some(replica),
                ..
            } => *state = ReplicaState::Running(replica),
            ReplicaState::Refused { error, kept: None } if error.height() == 0 => {}
            other => {
                *state = other;
                return false;
            }
        }
        *verifier.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
        true
    }

    async fn replay_and_fetch(
        &self,
        mut replica: Box<Replica>,
        from: u64,
        wait_ms: u64,
    ) -> (Option<Box<Replica>>, Result<Blocks, DevchainError>) {
        // A node resuming at a later height: the blocks before it, re-executed first (a page
        // that is not the next blocks is refused by the replay).
        while replica.height() + 1 < from {
            let page = match self.page(replica.height() + 1, 0).await {
                Ok(p) => p,
                Err(e) => return (Some(replica), Err(e)),
            };
            if page.blocks.is_empty() {
                // The chain is behind the node's cursor: nothing to serve yet.
                tokio::time::sleep(Duration::from_millis(wait_ms.min(500))).await;
                let none = Blocks {
                    blocks: Vec::new(),
                    height: page.height,
                };
                return (Some(replica), Ok(none));
            }
            match check_blocking(replica, page.blocks).await {
                Ok((back, _)) => replica = back,
                Err((back, e)) => return (back, Err(DevchainError::Refused(e))),
            }
        }
        let page = match self.page(from, wait_ms).await {
            Ok(p) => p,
            Err(e) => return (Some(replica), Err(e)),
        };
        let height = page.height;
        // The blocks asked for, consecutive from `from`: a chain answering with others (one it
        // served before, say) would make the node skip the blocks in between.
        if let Some((i, b)) = (from..)
            .zip(&page.blocks)
            .enumerate()
            .find_map(|(i, (want, b))| (b.height != want).then_some((i, b)))
        {
            let e = ReplayError::Gap {
                last: from + i as u64 - 1,
                got: b.height,
            };
            return (Some(replica), Err(DevchainError::Refused(e.into())));
        }
        match check_blocking(replica, page.blocks).await {
            Ok((replica, blocks)) => (
                Some(replica),
                Ok(Blocks {
                    blocks: blocks.into_iter().map(chain_block).collect(),
                    height,
                }),
            ),
            Err((replica, e)) => (replica, Err(DevchainError::Refused(e))),
        }
    }

    async fn page(
        &self,
        from: u64,
        wait_ms: u64,
    ) -> Result<keyquorum_devchain::api::EventsPage, DevchainError> {
        Ok(self
            .api
            .events(EventsQuery {
                from: Some(from),
                limit: Some(BLOCKS_PER_POLL),
                wait_ms: Some(wait_ms),
            })
            .await?)
    }

    /// Records `e` as the chain's refusal, with the replica from before the refused block when
    /// none of that block ran.
    fn refuse(
        &self,
        verifier: &Verifier,
        state: &mut ReplicaState,
        e: ReplicaError,
        kept: Option<Box<Replica>>,
    ) -> DevchainError {
        *state = ReplicaState::Refused {
            error: e.clone(),
            kept,
        };
        *verifier.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(ChainRefusedStatus {
            height: e.height(),
            reason: e.to_string(),
        });
        DevchainError::Refused(e)
    }

    /// The chain's typed API client (for queries beyond the node's needs: views, accounts).
    pub fn api(&self) -> &Client {
        &self.api
    }
}

fn parse_events(values: Vec<serde_json::Value>) -> Vec<Event> {
    values
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<Event>(v) {
            Ok(e) => Some(e),
            Err(e) => {
                // A newer contract may emit events this node does not know; they cannot be
                // board inputs (those are fixed), so skipping them is safe.
                tracing::warn!(error = %e, "skipping an event this node does not understand");
                None
            }
        })
        .collect()
}

/// Re-executes `blocks` on a blocking thread (a page of blocks full of posts is seconds of
/// signature checks at large committees), handing back the replica and the blocks. The replica
/// is lost when the end of a block panics in the node's contract (a transaction's panic is an
/// outcome the block records), and the chain with it.
async fn check_blocking(mut replica: Box<Replica>, blocks: Vec<Block>) -> Checked {
    let first = blocks.first().map_or(0, |b| b.height);
    match tokio::task::spawn_blocking(move || {
        match blocks.iter().try_for_each(|b| replica.check(b)) {
            Ok(()) => Ok((replica, blocks)),
            Err(e) => Err((Some(replica), e)),
        }
    })
    .await
    {
        Ok(checked) => checked,
        // Cancelled (the runtime shutting down): the replica is gone, not the chain's fault;
        // a later call starts again from the chain's first block.
        Err(e) if !e.is_panic() => Err((None, ReplicaError::Interrupted { height: first })),
        Err(e) => Err((
            None,
            ReplicaError::Panicked {
                height: first,
                detail: e.to_string(),
            },
        )),
    }
}

/// The replica and the blocks it applied, or what remains of it and why it refused them.
type Checked = Result<(Box<Replica>, Vec<Block>), (Option<Box<Replica>>, ReplicaError)>;

/// Converts one of the chain's blocks into the node's [`ChainBlock`], decoding the contract's
/// events.
pub fn chain_block(block: Block) -> ChainBlock {
    ChainBlock {
        height: block.height,
        time_ms: block.time_ms,
        txs: block
            .txs
            .into_iter()
            .map(|r| ChainTx {
                hash: r.hash,
                tx: r.tx,
                events: parse_events(r.events),
                rejected: r.rejected.map(|x| (x.code, x.reason)),
            })
            .collect(),
        end_block_events: parse_events(block.end_block_events),
    }
}

/// What a refused submission means for the node: a duplicate or a busy chain is an outcome
/// (the transaction is, or may later be, in a block); a refusal with the contract's code is a
/// rejection; anything else (transport, a server fault, an undecodable answer) is an error the
/// caller retries.
pub fn submit_outcome(result: Result<(), ClientError>) -> Result<SubmitOutcome, ClientError> {
    match result {
        Ok(()) => Ok(SubmitOutcome::Accepted),
        Err(ClientError::Api {
            status,
            code,
            reason,
            ..
        }) => Ok(match (status, code.as_str()) {
            (409, _) | (_, "duplicate_tx") => SubmitOutcome::Duplicate,
            (503, _) => SubmitOutcome::Busy,
            (400..=499, _) => SubmitOutcome::Rejected { code, reason },
            _ => {
                return Err(ClientError::Api {
                    path: "/tx".into(),
                    status,
                    code,
                    reason,
                });
            }
        }),
        Err(other) => Err(other),
    }
}

impl ChainClient for DevchainClient {
    type Error = DevchainError;
    type Tx = Vec<u8>;

    fn matured_unbonding(&self, identity: &[u8]) -> Option<MaturedUnbonding> {
        let verifier = self.verifier.as_ref()?;
        let key = keyquorum_contract::hex::Hex(<[u8; 96]>::try_from(identity).ok()?);
        let snapshot = verifier.unbonding.lock().unwrap_or_else(|e| e.into_inner());
        let (view, unbonding) = &*snapshot;
        let amount: u64 = unbonding
            .get(&key)?
            .iter()
            .filter(|u| u.release_view <= *view)
            .map(|u| u.amount)
            .sum();
        (amount > 0).then_some(MaturedUnbonding {
            amount,
            view: *view,
        })
    }

    fn signature_route(&self) -> SignatureRoute {
        SignatureRoute::OnChain
    }

    /// The contract's transaction, signed with the identity key at the sender's nonce.
    fn prepare(
        &self,
        action: &ChainAction,
        sender: Sender<'_>,
    ) -> Result<Prepared<Vec<u8>>, Unprepared> {
        let ChainAction::Tx(body) = action else {
            return Err(Unprepared {
                kind: action.kind(),
                why: "the contract collects partial signatures and judges faults itself".into(),
            });
        };
        let bytes = Transaction::sign(sender.chain_id, sender.identity, sender.nonce, body.clone())
            .encode();
        Ok(Prepared {
            id: keyquorum_contract::tx::tx_hash(&bytes),
            len: bytes.len(),
            tx: bytes,
        })
    }

    async fn retry_refused(&self) -> bool {
        match &self.verifier {
            Some(verifier) => self.lift_refusal(verifier).await,
            None => false,
        }
    }

    fn chain_refused(&self) -> Option<ChainRefusedStatus> {
        let verifier = self.verifier.as_ref()?;
        verifier
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn status(&self) -> Result<ChainStatus, DevchainError> {
        let status: Status<ContractStatus> = self.api.status().await?;
        let contract = status.state.ok_or_else(|| ClientError::Decode {
            path: "/status".into(),
            status: 200,
            detail: "the chain runs no contract (its status has no state)".into(),
        })?;
        let config = self.api.get::<ContractConfig>("/query/config").await?;
        // Block 1 tells two chains of one configuration apart (its hash covers its time);
        // until the chain has made it, the node waits for it like for the chain itself.
        let first = self.api.block(1).await?;
        Ok(ChainStatus {
            chain_id: contract.chain_id,
            genesis: devchain_genesis(&config, &first.hash),
            origin: None,
            height: status.height,
            beacon: contract.beacon,
        })
    }

    async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Blocks, DevchainError> {
        if let Some(verifier) = &self.verifier {
            return self.verified_blocks(verifier, from, wait_ms).await;
        }
        let page = self.page(from, wait_ms).await?;
        Ok(Blocks {
            blocks: page.blocks.into_iter().map(chain_block).collect(),
            height: page.height,
        })
    }

    async fn submit(
        &self,
        tx: Vec<u8>,
        _retry_of: Option<[u8; 32]>,
    ) -> Result<SubmitOutcome, DevchainError> {
        Ok(submit_outcome(self.api.submit(tx).await.map(|_| ()))?)
    }
}

/// [`ChainStatus::genesis`] of an embedded chain whose contract has `config` and whose block
/// 1 has `first_block`'s hash.
pub fn devchain_genesis(config: &ContractConfig, first_block: &[u8; 32]) -> String {
    format!(
        "devchain:{}:{}",
        hex::encode(crate::chain::replica::config_digest(config)),
        hex::encode(first_block)
    )
}

/// The contract as the chain's state machine. Rejections keep the contract's stable code, so
/// the HTTP API and the block receipts carry exactly `Rejection::code()`.
pub struct ContractMachine(pub Contract);

fn rejection(r: Rejection) -> TxRejection {
    TxRejection {
        code: r.code().to_string(),
        reason: r.to_string(),
    }
}

impl StateMachine for ContractMachine {
    type Event = Event;

    /// The contract configuration's digest, as nodes pin it (`chain_config_digest`).
    fn genesis_id(&self) -> Option<[u8; 32]> {
        Some(crate::chain::replica::config_digest(self.0.config()))
    }

    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection> {
        self.0.check_tx(tx).map_err(rejection)
    }

    fn tx_hash(&self, tx: &[u8]) -> Option<TxHash> {
        Some(keyquorum_contract::tx::tx_hash(tx))
    }

    fn prepare_block(&mut self, txs: &[&[u8]]) {
        self.0.prepare_block(txs);
    }

    fn apply_tx(&mut self, tx: &[u8], height: u64) -> Result<Vec<Event>, TxRejection> {
        self.0.apply_tx(tx, height).map_err(rejection)
    }

    fn end_block(&mut self, height: u64) -> Vec<Event> {
        self.0.end_block(height)
    }

    fn query(&self, path: &str) -> Option<serde_json::Value> {
        self.0.query(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(status: u16, code: &str) -> Result<(), ClientError> {
        Err(ClientError::Api {
            path: "/tx".into(),
            status,
            code: code.into(),
            reason: "why".into(),
        })
    }

    #[test]
    fn submit_answers_map_to_outcomes() {
        assert_eq!(submit_outcome(Ok(())).unwrap(), SubmitOutcome::Accepted);
        assert_eq!(
            submit_outcome(api_error(409, "duplicate_tx")).unwrap(),
            SubmitOutcome::Duplicate
        );
        for code in ["mempool_full", "busy", "halted"] {
            assert_eq!(
                submit_outcome(api_error(503, code)).unwrap(),
                SubmitOutcome::Busy
            );
        }
        assert_eq!(
            submit_outcome(api_error(413, "tx_too_large")).unwrap(),
            SubmitOutcome::Rejected {
                code: "tx_too_large".into(),
                reason: "why".into()
            }
        );
        assert_eq!(
            submit_outcome(api_error(400, "stale_nonce")).unwrap(),
            SubmitOutcome::Rejected {
                code: "stale_nonce".into(),
                reason: "why".into()
            }
        );
        // A server fault is not the transaction's: an error, retried.
        let e = submit_outcome(api_error(500, "storage")).unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert!(DevchainClient::new("https://x:1").is_err());
    }
}
