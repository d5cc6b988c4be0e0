//! A toy state machine for tests and the `devchain-test-node` helper binary: a key-value store
//! with "signed-ish" transactions, per-account nonces, and views/phases that advance with the
//! height so the view routes have something to serve.
//!
//! A transaction is the JSON `{"from", "nonce", "key", "value", "sig"}`, where `sig` is the
//! hex of `sha256("kv-sig" || secret(from) || canonical payload)` and `secret(from) =
//! sha256("kv-secret:" || from)`: anyone can forge it, but a wrong or missing signature is
//! detected, which is all the tests need. Nonces must strictly increase per account (gaps are
//! allowed), so a replayed or reordered old transaction is refused.
//!
//! Views: every `phase_len` blocks the phase advances through contribute, share, publish,
//! wait; after four phases the view number increases and a "magic block" for the finished view
//! is recorded (a digest of the store).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state_machine::{StateMachine, TxHash, TxRejection};

const PHASES: [&str; 4] = ["contribute", "share", "publish", "wait"];
/// Largest transaction the machine accepts (the chain has its own, configurable limit too).
pub const KV_MAX_TX_BYTES: usize = 4096;

/// A key-value transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvTx {
    /// Account name.
    pub from: String,
    /// Must exceed the account's last nonce.
    pub nonce: u64,
    /// Key to set.
    pub key: String,
    /// Value to store.
    pub value: String,
    /// Hex signature, see the module docs.
    pub sig: String,
}

fn payload(from: &str, nonce: u64, key: &str, value: &str) -> Vec<u8> {
    serde_json::to_vec(&(from, nonce, key, value)).expect("tuple serializes")
}

fn signature(from: &str, nonce: u64, key: &str, value: &str) -> String {
    let secret = Sha256::digest(format!("kv-secret:{from}"));
    let mut h = Sha256::new();
    h.update(b"kv-sig");
    h.update(secret);
    h.update(payload(from, nonce, key, value));
    hex::encode(h.finalize())
}

impl KvTx {
    /// A correctly signed transaction.
    pub fn signed(from: &str, nonce: u64, key: &str, value: &str) -> Self {
        Self {
            from: from.into(),
            nonce,
            key: key.into(),
            value: value.into(),
            sig: signature(from, nonce, key, value),
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("KvTx serializes")
    }

    /// The hash the machine assigns to these bytes.
    pub fn hash_of(bytes: &[u8]) -> TxHash {
        Sha256::digest(bytes).into()
    }
}

/// Events of the [`KvMachine`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KvEvent {
    /// A key was set.
    Set {
        /// Account.
        from: String,
        /// Its nonce.
        nonce: u64,
        /// Key.
        key: String,
        /// New value.
        value: String,
    },
    /// A phase began.
    PhaseStarted {
        /// View number.
        view: u64,
        /// Phase name.
        phase: String,
        /// Last height of the phase.
        deadline: u64,
    },
    /// A view finished and its magic block was recorded.
    ViewCompleted {
        /// The finished view.
        view: u64,
        /// Digest recorded in the magic block.
        digest: String,
    },
}

/// The toy machine. Its only genesis parameter is `phase_len`.
#[derive(Clone, Debug)]
pub struct KvMachine {
    phase_len: u64,
    nonces: BTreeMap<String, u64>,
    kv: BTreeMap<String, String>,
    height: u64,
    magic_blocks: BTreeMap<u64, Value>,
}

impl KvMachine {
    /// A new machine whose phases last `phase_len` blocks (at least 1).
    pub fn new(phase_len: u64) -> Self {
        Self {
            phase_len: phase_len.max(1),
            nonces: BTreeMap::new(),
            kv: BTreeMap::new(),
            height: 0,
            magic_blocks: BTreeMap::new(),
        }
    }

    fn decode(&self, tx: &[u8]) -> Result<KvTx, TxRejection> {
        if tx.len() > KV_MAX_TX_BYTES {
            return Err(TxRejection::new(
                "too_large",
                "kv transactions are at most 4096 bytes",
            ));
        }
        let t: KvTx = serde_json::from_slice(tx)
            .map_err(|e| TxRejection::new("malformed", format!("not a kv transaction: {e}")))?;
        if t.from.is_empty() {
            return Err(TxRejection::new("malformed", "empty account name"));
        }
        if t.sig != signature(&t.from, t.nonce, &t.key, &t.value) {
            return Err(TxRejection::new(
                "bad_signature",
                "signature does not verify",
            ));
        }
        let last = self.nonces.get(&t.from).copied();
        if last.is_some_and(|n| t.nonce <= n) {
            return Err(TxRejection::new(
                "stale_nonce",
                format!(
                    "nonce {} not above {} for account {}",
                    t.nonce,
                    last.unwrap_or_default(),
                    t.from
                ),
            ));
        }
        Ok(t)
    }

