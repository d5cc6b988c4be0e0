//! The coordinator on a JSON-RPC chain: deployment ([`deploy`]) and calls signed with a local
//! secp256k1 key ([`Client`]). The follower of the contract's logs ([`Follower`]) lives in
//! [`crate::follower`] and is re-exported here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_json_rpc::{RequestPacket, ResponsePacket};
use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::{BlockNumberOrTag, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolEventInterface, SolInterface};
use alloy_transport::{RpcError, TransportError, TransportErrorKind};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::Coordinator;
use crate::Coordinator::{CoordinatorErrors, CoordinatorEvents};
pub use crate::follower::{BoardInput, ConfirmedBlock, FollowError, Follower, Phase};

/// The domain of [`chain_key`]'s derivation.
const CHAIN_KEY_TAG: &[u8] = b"keyquorum-evm/chain-key/v1";
/// How long a sent transaction is waited for.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Most outcomes of unconfirmed sends found mined by someone other than their caller
/// ([`Client::pending_sends`], an identical new call) kept for that caller's retry
/// ([`Client::resend_calldata`]): a caller that retries takes its outcome, so only one that
/// gave up on its call leaves one behind.
const MAX_RESOLVED_KEPT: usize = 256;
/// Blocks a kept send's nonce must stay taken, none of its transactions found mined, before
/// it is dropped: a load-balanced endpoint may answer the nonce from a node ahead of the one
/// that answers the receipts.
const DROP_CONFIRM_BLOCKS: u64 = 2;
/// Handles whose send was settled (its outcome taken, or dropped) and no longer kept, kept
/// for [`Client::sent_state`] (a replacement may be the transaction that was mined).
const SETTLED_HANDLES_KEPT: usize = 256;
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
/// The storage slot of `Config` that packs `firstViewChange`, `viewLength`, `unbondingBlocks`
/// and the beacon settings: `viewLength` is its second-lowest 8 bytes. Checked against a
/// deployment by the same test as [`MIN_STAKE_SLOT`].
pub const VIEW_TIMING_SLOT: u64 = 4;
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
    /// No contract is deployed at the address given.
    #[error(
        "no contract at {0} on this chain (the address holds no code): check the contract \
         address and the endpoint"
    )]
    NoCode(Address),
    /// The address holds a contract that is not keyquorum's coordinator, or one whose verifier
    /// or reader is not keyquorum's ([`crate::code`]).
    #[error(transparent)]
    ForeignCode(#[from] crate::code::ForeignCode),
    /// The contract refused the deployment (its constructor's checks of the configuration).
    #[error("refused: {0:?}")]
    Refused(Revert),
    /// A call could not be signed (a field the transaction needs is missing).
    #[error("signing: {0}")]
    Sign(String),
    /// A read returned bytes that do not decode as the function's result.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The chain lacks the EIP-2537 BLS12-381 precompiles ([`check_bls_precompiles`]).
    #[error(
        "this chain has no EIP-2537 BLS12-381 precompiles (the Prague hardfork or later): the \
         coordinator checks every signature and point with them, so nothing would work on it"
    )]
    NoBlsPrecompiles,
    /// The node is configured for another chain name than the contract was deployed with:
    /// every session id would differ from the contract's.
    #[error(
        "the coordinator was deployed with chain_name {deployed:?}, and this node is configured \
         with {configured:?}: remove `chain_name` from the [evm] section (the node then uses the \
         contract's) or correct it"
    )]
    ChainNameMismatch {
        /// The node's `evm.chain_name`.
        configured: String,
        /// The contract's.
        deployed: String,
    },
    /// The node is configured to follow from a block after the coordinator's deployment: it
    /// would miss the registrations and ceremonies logged before that block.
    #[error(
        "evm.from_block {from_block} comes after the coordinator's deployment (its code is on \
         chain at block {before}): the node would miss the registrations and ceremonies logged \
         before it; set from_block to the deployment block (or any block before it)"
    )]
    FromBlockAfterDeployment {
        /// The node's `evm.from_block`.
        from_block: u64,
        /// The block before it, where the code already is.
        before: u64,
    },
}

/// How long one JSON-RPC request may take, answer included, before it fails as a transport
/// error (a node's follower then reports the chain unreachable).
pub const RPC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to the endpoint may take.
pub const RPC_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest part of an endpoint URL (path, query, user name or password) replaced on its
/// own by [`redact_rpc`]: a shorter one is no access key, and replacing it everywhere would
/// garble the rest of the text (a path `/v1` in every version string).
const MIN_REDACTED_PART: usize = 6;

/// `text` with the endpoint URL `rpc` replaced by `<rpc>` wherever it appears: the URL may
/// carry an access key (in its path, query or user info), so it is neither logged nor shown.
/// Errors print it as configured, or as the HTTP client holds it: normalised by the `url` crate
/// (scheme and host lowercased, a default port dropped, `/` for an empty path, characters
/// percent-encoded) and without its user info, which goes into an authorization header. A
/// server's error page may echo the path or query alone (percent-encoded or decoded), so each
/// of these, and the user info's parts, are replaced on their own too, when long enough to be
/// a key (six characters).
pub fn redact_rpc(text: &str, rpc: &str) -> String {
    let mut forms = vec![rpc.to_string()];
    if let Ok(url) = reqwest::Url::parse(rpc) {
        forms.push(url.to_string());
        let mut parts = vec![url.path().to_string()];
        parts.extend(url.query().map(str::to_string));
        parts.extend(url.password().map(str::to_string));
        parts.push(url.username().to_string());
        let decoded: Vec<String> = parts.iter().filter_map(|p| percent_decoded(p)).collect();
        parts.extend(decoded);
        forms.extend(
            parts
                .into_iter()
                .filter(|p| p.trim_matches('/').len() >= MIN_REDACTED_PART),
        );
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

/// `part` with its `%XX` escapes decoded, when it has any and they decode to UTF-8.
fn percent_decoded(part: &str) -> Option<String> {
    if !part.contains('%') {
        return None;
    }
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|d| d != part)
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
    /// `unknown` / `mined`. Taken from the ABI's selector table, not from `Debug` text: callers
    /// act on it (a proof refused as `AlreadySlashed` is settled, not failed).
    pub fn name(&self) -> String {
        match self {
            Revert::Contract(e) | Revert::Mined(Some(e)) => {
                CoordinatorErrors::name_by_selector(e.selector())
                    .unwrap_or("unknown")
                    .to_string()
            }
            Revert::Other(_) => "unknown".into(),
            Revert::Mined(None) => "mined".into(),
        }
    }

    /// Whether it was mined, so its sender paid for it (a revert at estimation costs nothing).
    pub fn mined(&self) -> bool {
        matches!(self, Revert::Mined(_))
    }
}

/// Where a sent transaction stands ([`Client::sent_state`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SentState {
    /// Mined: what became of it (a revert replayed for its reason, as [`Client::send_calldata`]
    /// does).
    Mined(CallOutcome),
    /// Not mined yet: for a send this client keeps, while it may still be (its nonce free, or
    /// one of its transactions known to the node); for any other transaction, while the node
    /// knows it.
    Pending,
    /// Can no longer be mined. For a send this client keeps: none of its transactions is
    /// mined and its nonce is taken by another. For any other transaction: unknown to the
    /// node (dropped, or never propagated).
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

/// What an error answer to `eth_sendRawTransaction` says of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendAnswer {
    /// The node already has it.
    InPool,
    /// Refused for a reason that holds for the transaction itself (its nonce, fees, gas or
    /// the account's funds): the node does not have it.
    Refused,
    /// Anything else (a proxy's timeout or rate limit, an internal error): it may have reached
    /// the node, so it is kept and looked up.
    Unsure,
}

