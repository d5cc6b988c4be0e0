//! Following the coordinator's logs at a confirmation depth ([`Follower`]): the board's inputs
//! in chain order ([`BoardInput`]), with the phase deadlines by block number that the contract
//! enforces. Nothing here decides a ceremony's outcome; every node computes it from these
//! inputs with the Rust board code.
//!
//! # Reorgs and inconsistent endpoints
//! The follower reports a block only once `confirmations` blocks are built on it, so a reorg
//! shallower than that never reaches the node. A deeper one cannot be undone by a node that
//! acted on the lost blocks (it may have posted, signed or revealed), so it is refused, never
//! followed: each poll first checks that the last block reported is still the chain's block at
//! its height ([`FollowError::Reorg`] when another block is).
//!
//! The logs come from one call (`eth_getLogs` over a range) and the block headers from others,
//! so the chain can change between them, and a load-balanced endpoint can answer them from
//! nodes that disagree or lag. So for the newest 1,000 confirmed blocks a poll takes
//! nothing on trust from one answer:
//! - the headers of every new block are fetched (in JSON-RPC batches, one at a time from an
//!   endpoint that refuses batches) and must form one chain by parent hash from the last block
//!   reported;
//! - every log must carry the hash of that chain's block at its number;
//! - a block whose logs bloom admits the contract but for which no log came is asked for
//!   again by its hash (EIP-234), and logs found that way mean the range answer left some out.
//!
//! Older blocks, which a catch-up reads by the thousand and no reorg reaches, have each log
//! checked against its own block's header only, which costs a header per block with logs
//! rather than per block. That check does not show that a range's answer left no log out (a
//! node far behind the others, answering an old range empty): the bloom test of the newest
//! blocks does, and older ones rely on the endpoint for it.
//!
//! Any of these failing is [`FollowError::Unsettled`]: the range is not reported and polling
//! again is safe (a reorg under it shows at the next poll's check of the last block reported).
//! Ranges are committed one by one, so a long catch-up keeps what it read before a failure.

use alloy_primitives::{Address, B256, BloomInput, Bytes, U256};
use alloy_provider::{DynProvider, Provider};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, Header, Log};
use alloy_sol_types::SolEventInterface;
use alloy_transport::TransportError;
use thiserror::Error;
use tracing::debug;

use crate::Coordinator;
use crate::Coordinator::CoordinatorEvents;

/// Most blocks asked for in one `eth_getLogs` (providers cap the range).
const MAX_LOG_RANGE: u64 = 1_000;
/// Most requests in one JSON-RPC batch (providers cap batches, commonly at 100).
const HEADER_BATCH: usize = 50;
/// Blocks below the newest confirmed one that get every check of the module docs; older
/// blocks, read by the thousand in a catch-up and beyond any reorg, get the log-to-header
/// check only.
const FULL_CHECK_DEPTH: u64 = 1_000;

/// A phase of a ceremony whose end the contract enforces by block number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Contributions (ends at `contributeEnd`).
    Contribute,
    /// Final logs only (ends at `shareEnd`).
    Share,
    /// Publications (ends at `publishEnd`).
    Publish,
    /// Activation (ends at `waitEnd`); past it, the next ceremony may start.
    Wait,
}

