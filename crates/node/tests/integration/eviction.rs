//! A node on the EVM coordinator's full candidate list, on anvil: the node's runtime with its
//! chain adapter (`chain::evm`), read through its `/status` and `/metrics` over HTTP.
//! - Evicted by a higher stake, it reports the eviction with the stake it would need, sends
//!   nothing while the contract would refuse it, and lists itself again once a place frees.
//! - Refused at registration (the list full before it was ever listed), it reports the refusal
//!   the same way and registers as soon as a place frees, not at its next periodic retry.
//! - With a stake below the contract's minimum, it does not send its registration and reports
//!   the shortfall; registered below it all the same, it reports it until stake is added.
//! - With a stake above its account's balance, it does not send its registration and reports
//!   `insufficient_balance`, then registers once, once the account is funded.
//!
//! anvil is the pinned npm package in `contracts/` (`npm ci` there installs it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_network::TransactionBuilder;
use alloy_provider::Provider;
use alloy_rpc_types_eth::TransactionRequest;
use keyquorum_contract::hex::Bytes;
use keyquorum_contract::tx::{NetworkIdentity, TxBody};
use keyquorum_evm::alloy_primitives::{Address, U256};
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{CallOutcome, Client, chain_key, deploy};
use keyquorum_evm::{Coordinator, PrivateKeySigner};
use keyquorum_node::chain::evm::EvmCall;
use keyquorum_node::chain::evm::{EvmChainClient, EvmSettings};
use keyquorum_node::chain::{ChainAction, ChainClient, Sender, SubmitOutcome};
use keyquorum_node::status::Status;
use keyquorum_node::{NodeConfig, NodeKeys};
use tokio::task::JoinSet;

use crate::common;

const CHAIN_NAME: &str = "kq-evict";
/// The contract's bound on listed candidates (`MAX_CANDIDATES` in Coordinator.sol).
const MAX_CANDIDATES: u64 = 300;
const FILLER_STAKE: u64 = 200;
const EVICTEE_STAKE: u64 = 150;

/// A four-member contract named `chain_name` on which no view change starts during a test:
/// every candidate stays evictable, and a node's only sends are its own candidacy's.
pub(crate) fn idle_config(chain_name: &str) -> Coordinator::Config {
    Coordinator::Config {
        chainId: chain_name.as_bytes().to_vec().into(),
        maxSize: 4,
        minSize: 4,
        thresholdPercent: 67,
        quorumPercent: 75,
        keepPreviousPercent: 0,
        minStake: U256::from(100),
        contributeBlocks: 5,
        shareBlocks: 5,
        publishBlocks: 5,
        waitBlocks: 5,
        firstViewChange: 1_000_000,
        viewLength: 100,
        unbondingBlocks: 20,
        misbehaviourPercent: 10,
        reporterPercent: 10,
        beaconScheme: 1,
        beaconPeriod: 3,
        keyMode: 1,
    }
}

/// A node's adapter on `contract`, its account funded.
async fn adapter(anvil: &Anvil, contract: Address, from: u64, index: u32) -> EvmChainClient {
    let key: PrivateKeySigner = chain_key(format!("eviction test {index}").as_bytes());
    anvil
        .fund(key.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let settings = EvmSettings {
        rpc: anvil.url().into(),
        contract,
        chain_name: Some(CHAIN_NAME.into()),
        from_block: from,
        confirmations: 0,
    };
    EvmChainClient::connect(settings, key).await.unwrap()
}

/// Node keys `index`.
pub(crate) fn node_keys(index: u32) -> NodeKeys {
    let mut master = [0u8; 32];
    master[..4].copy_from_slice(&index.to_be_bytes());
    NodeKeys::from_master(&master)
}

/// The node's registration of `chain`'s account with node keys `index` and `stake` wei.
fn registration(chain: &EvmChainClient, index: u32, stake: u64) -> EvmCall {
    let keys = node_keys(index);
    let body = TxBody::Register {
        pop: keys.identity().proof_of_possession(),
        encryption_key: keys.encryption().public_key(),
        network: NetworkIdentity {
            peer_id: Bytes(keys.peer_id().to_bytes()),
            addresses: vec![],
        },
        stake,
    };
    let sender = Sender {
        chain_id: CHAIN_NAME,
        identity: keys.identity(),
        nonce: 0,
    };
    chain.prepare(&ChainAction::Tx(body), sender).unwrap().tx
}

/// Registers as the node does (its gas estimated, with the eviction's margin).
async fn register(chain: &EvmChainClient, index: u32, stake: u64) -> SubmitOutcome {
    chain
        .submit(registration(chain, index, stake), None)
        .await
        .unwrap()
}

/// Sends a registration with a fixed gas limit, without estimating it (anvil estimates a call
/// by running it many times, and the pairing checks of 300 registrations make that the test's
/// cost), and waits for its receipt: on a loaded machine the list was read before the last
/// ones were mined.
async fn register_unestimated(chain: &EvmChainClient, index: u32, stake: u64) {
    let call = registration(chain, index, stake);
    let tx = TransactionRequest::default()
        .with_from(chain.account())
        .with_to(chain.client().contract())
        .with_input(call.input)
        .with_value(call.value)
        .with_gas_limit(2_000_000);
    // Waits for the receipt: the list must be full before the test reads it.
    let receipt = chain
        .client()
        .provider()
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "filler {index} was not registered");
}

