//! The adapter for keyquorum's embedded chain (`keyquorum-devchain`): [`DevchainClient`]
//! follows and submits over its HTTP API with the chain's typed client, and
//! [`ContractMachine`] runs the view-change contract as the chain's state machine.
//!
//! `keyquorum-contract` is chain-agnostic and `keyquorum-devchain` is generic over any
//! [`StateMachine`]; neither depends on the other, so both halves of the adapter live here,
//! where the CLI (`keyquorum chain`, `keyquorum demo`) and the node's tests use the same ones.
//! The API's wire types are the chain's own (`keyquorum_devchain::api`); only this module
//! converts them into the node's chain-agnostic types.

use keyquorum_contract::query::ContractStatus;
use keyquorum_contract::{Contract, Event, Rejection};
use keyquorum_devchain::api::{Block, EventsQuery, Status};
use keyquorum_devchain::{Client, ClientError, StateMachine, TxHash, TxRejection};

use keyquorum_contract::Transaction;

use super::{
    Blocks, ChainAction, ChainBlock, ChainClient, ChainStatus, ChainTx, Prepared, Sender,
    SignatureRoute, SubmitOutcome, Unprepared,
};

/// Most blocks asked for in one long poll.
const BLOCKS_PER_POLL: usize = 200;

/// The embedded chain's HTTP API (`keyquorum chain`), over plain HTTP/1.1 on loopback. Clones
/// share one connection pool.
#[derive(Debug, Clone)]
pub struct DevchainClient {
    api: Client,
}

impl DevchainClient {
    /// A client for `http://host:port` (a trailing slash is allowed).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(DevchainClient {
            api: Client::new(url)?,
        })
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
    type Error = ClientError;
    type Tx = Vec<u8>;

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

    async fn status(&self) -> Result<ChainStatus, ClientError> {
        let status: Status<ContractStatus> = self.api.status().await?;
        let contract = status.state.ok_or_else(|| ClientError::Decode {
            path: "/status".into(),
            status: 200,
            detail: "the chain runs no contract (its status has no state)".into(),
        })?;
        Ok(ChainStatus {
            chain_id: contract.chain_id,
            height: status.height,
            beacon: contract.beacon,
        })
    }

    async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Blocks, ClientError> {
        let page = self
            .api
            .events(EventsQuery {
                from: Some(from),
                limit: Some(BLOCKS_PER_POLL),
                wait_ms: Some(wait_ms),
            })
            .await?;
        Ok(Blocks {
            blocks: page.blocks.into_iter().map(chain_block).collect(),
            height: page.height,
        })
    }

    async fn submit(
        &self,
        tx: Vec<u8>,
        _retry_of: Option<[u8; 32]>,
    ) -> Result<SubmitOutcome, ClientError> {
        submit_outcome(self.api.submit(tx).await.map(|_| ()))
    }
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

    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection> {
        self.0.check_tx(tx).map_err(rejection)
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
