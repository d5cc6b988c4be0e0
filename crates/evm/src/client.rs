//! The coordinator on a JSON-RPC chain: deployment ([`deploy`]), calls
//! signed with a local secp256k1 key ([`Client`]), and a follower of the contract's logs at a
//! confirmation depth ([`Follower`]).
//!
//! Nothing here decides a ceremony's outcome: the follower only turns the contract's logs into
//! the board's inputs in chain order ([`BoardInput`]), with the phase deadlines by block number
//! that the contract enforces, and every node computes the outcome from them with the Rust board
//! code.
//!
//! Reorgs: the follower reports a block only once `confirmations` blocks are built on it, so a
//! reorg shallower than that never reaches the node. A deeper one cannot be undone by a node
//! that acted on the lost blocks (it may have posted, signed or revealed), so the follower
//! checks at each poll that the last block it reported is still on the chain and stops with
//! [`FollowError::Reorg`] when it is not, rather than silently following the other branch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_json_rpc::{RequestPacket, ResponsePacket};
use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, Log, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolEventInterface, SolInterface};
use alloy_transport::{RpcError, TransportError, TransportErrorKind};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::Coordinator;
use crate::Coordinator::{CoordinatorErrors, CoordinatorEvents};

/// The domain of [`chain_key`]'s derivation.
const CHAIN_KEY_TAG: &[u8] = b"keyquorum-evm/chain-key/v1";
/// Most blocks asked for in one `eth_getLogs` (providers cap the range).
const MAX_LOG_RANGE: u64 = 1_000;
/// How long a sent transaction is waited for.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the outcome of an unconfirmed send, found mined by [`Client::pending_sends`] or
/// [`Client::sent_state`], is kept for its caller's retry to claim ([`Client::resend_calldata`])
/// before it is forgotten. A caller that retries does so within seconds.
const RESOLVED_KEEP: Duration = Duration::from_secs(60);
/// A replacement's fees over those of the send it replaces, in eighths: 12.5% more, above the
/// 10% that nodes (geth, reth, anvil) require of a replacement on both `maxFeePerGas` and
/// `maxPriorityFeePerGas`.
const FEE_BUMP_EIGHTHS: u128 = 9;
/// How often [`wait_for_receipt`] asks.
const RECEIPT_POLL: Duration = Duration::from_millis(100);
/// The storage slot of the contract's `config.minStake`: `config` is its first state variable,
/// whose `chainId` (a `bytes`) takes slot 0 and whose five small fields after it share slot 1.
/// Checked against a deployment by the test
/// `the_minimum_stake_is_read_from_the_contracts_storage_and_an_unconfirmed_send_is_not_repeated`.
pub const MIN_STAKE_SLOT: u64 = 2;
/// The most candidates the contract lists (`MAX_CANDIDATES` in Coordinator.sol).
const MAX_CANDIDATES: u64 = 300;
/// What a registration or stake addition that lands on the full candidate list spends, at
/// most, scanning it for the candidate to evict, over one that finds room: 4,140,908 gas
/// against 532,784 at 300 tied stakes (docs/performance.md), with a margin.
const EVICTION_SCAN_GAS: u64 = 4_000_000;
/// Free places that registrations mined between a call's estimate and its own block may take
/// (a 30M block holds about 56 registrations): with fewer, the call may find the list full.
const NEAR_FULL: u64 = 64;

/// Why a chain call failed (a revert is a [`CallOutcome`], not an error).
#[derive(Debug, Error)]
pub enum ClientError {
    /// The RPC endpoint could not be reached or answered with an error.
    #[error("rpc: {0}")]
    Rpc(#[from] TransportError),
    /// A sent transaction was not seen in a block in time, or its receipt could not be read.
    #[error("transaction: {0}")]
    Pending(String),
    /// A transaction was sent but its receipt was not seen (not mined in time, or the receipt
    /// could not be read): it may still be mined, so it is looked up ([`Client::sent_state`])
    /// before the same call is sent again.
    #[error("transaction {tx_hash} sent, its receipt not seen: {reason}")]
    Unconfirmed {
        /// Its hash.
        tx_hash: B256,
        /// Why the wait ended.
        reason: String,
    },
    /// The deployment's receipt names no contract.
    #[error("the deployment created no contract")]
    NoContract,
    /// The contract refused the deployment (its constructor's checks of the configuration).
    #[error("refused: {0:?}")]
    Refused(Revert),
    /// A read returned bytes that do not decode as the function's result.
    #[error("undecodable answer: {0}")]
    Decode(String),
}

/// `text` with the endpoint URL `rpc` replaced by `<rpc>` wherever it appears: the URL may
/// carry an access key (in its path, query or user info), so it is neither logged nor shown.
/// Errors print it as configured, or as the HTTP client holds it: normalised by the `url` crate
/// (scheme and host lowercased, a default port dropped, `/` for an empty path, characters
/// percent-encoded) and without its user info, which goes into an authorization header. A
/// server's error page may echo the path or query alone, so each of these, and the user info's
/// parts, are replaced on their own too.
pub fn redact_rpc(text: &str, rpc: &str) -> String {
    let mut forms = vec![rpc.to_string()];
    if let Ok(url) = reqwest::Url::parse(rpc) {
        forms.push(url.to_string());
        if url.path().len() > 1 {
            forms.push(url.path().to_string());
        }
        forms.extend(url.query().map(str::to_string));
        forms.extend(url.password().map(str::to_string));
        forms.push(url.username().to_string());
        let mut bare = url;
        // Fails only for URLs that cannot have user info, which then have none to remove.
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        forms.push(bare.to_string());
    }
    // Longest first: a form inside a longer one (the configured URL without the `/` the
    // normalised one adds) must not leave part of that one behind.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
        .iter()
        .filter(|f| !f.is_empty())
        .fold(text.to_string(), |out, form| {
            out.replace(form.as_str(), "<rpc>")
        })
}

/// The endpoint `rpc` as it may be shown: its scheme, host and port, without the path, query
/// and user info that may carry an access key (`<rpc>` if it does not parse).
pub fn rpc_origin(rpc: &str) -> String {
    match reqwest::Url::parse(rpc) {
        Ok(url) if url.has_host() => url.origin().ascii_serialization(),
        _ => "<rpc>".into(),
    }
}

/// `error` with the endpoint's URL taken out of the parts the HTTP transport fills in: the
/// HTTP client's own error (with its causes, as text) and the body of an error answer, which a
/// server may fill with the path it was asked for. Answers of the JSON-RPC server itself
/// (errors with revert data, say) keep their structure.
fn redact_transport_error(error: TransportError, rpc: &str) -> TransportError {
    match error {
        RpcError::Transport(TransportErrorKind::HttpError(e)) => {
            TransportErrorKind::http_error(e.status, redact_rpc(&e.body, rpc))
        }
        RpcError::Transport(TransportErrorKind::Custom(e)) => {
            let mut text = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            TransportErrorKind::custom_str(&redact_rpc(&text, rpc))
        }
        RpcError::DeserError { err, text } => RpcError::DeserError {
            err,
            text: redact_rpc(&text, rpc),
        },
        other => other,
    }
}

/// The transport layer that redacts the endpoint's URL in every error the HTTP transport gives
/// ([`redact_transport_error`]): so no error of this module, whoever prints it and however
/// ([`ClientError`], [`FollowError`], an error of a call on [`Client::provider`]), shows it.
#[derive(Debug, Clone)]
struct RedactRpc {
    rpc: Arc<str>,
}

impl<S> tower::Layer<S> for RedactRpc {
    type Service = Redacting<S>;

