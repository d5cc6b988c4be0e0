//! A node's transaction on the EVM coordinator that is sent and not mined in its receipt wait,
//! on anvil with blocks mined only on demand: the node's runtime and its chain adapter
//! (`chain::evm`) read through `/status` and `/metrics`, following at confirmation depth 2.
//!
//! anvil is the pinned npm package in `contracts/` (`npm ci` there installs it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_provider::Provider;
use keyquorum_evm::Coordinator;
use keyquorum_evm::alloy_primitives::{Address, B256, U256};
use keyquorum_evm::alloy_sol_types::SolCall;
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{Client, MIN_STAKE_SLOT, SentState, chain_key, deploy};
use keyquorum_node::chain::evm::{EvmCall, EvmChainClient, EvmSettings};
use keyquorum_node::chain::{ChainClient, SubmitOutcome};
use keyquorum_node::status::{SendPendingStatus, Status};

use crate::eviction::{gauge, idle_config, start_node, status};

const CHAIN_NAME: &str = "kq-unconfirmed";
const CONFIRMATIONS: u64 = 2;
const STAKE: u64 = 150;

/// Reads the node's `/status` until `done` holds of it.
async fn status_until(
    addr: std::net::SocketAddr,
    what: &str,
    done: impl Fn(&Status) -> bool,
) -> Status {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(addr).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still registered {}, send pending {:?} after 30 s",
            s.registered,
            s.send_pending
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node whose registration was sent while anvil mines no block (its receipt wait ends
/// without one), as its `/status` shows it pending.
struct PendingRegistration {
    anvil: Anvil,
    contract: Address,
    chain: EvmChainClient,
    reader: Client,
    account: Address,
    node: std::net::SocketAddr,
    /// The registration, as `/status` shows it.
    pending: SendPendingStatus,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl PendingRegistration {
    async fn start() -> Self {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let anvil = Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}"));
        let ether = U256::from(10u128.pow(18));
        let deployer = chain_key(b"unconfirmed send test deployer");
        anvil.fund(deployer.address(), ether).await.unwrap();
        let (contract, from) = deploy(anvil.url(), deployer, idle_config(CHAIN_NAME))
            .await
            .unwrap();
        let key = chain_key(b"unconfirmed send test node");
        anvil.fund(key.address(), ether).await.unwrap();
        let settings = EvmSettings {
            rpc: anvil.url().into(),
            contract,
            chain_name: Some(CHAIN_NAME.into()),
            from_block: from,
            confirmations: CONFIRMATIONS,
        };
        let chain = EvmChainClient::connect(settings, key)
            .await
            .unwrap()
            .with_receipt_timeout(Duration::from_millis(500));
        let account = chain.account();
        let reader = chain.client().clone();
        // Deep enough for the follower to confirm a block, then blocks only on demand.
        anvil.mine(CONFIRMATIONS + 1).await.unwrap();
        anvil.set_automine(false).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let (node, stop) = start_node(&chain, 0, STAKE, &dir).await;
        let shown = status_until(node, "the pending registration", |s| {
            s.send_pending.is_some()
        })
        .await;
        let pending = shown.send_pending.unwrap();
        assert_eq!((pending.kind.as_str(), pending.sends), ("register", 1));
        PendingRegistration {
            anvil,
            contract,
            chain,
            reader,
            account,
            node,
            pending,
            _stop: stop,
            _dir: dir,
        }
    }

    /// The account's nonce counting anvil's pool.
    async fn pending_nonce(&self) -> u64 {
        self.reader
            .provider()
            .get_transaction_count(self.account)
            .pending()
            .await
            .unwrap()
    }
}

/// The node's registration, sent while no block is mined: its receipt wait ends without one.
/// It is reported as pending and not sent again however often the runtime submits it again;
/// once mined, its outcome is taken and the report ends; the node counts itself registered
/// only once the registration is two blocks deep. The adapter's own submission of a call sent
/// and not seen mined answers `Unconfirmed` each time until it is mined, and sends it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_receipt_was_not_seen_is_reported_and_not_sent_again() {
    let p = PendingRegistration::start().await;
    let (anvil, chain, reader, account, node) = (&p.anvil, &p.chain, &p.reader, p.account, p.node);
    let pending_nonce = || p.pending_nonce();
    let pending = p.pending.clone();
    let tx_hash = pending.tx_hash.parse().unwrap();
    assert_eq!(
        reader.sent_state(tx_hash).await.unwrap(),
        SentState::Pending
    );
    assert_eq!(gauge(node, "keyquorum_sends_pending").await, 1.0);
    // The runtime submits it again every two seconds: looked up, never sent again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(pending_nonce().await, 1);
    let later = status(node).await.send_pending.unwrap();
    assert_eq!(later.tx_hash, pending.tx_hash);

    // Mined: taken as the outcome, the report ends; registered once two blocks deep.
    anvil.mine(1).await.unwrap();
    let shown = status_until(node, "the report's end", |s| s.send_pending.is_none()).await;
    assert!(!shown.registered);
    assert_eq!(gauge(node, "keyquorum_sends_pending").await, 0.0);
    anvil.mine(CONFIRMATIONS).await.unwrap();
    status_until(node, "the registration confirmed", |s| s.registered).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pending_nonce().await, 1);
    assert_eq!(reader.transaction_count(account).await.unwrap(), 1);
    assert!(
        reader
            .read(Coordinator::candidacyCall { account })
            .await
            .unwrap()
            .listed
    );

    // The adapter's submissions as the runtime makes them, with a call whose copy the chain
    // would take (estimated on the pending state, a copy of the registration is refused for
    // free, but a copy of `addStake` adds the stake twice): a retry with the send's handle is
    // looked up, however often, and so is a new submission of the same call while that send
    // is pending; once it is mined, the retry takes its outcome and a new submission is sent.
    let add = EvmCall {
        input: Coordinator::addStakeCall {}.abi_encode(),
        value: U256::from(50),
    };
    let unconfirmed = |outcome| match outcome {
        SubmitOutcome::Unconfirmed { handle } => handle,
        other => panic!("{other:?}"),
    };
    let first = unconfirmed(chain.submit(add.clone(), None).await.unwrap());
    for retry_of in [Some(first), Some(first), None] {
        assert_eq!(
            unconfirmed(chain.submit(add.clone(), retry_of).await.unwrap()),
            first
        );
    }
    assert_eq!(pending_nonce().await, 2);
    anvil.mine(1).await.unwrap();
    assert_eq!(
        chain.submit(add.clone(), Some(first)).await.unwrap(),
        SubmitOutcome::Included
    );
    let second = unconfirmed(chain.submit(add.clone(), None).await.unwrap());
    assert_ne!(second, first);
    assert_eq!(pending_nonce().await, 3);
    anvil.mine(1).await.unwrap();
    assert_eq!(
        chain.submit(add, Some(second)).await.unwrap(),
        SubmitOutcome::Included
    );
    assert_eq!(pending_nonce().await, 3);
    let stake = reader
        .read(Coordinator::stakeOfCall { account })
        .await
        .unwrap()
        .stake;
    assert_eq!(stake, U256::from(STAKE + 100));
}