/// One input of a node's view of the coordinator, in chain order.
#[derive(Debug, Clone, PartialEq)]
pub enum BoardInput {
    /// A node registered (its identity, keys and network identity are in the event).
    Registered(Coordinator::Registered),
    /// A node's stake changed (stake added, unbonded, or slashed).
    StakeChanged {
        /// The account.
        account: Address,
        /// Its stake now, when the event carries it.
        stake: Option<U256>,
    },
    /// A ceremony started: its committee, parameters, session id and phase ends.
    CommitteeSelected(Coordinator::CommitteeSelected),
    /// The contract took a board post.
    PostAccepted {
        /// The ceremony.
        ceremony: U256,
        /// The author's dealer position (0-based).
        dealer: u32,
        /// `1` contribution, `2` publication.
        kind: u8,
        /// `SignedPost::encode`.
        post: Bytes,
    },
    /// The block that ends `phase` of `ceremony` is confirmed, and every post the contract
    /// took in that phase is among the inputs before this one: the board's `Input::Deadline`
    /// for the first three phases.
    Deadline {
        /// The ceremony.
        ceremony: U256,
        /// The phase that ended.
        phase: Phase,
    },
    /// A magic block took effect.
    ViewActivated(Coordinator::ViewActivated),
    /// A dealer was slashed on a fraud proof.
    Slashed(Coordinator::Slashed),
    /// A view change was abandoned (too few dealers of the active view for a reshare, or too
    /// few candidates), to start over from block `nextStart`.
    ViewChangeAbandoned(Coordinator::ViewChangeAbandoned),
    /// A candidate lost its place on the full candidate list to a higher stake (no board
    /// input: the contract selects committees itself; the evicted node's
    /// [`crate::candidacy::Watch`] takes it).
    Evicted(Coordinator::Evicted),
}

/// The inputs of one confirmed block (only blocks with inputs are reported).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmedBlock {
    /// Its number.
    pub number: u64,
    /// Its inputs, in order.
    pub inputs: Vec<BoardInput>,
}

/// Why following stopped.
#[derive(Debug, Error)]
pub enum FollowError {
    /// The RPC endpoint failed; polling again is safe.
    #[error("rpc: {0}")]
    Rpc(#[from] TransportError),
    /// A block already reported is no longer on the chain: a reorg deeper than the
    /// confirmation depth.
    #[error(
        "block {number} changed after it was reported (a reorg deeper than the confirmation depth)"
    )]
    Reorg {
        /// The block's number.
        number: u64,
    },
    /// The endpoint's answers within one poll disagree about a block not yet reported: the
    /// chain changed during the poll, or a load-balanced endpoint answered from nodes that
    /// disagree or lag. Nothing was reported; polling again is safe.
    #[error("the endpoint's answers disagree at block {block}: {detail}; polling again")]
    Unsettled {
        /// The block.
        block: u64,
        /// What disagreed.
        detail: String,
    },
    /// A log of the contract that does not decode as one of its events.
    #[error("undecodable log in block {block}: {detail}")]
    Decode {
        /// The block.
        block: u64,
        /// Why.
        detail: String,
    },
}

/// Follows the contract's logs at a confirmation depth; see the module docs.
#[derive(Debug)]
pub struct Follower {
    provider: DynProvider,
    contract: Address,
    confirmations: u64,
    next: u64,
    /// The last block reported: its number and hash.
    last: Option<(u64, B256)>,
    /// Phase ends still ahead, `(block, ceremony, phase)`, ascending.
    deadlines: Vec<(u64, U256, Phase)>,
}

impl Follower {
    /// A follower of `contract` from block `from` (its deployment block, so that every
    /// registration and ceremony is seen), reporting blocks `confirmations` deep.
    pub fn new(provider: DynProvider, contract: Address, from: u64, confirmations: u64) -> Self {
        Follower {
            provider,
            contract,
            confirmations,
            next: from,
            last: None,
            deadlines: Vec::new(),
        }
    }

    /// The next block to be reported.
    pub fn next_block(&self) -> u64 {
        self.next
    }