/// Classifies an error answer to a send by the messages geth, reth, Erigon, Nethermind and
/// anvil give (the codes are not standard), compared without case, spaces or underscores
/// (Nethermind writes `AlreadyKnown`, `FeeTooLow`). "Nonce too low" is not a refusal: it may
/// mean this very transaction was mined already (a proxy that sent it twice), which the
/// look-up tells.
fn send_answer(error: &TransportError) -> SendAnswer {
    let Some(answer) = error.as_error_resp() else {
        return SendAnswer::Unsure;
    };
    let message: String = answer
        .message
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    let says = |parts: &[&str]| parts.iter().any(|p| message.contains(p));
    if says(&[
        "alreadyknown",
        "knowntransaction",
        "alreadyimported",
        "alreadyexists",
    ]) {
        SendAnswer::InPool
    } else if says(&[
        "noncetoohigh",
        "underpriced",
        "feetoolow",
        "insufficientfunds",
        "intrinsicgas",
        "gaslimit",
        "lessthanblockbasefee",
        "feecap",
        "maxpriorityfeepergashigher",
        "tiphigher",
        "invalidsender",
        "invalidchainid",
        "oversized",
        "exceedstheconfiguredcap",
    ]) {
        SendAnswer::Refused
    } else {
        SendAnswer::Unsure
    }
}

async fn connect(rpc: &str, key: PrivateKeySigner) -> Result<DynProvider, ClientError> {
    // For the deployment (the client's calls are filled and signed by `Client::send_new`):
    // gas limit by estimation, EIP-1559 fees from the fee history, the chain id, and the nonce
    // from the chain's pending count. Not alloy's default cached nonce: it counts the nonce up
    // while the gas is estimated, so a call refused at estimation (never sent) would leave a
    // gap and no later transaction of the account would be mined.
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
    // Without a timeout, an endpoint that takes the connection and never answers would hold
    // a node's follower (and whatever else waits on it) for good, with no error to report.
    let http = reqwest::Client::builder()
        .connect_timeout(RPC_CONNECT_TIMEOUT)
        .timeout(RPC_REQUEST_TIMEOUT)
        .build()
        .map_err(|e| {
            ClientError::Rpc(TransportErrorKind::custom_str(&format!(
                "cannot build the HTTP client: {e}"
            )))
        })?;
    let client = alloy_rpc_client::ClientBuilder::default()
        .layer(RedactRpc { rpc: rpc.into() })
        .http_with_client(http, url);
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
    check_bls_precompiles(&provider).await?;
    let mut code = Coordinator::BYTECODE.to_vec();
    code.extend(Coordinator::constructorCall { c: config }.abi_encode());
    create(&provider, code).await
}

/// The EIP-2537 precompile the check calls: `BLS12_G1ADD`.
const BLS12_G1ADD: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
]);

/// Checks that the chain has the EIP-2537 BLS12-381 precompiles (Prague and later), which the
/// coordinator's every check of a signature or a point calls: `BLS12_G1ADD` of two points at
/// infinity answers one 128-byte point at infinity there, and nothing on a chain without it (a
/// call to an address without code succeeds with no output). Without them a deployment
/// succeeds and every registration reverts with `PrecompileFailed`.
pub async fn check_bls_precompiles<P: Provider>(provider: &P) -> Result<(), ClientError> {
    let call = TransactionRequest::default()
        .to(BLS12_G1ADD)
        .input(vec![0u8; 256].into());
    let answer = provider.call(call).await?;
    if answer.len() != 128 || answer.iter().any(|b| *b != 0) {
        return Err(ClientError::NoBlsPrecompiles);
    }
    Ok(())
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

/// The contract at an address, and an account to call it from. Clones share the provider, the
/// send lock and the kept sends.
#[derive(Clone)]
pub struct Client {
    provider: DynProvider,
    /// Signs every call here: a send's hash is known before the chain's node answers (a lost
    /// answer leaves no transaction unaccounted for), and a replacement is built from what
    /// this client sent, never from what the node reports.
    wallet: EthereumWallet,
    /// The chain id (EIP-155), asked once.
    chain_id: Arc<tokio::sync::OnceCell<u64>>,
    contract: Address,
    account: Address,
    send_lock: Arc<Mutex<()>>,
    /// Held while the kept sends are looked up and replaced ([`Client::pending_sends`]).
    bump_lock: Arc<Mutex<()>>,
    receipt_timeout: Duration,
    /// When and how far a send left pending is replaced with higher fees (none: never).
    fee_bump: Option<FeeBump>,
    /// Sends whose receipt was not seen, until their outcome is taken or they are dropped.
    unconfirmed: Arc<std::sync::Mutex<Vec<Unconfirmed>>>,
    /// Sends settled and no longer kept, newest last: every hash signed for each, and where
    /// it ended ([`SETTLED_HANDLES_KEPT`] at most).
    settled: Arc<std::sync::Mutex<std::collections::VecDeque<SettledSend>>>,
}

/// When a send left pending is replaced with higher fees ([`Client::pending_sends`]): a send
/// priced for a base fee that has risen since stays pending for good otherwise, and every
/// later send of the account waits behind its nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeBump {
    /// How long a send (or its last replacement) stays pending before it is replaced.
    pub after: Duration,
    /// The most a replacement offers per gas (`maxFeePerGas`, or the gas price on a chain
    /// without EIP-1559), in wei; once the fees reached it, the send is left as it is.
    pub max_fee_per_gas: u128,
}

/// A send no longer kept.
#[derive(Debug)]
struct SettledSend {
    /// Every transaction signed for it.
    hashes: Vec<B256>,
    /// Its call ([`call_digest`]): only a retry of the same call takes its outcome.
    call: B256,
    /// Where it ended.
    state: SentState,
}

/// A call's calldata and value, as one hash.
fn call_digest(input: &[u8], value: U256) -> B256 {
    alloy_primitives::keccak256([input, &value.to_be_bytes::<32>()[..]].concat())
}

/// What a transaction offers for its gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fees {
    /// EIP-1559's fields.
    Eip1559 {
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    },
    /// A chain without EIP-1559's base fee: a gas price.
    Legacy { gas_price: u128 },
}

/// A transaction signed by this client.
#[derive(Debug, Clone)]
struct Signed {
    hash: B256,
    fees: Fees,
    /// Its EIP-2718 encoding, as sent (and sent again while the node has lost it).
    raw: Bytes,
    /// The chain's node refused it: it is not sent again, but still looked up (a refusal
    /// may come after the node took it, from a proxy, or for a copy it already had).
    refused: bool,
}

