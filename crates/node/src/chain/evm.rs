//! The adapter for the coordinator contract on an EVM chain (`contracts/src/Coordinator.sol`,
//! `keyquorum-evm`): [`EvmChainClient`] follows the contract's logs at a confirmation depth and
//! sends the node's transactions from its chain key.
//!
//! - Blocks: `keyquorum_evm::follower::Follower` reports the confirmed blocks with the contract's
//!   logs and the phase deadlines by block number; `keyquorum_evm::events::Translator` turns
//!   them into the embedded chain's events with a replica of the ceremony's board, so the
//!   node's driver follows the EVM contract exactly as it follows the embedded one. Each poll
//!   also reports the newest confirmed block (empty if it has no logs), so the node knows it
//!   has caught up. Following starts at the contract's deployment block every time the node
//!   starts (the translator's registry and board are rebuilt from the logs); the node skips the
//!   blocks it has processed already. A reorg deeper than the confirmation depth stops the
//!   following (every poll fails with it) rather than follow the other branch.
//! - Transactions ([`ChainClient::prepare`]): registration (the identity key, its proof of
//!   possession and its signature binding the key to the chain key's account, stake as the
//!   call's value), DKG posts, adding, unbonding and withdrawing stake, and the activation with
//!   the combined signatures, whose magic block and qualified set come from the translator's
//!   board, and the fraud proof of a refused post ([`ChainAction::ProveFault`]), which the
//!   translator built when its board replica named a fault the contract can check
//!   (`keyquorum_evm::proofs`; a post of this node's own, or one whose culprit was slashed in
//!   that ceremony, gets none). Partial signatures are not sent to this chain ([`SignatureRoute::OffChain`]). Sends
//!   are serialised and each waits for its receipt (`keyquorum_evm::client::Client::send`),
//!   which fills and signs them itself.
//! - A send whose receipt was not seen in that wait is answered [`SubmitOutcome::Unconfirmed`],
//!   and the runtime submits it again later with the send's handle; that submission is its
//!   retry, and the client looks the transaction up rather than send a copy with the next
//!   nonce: its outcome once mined (a revert replayed for its reason), `Unconfirmed` again
//!   while its nonce is free (the node handed it again if it lost it), a new send once another
//!   transaction took its nonce. Any other submission of the same call is a new call, sent
//!   even if an identical one was just mined (while one is pending, the client looks that one
//!   up instead). A send still pending is looked up at each confirmed block, replaced with higher
//!   fees when pending long enough (`keyquorum_evm::client::FeeBump`, [`EvmChainClient::with_fee_bump`]),
//!   warned about (hash, call, how long, replacements) when first found and every ten minutes,
//!   and shown ([`ChainClient::send_pending`]) as `send_pending`, `keyquorum_sends_pending` and
//!   `keyquorum_send_fee_bumps`.
//! - Fraud proofs are staggered ([`ChainClient::proof_due`], `keyquorum_evm::stagger`): the
//!   committee's honest-looking members, the culprit left out, take turns in an order every
//!   node derives from the session id, the culprit and its account; the member of rank `r`
//!   sends once the follower has confirmed `r * (confirmations + 2)` blocks past the block
//!   that logged the fault without seeing the culprit slashed, and drops its proof as soon as
//!   the follower sees the slash. So on a live chain one proof is sent per fault, and the
//!   others' copies neither revert nor cost gas.
//! - Eviction (`keyquorum_evm::candidacy`): the contract lists at most 300 candidates, and a
//!   higher stake takes the place of the lowest one not serving, logging `Evicted`. When the
//!   follower confirms such a log naming this node's account, the adapter asks the chain at each
//!   confirmed block whether the account is listed and, if not, simulates `addStake()` with no
//!   value: its refusal `CandidateListFull(lowestStake)` names the stake to outrank, and once
//!   the simulation passes (a place freed, or the stake now outranks that candidate) it sends the
//!   call, which lists the node again. The eviction is logged with the stake needed and shown
//!   ([`ChainClient::eviction`]) on `/status` and as `keyquorum_evicted`. A registration the
//!   contract refuses with `CandidateListFull` (the list full before this node was ever
//!   listed) is followed the same way with the registration simulated instead, sent again as
//!   soon as the simulation passes, and shown ([`ChainClient::registration_refused`]) as
//!   `registration_refused` and `keyquorum_registration_refused`. A registration below the
//!   contract's minimum stake (read from the contract) is not sent (nor is the retry of one
//!   the chain dropped, which is sent anew: the minimum may have risen since), and a registered stake
//!   below it is read at each confirmed log that changes it; both are shown
//!   ([`ChainClient::stake_below_minimum`]) as `stake_below_minimum` and
//!   `keyquorum_stake_below_minimum`. A failing check is warned at the first failure, on a
//!   new error and every `keyquorum_evm::candidacy::WARN_EVERY_BLOCKS` blocks, and shown
//!   ([`ChainClient::candidacy_check_failing`]).
//! - View changes: the contract starts one only when someone calls `startViewChange` (it ranks
//!   the eligible nodes from its own state), once one is due (the start block reached with no
//!   ceremony running, or the running ceremony's wait phase over without an activation). The
//!   nodes take turns, two blocks and 2 s each, the active view's members first
//!   (`keyquorum_evm::stagger::start_turn`): the first call wins; a later one is refused at gas
//!   estimation and costs nothing, or, when two land in one block, reverts (logged, and counted
//!   in `keyquorum_transactions_reverted_total{kind="start_view_change"}`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::repeat_log::RepeatLog;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{BeaconConfig, BeaconScheme};
use keyquorum_dkg::identity::Purpose;
use keyquorum_evm::Coordinator::CoordinatorErrors;
use keyquorum_evm::alloy_primitives::{Address, B256, Bytes, U256};
use keyquorum_evm::alloy_sol_types::SolCall as _;
use keyquorum_evm::candidacy::{self, Bar, Change, Registration, Watch};
use keyquorum_evm::client::{
    BoardInput, CallOutcome, Client, ClientError, FeeBump, FollowError, Follower, PendingSend,
    Revert,
};
use keyquorum_evm::events::Translator;
use keyquorum_evm::stagger::{Held, Turn, start_turn};
use keyquorum_evm::{
    Coordinator, Deployment, PrivateKeySigner, g1_point, g2_point, registration_payload,
};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use super::{
    Blocks, ChainAction, ChainBlock, ChainClient, ChainStatus, ChainTx, Due, FaultReport, Prepared,
    Sender, SignatureRoute, SubmitOutcome, Unprepared,
};

