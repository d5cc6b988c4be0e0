//! A node that replays history (here, with its database lost) logs what the replayed blocks
//! held at debug level and says it in one line once it has caught up: a fault the chain
//! recorded long ago is not a warning about now, unless it was this node's. A member of the
//! active view whose share went with its database is warned once. A node re-executing a chain
//! whose configuration it was not given warns once, naming the digest to pin.

use std::sync::{Arc, Mutex};

use keyquorum_contract::config::KeyMode;
use keyquorum_node::Fault;
use tracing_subscriber::fmt::MakeWriter;

use crate::common;
use common::Harness;

/// Log lines written at info level and above.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What `f` logs at info level and above.
fn logged(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// The one line of `log` that contains `needle` (it must be exactly one).
fn only_line<'a>(log: &'a str, needle: &str) -> &'a str {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(lines.len(), 1, "{needle}: {log}");
    lines[0]
}

#[test]
fn replayed_faults_are_said_once_caught_up_and_a_lost_share_is_warned() {
    const N: usize = 4;
    const FORGER: usize = 3;
    let config = common::small_network("replay-logs", N as u32, 3, KeyMode::Fresh);
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config, &stakes);
    h.set_fault(FORGER, Fault::ForgeAckAggregate);
    h.run_until(120, |h| h.contract.state().current_view >= 1);
    assert_eq!(h.contract.state().slashings.len(), 1);

    let honest = logged(|| h.restart_with_lost_database(0));
    let summary = only_line(
        &honest,
        "caught up with the chain; what the blocks it replayed held",
    );
    assert!(summary.contains(" INFO "), "{honest}");
    assert!(
        summary.contains("1 faults recorded (0 against this node)"),
        "{honest}"
    );
    assert!(!honest.contains("fault recorded on chain"), "{honest}");
    assert!(!honest.contains("ceremony failed"), "{honest}");
    // It is a member of view 1, and its share went with its database: said once, as a warning.
    let lost = only_line(&honest, "lists this node, but it holds no share");
    assert!(lost.contains(" WARN "), "{honest}");

    let culprit = logged(|| h.restart_with_lost_database(FORGER));
    let summary = only_line(
        &culprit,
        "in the blocks it replayed, the chain charged this node",
    );
    assert!(summary.contains(" WARN "), "{culprit}");
    assert!(
        summary.contains("1 faults recorded (1 against this node)"),
        "{culprit}"
    );
    // Left out of view 1 for its fault, it held no share to lose.
    assert!(!culprit.contains("holds no share"), "{culprit}");
}

/// A node re-executing the embedded chain without a pinned configuration takes the one the
/// chain serves; it warns, naming the digest to pin. With the digest pinned it says nothing.
#[test]
fn a_replica_without_a_pinned_configuration_warns_with_the_digest_to_pin() {
    use keyquorum_node::chain::replica::{Replica, config_digest};
    let config = keyquorum_contract::config::ContractConfig::defaults("replica-pin", 4);
    let digest = hex::encode(config_digest(&config));
    let unpinned = logged(|| {
        Replica::new(config.clone(), None).unwrap();
    });
    let line = only_line(&unpinned, "no chain configuration digest pinned");
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains(&digest), "{line}");
    assert!(line.contains("--chain-config-digest"), "{line}");
    let pinned = logged(|| {
        Replica::new(config.clone(), Some(config_digest(&config))).unwrap();
    });
    assert!(pinned.is_empty(), "{pinned}");
}
