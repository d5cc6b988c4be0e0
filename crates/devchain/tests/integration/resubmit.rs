//! A transaction the state machine refused in a block may be submitted again (it changed
//! nothing, and the state may accept it now); an applied one stays a duplicate.

use crate::common;

use std::time::Duration;

use common::TempDir;
use keyquorum_devchain::{
    Chain, ChainConfig, StateMachine, SubmitError, TxHash, TxRejection, TxStatus,
};
use sha2::{Digest, Sha256};

/// Accepts `b"open"` once, and any other transaction only after it.
struct Gate {
    open: bool,
}

impl StateMachine for Gate {
    type Event = String;

    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection> {
        Ok(Sha256::digest(tx).into())
    }

    fn apply_tx(&mut self, tx: &[u8], _height: u64) -> Result<Vec<String>, TxRejection> {
        if tx == b"open" {
            self.open = true;
        } else if !self.open {
            return Err(TxRejection::new("closed", "the gate is closed"));
        }
        Ok(vec![String::from_utf8_lossy(tx).into_owned()])
    }

    fn end_block(&mut self, _height: u64) -> Vec<String> {
        Vec::new()
    }

    fn query(&self, _path: &str) -> Option<serde_json::Value> {
        None
    }
}

async fn settled(chain: &keyquorum_devchain::ChainHandle, hash: TxHash) -> (u64, u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let TxStatus::Included { height, index } = chain.tx_status(hash).await.unwrap() {
            return (height, index);
        }
        assert!(tokio::time::Instant::now() < deadline, "not included");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_transactions_can_be_resubmitted_applied_ones_cannot() {
    let dir = TempDir::new("resubmit");
    let config = ChainConfig {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_ms: 20,
        ..Default::default()
    };
    let chain = Chain::start(config, Gate { open: false }).await.unwrap();
    let handle = chain.handle();
    let tx = b"x".to_vec();

    let hash = chain.submit(tx.clone()).await.unwrap();
    let (h1, i1) = settled(&handle, hash).await;
    let block = &chain.blocks_from(h1, 1).unwrap()[0];
    assert_eq!(
        block.txs[i1 as usize].rejected.as_ref().unwrap().code,
        "closed"
    );

    let open = chain.submit(b"open".to_vec()).await.unwrap();
    settled(&handle, open).await;
    assert_eq!(chain.submit(tx.clone()).await.unwrap(), hash);
    let (h2, i2) = settled(&handle, hash).await;
    assert!(h2 > h1);
    let block = &chain.blocks_from(h2, 1).unwrap()[0];
    assert!(block.txs[i2 as usize].rejected.is_none());

    assert!(matches!(
        chain.submit(tx).await,
        Err(SubmitError::Duplicate(h)) if h == hash
    ));
    assert!(matches!(
        chain.submit(b"open".to_vec()).await,
        Err(SubmitError::Duplicate(_))
    ));
    chain.stop().await.unwrap();
}