    fn layer(&self, inner: S) -> Redacting<S> {
        Redacting {
            inner,
            rpc: self.rpc.clone(),
        }
    }
}

/// A transport whose errors [`RedactRpc`] redacts.
#[derive(Debug, Clone)]
struct Redacting<S> {
    inner: S,
    rpc: Arc<str>,
}

impl<S> tower::Service<RequestPacket> for Redacting<S>
where
    S: tower::Service<RequestPacket, Response = ResponsePacket, Error = TransportError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = alloy_transport::TransportFut<'static>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), TransportError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| redact_transport_error(e, &self.rpc))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let sent = self.inner.call(request);
        let rpc = self.rpc.clone();
        Box::pin(async move { sent.await.map_err(|e| redact_transport_error(e, &rpc)) })
    }
}

/// The secp256k1 key a node sends its transactions with, derived from a secret of its own
/// (the node passes its identity key's secret bytes): SHA-256 of a fixed tag, a counter byte
/// and the secret, the first digest that is a valid scalar. So the account is recovered with
/// the node's keys and needs no storage of its own; it is funded like any account.
pub fn chain_key(secret: &[u8]) -> PrivateKeySigner {
    for counter in 0u8..=u8::MAX {
        let digest = Sha256::new()
            .chain_update(CHAIN_KEY_TAG)
            .chain_update([counter])
            .chain_update(secret)
            .finalize();
        if let Ok(key) = PrivateKeySigner::from_slice(&digest) {
            return key;
        }
    }
    // 256 digests that are all zero or above the group order: probability about 2^-32768.
    unreachable!("no valid secp256k1 scalar in 256 digests")
}

/// Why the contract refused a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Revert {
    /// One of the contract's errors, decoded.
    Contract(CoordinatorErrors),
    /// Revert data that is none of the contract's errors (out of gas, a panic code).
    Other(Bytes),
    /// The transaction was mined and reverted. The receipt has no reason, so the call is
    /// replayed on the state after its block (`eth_call` at that block): the contract's error
    /// it gives there, if any. That is the reason it reverted unless a later transaction of the
    /// same block changed the answer; a proof of a fault another transaction of its block
    /// proved first gives `AlreadySlashed`.
    Mined(Option<CoordinatorErrors>),
}

impl Revert {
    /// The error's name (`NotMember`, `WrongPhase`, ...; a mined revert's replayed error), or
    /// `unknown` / `mined`.
    pub fn name(&self) -> String {
        match self {
            Revert::Contract(e) | Revert::Mined(Some(e)) => format!("{e:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("unknown")
                .to_string(),
            Revert::Other(_) => "unknown".into(),
            Revert::Mined(None) => "mined".into(),
        }
    }
}

/// Where a sent transaction stands ([`Client::sent_state`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SentState {
    /// Mined: what became of it (a revert replayed for its reason, as [`Client::send_calldata`]
    /// does).
    Mined(CallOutcome),
    /// Known to the node and not mined yet.
    Pending,
    /// Unknown to the node: dropped (or never propagated); its nonce is free again.
    Dropped,
}

/// What became of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// Included and successful.
    Included {
        /// The block it is in.
        block: u64,
        /// Its hash.
        tx_hash: B256,
    },
    /// Refused by the contract (at estimation, or mined and reverted).
    Reverted(Revert),
}

impl CallOutcome {
    /// The revert, if the call reverted.
    pub fn revert(&self) -> Option<&Revert> {
        match self {
            CallOutcome::Reverted(r) => Some(r),
            CallOutcome::Included { .. } => None,
        }
    }
}

/// The revert data in an RPC error answer, decoded as the contract's error where it is one.
fn revert_of(error: &TransportError) -> Option<Revert> {
    let data = error.as_error_resp()?.as_revert_data()?;
    Some(match CoordinatorErrors::abi_decode(&data) {
        Ok(e) => Revert::Contract(e),
        Err(_) => Revert::Other(data),
    })
}

async fn connect(rpc: &str, key: PrivateKeySigner) -> Result<DynProvider, ClientError> {
    // Gas limit by estimation, EIP-1559 fees from the fee history, the chain id, and the nonce
    // from the chain's pending count at each send. Not alloy's default cached nonce: it counts
    // the nonce up while the gas is estimated, so a call the contract refuses at estimation
    // (never sent) would leave a gap and no later transaction of the account would be mined.
    // Sends are serialised below, so the pending count is always the next nonce.
    // The URL is parsed here rather than by the provider, whose error would quote it.
    let url = reqwest::Url::parse(rpc).map_err(|e| {
        ClientError::Rpc(TransportErrorKind::custom_str(&format!(
            "the RPC endpoint is not a URL: {e}"
        )))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Rpc(TransportErrorKind::custom_str(&format!(
            "the RPC endpoint's scheme is {}, not http or https",
            url.scheme()
        ))));
    }
    let client = alloy_rpc_client::ClientBuilder::default()
        .layer(RedactRpc { rpc: rpc.into() })
        .http(url);
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key))
        .connect_client(client);
    Ok(provider.erased())
}