/// How long a poll that found nothing new waits before answering.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often a send that stays pending is warned about again.
const WARN_PENDING_EVERY: Duration = Duration::from_secs(600);

/// Where the contract is and how to follow it.
#[derive(Clone, PartialEq, Eq)]
pub struct EvmSettings {
    /// JSON-RPC endpoint (`http://` or `https://`).
    pub rpc: String,
    /// The coordinator's address.
    pub contract: Address,
    /// The chain name the contract was deployed with (its `chainId` configuration), which every
    /// ceremony's session id and magic block bind, if the operator pins it: [`EvmChainClient::connect`]
    /// refuses a contract deployed with another. `None`: the contract's own, read at connect.
    pub chain_name: Option<String>,
    /// The block the contract was deployed in (following starts there).
    pub from_block: u64,
    /// Blocks built on a block before it is reported.
    pub confirmations: u64,
}

impl std::fmt::Debug for EvmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The endpoint's path, query and user info may carry an access key.
        f.debug_struct("EvmSettings")
            .field("rpc", &keyquorum_evm::client::rpc_origin(&self.rpc))
            .field("contract", &self.contract)
            .field("chain_name", &self.chain_name)
            .field("from_block", &self.from_block)
            .field("confirmations", &self.confirmations)
            .finish()
    }
}

/// Why a chain call failed.
#[derive(Debug, thiserror::Error)]
pub enum EvmChainError {
    /// A call or a send failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Following the logs failed.
    #[error(transparent)]
    Follow(#[from] FollowError),
}

struct Following {
    follower: Follower,
    /// The newest block reported to the node.
    reported: Option<u64>,
    /// Blocks the follower confirmed, and its newest confirmed block, not yet handed to the
    /// node because a read they need failed: handed at the next call, before any poll (the
    /// follower has moved past them).
    held: Option<(Vec<keyquorum_evm::follower::ConfirmedBlock>, Option<u64>)>,
}

/// A call ready to send: its calldata and the value (wei) it carries.
#[derive(Debug, Clone)]
pub struct EvmCall {
    /// ABI-encoded call.
    pub input: Vec<u8>,
    /// Value sent with it.
    pub value: U256,
}

/// The coordinator contract on an EVM chain; see the module docs. Clones share the connection,
/// the follower and the send lock.
#[derive(Clone)]
pub struct EvmChainClient {
    client: Client,
    chain_id: u64,
    settings: EvmSettings,
    following: Arc<tokio::sync::Mutex<Following>>,
    translator: Arc<Mutex<Translator>>,
    starting: Arc<AtomicBool>,
    /// This node's view-change starts mined and reverted, not yet handed to the runtime's
    /// count ([`ChainClient::take_reverted`]).
    reverted_starts: Arc<AtomicU64>,
    /// The last reason the coordinator gave for not starting a due view change: a lasting
    /// one is warned once, not at every head.
    start_refusal: Arc<Mutex<RepeatLog<String>>>,
    /// The head at this node's last check for a due view change (one read of the contract
    /// per block).
    checked_at: Arc<AtomicU64>,
    /// The start this node found due and has not seen made, for its turn's clock.
    start_clock: Arc<Mutex<Option<StartClock>>>,
    /// The contract's configured beacon, read when the node connects (it is fixed at deploy).
    beacon: BeaconConfig,
    /// The newest block the follower confirmed (the translator has seen its logs).
    confirmed: Arc<AtomicU64>,
    /// This node's place on the candidate list (module docs).
    candidacy: Arc<Mutex<Watch>>,
    /// A candidacy check of this node is under way.
    checking: Arc<AtomicBool>,
    /// This node's sends still pending after their receipt wait, as last looked up.
    pending_sends: Arc<Mutex<Vec<PendingSend>>>,
    /// A look-up of the pending sends is under way.
    looking_up: Arc<AtomicBool>,
    /// The confirmed height of the last look-up of the pending sends.
    looked_up_at: Arc<AtomicU64>,
    /// Following stopped for good (a reorg deeper than the confirmation depth, a log that does
    /// not decode): [`ChainClient::chain_refused`].
    refused: Arc<Mutex<Option<crate::status::ChainRefusedStatus>>>,
}

impl std::fmt::Debug for EvmChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmChainClient")
            .field("settings", &self.settings)
            .field("account", &self.client.account())
            .finish_non_exhaustive()
    }
}

/// The beacon the contract at `client` is configured with, which every magic block it
/// activates names: the magic blocks this node builds name it too.
async fn read_beacon_config(client: &Client) -> Result<BeaconConfig, ClientError> {
    let c = client.read(Coordinator::beaconConfigCall {}).await?;
    let scheme = BeaconScheme::from_tag(c.scheme).ok_or_else(|| {
        ClientError::Decode(format!(
            "the contract's beacon scheme {} is unknown",
            c.scheme
        ))
    })?;
    Ok(BeaconConfig {
        scheme,
        period_secs: c.period,
    })
}

