//! `keyquorum account`'s transactions (`keyquorum_node::account`) on an embedded chain: value
//! moved, stake locked, unbonded and claimed back, refusals that change nothing, and a nonce
//! taken by another sender from the same account (a running node).

use keyquorum_contract::config::GenesisAccount;
use keyquorum_contract::hex::Bytes;
use keyquorum_contract::{Contract, ContractConfig, NetworkIdentity, Transaction, TxBody};
use keyquorum_devchain::client::Client;
use keyquorum_devchain::{Chain, ChainConfig};
use keyquorum_node::account::{AccountError, account, send};
use keyquorum_node::{ContractMachine, NodeKeys};

const CHAIN_ID: &str = "account-test";

fn registration(keys: &NodeKeys, stake: u64) -> TxBody {
    TxBody::Register {
        pop: keys.identity().proof_of_possession(),
        encryption_key: keys.encryption().public_key(),
        network: NetworkIdentity {
            peer_id: Bytes(keys.peer_id().to_bytes()),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
        },
        stake,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_moves_value_and_stake_and_a_refusal_changes_nothing() {
    let a = NodeKeys::from_master(&[1; 32]);
    let b = NodeKeys::from_master(&[2; 32]);
    let mut config = ContractConfig::defaults(CHAIN_ID, 4);
    // No view change with one candidate: its stake stays free to unbond.
    config.committee.min_size = 4;
    config.genesis.push(GenesisAccount {
        identity: keyquorum_contract::hex::Hex(a.identity().public().to_bytes()),
        balance: 1000,
    });
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(
        ChainConfig {
            data_dir: dir.path().to_owned(),
            listen: ([127, 0, 0, 1], 0).into(),
            // Blocks slow enough that the command reads a nonce another send has taken.
            block_ms: 300,
            ..ChainConfig::default()
        },
        ContractMachine(Contract::new(config).unwrap()),
    )
    .await
    .unwrap();
    let client = Client::new(&format!("http://{}", chain.local_addr())).unwrap();
    let (ida, idb) = (a.identity().public(), b.identity().public());
    let held = |acc: keyquorum_contract::query::Account| {
        (
            acc.balance,
            acc.stake,
            acc.unbonding.iter().map(|u| u.amount).sum::<u64>(),
        )
    };

    // Every transaction of this test is the operator's of account `a`.
    let from_a = |body: TxBody| send(&client, CHAIN_ID, a.identity(), body);

    let applied = from_a(TxBody::Transfer {
        to: idb.clone(),
        amount: 300,
    })
    .await
    .unwrap();
    assert!(
        applied.events.iter().any(|e| e["event"] == "transferred"),
        "{:?}",
        applied.events
    );
    assert_eq!(held(account(&client, ida).await.unwrap()), (700, 0, 0));
    assert_eq!(held(account(&client, idb).await.unwrap()), (300, 0, 0));

    // Above the balance: refused by name, nothing moved, the nonce not used.
    let before = account(&client, ida).await.unwrap();
    let refused = from_a(TxBody::Transfer {
        to: idb.clone(),
        amount: 701,
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, AccountError::Refused { code, .. } if code == "insufficient_balance"),
        "{refused}"
    );
    assert_eq!(account(&client, ida).await.unwrap(), before);

    // Stake: locked at registration and by `stake`, taken out by `unbond`, not claimable
    // before its view.
    from_a(registration(&a, 100)).await.unwrap();
    from_a(TxBody::AddStake { amount: 50 }).await.unwrap();
    from_a(TxBody::Unbond { amount: 40 }).await.unwrap();
    let now = account(&client, ida).await.unwrap();
    assert_eq!(held(now.clone()), (550, 110, 40));
    assert!(now.registered);
    let early = from_a(TxBody::ClaimUnbonded).await.unwrap_err();
    assert!(
        matches!(&early, AccountError::Refused { code, .. } if code == "still_unbonding"),
        "{early}"
    );
    let more = from_a(TxBody::AddStake { amount: 551 }).await.unwrap_err();
    assert!(
        matches!(&more, AccountError::Refused { code, .. } if code == "insufficient_balance"),
        "{more}"
    );
    assert_eq!(account(&client, ida).await.unwrap(), now);

    // Another sender from the account (the running node) takes the nonce first: the command
    // signs again with the next and both apply. The command reads the nonce right after the
    // other send, before a block applies it, unless a block falls in between: tried until it
    // did not.
    let mut expected = (held(now.clone()), 300);
    let mut nonce = now.nonce;
    let mut contended = false;
    for _ in 0..5 {
        let node_tx = Transaction::sign(
            CHAIN_ID,
            a.identity(),
            nonce,
            TxBody::Transfer {
                to: idb.clone(),
                amount: 5,
            },
        )
        .encode();
        client.submit(node_tx).await.unwrap();
        let applied = from_a(TxBody::Transfer {
            to: idb.clone(),
            amount: 7,
        })
        .await
        .unwrap();
        expected.0.0 -= 12;
        expected.1 += 12;
        nonce += 2;
        let after = account(&client, ida).await.unwrap();
        assert_eq!(held(after.clone()), expected.0);
        assert_eq!(after.nonce, nonce);
        assert_eq!(account(&client, idb).await.unwrap().balance, expected.1);
        if applied.attempts > 1 {
            contended = true;
            break;
        }
    }
    assert!(contended, "the command never met the other sender's nonce");
}

/// `keyquorum account` as the CLI runs it: with a pinned configuration it signs nothing for a
/// chain that runs another, and sends the transfer to the chain that runs it.
#[test]
fn the_command_signs_only_for_the_pinned_chain() {
    use keyquorum_node::account::{AccountArgs, AccountCommand, NodeSelection, run};
    use keyquorum_node::cli::CliError;
    use keyquorum_node::keystore::{self, KdfParams, Passphrase};

    let a = NodeKeys::from_master(&[3; 32]);
    let b = NodeKeys::from_master(&[4; 32]);
    let mut config = ContractConfig::defaults(CHAIN_ID, 4);
    config.genesis.push(GenesisAccount {
        identity: keyquorum_contract::hex::Hex(a.identity().public().to_bytes()),
        balance: 1000,
    });
    let digest = hex::encode(keyquorum_node::chain::replica::config_digest(&config));
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("node.key");
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, "pw\n").unwrap();
    let weak = KdfParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };
    keystore::write(&key_file, &a, &Passphrase::new("pw"), weak).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let chain = rt.block_on(async {
        Chain::start(
            ChainConfig {
                data_dir: dir.path().join("chain"),
                listen: ([127, 0, 0, 1], 0).into(),
                block_ms: 50,
                ..ChainConfig::default()
            },
            ContractMachine(Contract::new(config).unwrap()),
        )
        .await
        .unwrap()
    });
    let url = format!("http://{}", chain.local_addr());
    let transfer = |pinned: &str| AccountArgs {
        command: AccountCommand::Transfer {
            to: hex::encode(b.identity().public().to_bytes()),
            amount: 25,
            node: NodeSelection {
                config: None,
                chain_url: Some(url.clone()),
                chain_config_digest: Some(pinned.to_string()),
                key_file: Some(key_file.clone()),
                passphrase_file: Some(pass_file.clone()),
                passphrase_env: None,
            },
        },
    };
    let other = hex::encode([7u8; 32]);
    let err = run(transfer(&other)).unwrap_err();
    assert!(
        matches!(&err, CliError::Failed(m) if m.contains("runs another contract configuration")),
        "{err}"
    );
    let client = Client::new(&url).unwrap();
    let balance = |who: &NodeKeys| {
        rt.block_on(account(&client, who.identity().public()))
            .unwrap()
            .balance
    };
    assert_eq!((balance(&a), balance(&b)), (1000, 0));
    run(transfer(&digest)).unwrap();
    assert_eq!((balance(&a), balance(&b)), (975, 25));
}

