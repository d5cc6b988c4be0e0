//! The view-change contract as the embedded chain's state machine.
//!
//! `keyquorum-contract` is chain-agnostic and `keyquorum-devchain` is generic over any
//! [`StateMachine`]; neither depends on the other, so the adapter lives here, where both the
//! CLI (`keyquorum chain`, `keyquorum demo`) and the node's tests can use the same one.

use keyquorum_contract::{Contract, Event, Rejection};
use keyquorum_devchain::{StateMachine, TxHash, TxRejection};

/// The contract as the chain's state machine. Rejections keep the contract's stable code, so
/// the HTTP API and the block receipts carry exactly `Rejection::code()`.
pub struct ContractMachine(pub Contract);

fn rejection(r: Rejection) -> TxRejection {
    TxRejection {
        code: r.code().to_string(),
        reason: r.to_string(),
    }
}

impl StateMachine for ContractMachine {
    type Event = Event;

    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection> {
        self.0.check_tx(tx).map_err(rejection)
    }

    fn apply_tx(&mut self, tx: &[u8], height: u64) -> Result<Vec<Event>, TxRejection> {
        self.0.apply_tx(tx, height).map_err(rejection)
    }

    fn end_block(&mut self, height: u64) -> Vec<Event> {
        self.0.end_block(height)
    }

    fn query(&self, path: &str) -> Option<serde_json::Value> {
        self.0.query(path)
    }
}