impl EvmChainClient {
    /// Connects to the contract, sending from `key`'s account.
    pub async fn connect(
        settings: EvmSettings,
        key: PrivateKeySigner,
    ) -> Result<Self, ClientError> {
        let account = key.address();
        let client = Client::connect(&settings.rpc, key, settings.contract).await?;
        let chain_id = client.chain_id().await?;
        // Before anything is read from the contract: an empty address would fail with an ABI
        // decoding error that names neither, and another contract's answers mean nothing.
        client.check_coordinator_code().await?;
        // The follower starts at `from_block`: a deployment before it would leave the
        // registrations and ceremonies logged in between unseen.
        if let Some(before) = settings.from_block.checked_sub(1) {
            match client.coordinator_code_at(before).await {
                Ok(true) => {
                    return Err(ClientError::FromBlockAfterDeployment {
                        from_block: settings.from_block,
                        before,
                    });
                }
                Ok(false) => {}
                Err(error) => warn!(
                    from_block = settings.from_block,
                    %error,
                    "cannot tell whether evm.from_block comes after the coordinator's deployment \
                     (an endpoint without state that old?); logs before it would be missed"
                ),
            }
        }
        if client.balance(account).await?.is_zero() {
            warn!(
                %account,
                chain_id,
                "this account holds no ether: it cannot pay for its transactions (its \
                 registration included) until it is funded"
            );
        }
        let deployed = client.chain_name().await?;
        if let Some(configured) = &settings.chain_name
            && *configured != deployed
        {
            return Err(ClientError::ChainNameMismatch {
                configured: configured.clone(),
                deployed,
            });
        }
        let mut settings = settings;
        settings.chain_name = Some(deployed.clone());
        let beacon = read_beacon_config(&client).await?;
        let view_length = client.view_length().await?;
        let follower = Follower::new(
            client.provider().clone(),
            settings.contract,
            settings.from_block,
            settings.confirmations,
        );
        Ok(EvmChainClient {
            translator: Arc::new(Mutex::new(Translator::new(Deployment {
                chain_id,
                contract: settings.contract,
                chain_name: deployed,
                beacon,
                view_length,
            }))),
            beacon,
            client,
            chain_id,
            settings,
            following: Arc::new(tokio::sync::Mutex::new(Following {
                follower,
                reported: None,
                held: None,
            })),
            starting: Arc::new(AtomicBool::new(false)),
            reverted_starts: Arc::new(AtomicU64::new(0)),
            start_refusal: Arc::default(),
            checked_at: Arc::new(AtomicU64::new(0)),
            start_clock: Arc::default(),
            confirmed: Arc::new(AtomicU64::new(0)),
            candidacy: Arc::new(Mutex::new(Watch::new(account))),
            checking: Arc::new(AtomicBool::new(false)),
            pending_sends: Default::default(),
            looking_up: Arc::new(AtomicBool::new(false)),
            looked_up_at: Arc::new(AtomicU64::new(0)),
            refused: Arc::default(),
        })
    }