/// A registration the chain dropped (its nonce taken by another transaction of the account,
/// and still so two blocks later) is sent anew by its retry, so it is a new registration: with
/// the contract's minimum risen above the node's stake meanwhile, it is held back and reported
/// like any registration below the minimum, not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_registration_is_not_sent_anew_below_a_minimum_risen_meanwhile() {
    use alloy_network::TransactionBuilder;

    let p = PendingRegistration::start().await;
    let tx_hash: B256 = p.pending.tx_hash.parse().unwrap();
    p.anvil
        .request::<_, serde_json::Value>("anvil_dropTransaction", serde_json::json!([tx_hash]))
        .await
        .unwrap();
    let minimum = U256::from(STAKE + 100);
    p.anvil
        .request::<_, serde_json::Value>(
            "anvil_setStorageAt",
            serde_json::json!([p.contract, U256::from(MIN_STAKE_SLOT), B256::from(minimum)]),
        )
        .await
        .unwrap();
    assert_eq!(p.reader.min_stake(None).await.unwrap(), minimum);
    // Another transaction of the account takes the registration's nonce.
    let transfer = alloy_rpc_types_eth::TransactionRequest::default()
        .with_from(p.account)
        .with_to(p.contract)
        .with_value(U256::ZERO)
        .with_nonce(0)
        .with_gas_limit(100_000);
    let _sent = p
        .reader
        .provider()
        .send_transaction(transfer)
        .await
        .unwrap();
    p.anvil.mine(1).await.unwrap();
    assert_eq!(p.reader.transaction_count(p.account).await.unwrap(), 1);

    // A block a second: the drop is confirmed two blocks after the client saw the nonce taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let s = status(p.node).await;
        if s.stake_below_minimum.is_some() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no shortfall after 30 s: {:?}",
            s.send_pending
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        p.anvil.mine(1).await.unwrap();
    };
    let short = shown.stake_below_minimum.unwrap();
    assert_eq!(
        (short.stake, short.minimum, short.registered),
        (STAKE.to_string(), minimum.to_string(), false)
    );
    assert_eq!(shown.send_pending, None);
    // Nothing sent anew, now or at the runtime's next retries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(p.pending_nonce().await, 1);
    assert!(!status(p.node).await.registered);
}