/// A send whose receipt was not seen ([`ClientError::Unconfirmed`]), as the client keeps it.
#[derive(Debug, Clone)]
struct Unconfirmed {
    /// The first transaction's hash: the handle the caller retries with
    /// ([`Client::resend_calldata`]).
    tx_hash: B256,
    /// Every transaction signed for it, all with `nonce`: the first, then each replacement
    /// with higher fees. At most one of them is mined. Never empty, and nothing is taken out:
    /// each is looked up until the send is settled.
    sent: Vec<Signed>,
    input: Vec<u8>,
    value: U256,
    nonce: u64,
    gas_limit: u64,
    sent_at: Instant,
    /// When the newest of `sent` was signed.
    last_sent: Instant,
    /// Its outcome, once found mined by someone other than its caller: kept until its
    /// caller's retry takes it (at most [`MAX_RESOLVED_KEPT`] are), with when it was found.
    resolved: Option<(CallOutcome, Instant)>,
    /// When it was last reported as pending ([`PendingSend::warn`]).
    warned_at: Option<Instant>,
    /// Why the last replacement or re-broadcast did not reach the chain's node.
    problem: Option<String>,
    /// The block at which its nonce was first seen taken while none of its transactions was
    /// found mined: it is dropped only if that is still so [`DROP_CONFIRM_BLOCKS`] later.
    nonce_taken_at: Option<u64>,
}

impl Unconfirmed {
    /// The newest transaction the node did not refuse (the first one, if it refused all).
    fn newest(&self) -> &Signed {
        self.sent
            .iter()
            .rev()
            .find(|s| !s.refused)
            .unwrap_or(&self.sent[0])
    }

    fn replacements(&self) -> u32 {
        self.sent.iter().skip(1).filter(|s| !s.refused).count() as u32
    }

    /// The call as sent, to replay a mined revert for its reason.
    fn call(&self, from: Address, to: Address) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_value(self.value)
            .with_gas_limit(self.gas_limit)
            .with_input(self.input.clone())
    }
}

/// Where a kept send stands ([`Client::settle`]).
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    Mined(CallOutcome),
    /// Not mined, and it may yet be: its nonce free, one of its transactions known to the
    /// node, or a taken nonce not yet confirmed. `known`: the chain's node holds its
    /// newest transaction.
    Pending {
        known: bool,
    },
    /// None of its transactions mined, and its nonce taken by another transaction: it can no
    /// longer be mined.
    Dropped,
}

/// A send of this client still pending: its receipt was not seen in time, and it is not mined
/// yet while its nonce is free (a fee too low for the chain, say). Later sends of the account
/// wait behind its nonce.
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
    /// Why its last replacement or re-broadcast did not reach the chain's node, if it did not.
    pub problem: Option<String>,
}

/// The contract function `input` calls, by its selector.
pub fn call_name(input: &[u8]) -> &'static str {
    input
        .get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .and_then(Coordinator::CoordinatorCalls::name_by_selector)
        .unwrap_or("unknown")
}

/// A fee raised by [`FEE_BUMP_EIGHTHS`], and by at least one wei (a zero fee raised stays a
/// different transaction).
fn raised(fee: u128) -> u128 {
    fee.saturating_mul(FEE_BUMP_EIGHTHS)
        .div_ceil(8)
        .max(fee.saturating_add(1))
}