    /// This adapter, waiting `timeout` (instead of two minutes) for each sent transaction's
    /// receipt before it looks the transaction up instead.
    pub fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_receipt_timeout(timeout);
        self
    }

    /// This adapter, replacing a send left pending with higher fees as `bump` says (module
    /// docs); `None`: never.
    pub fn with_fee_bump(mut self, bump: Option<FeeBump>) -> Self {
        self.client = self.client.with_fee_bump(bump);
        self
    }

    /// The contract's chain name (read at connect).
    pub fn chain_name(&self) -> &str {
        self.settings.chain_name.as_deref().unwrap_or_default()
    }

    /// The account transactions are sent from.
    pub fn account(&self) -> Address {
        self.client.account()
    }

    /// The contract's client (for reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn translator(&self) -> std::sync::MutexGuard<'_, Translator> {
        self.translator.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register_call(
        &self,
        body: &TxBody,
        sender: Sender<'_>,
    ) -> Result<Option<EvmCall>, Unprepared> {
        let TxBody::Register {
            pop,
            encryption_key,
            network,
            stake,
        } = body
        else {
            return Ok(None);
        };
        let bad = |what: &str| Unprepared {
            kind: "register",
            why: format!("invalid {what}"),
        };
        let identity = *sender.identity.public().as_bytes();
        let payload = registration_payload(
            self.chain_id,
            self.settings.contract,
            self.client.account(),
            encryption_key.as_bytes(),
            &network.peer_id.0,
            &network.addresses,
        );
        let binding = sender.identity.sign(Purpose::Transaction, &payload);
        let call = Coordinator::registerCall {
            identity: Bytes::copy_from_slice(&identity),
            identityPoint: g2_point(&identity)
                .map_err(|_| bad("identity key"))?
                .to_vec()
                .into(),
            pop: g1_point(&pop.0)
                .map_err(|_| bad("proof of possession"))?
                .to_vec()
                .into(),
            binding: g1_point(&binding.0)
                .map_err(|_| bad("binding signature"))?
                .to_vec()
                .into(),
            encryptionKey: (*encryption_key.as_bytes()).into(),
            peerId: Bytes::copy_from_slice(&network.peer_id.0),
            addresses: network.addresses.clone(),
        };
        Ok(Some(EvmCall {
            input: alloy_sol_call(call),
            value: U256::from(*stake),
        }))
    }

    fn activate_call(&self, a: &super::Activation) -> Result<EvmCall, Unprepared> {
        let unprepared = |why: &str| Unprepared {
            kind: "activate",
            why: why.into(),
        };
        let translator = self.translator();
        let created = translator
            .created(&a.block_hash)
            .ok_or_else(|| unprepared("not the magic block of the ceremony on chain"))?;
        let group_key = g1_point(&created.block.group_key.0)
            .map_err(|_| unprepared("the group key is not a point"))?;
        let signature_point =
            g2_point(&a.signature).map_err(|_| unprepared("the signature is not a point"))?;
        let previous = match &a.previous_signature {
            Some(s) => g2_point(s)
                .map_err(|_| unprepared("the handover signature is not a point"))?
                .to_vec(),
            None => Vec::new(),
        };
        // The endorsers as the contract takes them: a bitmap of committee seats (share index
        // minus one), their identity keys as points in seat order, one aggregate signature.
        let mut endorsers = vec![0u8; (created.block.n as usize).div_ceil(8)];
        let mut points = Vec::with_capacity(a.endorsements.len());
        let mut endorsements: Vec<&super::Endorsement> = a.endorsements.iter().collect();
        endorsements.sort_by_key(|e| e.index);
        for e in &endorsements {
            let seat = (e.index as usize)
                .checked_sub(1)
                .filter(|s| *s < created.block.n as usize)
                .ok_or_else(|| unprepared("an endorser outside the committee"))?;
            endorsers[seat / 8] |= 1 << (seat % 8);
            let point =
                g2_point(&e.identity).map_err(|_| unprepared("an endorser key is not a point"))?;
            points.push(Bytes::copy_from_slice(&point));
        }
        let signatures: Vec<_> = endorsements.iter().map(|e| e.signature).collect();
        let aggregate = keyquorum_dkg::identity::aggregate(&signatures)
            .ok_or_else(|| unprepared("no endorsements"))?;
        let endorsement = g1_point(&aggregate.0)
            .map_err(|_| unprepared("the endorsement aggregate is not a point"))?;
        let call = Coordinator::activateCall {
            a: Coordinator::Activation {
                magicBlock: created.block.encode().into(),
                groupKeyPoint: group_key.to_vec().into(),
                qualified: created.qualified.clone(),
                signature: Bytes::copy_from_slice(&a.signature),
                signaturePoint: signature_point.to_vec().into(),
                previousSignaturePoint: previous.into(),
                endorsers: endorsers.into(),
                endorserPoints: points,
                endorsement: endorsement.to_vec().into(),
            },
        };
        Ok(EvmCall {
            input: alloy_sol_call(call),
            value: U256::ZERO,
        })
    }

    /// The fraud proof of a refused post, as this node's own board replica found it: the
    /// report only names the post.
    fn proof_call(&self, report: &super::FaultReport) -> Result<EvmCall, Unprepared> {
        let unprepared = |why: &str| Unprepared {
            kind: "fault_proof",
            why: why.into(),
        };
        let translator = self.translator();
        let proof = translator.fault_proof(&report.post).ok_or_else(|| {
            unprepared("the board names no fault the contract can check, or it is slashed already")
        })?;
        if proof.culprit == self.client.account() {
            return Err(unprepared("the culprit is this node"));
        }
        Ok(EvmCall {
            input: proof.calldata.clone(),
            value: U256::ZERO,
        })
    }

    /// Starts the view change if one is due and no attempt of this node is under way (module
    /// docs).
    fn start_view_change_if_due(&self) {
        if self.starting.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.start_view_change().await {
                debug!(error = %e, "view change not started");
            }
            me.starting.store(false, Ordering::Release);
        });
    }

    async fn start_view_change(&self) -> Result<(), ClientError> {
        let c = &self.client;
        let head = c.block_number().await?;
        let now = Instant::now();
        let previous = self.checked_at.swap(head, Ordering::AcqRel);
        let due = if previous == head {
            // The contract's answer for this head is known: only the turn's clock moved.
            match &*self.start_clock() {
                Some(clock) => clock.due,
                None => return Ok(()),
            }
        } else {
            // The first block in which a call starts a view change.
            let read = async {
                let running = c.read(Coordinator::runningCall {}).await?;
                if running.is_zero() {
                    c.read(Coordinator::nextStartCall {}).await
                } else {
                    Ok(c.read(Coordinator::ceremonyCall { id: running })
                        .await?
                        .waitEnd
                        .saturating_add(1))
                }
            };
            let due = match read.await {
                Ok(due) => due,
                Err(e) => {
                    // Read again at the next ask, not only at the next head: a chain that
                    // mines on demand may bring none.
                    self.checked_at.store(previous, Ordering::Release);
                    return Err(e);
                }
            };
            let mut clock = self.start_clock();
            if head + 1 < due {
                *clock = None;
                return Ok(());
            }
            match &mut *clock {
                Some(clock) if clock.due == due => {
                    if clock.head != head {
                        clock.head = head;
                        clock.head_seen = now;
                    }
                }
                _ => {
                    *clock = Some(StartClock {
                        due,
                        found: now,
                        head,
                        head_seen: now,
                    })
                }
            }
            due
        };
        let held = self
            .start_clock()
            .as_ref()
            .map(|clock| clock.held(now))
            .unwrap_or_default();
        // Every node finds the start due in the same block: the nodes take turns
        // (`keyquorum_evm::stagger::start_turn`), so copies do not revert at their cost.
        let starters = self.translator().starters();
        if let Turn::Wait { at } = start_turn(due, &starters, c.account(), head, held) {
            debug!(
                due,
                at, "view change due; not this node's turn to start it yet"
            );
            return Ok(());
        }
        // A call that got an answer is not repeated at this head: the next head's read says
        // whether a start is still due. One that failed is tried again at the next ask.
        let outcome = c
            .send(Coordinator::startViewChangeCall {}, U256::ZERO)
            .await?;
        *self.start_clock() = None;
        match outcome {
            CallOutcome::Included { block, .. } => info!(block, "started a view change on chain"),
            CallOutcome::Reverted(r) if r.mined() => {
                self.reverted_starts.fetch_add(1, Ordering::AcqRel);
                info!(
                    revert = %r.name(),
                    "view change start mined and reverted: another node's start came first in \
                     the same block; its fee is spent"
                );
            }
            CallOutcome::Reverted(r) => {
                let name = r.name();
                let lasting = matches!(name.as_str(), "TooFewCandidates" | "BadParams");
                let news = self
                    .start_refusal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_news(name.clone());
                if lasting && news {
                    let counts = match &r {
                        keyquorum_evm::client::Revert::Contract(
                            keyquorum_evm::Coordinator::CoordinatorErrors::TooFewCandidates(c),
                        ) => format!(": {} eligible, {} needed", c.have, c.need),
                        _ => String::new(),
                    };
                    warn!(
                        revert = %format!("{name}{counts}"),
                        "the coordinator refuses to start the view change that is due: \
                         TooFewCandidates until at least min_size nodes are eligible (registered \
                         with the minimum stake), BadParams if the seats give thresholds the DKG \
                         refuses; the active view serves on meanwhile"
                    );
                } else {
                    debug!(revert = %name, "view change not started");
                }
                return Ok(());
            }
        }
        self.start_refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
        Ok(())
    }
}

