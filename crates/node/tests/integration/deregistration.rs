//! A node its operator deregistered stays out: it does not register again by itself
//! (`NodeState::deregistered_at`), and `--rejoin` (`NodeConfig::rejoin`) registers it again,
//! also after a deregistration it processes only after that start (`NodeState::rejoining`).
//! Two nodes on an embedded chain with a one-seat committee; the unseated one's operator
//! deregisters it with `keyquorum account` while it runs.

use std::path::Path;
use std::time::{Duration, Instant};

use keyquorum_contract::{Contract, ContractConfig, TxBody};
use keyquorum_devchain::{Chain, ChainConfig, Client};
use keyquorum_node::account::{AccountError, account, send};
use keyquorum_node::{ContractMachine, DevchainClient, NodeConfig, NodeKeys, runtime};

const CHAIN_ID: &str = "deregister-test";

fn node_keys(i: u8) -> NodeKeys {
    NodeKeys::from_master(&[60 + i; 32])
}

/// Starts node `i`'s runtime on `data_dir`; dropping the sender stops it, and the handle ends
/// once its database is closed.
fn start(
    url: &str,
    i: u8,
    stake: u64,
    data_dir: &Path,
    rejoin: bool,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut node = NodeConfig {
        data_dir: data_dir.to_path_buf(),
        stake,
        status_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        rejoin,
        ..NodeConfig::default()
    };
    node.beacon.enabled = false;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let chain = DevchainClient::verifying(url, None).unwrap();
    let handle = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = runtime::run(node, node_keys(i), chain, shutdown, None).await {
            panic!("node {i}: {e}");
        }
    });
    (stop, handle)
}

async fn height(client: &Client) -> u64 {
    client
        .status::<serde_json::Value>()
        .await
        .map(|s| s.height)
        .unwrap_or(0)
}

/// Waits until node 1's account is registered (or not).
async fn until_registered(client: &Client, keys: &NodeKeys, registered: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while account(client, keys.identity().public())
        .await
        .map(|a| a.registered)
        .unwrap_or(false)
        != registered
    {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_node_stays_out_until_it_is_started_with_rejoin() {
    let (seated, other) = (node_keys(0), node_keys(1));
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
    let client = Client::new(&url).unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (_stop_seated, _seated) = start(&url, 0, 500, dirs[0].path(), false);
    let (stop, running) = start(&url, 1, 100, dirs[1].path(), false);

    until_registered(&client, &other, true, "node 1 never registered").await;
    // Unseated, its stake is free whenever no view change it plays in runs.
    let applied = deregister(&client, &other).await;
    // Before, the node registered again within 30 blocks of seeing itself unregistered (its
    // balance pays for it); it now stays out for good.
    stays_out(&client, &other, applied.height).await;

    // Started again with --rejoin, it registers.
    drop(stop);
    running.await.unwrap();
    let (stop, running) = start(&url, 1, 100, dirs[1].path(), true);
    until_registered(
        &client,
        &other,
        true,
        "the node did not register with --rejoin",
    )
    .await;

    // Deregistered while it is stopped, and started with --rejoin: the deregistration is in a
    // block it processes after this start. Before, it recorded it then and stayed out.
    drop(stop);
    running.await.unwrap();
    deregister(&client, &other).await;
    let (stop, running) = start(&url, 1, 100, dirs[1].path(), true);
    until_registered(
        &client,
        &other,
        true,
        "the node did not register with --rejoin after a deregistration it had not seen",
    )
    .await;

    // Once caught up, a later deregistration counts again, --rejoin or not.
    let applied = deregister(&client, &other).await;
    stays_out(&client, &other, applied.height).await;
    drop(stop);
    running.await.unwrap();
}

/// Deregisters `keys`' node once its stake is free (it retries while the chain answers
/// `stake_locked`).
async fn deregister(client: &Client, keys: &NodeKeys) -> keyquorum_node::account::Applied {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the deregistration was never taken"
        );
        match send(client, CHAIN_ID, keys.identity(), TxBody::Deregister).await {
            Ok(applied) => return applied,
            Err(AccountError::Refused { code, .. }) if code == "stake_locked" => {}
            Err(e) => panic!("deregister: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts that `keys`' node stays unregistered for 100 blocks after `from`.
async fn stays_out(client: &Client, keys: &NodeKeys, from: u64) {
    while height(client).await < from + 100 {
        let now = account(client, keys.identity().public()).await.unwrap();
        assert!(!now.registered, "the node registered again: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