/// A node whose account cannot pay its stake shows why on `/status` (`registration_refused`,
/// state `insufficient_balance`) and in `/metrics`, not only in its log; once its operator
/// funds it, it registers and the refusal clears. Before, `/status` said only `registered:
/// false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfunded_node_shows_its_refused_registration_until_it_is_funded() {
    use std::time::{Duration, Instant};
    let funder = NodeKeys::from_master(&[1; 32]);
    let node_master = [3; 32];
    let node_keys = NodeKeys::from_master(&node_master);
    let mut config = ContractConfig::defaults(CHAIN_ID, 4);
    config.committee.min_size = 4;
    config.genesis.push(GenesisAccount {
        identity: keyquorum_contract::hex::Hex(funder.identity().public().to_bytes()),
        balance: 1000,
    });
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(
        ChainConfig {
            data_dir: dir.path().to_owned(),
            listen: ([127, 0, 0, 1], 0).into(),
            block_ms: 100,
            ..ChainConfig::default()
        },
        ContractMachine(Contract::new(config).unwrap()),
    )
    .await
    .unwrap();
    let url = format!("http://{}", chain.local_addr());
    let node_dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = crate::common::spawn_node(&url, node_master, 100, node_dir.path()).await;
    let status = || crate::common::status_of(addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let s = status().await;
        if let Some(r) = s.registration_refused {
            break r;
        }
        assert!(Instant::now() < deadline, "no refusal shown: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.state, "insufficient_balance");
    assert_eq!(refused.stake, "100");
    let metrics = tokio::task::spawn_blocking(move || crate::common::http_get(addr, "/metrics").1)
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "keyquorum_registration_refused 1")
    );

    let api = Client::new(&url).unwrap();
    send(
        &api,
        CHAIN_ID,
        funder.identity(),
        TxBody::Transfer {
            to: node_keys.identity().public().clone(),
            amount: 500,
        },
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status().await;
        if s.registered && s.registration_refused.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not registered once funded: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