impl EvmChainClient {
    /// Looks up, at each confirmed block while there are any, this node's sends still pending
    /// after their receipt wait, one look-up at a time: warns of each (its hash, call and how
    /// long) when first found and every [`WARN_PENDING_EVERY`] while it stays pending, and
    /// keeps them for `/status` ([`ChainClient::send_pending`]). A send found mined or dropped
    /// leaves the list.
    fn look_up_pending_sends(&self, now: u64) {
        if !self.client.has_unconfirmed() {
            self.pending_sends().clear();
            return;
        }
        if self.looked_up_at.load(Ordering::Acquire) >= now
            || self.looking_up.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.looked_up_at.store(now, Ordering::Release);
        let me = self.clone();
        tokio::spawn(async move {
            match me.client.pending_sends(WARN_PENDING_EVERY).await {
                Ok(pending) => {
                    for p in pending.iter().filter(|p| p.warn) {
                        warn!(
                            tx_hash = %p.tx_hash,
                            kind = p.kind,
                            pending_secs = p.pending_for.as_secs(),
                            replacements = p.replacements,
                            newest = %p.newest,
                            problem = p.problem.as_deref().unwrap_or("none"),
                            "transaction sent {}s ago is not mined yet while its nonce is free \
                             (its fee may be too low for the chain): it is not sent again as a \
                             new call, it is replaced with higher fees if a fee bump is \
                             configured, and this account's later transactions wait behind its \
                             nonce",
                            p.pending_for.as_secs()
                        );
                    }
                    *me.pending_sends() = pending;
                }
                Err(e) => debug!(error = %e, "pending sends not looked up"),
            }
            me.looking_up.store(false, Ordering::Release);
        });
    }

    fn start_clock(&self) -> std::sync::MutexGuard<'_, Option<StartClock>> {
        self.start_clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending_sends(&self) -> std::sync::MutexGuard<'_, Vec<PendingSend>> {
        self.pending_sends.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.candidacy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the chain about this node's candidacy at confirmed height `now` when a log named
    /// it, one check at a time (module docs).
    fn check_candidacy_if_due(&self, now: u64) {
        if !self.watch().due(now) || self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            match candidacy::check(&me.client, &me.candidacy, now).await {
                Ok(changes) => {
                    if let Some(f) = me.watch().on_check_succeeded() {
                        info!(
                            since = f.since,
                            failures = f.failures,
                            "candidacy checked again after failures"
                        );
                    }
                    changes.iter().for_each(log_change);
                }
                Err(e) => {
                    // The client's errors show no part of the endpoint's URL.
                    let error = e.to_string();
                    let mut watch = me.watch();
                    if watch.on_check_failed(error.clone(), now) {
                        let failing = watch.check_failure().cloned();
                        drop(watch);
                        let (since, failures) = failing.map_or((now, 1), |f| (f.since, f.failures));
                        warn!(
                            block = now,
                            since,
                            failures,
                            %error,
                            "this node's candidacy check failed (retried at each confirmed \
                             block; if the account cannot pay for gas, fund it)"
                        );
                    } else {
                        debug!(block = now, %error, "candidacy check failed again");
                    }
                }
            }
            me.checking.store(false, Ordering::Release);
        });
    }

    /// A registration whose stake is more than the account holds is not sent: the node
    /// says so as on the embedded chain (`insufficient_balance`, on `/status` until it is
    /// funded), where the chain's own answer ("insufficient funds") would be retried as a
    /// failed send and name neither the account nor the amounts. (A balance that covers the
    /// stake but not the gas still gets the chain's answer.)
    async fn hold_back_unfunded(&self, stake: U256) -> Result<Option<SubmitOutcome>, ClientError> {
        let account = self.client.account();
        let balance = self.client.balance(account).await?;
        if balance >= stake {
            return Ok(None);
        }
        Ok(Some(SubmitOutcome::Rejected {
            code: "insufficient_balance".into(),
            reason: format!(
                "the account {account} holds {balance} wei, less than the stake {stake} wei"
            ),
        }))
    }

    /// Holds back a registration of `stake` wei below the contract's minimum (module docs):
    /// `Some` (the refusal) when it is below.
    async fn hold_back_below_minimum(
        &self,
        stake: U256,
    ) -> Result<Option<SubmitOutcome>, ClientError> {
        let minimum = self.client.min_stake(None).await?;
        if candidacy::eligible(stake, minimum) {
            return Ok(None);
        }
        let now = self.confirmed.load(Ordering::Acquire);
        let change = self
            .watch()
            .on_registration_below_minimum(stake, minimum, now);
        change.iter().for_each(log_change);
        Ok(Some(SubmitOutcome::Reverted {
            code: "StakeBelowMinimum".into(),
            reason: format!(
                "not sent: the stake {stake} wei is below the contract's minimum {minimum} wei"
            ),
            mined: false,
        }))
    }
}

