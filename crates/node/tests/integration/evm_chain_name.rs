//! An EVM node takes the chain name from the coordinator it follows, the name every session
//! id binds: a node configured without one uses the contract's (short names sit in their
//! storage slot, longer ones elsewhere: both read back), and one configured with another is
//! refused at connect, saying both. A node that kept the default name of a contract deployed
//! with its own used to wait, sitting out every ceremony as "session id does not match".

use std::path::PathBuf;

use keyquorum_evm::alloy_primitives::U256;
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{ClientError, chain_key, deploy};
use keyquorum_node::chain::ChainClient;
use keyquorum_node::chain::evm::{EvmChainClient, EvmSettings};

use crate::eviction::idle_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evm_node_uses_the_contracts_chain_name_and_refuses_another() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}"));
    let deployer = chain_key(b"chain name test deployer");
    anvil
        .fund(deployer.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let short = "manual";
    let long = "a-chain-name-longer-than-one-storage-slot-of-32-bytes";
    for name in [short, long] {
        let (contract, from) = deploy(anvil.url(), deployer.clone(), idle_config(name))
            .await
            .unwrap();
        let settings = |configured: Option<&str>| EvmSettings {
            rpc: anvil.url().into(),
            contract,
            chain_name: configured.map(str::to_owned),
            from_block: from,
            confirmations: 0,
        };
        let key = chain_key(b"chain name test node");
        let node = EvmChainClient::connect(settings(None), key.clone())
            .await
            .unwrap();
        assert_eq!(node.chain_name(), name);
        let status = node.status().await.unwrap();
        assert_eq!(status.chain_id, name);
        assert!(
            status.genesis.ends_with(&format!(":{name}")),
            "{}",
            status.genesis
        );
        // The chain instance: the block the node follows from.
        let origin = status.origin.expect("an EVM chain names its origin");
        assert!(
            origin.starts_with(&format!("evm-block:{from}:0x")),
            "{origin}"
        );
        // Pinned to the right name it connects; to another it is refused.
        EvmChainClient::connect(settings(Some(name)), key.clone())
            .await
            .unwrap();
        let Err(refused) = EvmChainClient::connect(settings(Some("keyquorum-evm")), key).await
        else {
            panic!("another chain name is accepted");
        };
        match &refused {
            ClientError::ChainNameMismatch {
                configured,
                deployed,
            } => assert_eq!(
                (configured.as_str(), deployed.as_str()),
                ("keyquorum-evm", name)
            ),
            other => panic!("{other}"),
        }
        assert!(refused.to_string().contains("remove `chain_name`"));
    }
}

/// A node told to follow from a block after the coordinator's deployment would miss the
/// registrations and ceremonies before it: it is refused at connect, naming the setting; the
/// deployment block itself, or an earlier one, is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evm_node_refuses_to_follow_from_a_block_after_the_deployment() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}"));
    let deployer = chain_key(b"from block test deployer");
    anvil
        .fund(deployer.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let (contract, deployed_at) = deploy(anvil.url(), deployer, idle_config("from-block"))
        .await
        .unwrap();
    anvil.mine(3).await.unwrap();
    let settings = |from_block| EvmSettings {
        rpc: anvil.url().into(),
        contract,
        chain_name: None,
        from_block,
        confirmations: 0,
    };
    let key = chain_key(b"from block test node");
    for from_block in [0, deployed_at.saturating_sub(1), deployed_at] {
        EvmChainClient::connect(settings(from_block), key.clone())
            .await
            .unwrap_or_else(|e| panic!("from block {from_block}: {e}"));
    }
    for from_block in [deployed_at + 1, deployed_at + 3] {
        match EvmChainClient::connect(settings(from_block), key.clone()).await {
            Err(e @ ClientError::FromBlockAfterDeployment { .. }) => {
                assert!(e.to_string().contains("evm.from_block"), "{e}")
            }
            Err(other) => panic!("from block {from_block}: {other}"),
            Ok(_) => panic!("from block {from_block} after the deployment is followed"),
        }
    }
}
