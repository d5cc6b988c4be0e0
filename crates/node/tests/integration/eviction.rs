//! A node evicted from the EVM coordinator's full candidate list, through the node's chain
//! adapter (`chain::evm`) on anvil: it reports the eviction with the stake it would need, sends
//! nothing while the contract would refuse it, and lists itself again once a place frees.
//!
//! anvil is the pinned npm package in `contracts/` (`npm ci` there installs it).

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
use keyquorum_node::NodeKeys;
use keyquorum_node::chain::evm::EvmCall;
use keyquorum_node::chain::evm::{EvmChainClient, EvmSettings};
use keyquorum_node::chain::{ChainAction, ChainClient, Sender, SubmitOutcome};
use keyquorum_node::status::EvictedStatus;
use tokio::task::JoinSet;

const CHAIN_NAME: &str = "kq-evict";
/// The contract's bound on listed candidates (`MAX_CANDIDATES` in Coordinator.sol).
const MAX_CANDIDATES: u64 = 300;
const FILLER_STAKE: u64 = 200;
const EVICTEE_STAKE: u64 = 150;

fn config() -> Coordinator::Config {
    Coordinator::Config {
        chainId: CHAIN_NAME.as_bytes().to_vec().into(),
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
        // No view change starts during the test: every candidate stays evictable.
        firstViewChange: 1_000_000,
        viewLength: 100,
        unbondingBlocks: 20,
        misbehaviourPercent: 10,
        reporterPercent: 10,
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
        chain_name: CHAIN_NAME.into(),
        from_block: from,
        confirmations: 0,
    };
    EvmChainClient::connect(settings, key).await.unwrap()
}

/// The node's registration of `chain`'s account with node keys `index` and `stake` wei.
fn registration(chain: &EvmChainClient, index: u32, stake: u64) -> EvmCall {
    let mut master = [0u8; 32];
    master[..4].copy_from_slice(&index.to_be_bytes());
    let keys = NodeKeys::from_master(&master);
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
        .submit(registration(chain, index, stake))
        .await
        .unwrap()
}

/// Sends a registration with a fixed gas limit and does not wait for it (anvil mines it at
/// once): anvil estimates a call by running it many times, and the pairing checks of 300
/// registrations make that the test's cost. The caller checks the list's length.
async fn register_unestimated(chain: &EvmChainClient, index: u32, stake: u64) {
    let call = registration(chain, index, stake);
    let tx = TransactionRequest::default()
        .with_from(chain.account())
        .with_to(chain.client().contract())
        .with_input(call.input)
        .with_value(call.value)
        .with_gas_limit(2_000_000);
    let _pending = chain
        .client()
        .provider()
        .send_transaction(tx)
        .await
        .unwrap();
}

/// Polls `chain` as the node's follower does until `done` holds of its reported eviction.
async fn follow_until(
    chain: &EvmChainClient,
    what: &str,
    done: impl Fn(&Option<EvictedStatus>) -> bool,
) -> Option<EvictedStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        chain.blocks(0, 100).await.unwrap();
        let eviction = chain.eviction();
        if done(&eviction) {
            return eviction;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {eviction:?} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn nonce(client: &Client, who: Address) -> u64 {
    client.transaction_count(who).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_node_reports_it_and_re_enters_once_a_place_frees() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = Arc::new(Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}")));
    let deployer = chain_key(b"eviction test deployer");
    anvil
        .fund(deployer.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let (contract, from) = deploy(anvil.url(), deployer, config()).await.unwrap();

    let evictee = adapter(&anvil, contract, from, 0).await;
    assert_eq!(
        register(&evictee, 0, EVICTEE_STAKE).await,
        SubmitOutcome::Included
    );
    // The rest of the list, above the evictee's stake, registered a few at a time.
    let mut fillers = Vec::new();
    let mut tasks = JoinSet::new();
    for index in 1..MAX_CANDIDATES as u32 {
        let anvil = anvil.clone();
        tasks.spawn(async move {
            let filler = adapter(&anvil, contract, from, index).await;
            register_unestimated(&filler, index, FILLER_STAKE).await;
            filler
        });
        if tasks.len() >= 8 {
            fillers.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(f) = tasks.join_next().await {
        fillers.push(f.unwrap());
    }
    let reader = evictee.client().clone();
    // Every registration took a place.
    let eligible = reader
        .read(Coordinator::eligibleCountCall {})
        .await
        .unwrap();
    assert_eq!(eligible, U256::from(MAX_CANDIDATES));
    follow_until(&evictee, "before the eviction", |e| e.is_none()).await;

    // A higher stake takes the lowest candidate's place: the evictee's.
    let newcomer = adapter(&anvil, contract, from, 1_000).await;
    assert_eq!(
        register(&newcomer, 1_000, 300).await,
        SubmitOutcome::Included
    );
    let account = evictee.account();
    let evicted = follow_until(&evictee, "the eviction", |e| {
        e.as_ref().is_some_and(|e| e.state == "list_full")
    })
    .await
    .unwrap();
    assert_eq!(evicted.by, newcomer.account().to_string());
    assert_eq!(evicted.stake, EVICTEE_STAKE.to_string());
    assert_eq!(evicted.needed_stake, Some((FILLER_STAKE + 1).to_string()));
    let listed = |r: Coordinator::candidacyReturn| r.listed;
    assert!(!listed(
        reader
            .read(Coordinator::candidacyCall { account })
            .await
            .unwrap()
    ));

    // While the contract would refuse it, the node sends nothing, block after block.
    let sent = nonce(&reader, account).await;
    for _ in 0..3 {
        anvil.mine(1).await.unwrap();
        follow_until(&evictee, "waiting", |e| e.is_some()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(nonce(&reader, account).await, sent);
    assert_eq!(evictee.eviction(), Some(evicted));

    // A candidate unbonds its whole stake and leaves the list: the evictee takes the place.
    let leaving = &fillers[0];
    let unbond = leaving
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
    follow_until(&evictee, "the re-entry", |e| e.is_none()).await;
    let standing = reader
        .read(Coordinator::candidacyCall { account })
        .await
        .unwrap();
    assert!(standing.listed);
    assert_eq!(nonce(&reader, account).await, sent + 1);
    let eligible = reader
        .read(Coordinator::eligibleCountCall {})
        .await
        .unwrap();
    assert_eq!(eligible, U256::from(MAX_CANDIDATES));
}