/// A view-change start this node found due: since when, and since when the head stood still.
#[derive(Debug, Clone, Copy)]
struct StartClock {
    /// The block from which a call starts the view change.
    due: u64,
    /// When this node first found it due.
    found: Instant,
    /// The head last read, and when it was first read.
    head: u64,
    head_seen: Instant,
}

impl StartClock {
    /// The clock as `keyquorum_evm::stagger::start_turn` reads it at `now`.
    fn held(&self, now: Instant) -> Held {
        let ms = |since: Instant| now.saturating_duration_since(since).as_millis() as u64;
        Held {
            held_ms: ms(self.found),
            idle_ms: ms(self.head_seen),
        }
    }
}

/// What `bar` asks of the operator, for the logs. An account that is not registered cannot
/// call `addStake`: its stake is the registration's, from the node's `stake` setting.
fn describe(bar: &Bar, registering: bool) -> String {
    let add_stake = if registering {
        "raise the node's stake setting and restart it"
    } else {
        "add stake"
    };
    match bar {
        Bar::Above(lowest) => format!(
            "the list is full; entering needs a stake above the lowest evictable candidate's \
             {lowest} wei (at least {} wei): {add_stake}, or wait for a place",
            lowest.saturating_add(U256::from(1))
        ),
        Bar::NoneEvictable => {
            "every candidate on the full list serves; waiting for a place to free".into()
        }
        Bar::Open => "a place is free or the stake now outranks the lowest evictable \
            candidate; entering"
            .into(),
        Bar::BelowMinimum => format!("the stake is below the minimum; {add_stake} to enter"),
        Bar::Unchecked => "not checked yet".into(),
        Bar::Refused(name) => format!("refused by the contract ({name})"),
    }
}

fn log_change(change: &Change) {
    match change {
        Change::Evicted(e) => {
            let what = describe(&e.bar, false);
            warn!(
                block = e.block,
                by = %e.by,
                stake = %e.stake,
                "evicted from the coordinator's candidate list by a higher stake: this node is \
                 not selected for committees until it is listed again; {what}"
            );
        }
        Change::ReEntered { block } => {
            info!(
                block,
                "re-entry included; listed again once its block is confirmed"
            )
        }
        Change::Listed => info!("on the coordinator's candidate list again"),
        Change::RegistrationRefused(r) => {
            let what = describe(&r.bar, true);
            warn!(
                since = r.block,
                stake = %r.stake,
                "registration refused: the coordinator's candidate list is full, so this node \
                 is not registered nor selected; it registers as soon as a place frees; {what}"
            );
        }
        Change::Registered { block: Some(block) } => {
            info!(
                block,
                "registration included once the candidate list had a place"
            )
        }
        Change::Registered { block: None } => info!("registered"),
        Change::BelowMinimum(s) if s.registered => warn!(
            since = s.block,
            stake = %s.stake,
            minimum = %s.minimum,
            "this node's stake is below the coordinator's minimum (slashed, or unbonded to step \
             down): it stays registered but is never listed nor selected; add at least {} wei \
             of stake (`addStake`) to be listed again, or `withdraw` what it unbonded once it \
             no longer serves (docs/architecture.md)",
            s.minimum.saturating_sub(s.stake)
        ),
        Change::BelowMinimum(s) => warn!(
            since = s.block,
            stake = %s.stake,
            minimum = %s.minimum,
            "not registering: the node's `stake` setting ({} wei) is below the coordinator's \
             minimum ({} wei), and the contract would never list it; raise `stake` to at least \
             {} and restart the node",
            s.stake,
            s.minimum,
            s.minimum.max(U256::from(1))
        ),
        Change::StakeSufficient => info!("this node's stake reached the coordinator's minimum"),
    }
}

/// A call's id ([`Prepared::id`]): its calldata and value.
fn call_id(call: &EvmCall) -> [u8; 32] {
    Sha256::new()
        .chain_update(&call.input)
        .chain_update(call.value.to_be_bytes::<32>())
        .finalize()
        .into()
}

fn alloy_sol_call<C: keyquorum_evm::alloy_sol_types::SolCall>(call: C) -> Vec<u8> {
    call.abi_encode()
}

impl ChainClient for EvmChainClient {
    type Error = EvmChainError;
    type Tx = EvmCall;

    fn signature_route(&self) -> SignatureRoute {
        SignatureRoute::OffChain
    }

    fn takes_fault_proofs(&self) -> bool {
        true
    }

    fn takes_verifiable_keys(&self) -> bool {
        false
    }

    /// This node's turn by the staggering rule (module docs), at the follower's confirmed
    /// height and with the slashes it has seen.
    fn proof_due(&self, report: &FaultReport, held: Duration, idle: Duration) -> Due {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let turn = self.translator().proof_turn(
            &report.post,
            self.client.account(),
            self.confirmed.load(Ordering::Acquire),
            self.settings.confirmations,
            Held {
                held_ms: ms(held),
                idle_ms: ms(idle),
            },
        );
        match turn {
            Some(Turn::Send) => Due::Now,
            Some(Turn::Wait { .. }) => Due::Later,
            Some(Turn::Settled) => Due::Settled,
            Some(Turn::NotListed | Turn::TooLate) | None => Due::Never,
        }
    }

    /// This node's turn among the new committee's members by the staggering rule
    /// ([`keyquorum_evm::stagger`]), at the follower's confirmed height.
    fn activation_due(
        &self,
        activation: &super::Activation,
        collected_at: u64,
        held: Duration,
        idle: Duration,
    ) -> Due {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let turn = self.translator().activation_turn(
            &activation.block_hash,
            self.client.account(),
            collected_at,
            self.confirmed.load(Ordering::Acquire),
            self.settings.confirmations,
            Held {
                held_ms: ms(held),
                idle_ms: ms(idle),
            },
        );
        // A restarted node can combine the signatures (its driver kept the block) before its
        // follower has replayed the logs that define the block: ask again later.
        if turn.is_none() && self.confirmed.load(Ordering::Acquire) < collected_at {
            return Due::Later;
        }
        match turn {
            Some(Turn::Send) => Due::Now,
            Some(Turn::Wait { .. }) => Due::Later,
            Some(Turn::Settled) => Due::Settled,
            Some(Turn::NotListed | Turn::TooLate) | None => Due::Never,
        }
    }