/// Deploys the coordinator with `config` from `key`'s account; returns its address and the
/// block it was created in (where a follower starts). Its constructor creates the
/// [`Bls12381Verifier`](crate::Bls12381Verifier) it calls (the coordinator's `bls()`).
pub async fn deploy(
    rpc: &str,
    key: PrivateKeySigner,
    config: Coordinator::Config,
) -> Result<(Address, u64), ClientError> {
    let provider = connect(rpc, key).await?;
    let mut code = Coordinator::BYTECODE.to_vec();
    code.extend(Coordinator::constructorCall { c: config }.abi_encode());
    create(&provider, code).await
}

/// Sends a contract creation with `code` (creation bytecode and constructor arguments) and
/// waits for it: the new contract's address and block.
async fn create<P: Provider>(provider: &P, code: Vec<u8>) -> Result<(Address, u64), ClientError> {
    let tx = TransactionRequest::default().with_deploy_code(code);
    let pending = match provider.send_transaction(tx).await {
        Ok(p) => p,
        Err(e) => {
            return Err(match revert_of(&e) {
                Some(r) => ClientError::Refused(r),
                None => e.into(),
            });
        }
    };
    let receipt = wait_for_receipt(&provider, *pending.tx_hash(), RECEIPT_TIMEOUT).await?;
    if !receipt.status() {
        return Err(ClientError::NoContract);
    }
    let address = receipt.contract_address.ok_or(ClientError::NoContract)?;
    Ok((address, receipt.block_number.unwrap_or_default()))
}

/// Polls `eth_getTransactionReceipt` until the transaction is mined or [`RECEIPT_TIMEOUT`]
/// passes: one request per poll, no block subscription to keep alive, and a typed error naming
/// the transaction when it is not mined in time.
async fn wait_for_receipt<P: Provider>(
    provider: &P,
    hash: B256,
    timeout: Duration,
) -> Result<alloy_rpc_types_eth::TransactionReceipt, ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(receipt) = provider.get_transaction_receipt(hash).await? {
            return Ok(receipt);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClientError::Pending(format!(
                "transaction {hash} was not mined within {timeout:?}"
            )));
        }
        tokio::time::sleep(RECEIPT_POLL).await;
    }
}

/// The contract at an address, and an account to call it from. Clones share the provider and
/// the send lock.
#[derive(Clone)]
pub struct Client {
    provider: DynProvider,
    contract: Address,
    account: Address,
    send_lock: Arc<Mutex<()>>,
    receipt_timeout: Duration,
    /// When and how far a send left pending is replaced with higher fees (none: never).
    fee_bump: Option<FeeBump>,
    /// Sends whose receipt was not seen, until they are found mined (and their outcome is
    /// taken) or dropped.
    unconfirmed: Arc<std::sync::Mutex<Vec<Unconfirmed>>>,
}

/// When a send left pending is replaced with higher fees ([`Client::pending_sends`]): a send
/// priced for a base fee that has risen since stays pending for good otherwise, and every
/// later send of the account waits behind its nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeBump {
    /// How long a send (or its last replacement) stays pending before it is replaced.
    pub after: Duration,
    /// The most `maxFeePerGas` a replacement offers (wei per gas); once the fees reached it,
    /// the send is left as it is.
    pub max_fee_per_gas: u128,
}

/// A send whose receipt was not seen ([`ClientError::Unconfirmed`]), as the client keeps it.
#[derive(Debug, Clone)]
struct Unconfirmed {
    /// The first transaction's hash: the handle the caller retries with
    /// ([`Client::resend_calldata`]).
    tx_hash: B256,
    /// Every transaction sent for it, with the same nonce: the first, then each replacement
    /// with higher fees. At most one of them is mined.
    hashes: Vec<B256>,
    input: Vec<u8>,
    value: U256,
    sent_at: Instant,
    /// When the newest of `hashes` was sent.
    last_sent: Instant,
    /// Its outcome, when [`Client::pending_sends`] or [`Client::sent_state`] found it mined,
    /// or a new identical call did: kept for its caller's retry to claim, then forgotten after
    /// [`RESOLVED_KEEP`].
    resolved: Option<(CallOutcome, Instant)>,
    /// When it was last reported as pending ([`PendingSend::warn`]).
    warned_at: Option<Instant>,
    /// A replacement is being sent: until it is in `hashes`, the ones there may all be gone
    /// from the chain's node while the send is still pending.
    replacing: bool,
}

/// A send of this client still pending: its receipt was not seen in time, and the chain's node
/// still knows it but has not mined it (a fee too low for the chain, say). Later sends of the
/// account wait behind its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSend {
    /// Its hash.
    pub tx_hash: B256,
    /// The contract function it calls (`register`, `post`, ...), `unknown` if none.
    pub kind: &'static str,
    /// How long ago it was sent.
    pub pending_for: Duration,
    /// Whether it is due to be reported as a warning: first seen pending, or `warn_every`
    /// since the last warning ([`Client::pending_sends`]).
    pub warn: bool,
    /// How many replacements with higher fees were sent for it ([`FeeBump`]).
    pub replacements: u32,
    /// The newest transaction sent for it (its own hash until it is replaced).
    pub newest: B256,
}