/// The contract on a fresh anvil, and `fillers` candidates staking [`FILLER_STAKE`] (node keys
/// 1, 2, ...), registered a few at a time.
struct Fixture {
    anvil: Arc<Anvil>,
    contract: Address,
    from: u64,
    fillers: Vec<EvmChainClient>,
}

impl Fixture {
    async fn deploy() -> Self {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let anvil = Arc::new(Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}")));
        let deployer = chain_key(b"eviction test deployer");
        anvil
            .fund(deployer.address(), U256::from(10u128.pow(18)))
            .await
            .unwrap();
        let (contract, from) = deploy(anvil.url(), deployer, idle_config(CHAIN_NAME))
            .await
            .unwrap();
        Fixture {
            anvil,
            contract,
            from,
            fillers: Vec::new(),
        }
    }

    async fn fill(&mut self, count: u32) {
        let mut tasks = JoinSet::new();
        for index in 1..=count {
            let (anvil, contract, from) = (self.anvil.clone(), self.contract, self.from);
            tasks.spawn(async move {
                let filler = adapter(&anvil, contract, from, index).await;
                register_unestimated(&filler, index, FILLER_STAKE).await;
                filler
            });
            if tasks.len() >= 8 {
                self.fillers.push(tasks.join_next().await.unwrap().unwrap());
            }
        }
        while let Some(f) = tasks.join_next().await {
            self.fillers.push(f.unwrap());
        }
    }

    async fn adapter(&self, index: u32) -> EvmChainClient {
        adapter(&self.anvil, self.contract, self.from, index).await
    }

    /// Frees a place: the first filler unbonds its whole stake and leaves the list.
    async fn free_a_place(&self) {
        let unbond = self.fillers[0]
            .client()
            .send(
                Coordinator::unbondCall {
                    amount: U256::from(FILLER_STAKE),
                },
                U256::ZERO,
            )
            .await
            .unwrap();
        assert!(matches!(unbond, CallOutcome::Included { .. }), "{unbond:?}");
    }
}

/// A node's runtime on `chain` with node keys `index`, registering with `stake` wei, its
/// beacon off; stops when the returned sender is dropped. Returns its status server's address.
pub(crate) async fn start_node(
    chain: &EvmChainClient,
    index: u32,
    stake: u64,
    dir: &tempfile::TempDir,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut config = NodeConfig {
        data_dir: dir.path().to_path_buf(),
        stake,
        status_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..NodeConfig::default()
    };
    config.beacon.enabled = false;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, info) = tokio::sync::oneshot::channel();
    let chain = chain.clone();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) =
            keyquorum_node::runtime::run(config, node_keys(index), chain, shutdown, Some(ready))
                .await
        {
            panic!("node {index}: {e}");
        }
    });
    (info.await.unwrap().status_addr, stop)
}

/// `path` from the node's status server.
pub(crate) async fn http_get(addr: SocketAddr, path: &'static str) -> String {
    tokio::task::spawn_blocking(move || common::http_get(addr, path).1)
        .await
        .unwrap()
}

/// The node's `/status`, as an operator reads it.
pub(crate) async fn status(addr: SocketAddr) -> Status {
    serde_json::from_str(&http_get(addr, "/status").await).unwrap()
}