    fn eviction(&self) -> Option<crate::status::EvictedStatus> {
        let watch = self.watch();
        let e = watch.eviction()?;
        Some(crate::status::EvictedStatus {
            block: e.block,
            by: e.by.to_string(),
            stake: e.stake.to_string(),
            needed_stake: e.bar.needed_stake().map(|s| s.to_string()),
            state: e.bar.name().into(),
        })
    }

    fn registration_refused(&self) -> Option<crate::status::RegistrationRefusedStatus> {
        let watch = self.watch();
        let r = watch.refusal()?;
        Some(crate::status::RegistrationRefusedStatus {
            block: r.block,
            stake: r.stake.to_string(),
            needed_stake: r.bar.needed_stake().map(|s| s.to_string()),
            state: r.bar.name().into(),
        })
    }

    fn stake_below_minimum(&self) -> Option<crate::status::StakeBelowMinimumStatus> {
        let watch = self.watch();
        let s = watch.shortfall()?;
        Some(crate::status::StakeBelowMinimumStatus {
            block: s.block,
            stake: s.stake.to_string(),
            minimum: s.minimum.to_string(),
            registered: s.registered,
        })
    }

    fn candidacy_check_failing(&self) -> Option<crate::status::CandidacyCheckFailingStatus> {
        let watch = self.watch();
        let f = watch.check_failure()?;
        Some(crate::status::CandidacyCheckFailingStatus {
            since: f.since,
            last: f.last,
            failures: f.failures,
            error: f.error.clone(),
        })
    }