/// The contract function `input` calls, by its selector.
pub fn call_name(input: &[u8]) -> &'static str {
    input
        .get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .and_then(Coordinator::CoordinatorCalls::name_by_selector)
        .unwrap_or("unknown")
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("contract", &self.contract)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the contract at `contract` over `rpc` (`http://` or `https://`), sending from
    /// `key`'s account.
    pub async fn connect(
        rpc: &str,
        key: PrivateKeySigner,
        contract: Address,
    ) -> Result<Self, ClientError> {
        let account = key.address();
        Ok(Client {
            provider: connect(rpc, key).await?,
            contract,
            account,
            send_lock: Default::default(),
            receipt_timeout: RECEIPT_TIMEOUT,
            fee_bump: None,
            unconfirmed: Default::default(),
        })
    }

    /// This client, waiting `timeout` (instead of two minutes) for each sent transaction's
    /// receipt.
    pub fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// This client, replacing a send left pending with higher fees as `bump` says (by default
    /// it never does). Clones made before keep their setting; all share the kept sends.
    pub fn with_fee_bump(mut self, bump: Option<FeeBump>) -> Self {
        self.fee_bump = bump;
        self
    }

    /// The account calls are sent from.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The contract's address.
    pub fn contract(&self) -> Address {
        self.contract
    }

    /// The provider (for queries beyond the contract's).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The chain id (EIP-155).
    pub async fn chain_id(&self) -> Result<u64, ClientError> {
        Ok(self.provider.get_chain_id().await?)
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ClientError> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The account's balance.
    pub async fn balance(&self, who: Address) -> Result<U256, ClientError> {
        Ok(self.provider.get_balance(who).await?)
    }

    /// How many transactions `who` has sent (its next nonce) as of the latest block.
    pub async fn transaction_count(&self, who: Address) -> Result<u64, ClientError> {
        Ok(self.provider.get_transaction_count(who).await?)
    }

    /// A view function's result at the latest block.
    pub async fn read<C: SolCall>(&self, call: C) -> Result<C::Return, ClientError> {
        let tx = TransactionRequest::default()
            .with_to(self.contract)
            .with_input(call.abi_encode());
        let out = self.provider.call(tx).await?;
        C::abi_decode_returns(&out).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Simulates `call` with `value` wei from the account (`eth_estimateGas` at the latest
    /// block): its gas, or the contract's refusal. Nothing is sent.
    pub async fn estimate<C: SolCall>(
        &self,
        call: C,
        value: U256,
    ) -> Result<Result<u64, Revert>, ClientError> {
        self.estimate_calldata(call.abi_encode(), value).await
    }

    /// [`Client::estimate`] with the call already ABI-encoded.
    pub async fn estimate_calldata(
        &self,
        input: Vec<u8>,
        value: U256,
    ) -> Result<Result<u64, Revert>, ClientError> {
        let tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.contract)
            .with_value(value)
            .with_input(input);
        match self.provider.estimate_gas(tx).await {
            Ok(gas) => Ok(Ok(gas)),
            Err(e) => match revert_of(&e) {
                Some(r) => Ok(Err(r)),
                None => Err(e.into()),
            },
        }
    }

    /// Sends `call` with `value` wei and waits for its receipt. One call at a time per client:
    /// the nonce comes from the chain's pending count, so a call refused at estimation uses
    /// none, and no later call waits behind a gap.
    pub async fn send<C: SolCall>(&self, call: C, value: U256) -> Result<CallOutcome, ClientError> {
        self.send_calldata(call.abi_encode(), value).await
    }

    /// [`Client::send`] with the call already ABI-encoded: a new call, sent even when an
    /// earlier identical one (same calldata and value) was mined a moment ago.
    ///
    /// A send whose receipt is not seen in time is kept ([`ClientError::Unconfirmed`], whose
    /// `tx_hash` is the handle to retry it with, [`Client::resend_calldata`]); its outcome
    /// goes only to that retry. While it is pending, an identical new call waits for it
    /// rather than send a copy that would take the next nonce and land twice: it is answered
    /// `Unconfirmed` with the earlier send's handle, and nothing is sent.
    pub async fn send_calldata(
        &self,
        input: Vec<u8>,
        value: U256,
    ) -> Result<CallOutcome, ClientError> {
        let _guard = self.send_lock.lock().await;
        if let Some(earlier) = self.earlier_send(None, &input, value).await? {
            return earlier;
        }
        self.send_new(input, value).await
    }

    /// The retry of the send whose [`ClientError::Unconfirmed`] named `earlier`, the call
    /// (calldata and value) the same: the earlier send is looked up rather than sent again.
    /// Mined, its outcome (a revert replayed for its reason); still pending,
    /// [`ClientError::Unconfirmed`] again and nothing is sent; dropped by the chain's node, or
    /// no longer kept, the call is sent anew.
    pub async fn resend_calldata(
        &self,
        input: Vec<u8>,
        value: U256,
        earlier: B256,
    ) -> Result<CallOutcome, ClientError> {
        let _guard = self.send_lock.lock().await;
        if let Some(earlier) = self.earlier_send(Some(earlier), &input, value).await? {
            return earlier;
        }
        self.send_new(input, value).await
    }

    /// Sends the call and waits for its receipt; the caller holds the send lock.
    async fn send_new(&self, input: Vec<u8>, value: U256) -> Result<CallOutcome, ClientError> {
        let may_evict = input.get(..4).is_some_and(|s| {
            s == Coordinator::registerCall::SELECTOR || s == Coordinator::addStakeCall::SELECTOR
        });
        let mut tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.contract)
            .with_value(value)
            .with_input(input.clone());
        if may_evict {
            let estimate = match self.provider.estimate_gas(tx.clone()).await {
                Ok(g) => g,
                Err(e) => {
                    return match revert_of(&e) {
                        Some(r) => Ok(CallOutcome::Reverted(r)),
                        None => Err(e.into()),
                    };
                }
            };
            let candidates = self.read(Coordinator::eligibleCountCall {}).await?;
            tx = tx.with_gas_limit(candidacy_gas_limit(estimate, candidates.saturating_to()));
        }
        let pending = match self.provider.send_transaction(tx.clone()).await {
            Ok(p) => p,
            Err(e) => {
                return match revert_of(&e) {
                    Some(r) => Ok(CallOutcome::Reverted(r)),
                    None => Err(e.into()),
                };
            }
        };
        let tx_hash = *pending.tx_hash();
        let sent_at = Instant::now();
        let receipt = match wait_for_receipt(&self.provider, tx_hash, self.receipt_timeout).await {
            Ok(receipt) => receipt,
            Err(e) => {
                self.records().push(Unconfirmed {
                    tx_hash,
                    hashes: vec![tx_hash],
                    input,
                    value,
                    sent_at,
                    last_sent: sent_at,
                    resolved: None,
                    warned_at: None,
                    replacing: false,
                });
                return Err(ClientError::Unconfirmed {
                    tx_hash,
                    reason: e.to_string(),
                });
            }
        };
        if !receipt.status() {
            let replayed = match receipt.block_number {
                Some(number) => self.replay(tx, number).await,
                None => None,
            };
            return Ok(CallOutcome::Reverted(Revert::Mined(replayed)));
        }
        Ok(CallOutcome::Included {
            block: receipt.block_number.unwrap_or_default(),
            tx_hash: receipt.transaction_hash,
        })
    }

    /// Whether a send of this client whose receipt was not seen is kept (pending, or found
    /// mined and not yet claimed).
    pub fn has_unconfirmed(&self) -> bool {
        !self.records().is_empty()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Vec<Unconfirmed>> {
        self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, tx_hash: B256) {
        self.records().retain(|u| u.tx_hash != tx_hash);
    }

    /// What an earlier unconfirmed send settles for a call: for the retry of the send
    /// `retry_of`, that send's outcome when mined, [`ClientError::Unconfirmed`] while
    /// pending; for a new call, [`ClientError::Unconfirmed`] while an identical send is
    /// pending (one found mined keeps its outcome for its own retry). `None` when the call is
    /// to be sent.
    async fn earlier_send(
        &self,
        retry_of: Option<B256>,
        input: &[u8],
        value: U256,
    ) -> Result<Option<Result<CallOutcome, ClientError>>, ClientError> {
        let earlier = self
            .records()
            .iter()
            .filter(|u| u.input == input && u.value == value)
            .find(|u| match retry_of {
                Some(handle) => u.tx_hash == handle,
                // Another call's outcome, which only its retry takes.
                None => u.resolved.is_none(),
            })
            .map(|u| {
                (
                    u.tx_hash,
                    u.hashes.clone(),
                    u.sent_at,
                    u.resolved.clone(),
                    u.replacing,
                )
            });
        let Some((tx_hash, hashes, sent_at, resolved, replacing)) = earlier else {
            return Ok(None);
        };
        if let Some((outcome, _)) = resolved {
            self.forget(tx_hash);
            return Ok(Some(Ok(outcome)));
        }
        let unconfirmed =
            |reason: String| Ok(Some(Err(ClientError::Unconfirmed { tx_hash, reason })));
        if replacing {
            return unconfirmed("being replaced with higher fees".into());
        }
        // A failed look-up says nothing of the earlier send: it stays kept and unconfirmed,
        // never a reason to send a copy.
        let state = match self.look_up_all(&hashes).await {
            Ok(state) => state,
            Err(e) => return unconfirmed(format!("could not look the earlier send up: {e}")),
        };
        match state {
            SentState::Mined(outcome) if retry_of.is_some() => {
                self.forget(tx_hash);
                Ok(Some(Ok(outcome)))
            }
            SentState::Mined(outcome) => {
                self.resolve(tx_hash, outcome);
                Ok(None)
            }
            SentState::Pending => unconfirmed(format!(
                "still pending {:?} after it was sent",
                sent_at.elapsed()
            )),
            SentState::Dropped => {
                // Gone from the chain's node, unless a replacement was sent meanwhile.
                let mut records = self.records();
                if let Some(pos) = records.iter().position(|u| u.tx_hash == tx_hash) {
                    if records[pos].replacing || records[pos].hashes != hashes {
                        return unconfirmed("being replaced with higher fees".into());
                    }
                    records.remove(pos);
                }
                Ok(None)
            }
        }
    }

    /// Keeps `outcome` as the mined outcome of the kept send `tx_hash` (its first one, if
    /// already kept).
    fn resolve(&self, tx_hash: B256, outcome: CallOutcome) {
        let now = Instant::now();
        for u in self.records().iter_mut().filter(|u| u.tx_hash == tx_hash) {
            u.resolved.get_or_insert_with(|| (outcome.clone(), now));
        }
    }

    /// Where a kept send stands, from all the transactions sent for it (`hashes`, with one
    /// nonce): mined if one of them is, pending if one of them is, else dropped.
    async fn look_up_all(&self, hashes: &[B256]) -> Result<SentState, ClientError> {
        let mut pending = false;
        for hash in hashes.iter().rev() {
            match self.look_up(*hash).await? {
                mined @ SentState::Mined(_) => return Ok(mined),
                SentState::Pending => pending = true,
                SentState::Dropped => {}
            }
        }
        Ok(if pending {
            SentState::Pending
        } else {
            SentState::Dropped
        })
    }

    /// The contract's error `tx` gives on the state after block `number` (see
    /// [`Revert::Mined`]); `None` when it succeeds there, the answer is no error of the
    /// contract, or the node cannot answer (the reason is a diagnosis, not needed to go on).
    async fn replay(&self, tx: TransactionRequest, number: u64) -> Option<CoordinatorErrors> {
        let error = self
            .provider
            .call(tx)
            .block(BlockNumberOrTag::Number(number).into())
            .await
            .err()?;
        match revert_of(&error)? {
            Revert::Contract(e) => Some(e),
            _ => None,
        }
    }

    /// Where the transaction `tx_hash` stands: mined (and what became of it, a revert replayed
    /// for its reason as [`Client::send_calldata`] does), pending, or unknown to the node. For
    /// an unconfirmed send of this client, every transaction sent for it counts (a replacement
    /// with higher fees may be the one mined). One found dropped is forgotten, so the same call
    /// sent again goes out anew; one found mined keeps its outcome for a minute, for its
    /// caller's retry ([`Client::resend_calldata`]).
    pub async fn sent_state(&self, tx_hash: B256) -> Result<SentState, ClientError> {
        let kept = self
            .records()
            .iter()
            .find(|u| u.hashes.contains(&tx_hash))
            .map(|u| (u.tx_hash, u.hashes.clone(), u.replacing, u.resolved.clone()));
        let Some((handle, hashes, replacing, resolved)) = kept else {
            return self.look_up(tx_hash).await;
        };
        if let Some((outcome, _)) = resolved {
            return Ok(SentState::Mined(outcome));
        }
        if replacing {
            return Ok(SentState::Pending);
        }
        let state = self.look_up_all(&hashes).await?;
        match &state {
            SentState::Pending => {}
            SentState::Dropped => {
                let mut records = self.records();
                if let Some(pos) = records.iter().position(|u| u.tx_hash == handle) {
                    // A replacement sent meanwhile.
                    if records[pos].replacing || records[pos].hashes != hashes {
                        return Ok(SentState::Pending);
                    }
                    records.remove(pos);
                }
            }
            SentState::Mined(outcome) => self.resolve(handle, outcome.clone()),
        }
        Ok(state)
    }

    async fn look_up(&self, tx_hash: B256) -> Result<SentState, ClientError> {
        use alloy_network::TransactionResponse;
        use alloy_rpc_types_eth::TransactionTrait;
        if let Some(receipt) = self.provider.get_transaction_receipt(tx_hash).await? {
            // A receipt without its block is no proof of inclusion: wait for one that has it.
            let Some(block) = receipt.block_number else {
                return Ok(SentState::Pending);
            };
            if receipt.status() {
                return Ok(SentState::Mined(CallOutcome::Included { block, tx_hash }));
            }
            let replayed = match self.provider.get_transaction_by_hash(tx_hash).await? {
                Some(sent) => {
                    let call = TransactionRequest::default()
                        .with_from(sent.from())
                        .with_to(self.contract)
                        .with_value(sent.value())
                        .with_gas_limit(sent.gas_limit())
                        .with_input(sent.input().clone());
                    self.replay(call, block).await
                }
                None => None,
            };
            return Ok(SentState::Mined(CallOutcome::Reverted(Revert::Mined(
                replayed,
            ))));
        }
        Ok(
            match self.provider.get_transaction_by_hash(tx_hash).await? {
                Some(_) => SentState::Pending,
                None => SentState::Dropped,
            },
        )
    }

    /// The unconfirmed sends of this client that are still pending, each looked up now; one
    /// found mined keeps its outcome a while for its caller's retry
    /// ([`Client::resend_calldata`]), one found dropped is forgotten. A pending one is marked
    /// [`PendingSend::warn`] when first seen here, and again once `warn_every` has passed; one
    /// pending for the [`FeeBump`]'s `after` since it (or its last replacement) was sent is
    /// replaced, with the same nonce and fees raised by an eighth or to the chain's current
    /// estimate if that is more, up to the bump's cap.
    pub async fn pending_sends(
        &self,
        warn_every: Duration,
    ) -> Result<Vec<PendingSend>, ClientError> {
        let kept: Vec<(B256, Vec<B256>)> = {
            let mut records = self.records();
            let now = Instant::now();
            records.retain(|u| {
                u.resolved
                    .as_ref()
                    .is_none_or(|(_, at)| now.duration_since(*at) < RESOLVED_KEEP)
            });
            records
                .iter()
                .filter(|u| u.resolved.is_none() && !u.replacing)
                .map(|u| (u.tx_hash, u.hashes.clone()))
                .collect()
        };
        let mut pending = Vec::new();
        for (tx_hash, hashes) in kept {
            let state = self.look_up_all(&hashes).await?;
            let now = Instant::now();
            let bump = {
                let mut records = self.records();
                // Claimed by its retry meanwhile, or being replaced.
                let Some(pos) = records
                    .iter()
                    .position(|u| u.tx_hash == tx_hash && !u.replacing)
                else {
                    continue;
                };
                match state {
                    SentState::Mined(outcome) => {
                        records[pos].resolved.get_or_insert((outcome, now));
                        continue;
                    }
                    // Unless a replacement was sent meanwhile.
                    SentState::Dropped if records[pos].hashes == hashes => {
                        records.remove(pos);
                        continue;
                    }
                    SentState::Dropped => continue,
                    SentState::Pending => {}
                }
                let u = &mut records[pos];
                let bump = self
                    .fee_bump
                    .filter(|b| now.duration_since(u.last_sent) >= b.after);
                u.replacing = bump.is_some();
                bump
            };
            if let Some(bump) = bump {
                let newest = *hashes.last().expect("a kept send has a transaction");
                let replaced = self.replace(newest, bump).await;
                let mut records = self.records();
                if let Some(u) = records.iter_mut().find(|u| u.tx_hash == tx_hash) {
                    u.replacing = false;
                    if let Ok(Some(replacement)) = replaced {
                        u.hashes.push(replacement);
                        u.last_sent = Instant::now();
                    }
                }
                drop(records);
                replaced?;
            }
            let now = Instant::now();
            let mut records = self.records();
            let Some(u) = records.iter_mut().find(|u| u.tx_hash == tx_hash) else {
                continue;
            };
            let warn = u
                .warned_at
                .is_none_or(|at| now.duration_since(at) >= warn_every);
            if warn {
                u.warned_at = Some(now);
            }
            pending.push(PendingSend {
                tx_hash,
                kind: call_name(&u.input),
                pending_for: now.duration_since(u.sent_at),
                warn,
                replacements: (u.hashes.len() - 1) as u32,
                newest: *u.hashes.last().expect("a kept send has a transaction"),
            });
        }
        Ok(pending)
    }

    /// Sends a replacement of the pending transaction `newest` (the same nonce, call and gas
    /// limit) with its fees raised by an eighth, or to the chain's current estimate where that
    /// is more, `maxFeePerGas` at most `bump`'s cap: its hash, or `None` when the node no
    /// longer has the transaction or its fees are too near the cap to be raised enough (the
    /// node would refuse a replacement raised less).
    async fn replace(&self, newest: B256, bump: FeeBump) -> Result<Option<B256>, ClientError> {
        use alloy_rpc_types_eth::TransactionTrait;
        let Some(sent) = self.provider.get_transaction_by_hash(newest).await? else {
            return Ok(None);
        };
        let raised = |fee: u128| fee.saturating_mul(FEE_BUMP_EIGHTHS).div_ceil(8);
        let estimate = self.provider.estimate_eip1559_fees().await?;
        let min_fee = raised(sent.max_fee_per_gas());
        if min_fee > bump.max_fee_per_gas {
            return Ok(None);
        }
        let max_fee = min_fee
            .max(estimate.max_fee_per_gas)
            .min(bump.max_fee_per_gas);
        let min_priority = raised(sent.max_priority_fee_per_gas().unwrap_or_default());
        if min_priority > max_fee {
            return Ok(None);
        }
        let priority = min_priority
            .max(estimate.max_priority_fee_per_gas)
            .min(max_fee);
        let tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.contract)
            .with_value(sent.value())
            .with_input(sent.input().clone())
            .with_nonce(sent.nonce())
            .with_gas_limit(sent.gas_limit())
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority);
        Ok(Some(*self.provider.send_transaction(tx).await?.tx_hash()))
    }

    /// The contract's minimum stake (wei) as of block `number` (the latest when `None`). The
    /// contract has no getter for its configuration, so this reads its storage: `Config` is
    /// the first state variable, and `minStake` is its third slot ([`MIN_STAKE_SLOT`]).
    pub async fn min_stake(&self, number: Option<u64>) -> Result<U256, ClientError> {
        let read = self
            .provider
            .get_storage_at(self.contract, U256::from(MIN_STAKE_SLOT));
        Ok(match number {
            Some(n) => read.block_id(BlockNumberOrTag::Number(n).into()).await?,
            None => read.await?,
        })
    }

    /// The timestamp (Unix seconds) of block `number`, if the chain has it.
    pub async fn block_timestamp(&self, number: u64) -> Result<Option<u64>, ClientError> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|b| b.header.timestamp))
    }
}