    fn phase_at(&self, height: u64) -> (u64, &'static str, u64) {
        let index = height / self.phase_len;
        (
            index / 4,
            PHASES[(index % 4) as usize],
            (index + 1) * self.phase_len - 1,
        )
    }

    fn view_json(&self, view: u64) -> Value {
        json!({"view": view, "members": self.nonces.keys().collect::<Vec<_>>()})
    }
}

impl StateMachine for KvMachine {
    type Event = KvEvent;

    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection> {
        self.decode(tx)?;
        Ok(KvTx::hash_of(tx))
    }

    fn tx_hash(&self, tx: &[u8]) -> Option<TxHash> {
        Some(KvTx::hash_of(tx))
    }

    fn apply_tx(&mut self, tx: &[u8], _height: u64) -> Result<Vec<KvEvent>, TxRejection> {
        let t = self.decode(tx)?;
        self.nonces.insert(t.from.clone(), t.nonce);
        self.kv.insert(t.key.clone(), t.value.clone());
        Ok(vec![KvEvent::Set {
            from: t.from,
            nonce: t.nonce,
            key: t.key,
            value: t.value,
        }])
    }

    fn end_block(&mut self, height: u64) -> Vec<KvEvent> {
        self.height = height;
        let mut events = Vec::new();
        if height.is_multiple_of(self.phase_len) {
            let (view, phase, deadline) = self.phase_at(height);
            if phase == PHASES[0] && view > 0 {
                let digest = hex::encode(Sha256::digest(
                    serde_json::to_vec(&self.kv).expect("map serializes"),
                ));
                self.magic_blocks.insert(
                    view - 1,
                    json!({"view": view - 1, "digest": digest, "height": height}),
                );
                events.push(KvEvent::ViewCompleted {
                    view: view - 1,
                    digest,
                });
            }
            events.push(KvEvent::PhaseStarted {
                view,
                phase: phase.into(),
                deadline,
            });
        }
        events
    }

    fn query(&self, path: &str) -> Option<Value> {
        let (view, phase, deadline) = self.phase_at(self.height);
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["status"] => Some(json!({"view": view, "phase": phase, "phase_deadline": deadline})),
            ["views", "current"] => Some(self.view_json(view)),
            ["views", v] => {
                let v: u64 = v.parse().ok()?;
                (v <= view).then(|| self.view_json(v))
            }
            ["views", v, "magic-block"] => self.magic_blocks.get(&v.parse().ok()?).cloned(),
            ["kv", key] => self.kv.get(*key).map(|v| json!(v)),
            ["accounts", name] => self.nonces.get(*name).map(|n| json!({"nonce": n})),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_applies() {
        let mut m = KvMachine::new(2);
        let t1 = KvTx::signed("alice", 1, "k", "v").to_bytes();
        assert_eq!(m.check_tx(&t1).unwrap(), KvTx::hash_of(&t1));
        m.apply_tx(&t1, 1).unwrap();
        assert_eq!(m.check_tx(&t1).unwrap_err().code, "stale_nonce");
        assert_eq!(m.apply_tx(&t1, 1).unwrap_err().code, "stale_nonce");
        let mut bad = KvTx::signed("alice", 2, "k", "v");
        bad.value = "w".into();
        assert_eq!(
            m.check_tx(&bad.to_bytes()).unwrap_err().code,
            "bad_signature"
        );
        assert_eq!(m.check_tx(b"\x00garbage").unwrap_err().code, "malformed");
        assert_eq!(m.query("kv/k"), Some(json!("v")));
        for h in 1..=8 {
            m.end_block(h);
        }
        assert_eq!(m.query("status").unwrap()["view"], 1);
        assert!(m.query("views/0/magic-block").is_some());
        assert!(m.query("views/1/magic-block").is_none());
        assert!(m.query("views/2").is_none());
    }
}