/// The value of the unlabelled gauge `name` on the node's `/metrics`.
pub(crate) async fn gauge(addr: SocketAddr, name: &str) -> f64 {
    let metrics = http_get(addr, "/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// Reads the node's `/status` until `done` holds of it.
async fn status_until(addr: SocketAddr, what: &str, done: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(addr).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still registered {}, evicted {:?}, registration refused {:?} after 30 s",
            s.registered,
            s.evicted,
            s.registration_refused
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn nonce(client: &Client, who: Address) -> u64 {
    client.transaction_count(who).await.unwrap()
}

async fn listed(client: &Client, account: Address) -> bool {
    client
        .read(Coordinator::candidacyCall { account })
        .await
        .unwrap()
        .listed
}

/// While the contract would refuse the node, it sends nothing, block after block.
async fn sends_nothing_while_refused(anvil: &Anvil, reader: &Client, account: Address) -> u64 {
    let sent = nonce(reader, account).await;
    anvil.mine(3).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(nonce(reader, account).await, sent);
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_node_reports_it_and_re_enters_once_a_place_frees() {
    let mut f = Fixture::deploy().await;
    let dir = tempfile::tempdir().unwrap();
    let evictee = f.adapter(0).await;
    let account = evictee.account();
    let (node, _stop) = start_node(&evictee, 0, EVICTEE_STAKE, &dir).await;
    status_until(node, "the registration", |s| s.registered).await;
    // The rest of the list, above the evictee's stake.
    f.fill(MAX_CANDIDATES as u32 - 1).await;
    let reader = evictee.client().clone();
    let eligible = reader
        .read(Coordinator::eligibleCountCall {})
        .await
        .unwrap();
    assert_eq!(eligible, U256::from(MAX_CANDIDATES));
    assert!(listed(&reader, account).await);
    let s = status(node).await;
    assert_eq!(s.evicted, None);
    // No view change has started on this chain: idle, as the embedded chain says it.
    assert_eq!((s.view, s.phase.as_str()), (0, "idle"));

    // A higher stake takes the lowest candidate's place: the evictee's.
    let newcomer = f.adapter(1_000).await;
    assert_eq!(
        register(&newcomer, 1_000, 300).await,
        SubmitOutcome::Included
    );
    let shown = status_until(node, "the eviction", |s| {
        s.evicted.as_ref().is_some_and(|e| e.state == "list_full")
    })
    .await;
    let evicted = shown.evicted.unwrap();
    assert_eq!(evicted.by, newcomer.account().to_string());
    assert_eq!(evicted.stake, EVICTEE_STAKE.to_string());
    assert_eq!(evicted.needed_stake, Some((FILLER_STAKE + 1).to_string()));
    assert_eq!(gauge(node, "keyquorum_evicted").await, 1.0);
    assert!(!listed(&reader, account).await);

    let sent = sends_nothing_while_refused(&f.anvil, &reader, account).await;
    assert_eq!(status(node).await.evicted, Some(evicted));

    // A place frees: the evictee takes it.
    f.free_a_place().await;
    status_until(node, "the re-entry", |s| s.evicted.is_none()).await;
    assert_eq!(gauge(node, "keyquorum_evicted").await, 0.0);
    assert!(listed(&reader, account).await);
    assert_eq!(nonce(&reader, account).await, sent + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refused_for_a_full_list_reports_it_and_registers_once_a_place_frees() {
    let mut f = Fixture::deploy().await;
    f.fill(MAX_CANDIDATES as u32).await;
    let dir = tempfile::tempdir().unwrap();
    let latecomer = f.adapter(2_000).await;
    let account = latecomer.account();
    let reader = latecomer.client().clone();
    let (node, _stop) = start_node(&latecomer, 2_000, EVICTEE_STAKE, &dir).await;

    let shown = status_until(node, "the refusal", |s| {
        s.registration_refused
            .as_ref()
            .is_some_and(|r| r.state == "list_full")
    })
    .await;
    assert!(!shown.registered);
    assert_eq!(shown.evicted, None);
    let refused = shown.registration_refused.unwrap();
    assert_eq!(refused.stake, EVICTEE_STAKE.to_string());
    assert_eq!(refused.needed_stake, Some((FILLER_STAKE + 1).to_string()));
    assert_eq!(gauge(node, "keyquorum_registration_refused").await, 1.0);
    // Refused at estimation: no transaction, no gas.
    assert_eq!(
        sends_nothing_while_refused(&f.anvil, &reader, account).await,
        0
    );
    assert_eq!(status(node).await.registration_refused, Some(refused));

    // A place frees: the node registers within a block or two, long before its periodic
    // retry (30 blocks) would have.
    f.free_a_place().await;
    let freed_at = reader.block_number().await.unwrap();
    status_until(node, "the registration", |s| {
        s.registered && s.registration_refused.is_none()
    })
    .await;
    assert!(reader.block_number().await.unwrap() < freed_at + 30);
    assert_eq!(gauge(node, "keyquorum_registration_refused").await, 0.0);
    assert!(listed(&reader, account).await);
    assert_eq!(nonce(&reader, account).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stake_below_the_minimum_is_not_sent_and_is_reported_until_stake_is_added() {
    let f = Fixture::deploy().await;
    let minimum = idle_config(CHAIN_NAME).minStake;
    let below = 50;
    let chain = f.adapter(3_000).await;
    let account = chain.account();
    let reader = chain.client().clone();
    let dir = tempfile::tempdir().unwrap();
    let (node, stop) = start_node(&chain, 3_000, below, &dir).await;
    let shown = status_until(node, "the shortfall", |s| s.stake_below_minimum.is_some()).await;
    assert!(!shown.registered);
    let short = shown.stake_below_minimum.unwrap();
    assert_eq!(
        (short.stake, short.minimum, short.registered),
        (below.to_string(), minimum.to_string(), false)
    );
    assert_eq!(gauge(node, "keyquorum_stake_below_minimum").await, 1.0);
    // Held back before sending: no transaction, no stake locked.
    assert_eq!(
        sends_nothing_while_refused(&f.anvil, &reader, account).await,
        0
    );
    drop(stop);

    // Registered below the minimum all the same (by another sender): the contract takes it but
    // never lists it, and the node, started again, reports it.
    let sent = reader
        .send_calldata(registration(&chain, 3_000, below).input, U256::from(below))
        .await
        .unwrap();
    assert!(matches!(sent, CallOutcome::Included { .. }), "{sent:?}");
    assert!(!listed(&reader, account).await);
    let restarted = f.adapter(3_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (node, _stop) = start_node(&restarted, 3_000, below, &dir).await;
    let shown = status_until(node, "the registered shortfall", |s| {
        s.registered
            && s.stake_below_minimum
                .as_ref()
                .is_some_and(|short| short.registered)
    })
    .await;
    assert_eq!(
        shown.stake_below_minimum.map(|s| (s.stake, s.minimum)),
        Some((below.to_string(), minimum.to_string()))
    );
    assert_eq!(gauge(node, "keyquorum_stake_below_minimum").await, 1.0);

    // Stake added up to the minimum: listed, and the report ends.
    let added = reader
        .send(Coordinator::addStakeCall {}, minimum - U256::from(below))
        .await
        .unwrap();
    assert!(matches!(added, CallOutcome::Included { .. }), "{added:?}");
    status_until(node, "the stake added", |s| s.stake_below_minimum.is_none()).await;
    assert_eq!(gauge(node, "keyquorum_stake_below_minimum").await, 0.0);
    assert!(listed(&reader, account).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stake_above_the_balance_is_reported_and_registered_once_funded() {
    let f = Fixture::deploy().await;
    // Funded with 1 ETH, staking 2.
    let chain = f.adapter(4_000).await;
    let stake = 2 * 10u64.pow(18);
    let account = chain.account();
    // Held back before sending, naming the account (before: the chain's "insufficient funds",
    // retried as a failed send every 300 ms, with nothing on `/status`).
    match register(&chain, 4_000, stake).await {
        SubmitOutcome::Rejected { code, reason } => {
            assert_eq!(code, "insufficient_balance");
            assert!(reason.contains(&account.to_string()), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let reader = chain.client().clone();
    let dir = tempfile::tempdir().unwrap();
    let (node, _stop) = start_node(&chain, 4_000, stake, &dir).await;
    let shown = status_until(node, "the refusal", |s| {
        s.registration_refused
            .as_ref()
            .is_some_and(|r| r.state == "insufficient_balance")
    })
    .await;
    assert!(!shown.registered);
    assert_eq!(gauge(node, "keyquorum_registration_refused").await, 1.0);
    assert_eq!(
        sends_nothing_while_refused(&f.anvil, &reader, account).await,
        0
    );
    // Funded: it registers, once; no second registration follows the first (the chain would
    // refuse it, and the balance left could not pay it).
    f.anvil
        .fund(account, U256::from(3 * 10u128.pow(18)))
        .await
        .unwrap();
    f.anvil.mine(2).await.unwrap();
    status_until(node, "the registration", |s| {
        s.registered && s.registration_refused.is_none()
    })
    .await;
    assert_eq!(gauge(node, "keyquorum_registration_refused").await, 0.0);
    f.anvil.mine(40).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(nonce(&reader, account).await, 1);
    assert!(listed(&reader, account).await);
}

/// Two nodes given one chain key: the contract keys nodes by account, so the second node's
/// registration is refused as `AlreadyRegistered`, as a node's own registration sent twice
/// is. A round of retries later, still not registered, the node says so on `/status`
/// (`account_taken`) and in `/metrics`; before, it only logged its retries at debug level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_chain_account_holds_another_nodes_registration_says_so() {
    let f = Fixture::deploy().await;
    let chain = f.adapter(5_000).await;
    let first = register(&chain, 5_000, FILLER_STAKE).await;
    assert!(matches!(first, SubmitOutcome::Included), "{first:?}");
    // Another node (other node keys) on the same account.
    let dir = tempfile::tempdir().unwrap();
    let (node, _stop) = start_node(&chain, 6_000, FILLER_STAKE, &dir).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let s = status(node).await;
        if let Some(r) = s.registration_refused {
            break r;
        }
        assert!(!s.registered, "{s:?}");
        assert!(Instant::now() < deadline, "no refusal shown: {s:?}");
        // Blocks for the node's round of retries (one every 30 blocks).
        f.anvil.mine(5).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.state, "account_taken");
    assert_eq!(gauge(node, "keyquorum_registration_refused").await, 1.0);
}

/// A JSON-RPC proxy to `anvil` that fails, with an HTTP 500, the `n`-th single
/// `eth_getBlockByNumber` request after it is armed; its URL.
async fn failing_proxy(anvil: &Anvil) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    type Shared = (alloy_provider::DynProvider, Arc<AtomicUsize>);
    async fn forward(p: &alloy_provider::DynProvider, r: &serde_json::Value) -> serde_json::Value {
        let method = r["method"].as_str().unwrap_or_default().to_owned();
        let params = r.get("params").cloned().unwrap_or(serde_json::Value::Null);
        let answer = p
            .raw_request::<_, serde_json::Value>(method.into(), params)
            .await;
        match answer {
            Ok(result) => serde_json::json!({"jsonrpc": "2.0", "id": r["id"], "result": result}),
            Err(e) => serde_json::json!({"jsonrpc": "2.0", "id": r["id"],
                "error": {"code": -32000, "message": e.to_string()}}),
        }
    }
    async fn handle(
        State((p, countdown)): State<Shared>,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> axum::response::Response {
        if let Some(batch) = body.as_array() {
            let mut out = Vec::new();
            for r in batch {
                out.push(forward(&p, r).await);
            }
            return axum::Json(serde_json::Value::Array(out)).into_response();
        }
        if body["method"] == "eth_getBlockByNumber"
            && countdown.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                == Ok(1)
        {
            return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
        }
        axum::Json(forward(&p, &body).await).into_response()
    }
    let countdown = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/", axum::routing::post(handle))
        .with_state((anvil.provider().await.unwrap(), countdown.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, countdown)
}

/// The blocks the follower confirmed are handed over even when reading a block's time fails
/// at the first try: they are kept for the next call, not dropped (the follower has moved
/// past them and would never report them again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_blocks_survive_a_failed_read_of_their_time() {
    let f = Fixture::deploy().await;
    let (url, countdown) = failing_proxy(&f.anvil).await;
    let key: PrivateKeySigner = chain_key(b"held blocks test");
    f.anvil
        .fund(key.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let settings = EvmSettings {
        rpc: url,
        contract: f.contract,
        chain_name: Some(CHAIN_NAME.into()),
        from_block: f.from,
        confirmations: 0,
    };
    let chain = EvmChainClient::connect(settings, key).await.unwrap();
    let caught_up = chain.blocks(0, 10).await.unwrap().height;
    let registrant = f.adapter(7).await;
    assert!(matches!(
        register(&registrant, 7, FILLER_STAKE).await,
        SubmitOutcome::Included
    ));
    // The poll's check of the last block reported goes through; the read of the new block's
    // time fails.
    countdown.store(2, std::sync::atomic::Ordering::SeqCst);
    assert!(chain.blocks(caught_up + 1, 10).await.is_err());
    let handed = chain.blocks(caught_up + 1, 10).await.unwrap();
    let events: usize = handed
        .blocks
        .iter()
        .flat_map(|b| &b.txs)
        .map(|t| t.events.len())
        .sum();
    assert!(
        events > 0,
        "the registration's block was dropped: {handed:?}"
    );
}