/// The gas limit of a call that can make its sender a candidate (`register`, `addStake`) with
/// gas `estimate` while the list holds `candidates`. It is mined later than estimated, when
/// others' registrations may have filled the list, and then it scans the list to evict (or is
/// refused): a bare estimate made with room runs out of gas there. So 20% over the estimate,
/// and with fewer than `NEAR_FULL` free places at least the estimate and the whole scan.
fn candidacy_gas_limit(estimate: u64, candidates: u64) -> u64 {
    let margin = estimate.saturating_add(estimate / 5);
    if candidates.saturating_add(NEAR_FULL) >= MAX_CANDIDATES {
        margin.max(estimate.saturating_add(EVICTION_SCAN_GAS))
    } else {
        margin
    }
}

/// A transaction to the contract, as mined, with its receipt.
#[derive(Debug, Clone)]
pub struct ContractTx {
    /// The block it is in.
    pub block: u64,
    /// Its hash.
    pub tx_hash: B256,
    /// The sender.
    pub from: Address,
    /// Its calldata.
    pub input: Bytes,
    /// Gas it used.
    pub gas_used: u64,
    /// Whether it succeeded (a reverted one is included and paid for all the same).
    pub success: bool,
    /// The contract's logs it emitted, decoded (a log that decodes as none of its events is
    /// left out).
    pub events: Vec<CoordinatorEvents>,
}