    /// The blocks confirmed since the last poll that carry inputs, and the newest confirmed
    /// block number reported (`None` while the chain is shorter than the confirmation depth).
    ///
    /// A poll reports ranges of at most 1,000 blocks in order, each committed once
    /// it checked out; when one fails after others were reported, the poll returns those, and
    /// the next poll goes on from the failed range. An error means nothing was reported.
    pub async fn poll(&mut self) -> Result<(Vec<ConfirmedBlock>, Option<u64>), FollowError> {
        let head = self.provider.get_block_number().await?;
        let Some(safe) = head.checked_sub(self.confirmations) else {
            return Ok((Vec::new(), None));
        };
        if let Some((number, hash)) = self.last {
            let now = self
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(number))
                .await?
                .map(|b| b.header.hash);
            match now {
                Some(now) if now == hash => {}
                Some(_) => return Err(FollowError::Reorg { number }),
                None => {
                    return Err(FollowError::Unsettled {
                        block: number,
                        detail: "the endpoint does not have the last block reported (a node \
                                 behind the others?)"
                            .into(),
                    });
                }
            }
        }
        let mut out: Vec<ConfirmedBlock> = Vec::new();
        while self.next <= safe {
            let from = self.next;
            let to = safe.min(from + MAX_LOG_RANGE - 1);
            match self.follow_range(from, to, safe).await {
                Ok(blocks) => out.extend(blocks),
                Err(e) if out.is_empty() => return Err(e),
                Err(e) => {
                    debug!(from, error = %e, "following paused after the ranges reported; the next poll goes on");
                    return Ok((out, Some(from - 1)));
                }
            }
        }
        Ok((out, Some(safe)))
    }

    /// Checks and reports blocks `from..=to` (`safe` is the newest confirmed block), then
    /// commits them: the phase ends, the last block reported and the next one to report.
    /// Blocks within [`FULL_CHECK_DEPTH`] of `safe` get every check of the module docs; older
    /// ones, which a catch-up reads by the thousand and no reorg reaches, have each log checked
    /// against its block's header only.
    async fn follow_range(
        &mut self,
        from: u64,
        to: u64,
        safe: u64,
    ) -> Result<Vec<ConfirmedBlock>, FollowError> {
        let full = safe - to < FULL_CHECK_DEPTH;
        let headers = if full {
            let headers = self.fetch_headers(&(from..=to).collect::<Vec<_>>()).await?;
            self.check_linked(&headers)?;
            headers
        } else {
            Vec::new()
        };
        let filter = Filter::new()
            .address(self.contract)
            .from_block(from)
            .to_block(to);
        let logs = self.provider.get_logs(&filter).await?;
        if let Some(number) = logs
            .iter()
            .filter_map(|l| l.block_number)
            .find(|n| !(from..=to).contains(n))
        {
            return Err(FollowError::Unsettled {
                block: number,
                detail: format!("a log outside the range asked for ({from} to {to})"),
            });
        }
        let last_hash = if full {
            self.check_logs(&headers, &logs).await?;
            headers.last().expect("from <= to").hash
        } else {
            // The headers of the blocks with logs, and of the range's last block.
            let mut numbers: Vec<u64> = logs.iter().filter_map(|l| l.block_number).collect();
            numbers.push(to);
            numbers.sort_unstable();
            numbers.dedup();
            let headers = self.fetch_headers(&numbers).await?;
            check_log_blocks(&headers, &logs, self.contract)?;
            headers.last().expect("holds `to`").hash
        };
        // Staged: committed only once the whole range is read.
        let mut deadlines = self.deadlines.clone();
        let mut out: Vec<ConfirmedBlock> = Vec::new();
        let mut logs = logs.into_iter().peekable();
        // Blocks in order: the logs of each block, then the deadlines it ends.
        while logs.peek().is_some() || deadlines.first().is_some_and(|d| d.0 <= to) {
            let log_block = logs.peek().and_then(|l| l.block_number);
            let deadline_block = deadlines.first().map(|d| d.0).filter(|b| *b <= to);
            let block = match (log_block, deadline_block) {
                (Some(l), Some(d)) => l.min(d),
                (Some(l), None) => l,
                (None, Some(d)) => d,
                (None, None) => break,
            };
            let mut inputs = Vec::new();
            while logs.peek().is_some_and(|l| l.block_number == Some(block)) {
                let log = logs.next().expect("peeked");
                if let Some(input) = input(&mut deadlines, &log, block)? {
                    inputs.push(input);
                }
            }
            while deadlines.first().is_some_and(|d| d.0 <= block) {
                let (_, ceremony, phase) = deadlines.remove(0);
                inputs.push(BoardInput::Deadline { ceremony, phase });
            }
            if !inputs.is_empty() {
                out.push(ConfirmedBlock {
                    number: block,
                    inputs,
                });
            }
        }
        self.deadlines = deadlines;
        self.last = Some((to, last_hash));
        self.next = to + 1;
        Ok(out)
    }

    /// The headers of blocks `numbers`, in order: in JSON-RPC batches, or one at a time from an
    /// endpoint that refuses batches of this size.
    async fn fetch_headers(&self, numbers: &[u64]) -> Result<Vec<Header>, FollowError> {
        let mut out = Vec::with_capacity(numbers.len());
        for group in numbers.chunks(HEADER_BATCH) {
            let params: Vec<_> = group
                .iter()
                .map(|n| (BlockNumberOrTag::Number(*n), false))
                .collect();
            let headers: Vec<Option<Header>> =
                self.batched("eth_getBlockByNumber", &params).await?;
            for (n, header) in group.iter().zip(headers) {
                let header = header.ok_or_else(|| FollowError::Unsettled {
                    block: *n,
                    detail: "the endpoint does not have the block".into(),
                })?;
                if header.inner.number != *n {
                    return Err(FollowError::Unsettled {
                        block: *n,
                        detail: format!("asked for it, got block {}", header.inner.number),
                    });
                }
                out.push(header);
            }
        }
        Ok(out)
    }

    /// The answers to `method` with each of `params`, in order: in one JSON-RPC batch, or one
    /// at a time from an endpoint that refuses the batch.
    async fn batched<P, R>(
        &self,
        method: &'static str,
        params: &[P],
    ) -> Result<Vec<R>, TransportError>
    where
        P: alloy_json_rpc::RpcSend + Clone,
        R: alloy_json_rpc::RpcRecv,
    {
        let in_batch = async {
            let mut batch = alloy_rpc_client::BatchRequest::new(self.provider.client());
            let waiters = params
                .iter()
                .map(|p| batch.add_call::<_, R>(method, p))
                .collect::<Result<Vec<_>, _>>()?;
            batch.send().await?;
            let mut answers = Vec::with_capacity(params.len());
            for waiter in waiters {
                answers.push(waiter.await?);
            }
            Ok::<_, TransportError>(answers)
        };
        match in_batch.await {
            Ok(answers) => Ok(answers),
            Err(error) => {
                debug!(%error, method, "a batch failed; asking one at a time");
                let mut answers = Vec::with_capacity(params.len());
                for p in params {
                    answers.push(self.provider.raw_request(method.into(), p.clone()).await?);
                }
                Ok(answers)
            }
        }
    }

    /// Checks that consecutive `headers` form one chain by parent hash continuing the last
    /// block reported. A break is an unsettled answer, not a reorg: the last block reported was
    /// on the chain at the poll's start, and the next poll's check of it tells a reorg.
    fn check_linked(&self, headers: &[Header]) -> Result<(), FollowError> {
        if let (Some((number, hash)), Some(first)) = (self.last, headers.first())
            && number + 1 == first.inner.number
            && first.inner.parent_hash != hash
        {
            return Err(FollowError::Unsettled {
                block: first.inner.number,
                detail: format!("its parent is not block {number} as reported"),
            });
        }
        for pair in headers.windows(2) {
            if pair[1].inner.parent_hash != pair[0].hash {
                return Err(FollowError::Unsettled {
                    block: pair[1].inner.number,
                    detail: "its parent is not the block before it".into(),
                });
            }
        }
        Ok(())
    }

    /// Checks the logs of one range against all of its headers (`headers[0]` is the range's
    /// first block): each log under its block's hash ([`check_log_blocks`]), and every block
    /// whose bloom admits the contract either has logs in the answer or has none when asked by
    /// its hash.
    async fn check_logs(&self, headers: &[Header], logs: &[Log]) -> Result<(), FollowError> {
        check_log_blocks(headers, logs, self.contract)?;
        // The bloom admits false positives (a busy chain's blooms are mostly set): ask for the
        // logs of each block it names by the block's hash, in batches (one at a time from an
        // endpoint that refuses them).
        let suspects: Vec<&Header> = headers
            .iter()
            .filter(|header| {
                header
                    .inner
                    .logs_bloom
                    .contains_input(BloomInput::Raw(self.contract.as_slice()))
                    && !logs.iter().any(|l| l.block_hash == Some(header.hash))
            })
            .collect();
        for chunk in suspects.chunks(HEADER_BATCH) {
            let filters: Vec<(Filter,)> = chunk
                .iter()
                .map(|h| (Filter::new().address(self.contract).at_block_hash(h.hash),))
                .collect();
            let found: Vec<Vec<Log>> = self.batched("eth_getLogs", &filters).await?;
            let found = found.iter().map(Vec::len);
            if let Some((header, _)) = chunk.iter().zip(found).find(|(_, n)| *n > 0) {
                return Err(FollowError::Unsettled {
                    block: header.inner.number,
                    detail: "the range's logs left out this block's".into(),
                });
            }
        }
        Ok(())
    }
}

