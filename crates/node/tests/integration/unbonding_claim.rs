//! A running node claims its unbonded stake back by itself once the unbonding views have
//! passed (`ChainClient::matured_unbonding`): two nodes on an embedded chain with a one-seat
//! committee, the one with more stake seated in every view; the other's operator unbonds part
//! of its stake with `keyquorum account` and never claims it, and the stake comes back to the
//! balance once a view activation has passed.

use std::time::{Duration, Instant};

use keyquorum_contract::{Contract, ContractConfig, TxBody};
use keyquorum_devchain::{Chain, ChainConfig};
use keyquorum_node::account::{AccountError, account, send};
use keyquorum_node::{ContractMachine, DevchainClient, NodeConfig, NodeKeys, runtime};

const CHAIN_ID: &str = "claim-test";
const UNBONDED: u64 = 40;

fn node_keys(i: u8) -> NodeKeys {
    NodeKeys::from_master(&[40 + i; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_claims_its_matured_unbonding_by_itself() {
    let (seated, other) = (node_keys(0), node_keys(1));
    // Seated: node 0, with more stake; node 1 unbonds.
    let mut config = ContractConfig::defaults(CHAIN_ID, 1)
        .fund(seated.identity().public(), 1_000)
        .fund(other.identity().public(), 1_000);
    config.first_view_change = 5;
    config.view_length = 30;
    config.staking.unbonding_views = 1;
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(
        ChainConfig {
            data_dir: dir.path().to_owned(),
            listen: ([127, 0, 0, 1], 0).into(),
            block_ms: 50,
            ..ChainConfig::default()
        },
        ContractMachine(Contract::new(config).unwrap()),
    )
    .await
    .unwrap();
    let url = format!("http://{}", chain.local_addr());

    let mut stops = Vec::new();
    let mut dirs = Vec::new();
    for (i, stake) in [(0, 500), (1, 100)] {
        let keys = node_keys(i);
        let dir = tempfile::tempdir().unwrap();
        let mut node = NodeConfig {
            data_dir: dir.path().to_path_buf(),
            stake,
            status_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..NodeConfig::default()
        };
        node.beacon.enabled = false;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let chain = DevchainClient::verifying(&url, None).unwrap();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = runtime::run(node, keys, chain, shutdown, None).await {
                panic!("node: {e}");
            }
        });
        stops.push(stop);
        dirs.push(dir);
    }

    let client = keyquorum_devchain::Client::new(&url).unwrap();
    let other_id = other.identity().public();
    // Registered and in no committee or ceremony: its stake can leave (a running view change
    // it takes part in refuses the unbond; tried again).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the unbond was never taken");
        if account(&client, other_id).await.unwrap().registered {
            match send(
                &client,
                CHAIN_ID,
                other.identity(),
                TxBody::Unbond { amount: UNBONDED },
            )
            .await
            {
                Ok(_) => break,
                Err(AccountError::Refused { code, .. }) if code == "stake_locked" => {}
                Err(e) => panic!("unbond: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Unbonding, or already claimed back by the node if a view activated in between (on a
    // loaded machine several blocks may pass before this read).
    let unbonding = account(&client, other_id).await.unwrap();
    assert_eq!(unbonding.stake, 100 - UNBONDED);
    let on_its_way = unbonding.unbonding.iter().map(|u| u.amount).sum::<u64>();
    assert!(
        (unbonding.balance, on_its_way) == (900, UNBONDED)
            || (unbonding.balance, on_its_way) == (900 + UNBONDED, 0),
        "{unbonding:?}"
    );

    // Nobody sends a claim but the node itself.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = account(&client, other_id).await.unwrap();
        if now.unbonding.is_empty() {
            assert_eq!(now.balance, 900 + UNBONDED, "{now:?}");
            assert_eq!(now.stake, 100 - UNBONDED);
            break;
        }
        if Instant::now() >= deadline {
            let status: serde_json::Value = client.get("/query/status").await.unwrap();
            panic!("the matured unbonding was not claimed: {now:?}; chain: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(stops);
    drop(dirs);
}