impl Client {
    /// Every transaction to the contract mined in blocks `from..=to`, in chain order, with its
    /// receipt: what the contract was sent and what each call cost, reverted ones included
    /// (which its logs do not show).
    pub async fn contract_transactions(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<ContractTx>, ClientError> {
        use alloy_network::TransactionResponse;
        use alloy_rpc_types_eth::TransactionTrait;
        let mut out = Vec::new();
        for number in from..=to {
            let Some(block) = self
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(number))
                .full()
                .await?
            else {
                continue;
            };
            for tx in block.transactions.txns() {
                if tx.to() != Some(self.contract) {
                    continue;
                }
                let hash = tx.tx_hash();
                let receipt = self
                    .provider
                    .get_transaction_receipt(hash)
                    .await?
                    .ok_or_else(|| ClientError::Pending(format!("no receipt of {hash}")))?;
                let events = receipt
                    .inner
                    .logs()
                    .iter()
                    .filter(|l| l.address() == self.contract)
                    .filter_map(|l| CoordinatorEvents::decode_log(&l.inner).ok())
                    .map(|e| e.data)
                    .collect();
                out.push(ContractTx {
                    block: number,
                    tx_hash: hash,
                    from: tx.from(),
                    input: tx.input().clone(),
                    gas_used: receipt.gas_used,
                    success: receipt.status(),
                    events,
                });
            }
        }
        Ok(out)
    }