/// Checks each of `logs` against `headers` (ascending, holding every block with a log): a
/// log of `contract`, in a block of those headers, under that block's hash.
fn check_log_blocks(
    headers: &[Header],
    logs: &[Log],
    contract: Address,
) -> Result<(), FollowError> {
    for log in logs {
        let Some(number) = log.block_number else {
            return Err(FollowError::Unsettled {
                block: headers.first().map_or(0, |h| h.inner.number),
                detail: "a log without a block number (a pending log)".into(),
            });
        };
        let Ok(at) = headers.binary_search_by_key(&number, |h| h.inner.number) else {
            return Err(FollowError::Unsettled {
                block: number,
                detail: "a log outside the range asked for".into(),
            });
        };
        if log.block_hash != Some(headers[at].hash) {
            return Err(FollowError::Unsettled {
                block: number,
                detail: "a log of another block at this height".into(),
            });
        }
        if log.address() != contract {
            return Err(FollowError::Unsettled {
                block: number,
                detail: "a log of another address".into(),
            });
        }
    }
    Ok(())
}

/// The board input of one of the contract's logs in `block`, updating the phase ends ahead.
fn input(
    deadlines: &mut Vec<(u64, U256, Phase)>,
    log: &Log,
    block: u64,
) -> Result<Option<BoardInput>, FollowError> {
    let event = CoordinatorEvents::decode_log(&log.inner).map_err(|e| FollowError::Decode {
        block,
        detail: e.to_string(),
    })?;
    Ok(Some(match event.data {
        CoordinatorEvents::Registered(e) => BoardInput::Registered(e),
        CoordinatorEvents::StakeAdded(e) => BoardInput::StakeChanged {
            account: e.account,
            stake: Some(e.stake),
        },
        CoordinatorEvents::Unbonding(e) => BoardInput::StakeChanged {
            account: e.account,
            stake: None,
        },
        CoordinatorEvents::Withdrawn(_) => return Ok(None),
        CoordinatorEvents::Evicted(e) => BoardInput::Evicted(e),
        CoordinatorEvents::CommitteeSelected(e) => {
            // A new ceremony supersedes the previous one's remaining deadlines.
            deadlines.clear();
            for (end, phase) in [
                (e.contributeEnd, Phase::Contribute),
                (e.shareEnd, Phase::Share),
                (e.publishEnd, Phase::Publish),
                (e.waitEnd, Phase::Wait),
            ] {
                deadlines.push((end, e.ceremony, phase));
            }
            BoardInput::CommitteeSelected(e)
        }
        CoordinatorEvents::PostAccepted(e) => BoardInput::PostAccepted {
            ceremony: e.ceremony,
            dealer: e.dealer,
            kind: e.kind,
            post: e.post,
        },
        CoordinatorEvents::ViewActivated(e) => {
            // Activation ends the ceremony: no wait deadline follows.
            deadlines.retain(|d| d.1 != e.ceremony);
            BoardInput::ViewActivated(e)
        }
        CoordinatorEvents::Slashed(e) => BoardInput::Slashed(e),
        // Nothing is left for a board (the abandoned ceremony's deadlines have passed), but
        // the operator is told, as on the embedded chain.
        CoordinatorEvents::ViewChangeAbandoned(e) => BoardInput::ViewChangeAbandoned(e),
    }))
}