/// A contract address that holds no code is refused when the adapter connects, naming it,
/// instead of failing to decode the configuration it reads from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_without_a_contract_is_refused_by_name() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}"));
    let nowhere = Address::repeat_byte(0x42);
    let settings = EvmSettings {
        rpc: anvil.url().into(),
        contract: nowhere,
        chain_name: Some(CHAIN_NAME.into()),
        from_block: 0,
        confirmations: CONFIRMATIONS,
    };
    let Err(err) = EvmChainClient::connect(settings, chain_key(b"no contract test")).await else {
        panic!("an address without code was taken for the coordinator");
    };
    let err = err.to_string();
    assert!(err.contains(&format!("no contract at {nowhere}")), "{err}");
}

/// An address whose code is not keyquorum's coordinator, or is the coordinator's calling a
/// verifier that is not keyquorum's, is refused when the adapter connects, naming the contract
/// and the address, before anything is read from it: its answers would mean something else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_that_is_not_keyquorums_is_refused_by_name() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}"));
    let deployer = chain_key(b"foreign code test deployer");
    anvil
        .fund(deployer.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let (real, from) = deploy(anvil.url(), deployer, idle_config(CHAIN_NAME))
        .await
        .unwrap();
    let connect = |contract: Address| {
        EvmChainClient::connect(
            EvmSettings {
                rpc: anvil.url().into(),
                contract,
                chain_name: Some(CHAIN_NAME.into()),
                from_block: from,
                confirmations: CONFIRMATIONS,
            },
            chain_key(b"foreign code test node"),
        )
    };
    // The real deployment is taken.
    if let Err(e) = connect(real).await {
        panic!("keyquorum's own coordinator was refused: {e}");
    }
    let code = anvil
        .provider()
        .await
        .unwrap()
        .get_code_at(real)
        .await
        .unwrap();
    let refused = |err: Result<EvmChainClient, keyquorum_evm::client::ClientError>| match err {
        Ok(_) => panic!("foreign code was taken for the coordinator"),
        Err(e) => e.to_string(),
    };

    // The coordinator's code with one byte changed.
    let altered = Address::repeat_byte(0x51);
    let mut changed = code.to_vec();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    set_code(&anvil, altered, &changed).await;
    let err = refused(connect(altered).await);
    assert!(
        err.contains(&format!("the coordinator at {altered} is not keyquorum's"))
            && err.contains(&format!("at byte {last}")),
        "{err}"
    );

    // The coordinator's own code, its immutables naming the coordinator itself as its BLS
    // verifier and encoding reader.
    let impostor = Address::repeat_byte(0x52);
    let immutables = &keyquorum_evm::code::COORDINATOR.immutables;
    let set = |code: &mut [u8], places: &[std::ops::Range<usize>], to: Address| {
        for r in places {
            code[r.clone()].fill(0);
            code[r.end - 20..r.end].copy_from_slice(to.as_slice());
        }
    };
    let mut pointing = code.to_vec();
    for places in immutables {
        set(&mut pointing, places, real);
    }
    set_code(&anvil, impostor, &pointing).await;
    let err = refused(connect(impostor).await);
    assert!(
        err.contains(&format!("the BLS verifier at {real} is not keyquorum's")),
        "{err}"
    );

    // keyquorum's verifier and reader at one place of each immutable (which may be the
    // getter's), another contract (here the coordinator) at the others, which calls read:
    // refused, whatever the getters answer.
    let genuine = keyquorum_evm::code::COORDINATOR
        .immutable_addresses(&code)
        .unwrap();
    let two_faced = Address::repeat_byte(0x53);
    let mut split = code.to_vec();
    for (places, genuine) in immutables.iter().zip(&genuine) {
        let (first, rest) = places.split_first().unwrap();
        set(&mut split, std::slice::from_ref(first), *genuine);
        set(&mut split, rest, real);
    }
    set_code(&anvil, two_faced, &split).await;
    let err = refused(connect(two_faced).await);
    assert!(
        err.contains(&format!(
            "the coordinator at {two_faced} is not keyquorum's"
        )) && err.contains("inconsistent"),
        "{err}"
    );
}

async fn set_code(anvil: &Anvil, at: Address, code: &[u8]) {
    let () = anvil
        .request(
            "anvil_setCode",
            (
                at,
                keyquorum_evm::alloy_primitives::Bytes::copy_from_slice(code),
            ),
        )
        .await
        .unwrap();
}