/// The fees of a replacement of a transaction offering `fees`: each raised by an eighth, or
/// to what the chain asks `now` where that is more (left alone when `now` is unknown), at most
/// `cap` per gas. `None` when the least raise the chain's node accepts is over the cap.
fn replacement_fees(fees: Fees, now: Option<Fees>, cap: u128) -> Option<Fees> {
    match fees {
        Fees::Eip1559 {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        } => {
            let (now_fee, now_priority) = match now {
                Some(Fees::Eip1559 {
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                }) => (max_fee_per_gas, max_priority_fee_per_gas),
                Some(Fees::Legacy { gas_price }) => (gas_price, 0),
                None => (0, 0),
            };
            let least_fee = raised(max_fee_per_gas);
            let least_priority = raised(max_priority_fee_per_gas);
            if least_fee > cap || least_priority > least_fee.max(now_fee).min(cap) {
                return None;
            }
            let max_fee_per_gas = least_fee.max(now_fee).min(cap);
            Some(Fees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas: least_priority.max(now_priority).min(max_fee_per_gas),
            })
        }
        Fees::Legacy { gas_price } => {
            let now_price = match now {
                Some(Fees::Legacy { gas_price }) => gas_price,
                Some(Fees::Eip1559 {
                    max_fee_per_gas, ..
                }) => max_fee_per_gas,
                None => 0,
            };
            let least = raised(gas_price);
            (least <= cap).then(|| Fees::Legacy {
                gas_price: least.max(now_price).min(cap),
            })
        }
    }
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
            provider: connect(rpc, key.clone()).await?,
            wallet: EthereumWallet::from(key),
            chain_id: Default::default(),
            contract,
            account,
            send_lock: Default::default(),
            bump_lock: Default::default(),
            receipt_timeout: RECEIPT_TIMEOUT,
            fee_bump: None,
            unconfirmed: Default::default(),
            settled: Default::default(),
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
        Ok(*self
            .chain_id
            .get_or_try_init(|| async { self.provider.get_chain_id().await })
            .await?)
    }

    /// Checks that the client's contract is keyquorum's coordinator as this build compiled it,
    /// and that the BLS verifier and encoding reader it calls are the ones its constructor
    /// creates ([`crate::code`]). Run before anything is read from the contract, whose answers
    /// mean what the node assumes only then.
    pub async fn check_coordinator_code(&self) -> Result<(), ClientError> {
        use crate::code::{COORDINATOR, ForeignCode, Mismatch, READER, VERIFIER, check_contract};
        let code = self.provider.get_code_at(self.contract).await?;
        if code.is_empty() {
            return Err(ClientError::NoCode(self.contract));
        }
        // The coordinator's code may be there all the same (deployed before the check existed,
        // or by another tool): nothing it is asked would succeed.
        check_bls_precompiles(&self.provider).await?;
        check_contract(&COORDINATOR, self.contract, &code)?;
        let foreign = |mismatch| ForeignCode {
            what: COORDINATOR.name,
            address: self.contract,
            mismatch,
        };
        let held = COORDINATOR.immutable_addresses(&code).map_err(foreign)?;
        // Every place of an immutable holds one value, so the getters answer what the calls
        // use: they tell which held address is the verifier and which the reader.
        let verifier = self.read(Coordinator::blsCall {}).await?;
        let reader = self.read(Coordinator::readerCall {}).await?;
        for (getter, answered) in [("bls", verifier), ("reader", reader)] {
            if !held.contains(&answered) {
                return Err(foreign(Mismatch::Getter { getter, answered }).into());
            }
        }
        for (artifact, at) in [(&*VERIFIER, verifier), (&*READER, reader)] {
            check_contract(artifact, at, &self.provider.get_code_at(at).await?)?;
        }
        Ok(())
    }

    /// Whether the coordinator's code was on chain at block `number`. An endpoint that keeps
    /// no state that old (a pruned node) answers with an error.
    pub async fn coordinator_code_at(&self, number: u64) -> Result<bool, ClientError> {
        let code = self
            .provider
            .get_code_at(self.contract)
            .block_id(BlockNumberOrTag::Number(number).into())
            .await?;
        Ok(!code.is_empty())
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
        Ok(self.provider.get_transaction_count(who).latest().await?)
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
    /// a call refused at estimation is not sent and uses no nonce, so no later call waits
    /// behind a gap.
    pub async fn send<C: SolCall>(&self, call: C, value: U256) -> Result<CallOutcome, ClientError> {
        self.send_calldata(call.abi_encode(), value).await
    }

    /// [`Client::send`] with the call already ABI-encoded: a new call, sent even when an
    /// earlier identical one (same calldata and value) was mined a moment ago.
    ///
    /// A send whose receipt is not seen in time is kept ([`ClientError::Unconfirmed`], whose
    /// `tx_hash` is the handle to retry it with, [`Client::resend_calldata`]); its outcome
    /// goes to that retry (or to [`Client::sent_state`] of it), never to a new call. While it is pending, an identical new call waits for it
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
    /// Mined, its outcome (a revert replayed for its reason); not mined while its nonce is
    /// free, [`ClientError::Unconfirmed`] again and nothing new is sent (the node is handed the
    /// same transaction again if it lost it); none of its transactions mined and its nonce
    /// taken by another, the call is sent anew. A send of this call no longer kept but
    /// remembered as mined (its outcome taken by another caller, [`Client::sent_state`]) gives
    /// that outcome again; a handle neither kept nor remembered so (dropped, or from before a
    /// restart) is a new call ([`Client::send_calldata`]).
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

    /// [`Client::resend_calldata`] that never sends the call anew: `Ok(None)` where that would
    /// (the earlier send dropped, or neither kept nor remembered as mined), so the caller can
    /// check the call again first and send it with [`Client::send_calldata`]. The look-up and
    /// the verdict are one step under the send lock: no other caller's look-up can drop the
    /// send in between.
    pub async fn look_up_retry(
        &self,
        input: Vec<u8>,
        value: U256,
        earlier: B256,
    ) -> Result<Option<CallOutcome>, ClientError> {
        let _guard = self.send_lock.lock().await;
        match self.earlier_send(Some(earlier), &input, value).await? {
            Some(outcome) => outcome.map(Some),
            None => Ok(None),
        }
    }

    /// Whether `handle` names a send this client keeps: its receipt was not seen, and its
    /// outcome was not taken yet (nor was it dropped).
    pub fn keeps(&self, handle: B256) -> bool {
        self.records().iter().any(|u| u.tx_hash == handle)
    }

    /// Signs the call with `nonce`, `gas_limit` and `fees`.
    async fn sign(
        &self,
        input: &[u8],
        value: U256,
        nonce: u64,
        gas_limit: u64,
        fees: Fees,
    ) -> Result<Signed, ClientError> {
        use alloy_network::eip2718::Encodable2718;
        let mut tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.contract)
            .with_value(value)
            .with_input(input.to_vec())
            .with_nonce(nonce)
            .with_gas_limit(gas_limit)
            .with_chain_id(self.chain_id().await?);
        match fees {
            Fees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            } => {
                tx = tx
                    .with_max_fee_per_gas(max_fee_per_gas)
                    .with_max_priority_fee_per_gas(max_priority_fee_per_gas);
            }
            Fees::Legacy { gas_price } => tx = tx.with_gas_price(gas_price),
        }
        let envelope = tx
            .build(&self.wallet)
            .await
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        Ok(Signed {
            hash: *envelope.tx_hash(),
            fees,
            raw: envelope.encoded_2718().into(),
            refused: false,
        })
    }

    /// The fees the chain asks now: EIP-1559's from the fee history, or the gas price on a
    /// chain without a base fee.
    async fn current_fees(&self) -> Result<Fees, ClientError> {
        match self.provider.estimate_eip1559_fees().await {
            Ok(e) => Ok(Fees::Eip1559 {
                max_fee_per_gas: e.max_fee_per_gas,
                max_priority_fee_per_gas: e.max_priority_fee_per_gas,
            }),
            // No base fee, or no fee history at all (JSON-RPC's "method not found").
            Err(RpcError::UnsupportedFeature(_)) => self.legacy_fees().await,
            Err(e) if e.as_error_resp().is_some_and(|r| r.code == -32601) => {
                self.legacy_fees().await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn legacy_fees(&self) -> Result<Fees, ClientError> {
        Ok(Fees::Legacy {
            gas_price: self.provider.get_gas_price().await?,
        })
    }

    /// Sends the call and waits for its receipt; the caller holds the send lock.
    async fn send_new(&self, input: Vec<u8>, value: U256) -> Result<CallOutcome, ClientError> {
        let may_evict = input.get(..4).is_some_and(|s| {
            s == Coordinator::registerCall::SELECTOR || s == Coordinator::addStakeCall::SELECTOR
        });
        let call = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.contract)
            .with_value(value)
            .with_input(input.clone());
        let estimate = match self.provider.estimate_gas(call.clone()).await {
            Ok(g) => g,
            Err(e) => {
                return match revert_of(&e) {
                    Some(r) => Ok(CallOutcome::Reverted(r)),
                    None => Err(e.into()),
                };
            }
        };
        let gas_limit = if may_evict {
            let candidates = self.read(Coordinator::eligibleCountCall {}).await?;
            candidacy_gas_limit(estimate, candidates.saturating_to())
        } else {
            estimate
        };
        // The chain's pending count, but past every kept send's nonce: a kept send the node
        // lost may still be mined (elsewhere, or when handed to the node again), so its nonce
        // is never given to another call, which could then land beside it.
        let pending_count = self
            .provider
            .get_transaction_count(self.account)
            .pending()
            .await?;
        let nonce = self
            .records()
            .iter()
            .filter(|u| u.resolved.is_none())
            .map(|u| u.nonce + 1)
            .fold(pending_count, u64::max);
        let fees = self.current_fees().await?;
        let signed = self.sign(&input, value, nonce, gas_limit, fees).await?;
        let tx_hash = signed.hash;
        let sent_at = Instant::now();
        let keep = |reason: String| {
            self.records().push(Unconfirmed {
                tx_hash,
                sent: vec![signed.clone()],
                input: input.clone(),
                value,
                nonce,
                gas_limit,
                sent_at,
                last_sent: sent_at,
                resolved: None,
                warned_at: None,
                problem: None,
                nonce_taken_at: None,
            });
            Err(ClientError::Unconfirmed { tx_hash, reason })
        };
        if let Err(e) = self.provider.send_raw_transaction(&signed.raw).await {
            if let Some(r) = revert_of(&e) {
                return Ok(CallOutcome::Reverted(r));
            }
            match send_answer(&e) {
                // Refused for a reason that holds for this transaction: the node does not
                // have it, and its nonce stays free.
                SendAnswer::Refused => return Err(e.into()),
                SendAnswer::InPool => {}
                // No answer, or one that does not say: it may have reached the node.
                SendAnswer::Unsure => return keep(format!("the send's answer: {e}")),
            }
        }
        let receipt = match wait_for_receipt(&self.provider, tx_hash, self.receipt_timeout).await {
            Ok(receipt) => receipt,
            Err(e) => return keep(e.to_string()),
        };
        if !receipt.status() {
            let replayed = match receipt.block_number {
                Some(number) => self.replay(call.with_gas_limit(gas_limit), number).await,
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
    /// mined and its outcome not taken yet).
    pub fn has_unconfirmed(&self) -> bool {
        !self.records().is_empty()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Vec<Unconfirmed>> {
        self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops keeping the send `tx_hash`, settled as `state` (its outcome taken, or dropped),
    /// and remembers where it ended for [`Client::sent_state`] and a late retry.
    fn forget(&self, tx_hash: B256, state: SentState) {
        let mut records = self.records();
        let Some(pos) = records.iter().position(|u| u.tx_hash == tx_hash) else {
            return;
        };
        let u = records.remove(pos);
        // Remembered before the record's lock is released: a retry never finds the send
        // neither kept nor settled.
        self.remember(&u, state);
    }

    fn remember(&self, u: &Unconfirmed, state: SentState) {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        settled.push_back(SettledSend {
            hashes: u.sent.iter().map(|s| s.hash).collect(),
            call: call_digest(&u.input, u.value),
            state,
        });
        while settled.len() > SETTLED_HANDLES_KEPT {
            settled.pop_front();
        }
    }

    /// Where the send with transaction `tx_hash` ended, if it was settled and is remembered.
    fn settled_state(&self, tx_hash: B256) -> Option<SentState> {
        self.settled_send(tx_hash).map(|(_, state)| state)
    }

    /// The call of the settled send with transaction `tx_hash` ([`call_digest`]) and where it
    /// ended, if it is remembered.
    fn settled_send(&self, tx_hash: B256) -> Option<(B256, SentState)> {
        let settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        settled
            .iter()
            .rev()
            .find(|s| s.hashes.contains(&tx_hash))
            .map(|s| (s.call, s.state.clone()))
    }

    /// What an earlier unconfirmed send settles for a call: for the retry of the kept send
    /// `retry_of`, that send's outcome when mined, [`ClientError::Unconfirmed`] while it may
    /// still be; for a new call, [`ClientError::Unconfirmed`] while an identical send may
    /// still be mined (one found mined keeps its outcome for its own retry). `None` when the
    /// call is to be sent.
    async fn earlier_send(
        &self,
        retry_of: Option<B256>,
        input: &[u8],
        value: U256,
    ) -> Result<Option<Result<CallOutcome, ClientError>>, ClientError> {
        // Settled by another caller: a mined outcome is still the retry's, if the handle
        // names a send of this very call.
        let call = call_digest(input, value);
        let remembered = |handle: Option<B256>| match handle.and_then(|h| self.settled_send(h)) {
            Some((settled_call, SentState::Mined(outcome))) if settled_call == call => {
                Some(Ok(outcome))
            }
            _ => None,
        };
        let earlier = {
            let records = self.records();
            let same_call = |u: &&Unconfirmed| u.input == input && u.value == value;
            // A handle no longer kept (dropped, or settled) makes this a new call.
            let retry_of =
                retry_of.filter(|h| records.iter().filter(same_call).any(|u| u.tx_hash == *h));
            let found = records
                .iter()
                .filter(same_call)
                .find(|u| match retry_of {
                    Some(handle) => u.tx_hash == handle,
                    // Another call's outcome, which only its retry takes.
                    None => u.resolved.is_none(),
                })
                .map(|u| (u.tx_hash, u.sent_at, u.resolved.clone()));
            (retry_of, found)
        };
        let (retry_of, found) = match earlier {
            (None, found) if retry_of.is_some() => {
                if let Some(outcome) = remembered(retry_of) {
                    return Ok(Some(outcome));
                }
                (None, found)
            }
            other => other,
        };
        let Some((tx_hash, sent_at, resolved)) = found else {
            return Ok(None);
        };
        if let Some((outcome, _)) = resolved {
            self.forget(tx_hash, SentState::Mined(outcome.clone()));
            return Ok(Some(Ok(outcome)));
        }
        let unconfirmed =
            |reason: String| Ok(Some(Err(ClientError::Unconfirmed { tx_hash, reason })));
        // A failed look-up says nothing of the earlier send: it stays kept and unconfirmed,
        // never a reason to send a copy.
        let settled = match self.settle(tx_hash).await {
            Ok(settled) => settled,
            Err(e) => return unconfirmed(format!("could not look the earlier send up: {e}")),
        };
        match settled {
            Some(Settled::Mined(outcome)) if retry_of.is_some() => {
                self.forget(tx_hash, SentState::Mined(outcome.clone()));
                Ok(Some(Ok(outcome)))
            }
            Some(Settled::Pending { known }) => {
                if !known {
                    self.send_again(tx_hash).await;
                }
                unconfirmed(format!(
                    "not mined {:?} after it was sent, and it may still be",
                    sent_at.elapsed()
                ))
            }
            // Settled by another caller meanwhile.
            None if retry_of.is_some() => Ok(remembered(retry_of)),
            // Mined and kept for its own retry; dropped; or taken meanwhile: this call goes.
            Some(Settled::Mined(_) | Settled::Dropped) | None => Ok(None),
        }
    }

    /// Where the kept send `handle` stands, looked up now, and kept so: one found mined keeps
    /// its outcome for its retry, one found dropped is forgotten. `None` when it is not kept.
    ///
    /// Dropped means that none of its transactions is mined or known to the node, and that
    /// its nonce is taken: by a transaction this client did not sign for it, so none of its
    /// own can be mined any more. The nonce is read before the receipts, so a transaction of
    /// it mined in between shows its receipt; the verdict must hold again
    /// [`DROP_CONFIRM_BLOCKS`] blocks after it was first reached (an endpoint's nodes may
    /// disagree for a moment); and a send with a replacement signed since the look-up is not
    /// dropped. A send the node lost while its nonce is free is pending, not dropped: it may
    /// still be mined, from another node's pool or once handed to this one again.
    async fn settle(&self, handle: B256) -> Result<Option<Settled>, ClientError> {
        let kept = self
            .records()
            .iter()
            .find(|u| u.tx_hash == handle)
            .map(|u| {
                (
                    u.sent.iter().map(|s| s.hash).collect::<Vec<_>>(),
                    u.newest().hash,
                    u.nonce,
                    u.call(self.account, self.contract),
                )
            });
        let Some((hashes, newest, nonce, call)) = kept else {
            return Ok(None);
        };
        let next_nonce = self
            .provider
            .get_transaction_count(self.account)
            .latest()
            .await?;
        let (mut any_known, mut newest_known) = (false, false);
        for hash in hashes.iter().rev() {
            match self.look_up(*hash, Some(&call)).await? {
                SentState::Mined(outcome) => {
                    self.resolve(handle, outcome.clone());
                    return Ok(Some(Settled::Mined(outcome)));
                }
                SentState::Pending => {
                    any_known = true;
                    newest_known |= *hash == newest;
                    // Refused, yet the node has it (the refusal came after it was taken).
                    if let Some(u) = self.records().iter_mut().find(|u| u.tx_hash == handle)
                        && let Some(s) = u.sent.iter_mut().find(|s| s.hash == *hash)
                    {
                        s.refused = false;
                    }
                }
                SentState::Dropped => {}
            }
        }
        if next_nonce <= nonce || any_known {
            if let Some(u) = self.records().iter_mut().find(|u| u.tx_hash == handle) {
                u.nonce_taken_at = None;
            }
            return Ok(Some(Settled::Pending {
                known: newest_known,
            }));
        }
        let block = self.provider.get_block_number().await?;
        {
            let mut records = self.records();
            let Some(u) = records.iter_mut().find(|u| u.tx_hash == handle) else {
                return Ok(None);
            };
            // A replacement signed since the look-up may be the transaction that took the
            // nonce; and a verdict reached just now waits to be confirmed.
            let first_seen = *u.nonce_taken_at.get_or_insert(block);
            if u.sent.len() != hashes.len() || block < first_seen + DROP_CONFIRM_BLOCKS {
                return Ok(Some(Settled::Pending { known: true }));
            }
        }
        self.forget(handle, SentState::Dropped);
        Ok(Some(Settled::Dropped))
    }

    /// Hands the kept send `handle`'s newest transaction to the chain's node again (it lost
    /// it while its nonce is free). A refusal is kept as the send's problem: a fee the chain
    /// no longer takes is for the fee bump to raise.
    async fn send_again(&self, handle: B256) {
        let Some(raw) = self
            .records()
            .iter()
            .find(|u| u.tx_hash == handle)
            .map(|u| u.newest().raw.clone())
        else {
            return;
        };
        let problem = match self.provider.send_raw_transaction(&raw).await {
            Ok(_) => None,
            Err(e) if send_answer(&e) == SendAnswer::InPool => None,
            Err(e) => Some(format!("the node lost it and did not take it again: {e}")),
        };
        if let Some(u) = self.records().iter_mut().find(|u| u.tx_hash == handle) {
            u.problem = problem;
        }
    }

    /// Keeps `outcome` as the mined outcome of the kept send `tx_hash` for its retry; beyond
    /// [`MAX_RESOLVED_KEPT`] such outcomes, the oldest is forgotten.
    fn resolve(&self, tx_hash: B256, outcome: CallOutcome) {
        let now = Instant::now();
        let mut records = self.records();
        for u in records.iter_mut().filter(|u| u.tx_hash == tx_hash) {
            u.resolved.get_or_insert_with(|| (outcome.clone(), now));
        }
        let resolved = records.iter().filter(|u| u.resolved.is_some()).count();
        if resolved > MAX_RESOLVED_KEPT
            && let Some(oldest) = records
                .iter()
                .enumerate()
                .filter_map(|(i, u)| u.resolved.as_ref().map(|(_, at)| (*at, i)))
                .min()
                .map(|(_, i)| i)
        {
            let u = records.remove(oldest);
            if let Some((outcome, _)) = &u.resolved {
                self.remember(&u, SentState::Mined(outcome.clone()));
            }
        }
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

    /// Where the transaction `tx_hash` stands. For a send this client keeps (any of the
    /// transactions signed for it: a replacement with higher fees may be the one mined), as
    /// [`Client::resend_calldata`] finds it, and a mined one's outcome goes to this caller (and
    /// is remembered: a later retry of it gets it again, the last 256 such outcomes at most);
    /// the send is handed to the node again if the node lost it while its nonce is free. For any other transaction: mined (a revert replayed for its
    /// reason), pending if the node knows it, else dropped.
    pub async fn sent_state(&self, tx_hash: B256) -> Result<SentState, ClientError> {
        let kept = self
            .records()
            .iter()
            .find(|u| u.sent.iter().any(|s| s.hash == tx_hash))
            .map(|u| (u.tx_hash, u.resolved.clone()));
        let Some((handle, resolved)) = kept else {
            // A remembered outcome (a replacement may be the transaction mined); a send
            // remembered as dropped is looked up again.
            if let Some(mined @ SentState::Mined(_)) = self.settled_state(tx_hash) {
                return Ok(mined);
            }
            return self.look_up(tx_hash, None).await;
        };
        if let Some((outcome, _)) = resolved {
            self.forget(handle, SentState::Mined(outcome.clone()));
            return Ok(SentState::Mined(outcome));
        }
        Ok(match self.settle(handle).await? {
            Some(Settled::Mined(outcome)) => {
                self.forget(handle, SentState::Mined(outcome.clone()));
                SentState::Mined(outcome)
            }
            Some(Settled::Pending { known }) => {
                if !known {
                    self.send_again(handle).await;
                }
                SentState::Pending
            }
            Some(Settled::Dropped) => SentState::Dropped,
            // Settled by another caller meanwhile.
            None => match self.settled_state(tx_hash) {
                Some(mined @ SentState::Mined(_)) => mined,
                _ => self.look_up(tx_hash, None).await?,
            },
        })
    }

    /// Where one transaction stands: mined (a revert replayed as `call`, or as the node
    /// reports the transaction when not given), known to the node, or unknown to it.
    async fn look_up(
        &self,
        tx_hash: B256,
        call: Option<&TransactionRequest>,
    ) -> Result<SentState, ClientError> {
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
            let call = match call {
                Some(call) => Some(call.clone()),
                None => self
                    .provider
                    .get_transaction_by_hash(tx_hash)
                    .await?
                    .map(|sent| {
                        TransactionRequest::default()
                            .with_from(sent.from())
                            .with_to(sent.to().unwrap_or(self.contract))
                            .with_value(sent.value())
                            .with_gas_limit(sent.gas_limit())
                            .with_input(sent.input().clone())
                    }),
            };
            let replayed = match call {
                Some(call) => self.replay(call, block).await,
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

    /// The unconfirmed sends of this client that may still be mined, each looked up now as
    /// its retry would be: one found mined keeps its outcome for its caller's retry
    /// ([`Client::resend_calldata`]), one found dropped (its nonce taken by another
    /// transaction) is forgotten, one the node lost is handed to it again. A pending one is marked [`PendingSend::warn`] when first seen here,
    /// and again once `warn_every` has passed; one pending for the [`FeeBump`]'s `after`
    /// since it (or its last replacement) was signed is replaced, with the same nonce and
    /// fees raised by an eighth or to the chain's current ones if that is more, up to the
    /// bump's cap.
    pub async fn pending_sends(
        &self,
        warn_every: Duration,
    ) -> Result<Vec<PendingSend>, ClientError> {
        let _bumping = self.bump_lock.lock().await;
        let handles: Vec<B256> = self
            .records()
            .iter()
            .filter(|u| u.resolved.is_none())
            .map(|u| u.tx_hash)
            .collect();
        let mut pending = Vec::new();
        for handle in handles {
            match self.settle(handle).await {
                Ok(Some(Settled::Pending { known })) => {
                    if !known {
                        self.send_again(handle).await;
                    }
                    if let Some(bump) = self.fee_bump {
                        self.replace_if_due(handle, bump).await;
                    }
                }
                Ok(_) => continue,
                // Listed as last known; the others are still looked up.
                Err(e) => {
                    if let Some(u) = self.records().iter_mut().find(|u| u.tx_hash == handle) {
                        u.problem
                            .get_or_insert_with(|| format!("not looked up: {e}"));
                    }
                }
            }
            let now = Instant::now();
            let mut records = self.records();
            let Some(u) = records.iter_mut().find(|u| u.tx_hash == handle) else {
                continue;
            };
            let warn = u
                .warned_at
                .is_none_or(|at| now.duration_since(at) >= warn_every);
            if warn {
                u.warned_at = Some(now);
            }
            pending.push(PendingSend {
                tx_hash: handle,
                kind: call_name(&u.input),
                pending_for: now.duration_since(u.sent_at),
                warn,
                replacements: u.replacements(),
                newest: u.newest().hash,
                problem: u.problem.clone(),
            });
        }
        Ok(pending)
    }

    /// Replaces the kept send `handle` if `bump` is due: signs the same call with the same
    /// nonce and gas limit, and fees raised ([`replacement_fees`]), keeps the replacement
    /// (before sending it: should the node's answer be lost, it is still looked up) and sends
    /// it. Nothing is sent once the fees reached the cap; a refused replacement is still looked
    /// up but not sent again (the one before stays the newest), its reason kept as the send's
    /// problem.
    async fn replace_if_due(&self, handle: B256, bump: FeeBump) {
        let now = Instant::now();
        let Some((input, value, nonce, gas_limit, fees)) = self
            .records()
            .iter()
            .find(|u| u.tx_hash == handle && now.duration_since(u.last_sent) >= bump.after)
            .map(|u| {
                (
                    u.input.clone(),
                    u.value,
                    u.nonce,
                    u.gas_limit,
                    u.newest().fees,
                )
            })
        else {
            return;
        };
        if replacement_fees(fees, None, bump.max_fee_per_gas).is_none() {
            return;
        }
        // Without the chain's current fees, the raise alone.
        let current = self.current_fees().await.ok();
        let Some(raised) = replacement_fees(fees, current, bump.max_fee_per_gas) else {
            return;
        };
        let signed = match self.sign(&input, value, nonce, gas_limit, raised).await {
            Ok(signed) => signed,
            Err(e) => {
                if let Some(u) = self.records().iter_mut().find(|u| u.tx_hash == handle) {
                    u.problem = Some(format!("its replacement could not be signed: {e}"));
                    u.last_sent = Instant::now();
                }
                return;
            }
        };
        {
            let mut records = self.records();
            let Some(u) = records.iter_mut().find(|u| u.tx_hash == handle) else {
                return;
            };
            u.last_sent = Instant::now();
            match u.sent.iter().find(|s| s.hash == signed.hash) {
                // The same transaction again (fees already at what the raise gives): sent
                // again only if the node refused it before (the account funded since, say).
                Some(same) if !same.refused => return,
                Some(_) => {}
                None => u.sent.push(signed.clone()),
            }
        }
        let sent = self.provider.send_raw_transaction(&signed.raw).await;
        if let Some(u) = self.records().iter_mut().find(|u| u.tx_hash == handle) {
            u.problem = match sent {
                Ok(_) => {
                    if let Some(s) = u.sent.iter_mut().find(|s| s.hash == signed.hash) {
                        s.refused = false;
                    }
                    None
                }
                Err(e) => match send_answer(&e) {
                    SendAnswer::InPool => {
                        if let Some(s) = u.sent.iter_mut().find(|s| s.hash == signed.hash) {
                            s.refused = false;
                        }
                        None
                    }
                    // Still looked up, not sent again until a bump comes to it anew: the one
                    // before stays the newest.
                    SendAnswer::Refused => {
                        if let Some(s) = u.sent.iter_mut().find(|s| s.hash == signed.hash) {
                            s.refused = true;
                        }
                        Some(format!("its replacement was refused: {e}"))
                    }
                    SendAnswer::Unsure => Some(format!("its replacement's answer: {e}")),
                },
            };
        }
    }

    /// The chain name the contract was deployed with (its `Config.chainId`), which every
    /// session id and magic block binds. Read from storage, as [`Client::min_stake`] is:
    /// `chainId` is `Config`'s first field, slot 0, a Solidity `bytes` (up to 31 bytes in the
    /// slot itself, the length doubled in its last byte; longer ones at `keccak256(slot)`,
    /// with `2 * length + 1` in the slot). The deploy checks allow 1 to 64 bytes.
    pub async fn chain_name(&self) -> Result<String, ClientError> {
        let slot: [u8; 32] = self
            .provider
            .get_storage_at(self.contract, U256::ZERO)
            .await?
            .to_be_bytes();
        let bytes = if slot[31] & 1 == 0 {
            let len = usize::from(slot[31] / 2);
            if len > 31 {
                return Err(ClientError::Decode(format!(
                    "the contract's chain name slot says {len} bytes"
                )));
            }
            slot[..len].to_vec()
        } else {
            let len = (U256::from_be_bytes(slot) - U256::from(1)) / U256::from(2);
            let len = usize::try_from(len)
                .ok()
                .filter(|l| (32..=64).contains(l))
                .ok_or_else(|| {
                    ClientError::Decode(format!("the contract's chain name is {len} bytes long"))
                })?;
            let base = U256::from_be_bytes(alloy_primitives::keccak256([0u8; 32]).0);
            let mut out = Vec::with_capacity(64);
            for i in 0..len.div_ceil(32) {
                let word = self
                    .provider
                    .get_storage_at(self.contract, base + U256::from(i))
                    .await?;
                out.extend_from_slice(&word.to_be_bytes::<32>());
            }
            out.truncate(len);
            out
        };
        String::from_utf8(bytes)
            .map_err(|_| ClientError::Decode("the contract's chain name is not UTF-8".into()))
    }

    /// The contract's `viewLength` (blocks from a view's first round to the earliest start of
    /// the next view change), read from its storage ([`VIEW_TIMING_SLOT`]); it is fixed at
    /// deployment.
    pub async fn view_length(&self) -> Result<u64, ClientError> {
        let word: [u8; 32] = self
            .provider
            .get_storage_at(self.contract, U256::from(VIEW_TIMING_SLOT))
            .await?
            .to_be_bytes();
        // Solidity packs a struct's small fields from the low-order end of the slot:
        // `firstViewChange` in bytes 24..32 of the big-endian word, then `viewLength`.
        let mut length = [0u8; 8];
        length.copy_from_slice(&word[16..24]);
        Ok(u64::from_be_bytes(length))
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

    /// The hash of block `number`, if the chain has it.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>, ClientError> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|b| b.header.hash))
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

        // A path echoed decoded is replaced too; parts too short to be a key are left in the
        // rest of the text, which they would garble.
        let rpc = "https://a:b@node.example/v3/my%20key-secret";
        assert_eq!(
            redact_rpc("Cannot POST /v3/my key-secret", rpc),
            "Cannot POST <rpc>"
        );
        let text = "a bad answer from v3 of the API";
        assert_eq!(redact_rpc(text, "https://a:b@node.example/v3"), text);
    }

    /// A replacement raises each fee by an eighth (above the tenth nodes require), or to the
    /// chain's current fees where those are more, never past the cap; a chain without EIP-1559
    /// gets a raised gas price; and nothing when the least raise is over the cap.
    #[test]
    fn a_replacement_raises_the_fees_by_an_eighth_or_to_the_chains_up_to_the_cap() {
        let sent = Fees::Eip1559 {
            max_fee_per_gas: 800,
            max_priority_fee_per_gas: 80,
        };
        let cap = 10_000;
        assert_eq!(
            replacement_fees(sent, None, cap),
            Some(Fees::Eip1559 {
                max_fee_per_gas: 900,
                max_priority_fee_per_gas: 90
            })
        );
        // The chain asks more now: its fees, up to the cap.
        let now = Fees::Eip1559 {
            max_fee_per_gas: 5_000,
            max_priority_fee_per_gas: 100,
        };
        assert_eq!(
            replacement_fees(sent, Some(now), cap),
            Some(Fees::Eip1559 {
                max_fee_per_gas: 5_000,
                max_priority_fee_per_gas: 100
            })
        );
        assert_eq!(
            replacement_fees(sent, Some(now), 1_000),
            Some(Fees::Eip1559 {
                max_fee_per_gas: 1_000,
                max_priority_fee_per_gas: 100
            })
        );
        // Less now: the raise alone.
        let low = Fees::Eip1559 {
            max_fee_per_gas: 10,
            max_priority_fee_per_gas: 1,
        };
        assert_eq!(
            replacement_fees(sent, Some(low), cap),
            replacement_fees(sent, None, cap)
        );
        // The least raise over the cap: nothing (the node would refuse less).
        assert_eq!(replacement_fees(sent, Some(now), 899), None);
        // Rounded up: a raise of a small fee is still more than a tenth.
        assert_eq!(
            replacement_fees(
                Fees::Eip1559 {
                    max_fee_per_gas: 7,
                    max_priority_fee_per_gas: 1
                },
                None,
                cap
            ),
            Some(Fees::Eip1559 {
                max_fee_per_gas: 8,
                max_priority_fee_per_gas: 2
            })
        );

        let legacy = Fees::Legacy { gas_price: 800 };
        assert_eq!(
            replacement_fees(legacy, None, cap),
            Some(Fees::Legacy { gas_price: 900 })
        );
        assert_eq!(
            replacement_fees(legacy, Some(Fees::Legacy { gas_price: 2_000 }), cap),
            Some(Fees::Legacy { gas_price: 2_000 })
        );
        assert_eq!(
            replacement_fees(legacy, Some(Fees::Legacy { gas_price: 2_000 }), 1_500),
            Some(Fees::Legacy { gas_price: 1_500 })
        );
        assert_eq!(replacement_fees(legacy, None, 899), None);

        // A zero fee is raised too: the replacement must be another transaction.
        assert_eq!(
            replacement_fees(
                Fees::Eip1559 {
                    max_fee_per_gas: 0,
                    max_priority_fee_per_gas: 0
                },
                None,
                cap
            ),
            Some(Fees::Eip1559 {
                max_fee_per_gas: 1,
                max_priority_fee_per_gas: 1
            })
        );
        assert_eq!(
            replacement_fees(Fees::Legacy { gas_price: 0 }, None, cap),
            Some(Fees::Legacy { gas_price: 1 })
        );
    }

    /// A send's error answer is taken as a refusal only when it names the transaction's own
    /// fault; "already known" means the node has it; anything else may have reached it.
    #[test]
    fn send_answers_are_refusals_only_when_they_name_the_transactions_fault() {
        let answer = |code: i64, message: &str| {
            TransportError::ErrorResp(alloy_json_rpc::ErrorPayload {
                code,
                message: message.to_string().into(),
                data: None,
            })
        };
        for message in [
            "FeeTooLow, MaxFeePerGas too low",
            "InsufficientFunds, Balance is zero, cannot pay gas",
            "replacement transaction underpriced",
            "insufficient funds for gas * price + value",
            "intrinsic gas too low",
            "exceeds block gas limit",
            "max fee per gas less than block base fee",
        ] {
            assert_eq!(send_answer(&answer(-32000, message)), SendAnswer::Refused);
        }
        for message in ["already known", "AlreadyKnown"] {
            assert_eq!(send_answer(&answer(-32000, message)), SendAnswer::InPool);
        }
        // "Nonce too low" may be this very transaction, mined: looked up, not refused.
        for message in [
            "upstream request timeout",
            "internal error",
            "rate limited",
            "nonce too low",
        ] {
            assert_eq!(send_answer(&answer(-32005, message)), SendAnswer::Unsure);
        }
        assert_eq!(
            send_answer(&TransportErrorKind::custom_str("connection reset")),
            SendAnswer::Unsure
        );
    }

    #[test]
    fn a_revert_is_named_by_the_contract_error() {
        let r = Revert::Contract(CoordinatorErrors::NotMember(Coordinator::NotMember {}));
        assert_eq!(r.name(), "NotMember");
        let r = Revert::Contract(CoordinatorErrors::TooEarly(Coordinator::TooEarly {
            nextStart: 5,
        }));
        assert_eq!(r.name(), "TooEarly");
        assert!(!r.mined());
        let r = Revert::Mined(Some(CoordinatorErrors::NoViewChange(
            Coordinator::NoViewChange {},
        )));
        assert_eq!(r.name(), "NoViewChange");
        assert!(r.mined());
        assert_eq!(Revert::Mined(None).name(), "mined");
        assert_eq!(Revert::Other(Bytes::new()).name(), "unknown");
    }

    /// Every error the contract declares has a name of its own in the table `Revert::name`
    /// reads: a selector names one error, and no two errors share a name (an overloaded error
    /// would make a name ambiguous to the code that acts on it).
    #[test]
    fn every_contract_error_has_a_name_of_its_own() {
        assert!(!CoordinatorErrors::SELECTORS.is_empty());
        let mut seen = std::collections::BTreeSet::new();
        for (selector, name) in CoordinatorErrors::SELECTORS
            .iter()
            .zip(CoordinatorErrors::VARIANT_NAMES)
        {
            assert_eq!(
                CoordinatorErrors::name_by_selector(*selector),
                Some(*name),
                "{name}"
            );
            assert!(seen.insert(*name), "{name} is overloaded");
        }
    }
}