    fn take_reverted(&self) -> Vec<&'static str> {
        let n = self.reverted_starts.swap(0, Ordering::AcqRel);
        vec!["start_view_change"; n as usize]
    }

    fn head_never_falls(&self) -> bool {
        // The height is the confirmed one, and a chain reset is refused by the block hashes
        // (`chain_refused`).
        false
    }

    fn chain_refused(&self) -> Option<crate::status::ChainRefusedStatus> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn send_pending(&self) -> Option<crate::status::SendPendingStatus> {
        let pending = self.pending_sends();
        let oldest = pending.iter().max_by_key(|p| p.pending_for)?;
        Some(crate::status::SendPendingStatus {
            tx_hash: oldest.tx_hash.to_string(),
            kind: oldest.kind.into(),
            pending_secs: oldest.pending_for.as_secs(),
            sends: pending.len() as u64,
            fee_bumps: pending.iter().map(|p| u64::from(p.replacements)).sum(),
        })
    }

    fn prepare(
        &self,
        action: &ChainAction,
        sender: Sender<'_>,
    ) -> Result<Prepared<EvmCall>, Unprepared> {
        let call = match action {
            ChainAction::Activate(a) => self.activate_call(a)?,
            ChainAction::ProveFault(r) => self.proof_call(r)?,
            ChainAction::Tx(body) => match body {
                TxBody::Register { .. } => {
                    self.register_call(body, sender)?.expect("a registration")
                }
                TxBody::DkgPost { post } => EvmCall {
                    input: alloy_sol_call(Coordinator::postCall {
                        signedPost: Bytes::copy_from_slice(post),
                    }),
                    value: U256::ZERO,
                },
                TxBody::AddStake { amount } => EvmCall {
                    input: alloy_sol_call(Coordinator::addStakeCall {}),
                    value: U256::from(*amount),
                },
                TxBody::Unbond { amount } => EvmCall {
                    input: alloy_sol_call(Coordinator::unbondCall {
                        amount: U256::from(*amount),
                    }),
                    value: U256::ZERO,
                },
                TxBody::ClaimUnbonded => EvmCall {
                    input: alloy_sol_call(Coordinator::withdrawCall {}),
                    value: U256::ZERO,
                },
                other => {
                    return Err(Unprepared {
                        kind: other.kind(),
                        why: "the coordinator contract has no such call".into(),
                    });
                }
            },
        };
        Ok(Prepared {
            id: call_id(&call),
            len: call.input.len(),
            tx: call,
        })
    }

    async fn status(&self) -> Result<ChainStatus, EvmChainError> {
        Ok(ChainStatus {
            chain_id: self.chain_name().to_owned(),
            genesis: format!(
                "evm:{}:{:#x}:{}",
                self.chain_id,
                self.settings.contract,
                self.chain_name()
            ),
            // A chain started over (a development chain restarted, the coordinator redeployed
            // at the same address) has other blocks from the start.
            origin: self
                .client
                .block_hash(self.settings.from_block)
                .await?
                .map(|hash| format!("evm-block:{}:{hash:#x}", self.settings.from_block)),
            height: self.client.block_number().await?,
            beacon: self.beacon,
        })
    }

    async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Blocks, EvmChainError> {
        let mut following = self.following.lock().await;
        let polled = match following.held.take() {
            Some(held) => Ok(held),
            None => following.follower.poll().await,
        };
        let (confirmed, safe) = match polled {
            Ok(x) => x,
            // For good: the follower answers the same from now on, and the runtime reports
            // the chain refused (not unreachable: it answers).
            Err(
                e @ (FollowError::Reorg { number: height }
                | FollowError::Decode { block: height, .. }),
            ) => {
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(crate::status::ChainRefusedStatus {
                        height,
                        reason: e.to_string(),
                    });
                tokio::time::sleep(IDLE_POLL).await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        // Each block's time, read before anything is taken from the blocks: a failed read
        // keeps them all for the next call.
        let mut times_ms = Vec::with_capacity(confirmed.len());
        for block in &confirmed {
            if block.number < from {
                times_ms.push(0);
                continue;
            }
            match self.client.block_timestamp(block.number).await {
                Ok(t) => times_ms.push(t.unwrap_or_default().saturating_mul(1000)),
                Err(e) => {
                    following.held = Some((confirmed, safe));
                    return Err(e.into());
                }
            }
        }
        let mut blocks = Vec::new();
        for (block, time_ms) in confirmed.into_iter().zip(times_ms) {
            let number = block.number;
            for input in &block.inputs {
                match input {
                    BoardInput::Evicted(e) if self.watch().on_evicted(e, number) => {
                        info!(block = number, by = %e.by, "the chain logged this node's eviction; checking");
                    }
                    BoardInput::Registered(r) => {
                        self.watch().on_stake_changed(r.account);
                    }
                    BoardInput::StakeChanged { account, .. } => {
                        self.watch().on_stake_changed(*account);
                    }
                    BoardInput::Slashed(s) => {
                        self.watch().on_stake_changed(s.culprit);
                    }
                    _ => {}
                }
            }
            let events = self.translator().translate_block(block);
            self.confirmed.fetch_max(number, Ordering::AcqRel);
            if events.is_empty() || number < from {
                continue;
            }
            blocks.push(ChainBlock {
                height: number,
                time_ms,
                txs: vec![ChainTx {
                    hash: [0; 32],
                    tx: Vec::new(),
                    events,
                    rejected: None,
                }],
                end_block_events: Vec::new(),
            });
        }
        let height = safe.unwrap_or(0);
        self.confirmed.fetch_max(height, Ordering::AcqRel);
        // The newest confirmed block, even without logs: the node learns it caught up.
        if let Some(safe) = safe
            && safe >= from
            && blocks.last().is_none_or(|b| b.height < safe)
            && following.reported.is_none_or(|r| r < safe)
        {
            blocks.push(ChainBlock {
                height: safe,
                time_ms: 0,
                txs: Vec::new(),
                end_block_events: Vec::new(),
            });
        }
        if let Some(last) = blocks.last() {
            following.reported = Some(last.height);
        }
        drop(following);
        self.start_view_change_if_due();
        if let Some(safe) = safe {
            self.check_candidacy_if_due(safe);
            self.look_up_pending_sends(safe);
        }
        if blocks.is_empty() {
            tokio::time::sleep(IDLE_POLL.min(Duration::from_millis(wait_ms))).await;
        }
        Ok(Blocks { blocks, height })
    }

    async fn submit(
        &self,
        tx: EvmCall,
        retry_of: Option<[u8; 32]>,
    ) -> Result<SubmitOutcome, EvmChainError> {
        let registration = tx
            .input
            .starts_with(&Coordinator::registerCall::SELECTOR)
            .then(|| Registration {
                input: tx.input.clone(),
                value: tx.value,
            });
        // The runtime submits a transaction answered `Unconfirmed` again, with the send's
        // handle, until it has its outcome: that submission takes the earlier send's outcome
        // (the client takes only the handle of a send of this very call); any other is a new
        // call.
        let earlier = retry_of.map(B256::from);
        let looked_up = match earlier {
            // A registration's retry whose send was dropped is a new registration, held back
            // like any other below the minimum (which may have risen since): the client
            // decides it was dropped without sending it anew.
            Some(handle) if registration.is_some() => self
                .client
                .look_up_retry(tx.input.clone(), tx.value, handle)
                .await
                .transpose(),
            Some(handle) => Some(
                self.client
                    .resend_calldata(tx.input.clone(), tx.value, handle)
                    .await,
            ),
            None => None,
        };
        let sent = match looked_up {
            Some(sent) => sent,
            None => {
                if registration.is_some()
                    && let Some(refused) = self.hold_back_below_minimum(tx.value).await?
                {
                    return Ok(refused);
                }
                if registration.is_some()
                    && let Some(refused) = self.hold_back_unfunded(tx.value).await?
                {
                    return Ok(refused);
                }
                self.client.send_calldata(tx.input, tx.value).await
            }
        };
        let outcome = match sent {
            Ok(outcome) => outcome,
            // Sent, its receipt not seen: the client looks it up when it is submitted again,
            // and sends nothing while it is pending.
            Err(ClientError::Unconfirmed { tx_hash, reason }) => {
                debug!(%tx_hash, %reason, "transaction not seen mined yet");
                return Ok(SubmitOutcome::Unconfirmed { handle: tx_hash.0 });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match outcome {
            CallOutcome::Included { .. } => SubmitOutcome::Included,
            CallOutcome::Reverted(r) => {
                // A full list refused the registration: the candidacy watch takes it over.
                if let (
                    Some(registration),
                    Revert::Contract(CoordinatorErrors::CandidateListFull(full))
                    | Revert::Mined(Some(CoordinatorErrors::CandidateListFull(full))),
                ) = (registration, &r)
                {
                    let mined = matches!(r, Revert::Mined(_));
                    let now = self.confirmed.load(Ordering::Acquire);
                    let change = self.watch().on_registration_refused(
                        registration,
                        full.lowestStake,
                        mined,
                        now,
                    );
                    change.iter().for_each(log_change);
                }
                SubmitOutcome::Reverted {
                    code: r.name(),
                    reason: format!("{r:?}"),
                    mined: r.mined(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_registration_is_told_to_raise_the_stake_setting_not_to_add_stake() {
        let full = Bar::Above(U256::from(5));
        let refused = describe(&full, true);
        assert!(
            refused.contains("at least 6 wei): raise the node's stake setting"),
            "{refused}"
        );
        assert!(!refused.contains("add stake"), "{refused}");
        assert!(describe(&full, false).contains("add stake"));
        assert!(describe(&Bar::BelowMinimum, true).contains("raise the node's stake setting"));
    }
}