    /// A view function's result as of block `number`.
    pub async fn read_at<C: SolCall>(
        &self,
        call: C,
        number: u64,
    ) -> Result<C::Return, ClientError> {
        let tx = TransactionRequest::default()
            .with_to(self.contract)
            .with_input(call.abi_encode());
        let out = self
            .provider
            .call(tx)
            .block(BlockNumberOrTag::Number(number).into())
            .await?;
        C::abi_decode_returns(&out).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

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
    /// block number (`None` while the chain is shorter than the confirmation depth).
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
            if now != Some(hash) {
                return Err(FollowError::Reorg { number });
            }
        }
        if safe < self.next {
            return Ok((Vec::new(), Some(safe)));
        }
        let mut out: Vec<ConfirmedBlock> = Vec::new();
        let mut from = self.next;
        while from <= safe {
            let to = safe.min(from + MAX_LOG_RANGE - 1);
            let filter = Filter::new()
                .address(self.contract)
                .from_block(from)
                .to_block(to);
            let logs = self.provider.get_logs(&filter).await?;
            let mut logs = logs.into_iter().peekable();
            // Blocks in order: the logs of each block, then the deadlines it ends.
            while logs.peek().is_some() || self.deadlines.first().is_some_and(|d| d.0 <= to) {
                let log_block = logs.peek().and_then(|l| l.block_number);
                let deadline_block = self.deadlines.first().map(|d| d.0).filter(|b| *b <= to);
                let block = match (log_block, deadline_block) {
                    (Some(l), Some(d)) => l.min(d),
                    (Some(l), None) => l,
                    (None, Some(d)) => d,
                    (None, None) => break,
                };
                let mut inputs = Vec::new();
                while logs.peek().is_some_and(|l| l.block_number == Some(block)) {
                    let log = logs.next().expect("peeked");
                    if let Some(input) = self.input(&log, block)? {
                        inputs.push(input);
                    }
                }
                while self.deadlines.first().is_some_and(|d| d.0 <= block) {
                    let (_, ceremony, phase) = self.deadlines.remove(0);
                    inputs.push(BoardInput::Deadline { ceremony, phase });
                }
                if !inputs.is_empty() {
                    out.push(ConfirmedBlock {
                        number: block,
                        inputs,
                    });
                }
            }
            from = to + 1;
        }
        let hash = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(safe))
            .await?
            .map(|b| b.header.hash)
            .ok_or(FollowError::Reorg { number: safe })?;
        self.last = Some((safe, hash));
        self.next = safe + 1;
        Ok((out, Some(safe)))
    }

    fn input(&mut self, log: &Log, block: u64) -> Result<Option<BoardInput>, FollowError> {
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
                self.deadlines.clear();
                for (end, phase) in [
                    (e.contributeEnd, Phase::Contribute),
                    (e.shareEnd, Phase::Share),
                    (e.publishEnd, Phase::Publish),
                    (e.waitEnd, Phase::Wait),
                ] {
                    self.deadlines.push((end, e.ceremony, phase));
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
                self.deadlines.retain(|d| d.1 != e.ceremony);
                BoardInput::ViewActivated(e)
            }
            CoordinatorEvents::Slashed(e) => BoardInput::Slashed(e),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_key_is_a_deterministic_function_of_the_secret() {
        let a = chain_key(b"secret a");
        assert_eq!(a.address(), chain_key(b"secret a").address());
        assert_ne!(a.address(), chain_key(b"secret b").address());
    }

    /// A registration estimated with room (532,784 gas, docs/performance.md) when the list is
    /// near full gets enough gas for the eviction at the full list (4,140,908 at 300 tied
    /// stakes); far from full it gets the 20% margin only.
    #[test]
    fn a_candidacy_near_the_full_list_has_gas_for_the_eviction_scan() {
        let with_room = 532_784;
        for candidates in [
            MAX_CANDIDATES - NEAR_FULL,
            MAX_CANDIDATES - 1,
            MAX_CANDIDATES,
        ] {
            assert!(candidacy_gas_limit(with_room, candidates) > 4_140_908);
        }
        let far = candidacy_gas_limit(with_room, 10);
        assert_eq!(far, with_room + with_room / 5);
        // At the full list the estimate includes a scan; its margin stays.
        assert_eq!(candidacy_gas_limit(20_000_000, 300), 24_000_000);
    }

    /// Whatever part of the RPC URL carries an access key (user info, a path or query token)
    /// shows in no error of the client, printed or debugged: neither where the HTTP client
    /// fails to reach the endpoint (it names the URL, normalised and without its user info),
    /// nor where the server answers with an error page that echoes the path and query, nor
    /// where the deployment's first request fails.
    #[tokio::test]
    async fn no_error_of_the_client_shows_the_secrets_of_the_rpc_url() {
        let secrets = ["S3cret", "KEY123", "apikey", "Rpc-User", "key123", "secret"];
        let check = |error: &ClientError| {
            let shown = [error.to_string(), format!("{error:?}")];
            for text in &shown {
                for secret in secrets {
                    assert!(!text.contains(secret), "{text}");
                }
            }
            shown[0].clone()
        };
        // Nothing listens on port 1 of the loopback address: the connection is refused.
        for rpc in [
            "HTTP://Rpc-User:S3cret@127.0.0.1:1/v3/KEY123?apikey=abc",
            "http://user:secret@127.0.0.1:1/key123",
        ] {
            let client = Client::connect(rpc, chain_key(b"redaction"), Address::ZERO)
                .await
                .unwrap();
            let shown = check(&client.block_number().await.unwrap_err());
            assert!(shown.contains("<rpc>"), "{shown}");
            // The cause stays: the operator learns why.
            assert!(shown.contains("onnect"), "{shown}");
            let config = Coordinator::Config::default();
            check(
                &deploy(rpc, chain_key(b"redaction"), config)
                    .await
                    .unwrap_err(),
            );
        }

        // A server that answers every request with an error page naming the path and query.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as many body bytes as it announces.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = "Cannot POST /v3/KEY123?apikey=abc";
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let rpc = format!("http://127.0.0.1:{port}/v3/KEY123?apikey=abc");
        let client = Client::connect(&rpc, chain_key(b"redaction"), Address::ZERO)
            .await
            .unwrap();
        let shown = check(&client.block_number().await.unwrap_err());
        assert!(shown.contains("404"), "{shown}");
        assert!(shown.contains("Cannot POST <rpc>"), "{shown}");

        assert_eq!(
            rpc_origin("https://user:pw@Node.Example:8545/v3/KEY?k=1"),
            "https://node.example:8545"
        );
        assert_eq!(rpc_origin("not a url"), "<rpc>");

        // A trailing `/` added, the host lowercased, a default port dropped, spaces encoded.
        let rpc = "https://Node.Example:443?key=a b";
        let printed = "error sending request for url (https://node.example/?key=a%20b)";
        assert_eq!(
            redact_rpc(printed, rpc),
            "error sending request for url (<rpc>)"
        );
        assert_eq!(redact_rpc(&format!("at {rpc}!"), rpc), "at <rpc>!");
    }

    #[test]
    fn a_revert_is_named_by_the_contract_error() {
        let r = Revert::Contract(CoordinatorErrors::NotMember(Coordinator::NotMember {}));
        assert_eq!(r.name(), "NotMember");
        let r = Revert::Contract(CoordinatorErrors::TooEarly(Coordinator::TooEarly {
            nextStart: 5,
        }));
        assert_eq!(r.name(), "TooEarly");
    }
}
