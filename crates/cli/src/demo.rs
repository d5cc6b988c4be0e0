//! `keyquorum demo`: a whole validator network on one machine, with one command.
//!
//! It starts the embedded chain with the view-change contract in this process and one
//! `keyquorum node` process per validator on 127.0.0.1 (more nodes than committee seats,
//! stakes all different and funded at genesis (each node's account holds exactly the stake it
//! registers with), some of them faulty through the node's own `--fault` option), runs a
//! fresh-key view change and then resharing ones, and reports per view what the chain says:
//! committee, qualified set, every exclusion with its reason, group public key, magic block
//! hash and the committee's threshold signature, which it checks with `blst`'s plain
//! (non-threshold) BLS verification.
//!
//! After each view change it fetches the random beacon from the nodes and verifies every round
//! (`demo_beacon`), waits for two rounds of the last view, and reports per view the chain and
//! rounds. With `--format json` the object has `beacon: {chains: [chain info as served at
//! /info, in the order first seen], rounds: [{round, randomness, signature,
//! previous_signature, chain_hash, view, latency_ms, stored_ms, synced}]}` (drand's hex, no
//! `0x`): `chains` is a list because a fresh key starts a new chain, `view` is the view active
//! at the round's scheduled time, and the last three are there when the node that served the
//! round also served its timing (`/beacon/rounds`). The HTML report plots those latencies over
//! time with the view changes marked (`demo_latency`).
//! Then it asks the last view's committee for one threshold signature on demand (`POST /sign`,
//! `demo_sign`), checks it with `blst`, prints it, and in JSON reports it as `sign: {domain,
//! message, signature, public_key, view}`.
//!
//! Stakes are chosen so that the story is the interesting one: the faulty nodes rank last in
//! the first committee, are excluded from the first view, lose stake (10% for any recorded
//! fault), and are outranked in the reshare by the first standby node, so one member leaves and
//! one joins while the group key stays the same.
//!
//! With `--curve secp256k1` (and `--variant complaint`) the chain also has `[dkg.signing_key]`:
//! after each view activates, its committee makes a secp256k1 key by the complaint ceremony
//! (seed 003), and the demo reports the key as the chain records it (compressed and x-only,
//! qualified dealers, every exclusion with the board's fault) and asks the committee for one
//! BIP-340 signature with it while the view is active (`POST /sign`, `"scheme": "bip340"`,
//! `demo_signing_key`), which it checks with `k256`'s BIP-340 verifier. The faulty nodes are
//! then honest in the view changes and faulty in the signing-key ceremony, taking in turn seed
//! 003's three dealer faults (the node's `signing-key-equivocate`, `signing-key-withhold` and
//! `signing-key-skip-feldman`); the dealer quorum is lowered, if needed, to leave room for the
//! dealers those faults disqualify, and views last long enough for the key's ceremony. JSON:
//! per view `signing_key: {group_key, x_only, threshold, qualified, reshared_from, sat_out:
//! [node] (members slashed in the previous view's signing-key ceremony), excluded:
//! [{node, identity, role, fault, reason, reconstructed, slashed: {amount, fault, penalty,
//! stake_after} or null}], bip340: {message, public_key, signature}, failed}`: each culprit
//! is slashed on the chain's proof (10% of its stake) and sits out the next view's ceremony.
//! With `--signing-key-lifetime chain` view 1's key is reshared to every later committee
//! (`reshared_from` names the view whose key's holders dealt, and `group_key` stays the same),
//! and the default `--faulty` is at most what leaves the reshare its threshold of holders.
//!
//! All members' beacon partials cross this one machine: a round sends `n (n - 1)` of them, so
//! without `--beacon-period` the demo runs the beacon every 3 s (the chain's default) up to 64
//! members and proportionally less often above ([`demo_beacon_period`]: 13 s at 128).
//!
//! The nodes start first and the chain only once they all listen, so that every node can
//! register before the first view change; the work directory (keys, databases, logs) is a
//! fresh temporary directory unless `--data-dir` is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use keyquorum_contract::config::{DkgVariant, SigningKeyConfig};
use keyquorum_contract::magic::signing_message;
use keyquorum_contract::{
    Contract, ContractConfig, Event, KeyMode, SignedMagicBlock, SignerRole, Size,
    verify_magic_block_chain,
};
use keyquorum_devchain::{ChainConfig, Client};
use keyquorum_node::chain::devchain::chain_block;
use keyquorum_node::keystore::{self, KdfParams, Passphrase};
use keyquorum_node::metrics::Traffic;
use keyquorum_node::status::Status;
use keyquorum_node::{ContractMachine, Fault, NodeKeys};

use keyquorum_node::cli::CliError;

use crate::OutputFormat;
use crate::demo_beacon::BeaconLog;
use crate::demo_report::{self, Observer};
use crate::demo_sign;
use crate::demo_signing_key;

/// Arguments of `keyquorum demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Node processes (registered validators).
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// Committee seats.
    #[arg(long, default_value_t = 7)]
    pub committee: usize,
    /// Signing threshold t (default: 66% of the committee, rounded up).
    #[arg(long)]
    pub threshold: Option<usize>,
    /// Faulty nodes (they rank last in the first committee) [default: 1; 3 with --curve
    /// secp256k1, at most the committee less the threshold with --signing-key-lifetime chain
    /// and more than one view, as the holders its ceremony slashes sit out the reshare, which
    /// needs a threshold of the others: 2 of the default 7 seats with t = 5, so the third
    /// fault, signing-key-skip-feldman, is not shown]. On the embedded chain the dealer quorum (75% of the committee) is lowered
    /// to the honest dealers for bad-share, equivocating and forging dealers (with --fault
    /// bad-share more than the parameters then allow is refused; equivocating ones beyond that
    /// need standbys for a retry), not for silent or crashed ones: with more of those than the
    /// quorum tolerates the first ceremony fails and its retry needs standbys (--nodes above
    /// --committee); with --chain anvil it is always lowered, and refused where it cannot be.
    /// Where the other parameters refuse the default number (a small committee, say), the demo
    /// runs with the most faulty nodes they allow, down to none, and says so.
    #[arg(long)]
    pub faulty: Option<usize>,
    /// What the faulty nodes do in the view changes [default: equivocate; bad-share with
    /// --variant complaint; forge-ack-aggregate with --chain anvil]: silent, bad-share, equivocate, crash, bad-beacon or
    /// forge-ack-aggregate (the node's other faults are refused: the demo would not show them).
    /// Not with --curve secp256k1, whose faulty nodes misbehave in the signing-key ceremony
    /// instead.
    #[arg(long, value_enum, value_name = "KIND")]
    pub fault: Option<Fault>,
    /// DKG variant the chain's contract runs (the nodes take it from the chain).
    #[arg(long, value_enum, default_value_t = DemoVariant::AckReveal)]
    pub variant: DemoVariant,
    /// Curve of the keys reported. bls12-381: each view's group key (threshold BLS).
    /// secp256k1 (with --variant complaint): also each view's secp256k1 signing key, its
    /// exclusions and one BIP-340 signature by the committee, the faulty nodes taking in turn
    /// seed 003's dealer faults in its ceremony: signing-key-equivocate (two signed
    /// commitments), signing-key-withhold (a deal withheld from one member, also when asked
    /// on chain) and signing-key-skip-feldman (no Feldman values: reconstructed). The dealer
    /// quorum is then at most the committee less the dealers the first two disqualify.
    #[arg(long, value_enum, default_value_t = DemoCurve::Bls12381)]
    pub curve: DemoCurve,
    /// With --curve secp256k1: how long the signing key lives. view: each view's committee
    /// makes a key of its own. chain: view 1's committee makes it and every later view's
    /// reshares it from the last key's holders (less the members its ceremony slashed), so the
    /// group key stays the same across committees.
    #[arg(long, value_enum, value_name = "LIFETIME", default_value_t = DemoLifetime::View)]
    pub signing_key_lifetime: DemoLifetime,
    /// View changes to run: a fresh key, then reshares.
    #[arg(long, default_value_t = 2)]
    pub views: u64,
    /// Milliseconds between blocks [default: 200, at least 20; 1000 with --chain anvil, at
    /// least 100].
    #[arg(long)]
    pub block_ms: Option<u64>,
    /// Which chain coordinates the view changes: the embedded chain in this process, or the
    /// coordinator contract (contracts/src/Coordinator.sol) on a local anvil the demo starts,
    /// deploys the contract on and funds the nodes' accounts on.
    #[arg(long, value_enum, default_value_t = DemoChain::Embedded)]
    pub chain: DemoChain,
    /// Output: progress and a text summary, or (json) one JSON object on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// The same as `--format json`: the older spelling, accepted and not offered (`--format`
    /// is every subcommand's).
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,
    /// Where to write the HTML report.
    #[arg(long, default_value = "ceremony-report.html")]
    pub report: PathBuf,
    /// Keep keys, databases and logs in this directory, which must be new or empty (default: a
    /// temporary one, removed).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Start the nodes with --trust-chain: they take the demo's chain's blocks as served
    /// instead of re-executing each with their own contract (from the configuration the demo
    /// pins with --chain-config-digest). On one machine every node re-executing the chain
    /// multiplies the chain's own work by the number of nodes, so the default is to verify
    /// with up to 16 node processes and to trust above.
    #[arg(long, conflicts_with = "verify_chain")]
    pub trust_chain: bool,
    /// Every node re-executes the chain's blocks, however many there are (see --trust-chain).
    #[arg(long)]
    pub verify_chain: bool,
    /// Give up after this many seconds (default: from the phase lengths).
    #[arg(long)]
    pub timeout_secs: Option<u64>,
    /// Write every node's traffic counters (from its /status) to this JSON file.
    #[arg(long)]
    pub metrics_out: Option<PathBuf>,
    #[command(flatten)]
    pub beacon: crate::chain::BeaconArgs,
    /// What to demonstrate: validator view changes coordinated by a chain (`contract`), or
    /// sections of elders that hand their key over without a chain (`sections`: seed 002's
    /// network grown from the genesis node to a split, one elder leaving and one candidate
    /// crashing during a DKG; only --seed, --format and --report apply).
    #[arg(long, value_enum, default_value_t = DemoMode::Contract)]
    pub mode: DemoMode,
    /// With --mode sections: the first seed of the network's randomness the demo tries (it
    /// moves on until a run shows every step) [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Beacon rounds each view runs before the next view change starts, and the demo waits
    /// for in the last view before it ends (1 to 1000) [default: the next view change starts
    /// two blocks after an activation; the demo waits for two rounds]. Times the beacon with no
    /// view change running (with --curve secp256k1 the view's signing-key ceremony runs first,
    /// for about 20 s, seven rounds at a 3 s period, so the demo's wait and its last line
    /// include it): the summary gives the last view's rounds on a line of their own.
    #[arg(long, value_name = "ROUNDS")]
    pub beacon_rounds: Option<u32>,
}

/// What the demo shows, as `--mode` names it.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoMode {
    /// Validator view changes coordinated by a chain: node processes, the chain, the beacon.
    Contract,
    /// Sections of elders without a chain (seed 002), in the sections simulator's network.
    Sections,
}

/// The chain of the demo, as `--chain` names it.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoChain {
    /// The embedded chain with the Rust view-change contract, in this process.
    Embedded,
    /// The Solidity coordinator on a local anvil (`demo_anvil`).
    Anvil,
}

/// The contract's DKG variant, as `--variant` names it.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoVariant {
    /// Ack-or-reveal (seeds 000, 001).
    AckReveal,
    /// Complaint-and-reconstruct (seed 003).
    Complaint,
}

/// The keys the demo reports, as `--curve` names them.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoCurve {
    /// Each view's BLS12-381 group key only.
    #[value(name = "bls12-381")]
    Bls12381,
    /// Also each view's secp256k1 signing key (`[dkg.signing_key]`).
    Secp256k1,
}

/// How long the demo's signing key lives, as `--signing-key-lifetime` names it.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoLifetime {
    /// A new key every view.
    View,
    /// One key, reshared to every view's committee.
    Chain,
}

/// Seed 003's dealer faults in the signing-key ceremony, in the order the faulty nodes take
/// them.
const SIGNING_KEY_FAULTS: [Fault; 3] = [
    Fault::SigningKeyEquivocate,
    Fault::SigningKeyWithhold,
    Fault::SigningKeySkipFeldman,
];

/// Most node processes whose every node re-executes the chain unless told otherwise.
const VERIFYING_NODES: usize = 16;

impl DemoArgs {
    /// Whether the nodes re-execute the chain's blocks (`--verify-chain`, `--trust-chain`, or
    /// up to [`VERIFYING_NODES`] nodes).
    pub fn nodes_verify_chain(&self) -> bool {
        self.verify_chain || (!self.trust_chain && self.nodes <= VERIFYING_NODES)
    }

    /// Milliseconds between blocks.
    pub(crate) fn block_ms(&self) -> u64 {
        self.block_ms.unwrap_or(match self.chain {
            DemoChain::Embedded => 200,
            DemoChain::Anvil => 1000,
        })
    }

    /// The number of faulty nodes: by default one per signing-key fault with --curve
    /// secp256k1, as many as leave a reshared key (whose slashed holders sit out the next
    /// view's reshare) its threshold of holders.
    pub(crate) fn faulty(&self) -> usize {
        self.faulty.unwrap_or(match self.curve {
            DemoCurve::Bls12381 => 1,
            DemoCurve::Secp256k1 if self.reshares_signing_key() => SIGNING_KEY_FAULTS
                .len()
                .min(self.committee.saturating_sub(self.threshold())),
            DemoCurve::Secp256k1 => SIGNING_KEY_FAULTS.len(),
        })
    }

    /// Whether a later view reshares the signing key.
    fn reshares_signing_key(&self) -> bool {
        self.curve == DemoCurve::Secp256k1
            && self.signing_key_lifetime == DemoLifetime::Chain
            && self.views > 1
    }

    /// The fault of the `k`-th faulty node.
    pub(crate) fn fault_of(&self, k: usize) -> Fault {
        match self.curve {
            DemoCurve::Bls12381 => self.fault.unwrap_or(match self.chain {
                // Equivocation is an ack-or-reveal fault; the complaint variant's own is a
                // bad share.
                DemoChain::Embedded if self.variant == DemoVariant::Complaint => Fault::BadShare,
                DemoChain::Embedded => Fault::Equivocate,
                DemoChain::Anvil => Fault::ForgeAckAggregate,
            }),
            DemoCurve::Secp256k1 => SIGNING_KEY_FAULTS[k % SIGNING_KEY_FAULTS.len()],
        }
    }

    /// The faulty nodes for the banner: `1 faulty (equivocate)`, or `no faulty nodes`.
    pub(crate) fn faulty_summary(&self) -> String {
        let mut names: Vec<&str> = (0..self.faulty())
            .map(|k| self.fault_of(k).name())
            .collect();
        if names.is_empty() {
            return "no faulty nodes".into();
        }
        names.dedup();
        format!("{} faulty ({})", self.faulty(), names.join(", "))
    }

    /// Faulty dealers of the view changes of `kind`: `bad-share` dealers' publications name
    /// honest players as withholding acks (they encrypt bad shares to more players than they
    /// may reveal for, so those players rightly withhold them); `equivocate` and
    /// `forge-ack-aggregate` dealers are disqualified by their own posts.
    fn view_change_dealers(&self, kinds: &[Fault]) -> usize {
        match self.curve {
            DemoCurve::Bls12381 => (0..self.faulty())
                .filter(|k| kinds.contains(&self.fault_of(*k)))
                .count(),
            DemoCurve::Secp256k1 => 0,
        }
    }

    /// The default threshold, 66% of the committee, or `--threshold`.
    fn threshold(&self) -> usize {
        self.threshold
            .unwrap_or_else(|| Size::Percent(66).resolve(self.committee))
    }

    /// Why the threshold gives no threshold security, if it does not: with `t = 1` each
    /// member's share is the group secret itself (the shared polynomial is a constant).
    fn single_holder_warning(&self) -> Option<String> {
        (self.threshold() == 1).then(|| {
            format!(
                "the threshold is 1 of {}: every member's share is the whole group secret, so \
                 any one member can sign alone; use --threshold 2 or more for a threshold key",
                self.committee
            )
        })
    }

    /// The contract's dealer quorum `k`: 75% of the committee, lowered (as a percentage, so
    /// that it fits the smaller committees of later views) to the dealers the faults leave:
    /// - `bad-share`: a player is excluded when more than `n - k` publications report it, so
    ///   more than `n - k` such dealers would get honest players excluded;
    /// - the signing key's ceremony has no second attempt, so its quorum must be among the
    ///   dealers its faults leave;
    /// - `equivocate` and `forge-ack-aggregate` dealers are disqualified, so with more of them
    ///   than `n - k` the first attempt fails, and its retry needs standbys for them; lowered
    ///   only where the parameters allow it.
    fn quorum(&self) -> Size {
        let n = self.committee;
        let must = self
            .view_change_dealers(&[Fault::BadShare])
            .max(self.disqualified_signing_dealers());
        let may = self.view_change_dealers(&[Fault::Equivocate, Fault::ForgeAckAggregate]);
        // The largest percentage, at most 75, whose count (rounded up) leaves `room` dealers
        // out: one more percent would count more than `n - room`.
        let lowered = |room: usize| Size::Percent((100 * n.saturating_sub(room) / n).min(75) as u8);
        if n == 0 || must.max(may) == 0 {
            return Size::Percent(75);
        }
        let k = lowered(must.max(may));
        if must >= may || keyquorum_dkg::Params::new(n, self.threshold(), k.resolve(n)).is_ok() {
            k
        } else {
            lowered(must)
        }
    }

    /// Dealers the signing-key faults disqualify in view 1's ceremony, which makes a new key
    /// (the skipped Feldman phase is reconstructed there; a reshare would drop it).
    fn disqualified_signing_dealers(&self) -> usize {
        match self.curve {
            DemoCurve::Bls12381 => 0,
            DemoCurve::Secp256k1 => (0..self.faulty())
                .filter(|k| self.fault_of(*k) != Fault::SigningKeySkipFeldman)
                .count(),
        }
    }
}

impl DemoVariant {
    fn contract(self) -> DkgVariant {
        match self {
            DemoVariant::AckReveal => DkgVariant::AckReveal,
            DemoVariant::Complaint => DkgVariant::Complaint,
        }
    }
}

/// Kills its node process when dropped.
pub(crate) struct NodeProc {
    pub(crate) name: String,
    pub(crate) child: Child,
    pub(crate) exited: bool,
}

impl NodeProc {
    /// The processes of `procs` that exited since the last call, with their status: each is
    /// reported once.
    pub(crate) fn newly_exited(procs: &mut [NodeProc]) -> Vec<(String, std::process::ExitStatus)> {
        let mut out = Vec::new();
        for p in procs.iter_mut() {
            if !p.exited
                && let Ok(Some(status)) = p.child.try_wait()
            {
                p.exited = true;
                out.push((p.name.clone(), status));
            }
        }
        out
    }
}

/// One demo node as its process is started, whatever its chain.
pub(crate) struct NodeLaunch<'a> {
    pub(crate) name: &'a str,
    pub(crate) key_file: &'a Path,
    pub(crate) p2p: u16,
    /// Its HTTP port (`/status` and the rest of its API).
    pub(crate) status: u16,
    pub(crate) stake: u64,
}

/// Starts the demos' `keyquorum node` processes with what both demos give every node: its
/// keystore and the shared passphrase file, its data directory and log in the demo's work
/// directory, its ports and stake, the first two nodes' addresses to bootstrap from (but its
/// own), and one thread per pool when there are more processes than cores.
pub(crate) struct NodeLauncher {
    exe: PathBuf,
    dir: PathBuf,
    pass_file: PathBuf,
    boot: Vec<String>,
    crowded: bool,
}

impl NodeLauncher {
    /// `addresses`: every node's p2p address with its peer id, in node order.
    pub(crate) fn new<'a>(
        dir: &Path,
        pass_file: &Path,
        addresses: impl ExactSizeIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        let nodes = addresses.len();
        // More node processes than cores: each gets one thread per pool, since extra threads
        // would only add scheduling and every core is busy with other nodes anyway.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            exe: std::env::current_exe().map_err(|e| e.to_string())?,
            dir: dir.to_owned(),
            pass_file: pass_file.to_owned(),
            boot: addresses.take(2).map(str::to_owned).collect(),
            crowded: nodes > cores,
        })
    }

    /// The command for node `i`; the caller adds its chain's options and the node's fault.
    pub(crate) fn command(&self, i: usize, node: &NodeLaunch<'_>) -> Result<Command, String> {
        let log = std::fs::File::create(self.dir.join(format!("{}.log", node.name)))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("node")
            .arg("--data-dir")
            .arg(self.dir.join(node.name))
            .arg("--p2p-listen")
            .arg(format!("/ip4/127.0.0.1/tcp/{}", node.p2p))
            .arg("--key-file")
            .arg(node.key_file)
            .arg("--passphrase-file")
            .arg(&self.pass_file)
            .arg("--stake")
            .arg(node.stake.to_string())
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", node.status))
            .env(
                "KEYQUORUM_LOG",
                std::env::var("KEYQUORUM_LOG").unwrap_or_else(|_| "info,libp2p=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (j, b) in self.boot.iter().enumerate() {
            if j != i {
                cmd.arg("--bootstrap").arg(b);
            }
        }
        if self.crowded {
            cmd.args(["--threads", "1", "--io-threads", "1"]);
        }
        Ok(cmd)
    }

    /// Starts `cmd` as node `name`'s process. On Linux the process is stopped (SIGTERM) when
    /// the demo's thread that started it ends, even by SIGKILL, which runs no `Drop`: a demo
    /// killed so leaves no node waiting for a chain that is gone. The demo starts its nodes
    /// from its main thread (the `block_on` future, not a spawned task), which lives as long
    /// as the demo.
    pub(crate) fn spawn(name: &str, mut cmd: Command) -> Result<NodeProc, String> {
        keyquorum_evm::process::stop_with_spawning_thread(&mut cmd);
        let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        Ok(NodeProc {
            name: name.to_owned(),
            child,
            exited: false,
        })
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port below the kernel's ephemeral range
/// ([`keyquorum_node::ports::free_loopback_port`]).
pub(crate) fn free_port(taken: &mut std::collections::BTreeSet<u16>) -> Result<u16, String> {
    keyquorum_node::ports::free_loopback_port(taken)
}

/// Phase lengths in blocks: a fixed allowance, a per-member one, and one per pair of members.
/// Larger committees need longer phases (drand's DKG did not finish at 64+ nodes with fixed
/// 10 s phases); here, on top, all n node processes share this machine's cores, so the work
/// of a phase (every node checks every post: n^2) is serialised on the same CPUs.
pub(crate) fn phase_blocks(n: usize, block_ms: u64) -> [u64; 4] {
    let n = n as u64;
    let ms = [
        2000 + 60 * n + n * n,
        2500 + 80 * n + n * n,
        2000 + 60 * n + 3 * n * n / 2,
        2000 + 50 * n + 3 * n * n / 2,
    ];
    ms.map(|m| m.div_ceil(block_ms).max(3))
}

/// The beacon period when `--beacon-period` is not given, for a committee of `n`: the chain's
/// default (3 s) up to 64 members, then as many seconds more as keeps the partials sent per
/// second, `n (n - 1)` per round, at those of 64 members. On one machine every member's
/// partials share the same cores: at 128 members and 3 s the beacon alone kept two cores busy
/// (`docs/performance.md`), leaving a reshare running beside it no time.
pub(crate) fn demo_beacon_period(n: usize) -> u32 {
    const FULL_SPEED: u64 = 64 * 63;
    let base = u64::from(keyquorum_contract::config::BeaconConfig::default().period_secs);
    let n = n as u64;
    let period = (base * n * n.saturating_sub(1)).div_ceil(FULL_SPEED);
    period.clamp(
        base,
        u64::from(keyquorum_contract::config::MAX_BEACON_PERIOD_SECS),
    ) as u32
}

/// Most node processes the demo starts: every stake below stays positive and keeps its spacing.
pub(crate) const MAX_NODES: usize = 4096;

/// Stake of the node ranked `i` (0 = highest, below [`MAX_NODES`]): all different, and 10%
/// below one stake is still below the next one down, so a slashed node drops behind its first
/// standby.
pub(crate) fn stake(i: usize) -> u64 {
    1_000_000 - 100 * i as u64
}

fn contract_config(args: &DemoArgs) -> Result<ContractConfig, String> {
    let mut c = ContractConfig::defaults("keyquorum-demo", args.committee as u32);
    c.beacon.period_secs = demo_beacon_period(args.committee);
    args.beacon.apply(&mut c.beacon);
    c.committee.min_size = args.committee as u32;
    c.committee.threshold = match args.threshold {
        Some(t) => Size::Count(t as u32),
        None => Size::Percent(66),
    };
    // The signing key's ceremony has no second attempt: the quorum leaves room for the
    // dealers the injected faults disqualify, as it does for the view changes' faulty dealers.
    c.committee.quorum = args.quorum();
    c.committee.keep_previous_percent = 70;
    let [contribute, share, publish, wait] = phase_blocks(args.committee, args.block_ms());
    c.phases.contribute = contribute;
    c.phases.share = share;
    c.phases.publish = publish;
    c.phases.wait = wait;
    // The nodes are all up when the chain starts: time to register, and for every node to
    // resolve every other one's address record through the DHT (spread over about 150 ms per
    // node) before the first ceremony.
    c.first_view_change = (3000 + 150 * args.nodes as u64)
        .div_ceil(args.block_ms())
        .max(8);
    // Back to back by default; with --beacon-rounds each view first runs that many rounds
    // (and one more for genesis) with no ceremony, which is what times the beacon alone.
    c.view_length = match args.beacon_rounds {
        None => 2,
        Some(rounds) => {
            let quiet_ms = u64::from(rounds + 1) * u64::from(c.beacon.period_secs) * 1000;
            quiet_ms.div_ceil(args.block_ms()) + 2
        }
    };
    if args.curve == DemoCurve::Secp256k1 {
        // The key's ceremony runs while its view is active: its deal phase and up to six
        // board phases (report, justify, dispute, Feldman, complain, reconstruct), then the
        // demo's signature with it.
        // With --beacon-rounds, the quiet rounds come on top of the key's ceremony.
        c.view_length += share + 7 * publish - 2;
        c.dkg.signing_key = Some(match args.signing_key_lifetime {
            DemoLifetime::View => SigningKeyConfig::SECP256K1_FROST,
            DemoLifetime::Chain => SigningKeyConfig::SECP256K1_FROST_RESHARED,
        });
    }
    c.retry_delay = 5;
    c.max_ceremonies_per_view = 3;
    c.key_mode = KeyMode::Reshare;
    c.slashing.misbehaviour_percent = 10;
    c.slashing.absence_percent = 10;
    c.dkg.variant = args.variant.contract();
    c.validate()
        .map_err(|e| format!("invalid demo parameters: {e}"))?;
    Ok(c)
}

fn verify_blst(group_key: &str, signature: &str, message: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (hex::decode(group_key), hex::decode(signature)) else {
        return false;
    };
    let (Ok(pk), Ok(sig)) = (
        blst::min_pk::PublicKey::key_validate(&pk),
        blst::min_pk::Signature::sig_validate(&sig, true),
    ) else {
        return false;
    };
    sig.verify(
        true,
        message,
        b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_",
        &[],
        &pk,
        true,
    ) == blst::BLST_ERROR::BLST_SUCCESS
}

/// Each view with the message its committee signed (absent when its magic block is unknown).
pub(crate) type SignedMessages = Vec<(u64, Option<Vec<u8>>)>;

/// Checks every activated view's committee signature with a standard BLS verifier, noting the
/// result in the view: each view with the message its committee signed, and whether a
/// signature failed.
pub(crate) fn verify_signatures(observer: &mut Observer) -> (SignedMessages, bool) {
    let mut views = Vec::new();
    let mut bad_signature = false;
    for v in observer.views.values_mut() {
        let message = v.magic_block_hash.as_ref().and_then(|h| {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(h, &mut hash).ok()?;
            Some(signing_message(SignerRole::New, &hash))
        });
        if v.activated
            && let (Some(gk), Some(sig), Some(m)) = (&v.group_key, &v.signature, &message)
        {
            let ok = verify_blst(gk, sig, m);
            bad_signature |= !ok;
            v.signature_verified = Some(ok);
        }
        views.push((v.view, message));
    }
    (views, bad_signature)
}

/// [`check_args`], except that a default number of faulty nodes the other parameters refuse is
/// lowered to the most they allow (down to none), with a note saying so: the default exists to
/// show a fault, and a user who asked for a small committee asked for no fault it cannot hold.
/// An explicit `--faulty` is never changed, nor is a refusal no lower number avoids.
fn check_args_lowering_default_faults(args: &mut DemoArgs) -> Result<Option<String>, String> {
    let refusal = match check_args(args) {
        Ok(()) => return Ok(None),
        Err(refusal) => refusal,
    };
    if args.faulty.is_some() {
        return Err(refusal);
    }
    let default = args.faulty();
    for fewer in (0..default).rev() {
        args.faulty = Some(fewer);
        if check_args(args).is_ok() {
            return Ok(Some(format!(
                "note: the default --faulty {default} does not fit these parameters ({refusal}); \
                 running with {fewer} faulty nodes instead (give --faulty to choose)"
            )));
        }
    }
    args.faulty = None;
    Err(refusal)
}

/// Checks the arguments against each other (usage errors, exit 2).
fn check_args(args: &DemoArgs) -> Result<(), String> {
    if args.nodes < args.committee {
        return Err(format!(
            "--nodes {} is fewer than the committee's seats (--committee {})",
            args.nodes, args.committee
        ));
    }
    if args.nodes > MAX_NODES {
        return Err(format!("--nodes must be at most {MAX_NODES}"));
    }
    if args.committee < 2 {
        return Err("--committee must be at least 2".into());
    }
    let faulty = args.faulty();
    if faulty > args.committee.saturating_sub(2) {
        return Err(format!(
            "--faulty {} must leave at least two honest members in a committee of {}",
            faulty, args.committee
        ));
    }
    if args.faulty == Some(0)
        && let Some(f) = args.fault.filter(|f| *f != Fault::None)
    {
        return Err(format!(
            "--fault {} with --faulty 0: nobody would commit it; leave out --faulty for the default number of faulty nodes",
            f.name()
        ));
    }
    if args.threshold.is_some_and(|t| t > args.committee) {
        return Err("--threshold must be at most --committee".into());
    }
    if args.views == 0 {
        return Err("--views must be at least 1".into());
    }
    if args.timeout_secs == Some(0) {
        return Err("--timeout-secs must be at least 1".into());
    }
    if let Some(rounds) = args.beacon_rounds
        && !(1..=MAX_BEACON_ROUNDS).contains(&rounds)
    {
        return Err(format!("--beacon-rounds must be 1 to {MAX_BEACON_ROUNDS}"));
    }
    if args.signing_key_lifetime != DemoLifetime::View && args.curve != DemoCurve::Secp256k1 {
        return Err(
            "--signing-key-lifetime is the lifetime of the secp256k1 signing key: add --curve secp256k1 (and --variant complaint)"
                .into(),
        );
    }
    // Before the embedded chain's checks of variant, curve and fault, which differ there.
    if args.chain == DemoChain::Anvil {
        return crate::demo_anvil::check_args(args);
    }
    if let Some(f) = args.fault {
        check_view_change_fault(f)?;
    }
    if args.curve == DemoCurve::Secp256k1 {
        if args.variant != DemoVariant::Complaint {
            return Err(
                "--curve secp256k1 needs --variant complaint: the secp256k1 key is made by the complaint-and-reconstruct ceremony (seed 003)"
                    .into(),
            );
        }
        if let Some(f) = args.fault {
            return Err(format!(
                "--fault {} is a view-change fault; with --curve secp256k1 the faulty nodes take the signing-key ceremony's faults in turn (see --help)",
                f.name()
            ));
        }
        let t = args
            .threshold
            .unwrap_or_else(|| Size::Percent(66).resolve(args.committee));
        let left = args.committee - args.disqualified_signing_dealers();
        if left < t {
            return Err(format!(
                "--faulty {faulty} disqualifies {} dealers of the signing key, leaving {left} members with shares, fewer than the threshold {t}: use a larger --committee, a lower --threshold or fewer --faulty",
                args.committee - left
            ));
        }
        // Every faulty dealer is slashed and sits out the next view's ceremony, so the
        // reshare has the other holders only.
        if args.reshares_signing_key() && args.committee - faulty < t {
            return Err(format!(
                "--signing-key-lifetime chain with --faulty {faulty}: the faulty members are slashed and sit out view 2's reshare, leaving {} holders of the key, fewer than its threshold {t}: use a larger --committee, a lower --threshold or fewer --faulty",
                args.committee - faulty
            ));
        }
    }
    if args.view_change_dealers(&[Fault::BadShare]) > 0 {
        let n = args.committee;
        let t = args.threshold();
        let k = args.quorum().resolve(n);
        let lowered = k < Size::Percent(75).resolve(n);
        if let Err(e) = keyquorum_dkg::Params::new(n, t, k)
            && lowered
        {
            return Err(format!(
                "--fault bad-share with --faulty {faulty} in a committee of {n} with threshold {t}: its dealers' reports would exclude honest players unless the quorum is the {k} honest dealers, and {e}: use a larger --committee, another --threshold or fewer --faulty"
            ));
        }
    }
    if args.chain == DemoChain::Embedded {
        let (n, t) = (args.committee, args.threshold());
        let k = args.quorum().resolve(n);
        // Name the threshold as the user gave it, or say it is the default.
        let given = match args.threshold {
            Some(_) => format!("--threshold {t}"),
            None => format!("the threshold t = {t} (the default: 66% of the committee)"),
        };
        let quorum = if k < Size::Percent(75).resolve(n) {
            "75% of it, lowered to the dealers --faulty leaves"
        } else {
            "75% of it"
        };
        if t > k {
            return Err(format!(
                "{given} is above the dealer quorum k = {k} the demo sets for a committee of {n} ({quorum}), and a key needs t <= k: use --threshold {k} or less, a larger --committee or fewer --faulty"
            ));
        }
        if let Err(e) = keyquorum_dkg::Params::new(n, t, k) {
            return Err(format!(
                "{given} with a committee of {n} and the dealer quorum k = {k} the demo sets ({quorum}): {e}; give another --threshold, a larger --committee or fewer --faulty"
            ));
        }
        // Equivocating and forging dealers are disqualified, silent ones deal nothing and
        // crashed ones (down from the share phase on) publish nothing: with more of them than
        // `n - k` the view change's first ceremony fails, and its retry, which bans the
        // disqualified for the rest of the view change and seats only the members that took
        // part, must fill all `n` seats from the other nodes.
        let disqualified = args.view_change_dealers(&[
            Fault::Equivocate,
            Fault::ForgeAckAggregate,
            Fault::Silent,
            Fault::Crash,
        ]);
        if disqualified > n - k && args.nodes - disqualified < n {
            return Err(format!(
                "--faulty {disqualified} with --fault {}: more dealers disqualified, silent or crashed than the {} a committee of {n} with quorum k = {k} tolerates, so the first ceremony fails and its retry, without them, needs {n} other nodes, but --nodes {} leaves {}: use --nodes {} or more, fewer --faulty, or another --fault",
                args.fault_of(0).name(),
                n - k,
                args.nodes,
                args.nodes - disqualified,
                n + disqualified
            ));
        }
    }
    if args.curve == DemoCurve::Bls12381
        && args.variant == DemoVariant::Complaint
        && faulty > 0
        && let fault @ (Fault::Equivocate | Fault::ForgeAckAggregate) = args.fault_of(0)
    {
        return Err(format!(
            "--fault {} is an ack-or-reveal fault (a second contribution on chain, or a publication's ack aggregate); with --variant complaint use --fault bad-share, silent, crash or bad-beacon",
            fault.name()
        ));
    }
    // Their partials are refused, so a round (or an on-demand signature) needs a threshold of
    // the others; with fewer the beacon never runs.
    if args.curve == DemoCurve::Bls12381
        && faulty > 0
        && args.fault_of(0) == Fault::BadBeacon
        && args.committee - faulty < args.threshold()
    {
        return Err(format!(
            "--faulty {faulty} with --fault bad-beacon leaves {} honest members in a committee of {}, fewer than the threshold {} a beacon round and an on-demand signature need: use fewer --faulty, a lower --threshold or a larger --committee",
            args.committee - faulty,
            args.committee,
            args.threshold()
        ));
    }
    if args.block_ms() < 20 {
        return Err("--block-ms must be at least 20".into());
    }
    // As the chain's own bound: a demo of hour-long blocks would not end anyway.
    if args.block_ms() > keyquorum_devchain::MAX_BLOCK_MS {
        return Err(format!(
            "--block-ms must be at most {} (an hour)",
            keyquorum_devchain::MAX_BLOCK_MS
        ));
    }
    check_output_files(args)
}

/// Refuses a `--report` or `--metrics-out` file whose directory is not there: they are written
/// at the end of the run, which would fail only then.
pub(crate) fn check_output_files(args: &DemoArgs) -> Result<(), String> {
    for (flag, file) in [
        ("--report", Some(&args.report)),
        ("--metrics-out", args.metrics_out.as_ref()),
    ] {
        let Some(file) = file else { continue };
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(format!(
                "{flag} {}: the directory {} does not exist",
                file.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Refuses the node faults that would do nothing in the embedded chain's view changes, so a
/// demo never claims to show a fault its faulty nodes do not commit.
fn check_view_change_fault(fault: Fault) -> Result<(), String> {
    let reason = match fault {
        Fault::None => {
            "makes the faulty nodes honest: leave --fault out, with --faulty 0 for a demo without faults"
        }
        Fault::SigningKeyEquivocate | Fault::SigningKeyWithhold | Fault::SigningKeySkipFeldman => {
            "is a fault of the signing key's ceremony: --variant complaint --curve secp256k1 gives the faulty nodes these faults in turn"
        }
        Fault::BadSignatureShare => {
            "is a fault of threshold Schnorr signing, which the demo does not run with a faulty signer: run it on `keyquorum node --fault bad-signature-share`"
        }
        Fault::Silent
        | Fault::BadShare
        | Fault::Equivocate
        | Fault::Crash
        | Fault::BadBeacon
        | Fault::ForgeAckAggregate => return Ok(()),
    };
    Err(format!("--fault {} {reason}", fault.name()))
}

/// `keyquorum demo`: inconsistent arguments are a usage error; a view change that does not
/// complete, or a signature or magic-block chain that does not verify, a failed run.
pub fn run(mut args: DemoArgs) -> Result<(), CliError> {
    if args.json {
        args.format = OutputFormat::Json;
    }
    if args.mode == DemoMode::Sections {
        check_output_files(&args).map_err(CliError::Usage)?;
        return crate::demo_sections::run(&args);
    }
    if args.seed.is_some() {
        return Err(CliError::usage(
            "--seed is an option of --mode sections; the view changes' randomness is the nodes' own",
        ));
    }
    if let Some(note) = check_args_lowering_default_faults(&mut args).map_err(CliError::Usage)? {
        eprintln!("keyquorum demo: {note}");
    }
    if let Some(w) = args.single_holder_warning() {
        eprintln!("keyquorum demo: warning: {w}");
    }
    let contract = match args.chain {
        DemoChain::Embedded => Some(contract_config(&args).map_err(CliError::Usage)?),
        DemoChain::Anvil => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    let (dir, temporary) = match &args.data_dir {
        Some(d) => {
            unused_data_dir(d).map_err(CliError::Failed)?;
            (d.clone(), false)
        }
        None => {
            let removed = remove_leftover_demo_dirs(&std::env::temp_dir());
            if removed > 0 {
                println!("removed {removed} temporary directories left by killed demos");
            }
            let d = std::env::temp_dir().join(format!(
                "{DEMO_DIR_PREFIX}{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0)
            ));
            (d, true)
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    let result = rt.block_on(async {
        match contract {
            Some(contract) => demo(&args, contract, &dir).await,
            None => crate::demo_anvil::demo(&args, &dir).await,
        }
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map_err(CliError::Failed)
}

/// The name of a demo's temporary directory: this prefix, the demo's process id, a dash and
/// its start time in milliseconds.
const DEMO_DIR_PREFIX: &str = "keyquorum-demo-";

/// Removes the temporary directories in `tmp` of demos whose process is gone (killed: a demo
/// that ends removes its own), and returns how many. A directory whose process id is alive is
/// kept, whichever process holds that id now.
fn remove_leftover_demo_dirs(tmp: &Path) -> usize {
    // Whether a process is alive is read from /proc: elsewhere nothing is removed.
    if !cfg!(target_os = "linux") {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DEMO_DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, millis)| millis.parse::<u128>().is_ok())
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// A `--data-dir` the demo may write: absent or empty. The demo makes new keys and a new
/// chain each run, so a directory of an earlier run would have its keys overwritten, and with
/// them the shares its databases hold sealed.
fn unused_data_dir(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("--data-dir {}: {e}", dir.display())),
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(format!(
                "--data-dir {} is not empty (an earlier demo's keys, databases and logs would be \
                 overwritten): pass a new or empty directory",
                dir.display()
            )),
        },
    }
}

/// The demo itself; any error is a failed run.
async fn demo(args: &DemoArgs, contract: ContractConfig, dir: &Path) -> Result<(), String> {
    let started = Instant::now();
    let ui = Ui::new(args.format == OutputFormat::Json);
    ui.say(format!(
        "keyquorum demo: {} nodes for {} seats, {}, {} view changes, blocks every {} ms",
        args.nodes,
        args.committee,
        args.faulty_summary(),
        args.views,
        args.block_ms()
    ));
    let mut observer = Observer::default();
    let mut ports = std::collections::BTreeSet::new();
    let (nodes, contract) = Nodes::create(args, contract, dir, &mut ports, &mut observer)?;
    let chain_port = free_port(&mut ports)?;
    // One HTTP client (one connection pool) for the chain and every node's status server.
    let http = Client::new(&format!("http://127.0.0.1:{chain_port}")).map_err(|e| e.to_string())?;
    let digest = keyquorum_node::chain::replica::config_digest(&contract);
    ui.say(if args.nodes_verify_chain() {
        format!(
            "every node re-executes the chain's blocks with its own contract (configuration {})",
            hex::encode(&digest[..8])
        )
    } else {
        "the nodes take the chain's blocks as served (--trust-chain, or more than 16 nodes; \
         --verify-chain makes each re-execute them)"
            .to_string()
    });
    let mut procs = nodes.spawn(args, dir, chain_port, &digest)?;
    nodes.wait_listening(&ui, &http, args, dir).await?;

    // The chain, in this process, once every node listens.
    let phases = contract.phases.clone();
    let beacon_period = Duration::from_secs(contract.beacon.period_secs.into());
    let view_blocks = phases.contribute + phases.share + phases.publish + phases.wait;
    let limit = args
        .timeout_secs
        .map_or_else(|| default_time_limit(args, &contract), Duration::from_secs);
    let chain = keyquorum_devchain::Chain::start(
        ChainConfig {
            data_dir: dir.join("chain"),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], chain_port)),
            block_ms: args.block_ms(),
            ..ChainConfig::default()
        },
        ContractMachine(Contract::new(contract).map_err(|e| e.to_string())?),
    )
    .await
    .map_err(|e| format!("chain: {e}"))?;

    let mut progress = Progress::new(&ui, args.nodes, view_blocks);
    let mut beacon = Beacon::new(&nodes)?;
    let mut run_limit = RunLimit::new(started, limit);
    let mut failure = follow(
        args,
        &chain.handle(),
        &nodes,
        &mut observer,
        &mut progress,
        &mut beacon,
        &mut run_limit,
        &mut procs,
    )
    .await?;
    if failure.is_none() && observer.current_view > 0 {
        failure = beacon
            .wait_for_rounds(
                &ui,
                &observer,
                args.beacon_rounds.unwrap_or(DEFAULT_BEACON_ROUNDS),
                beacon_period,
                &mut run_limit,
            )
            .await
            .err();
    }
    let mut on_demand = None;
    if failure.is_none() && observer.current_view > 0 {
        match sign_on_demand(&observer, &beacon, &nodes.sign_token).await {
            Ok(s) => on_demand = Some(s),
            Err(e) => failure = Some(e),
        }
    }
    progress.clear();

    let (views_json, bad_signature) = verify_signatures(&mut observer);
    let activations = activations(&observer);
    let bad_chain = verify_chain(&ui, &http, &observer).await;
    let refused = refused_partials(&http, &nodes).await;
    if ui.json {
        let views: Vec<serde_json::Value> = views_json
            .iter()
            .filter_map(|(view, m)| {
                observer
                    .views
                    .get(view)
                    .map(|v| demo_report::json(&observer, v, m.as_deref()))
            })
            .collect();
        out!(
            "{}",
            serde_json::json!({
                "views": views,
                "beacon": beacon.log.json(&activations),
                "beacon_refused_partials": refused
                    .iter()
                    .map(|(identity, (count, refusers))| serde_json::json!({
                        "node": observer.name(identity),
                        "identity": identity,
                        "count": count,
                        "refused_by": refusers,
                    }))
                    .collect::<Vec<_>>(),
                "sign": on_demand.as_ref().map(|s| s.json()),
            })
        );
    } else {
        out!();
        if let Some(f) = &failure {
            out!("the run stopped early ({f}); below is how far each view got");
            out!();
        }
        for v in observer.views.values() {
            out_text!("{}", demo_report::text(&observer, v));
            out!();
        }
        out!("random beacon (every round verified under its chain info):");
        for line in beacon.log.lines(&activations) {
            out!("{line}");
        }
        for line in crate::demo_latency::summaries(
            &beacon.log.latency_points(),
            activations.values().max().copied(),
        ) {
            out!("  {line}");
        }
        for line in refused_partials_lines(&observer, &refused) {
            out!("  {line}");
        }
        if let Some(s) = &on_demand {
            out!("{}", s.line());
        }
        out!();
    }
    let html = demo_report::html(
        &observer,
        &format!(
            "keyquorum ceremony report: {} nodes, {} seats, {}",
            args.nodes,
            args.committee,
            args.faulty_summary()
        ),
        &crate::demo_latency::section(
            &beacon.log.latency_points(),
            &activations
                .iter()
                .map(|(v, at)| (*v, *at))
                .collect::<Vec<_>>(),
        ),
    );
    std::fs::write(&args.report, html).map_err(|e| format!("{}: {e}", args.report.display()))?;
    report_traffic(args, &ui, &http, &nodes).await?;

    // Stop the nodes, then the chain.
    drop(procs);
    let _ = chain.stop().await;
    let elapsed = started.elapsed().as_secs_f64();
    if !ui.json {
        out!(
            "report written to {} · {:.1} s{}",
            args.report.display(),
            elapsed,
            match &args.data_dir {
                Some(d) => format!(" · logs in {}", d.display()),
                None => String::new(),
            }
        );
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if bad_signature {
        return Err("a magic block signature does not verify".into());
    }
    if let Some(e) = bad_chain {
        return Err(format!("the chain of magic blocks does not verify: {e}"));
    }
    Ok(())
}

/// The demo's terminal: progress bars, and lines printed above them (none with `--format
/// json`, which prints one object at the end).
struct Ui {
    bars: MultiProgress,
    json: bool,
}

impl Ui {
    fn new(json: bool) -> Self {
        let bars = MultiProgress::new();
        if json {
            bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Self { bars, json }
    }

    /// Prints `line` above the bars; to stderr when they are not drawn (output not a
    /// terminal), where `println` would drop it.
    fn say(&self, line: String) {
        if self.json {
            return;
        }
        if self.bars.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.bars.println(line);
        }
    }

    /// A bar counting `len` things, named `prefix`.
    fn counter(&self, len: u64, prefix: &'static str) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        bar
    }
}

/// One node process of the demo.
struct NodeSpec {
    name: String,
    key_file: PathBuf,
    p2p: u16,
    /// Its p2p address with its peer id, for the others' `--bootstrap`.
    address: String,
    /// Its HTTP port (`/status`, the beacon, `POST /sign`).
    status: u16,
}

/// The demo's nodes and their secrets on disk, written before anything starts.
struct Nodes {
    specs: Vec<NodeSpec>,
    /// The 0600 file holding the keystores' random passphrase.
    pass_file: PathBuf,
    /// The bearer token of the nodes' `POST /sign`, random like the passphrase, and its 0600
    /// file.
    sign_token: String,
    sign_token_file: PathBuf,
    /// Which nodes run a fault.
    faulty: Vec<usize>,
}

impl Nodes {
    /// One encrypted keystore per node and one random passphrase in a 0600 file; every node
    /// funded at genesis in `contract` with what it stakes (its registration locks all of it)
    /// and named in `observer`.
    fn create(
        args: &DemoArgs,
        mut contract: ContractConfig,
        dir: &Path,
        ports: &mut std::collections::BTreeSet<u16>,
        observer: &mut Observer,
    ) -> Result<(Self, ContractConfig), String> {
        let mut secret = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
        let pass_hex = hex::encode(secret);
        let pass_file = dir.join("passphrase");
        write_private(&pass_file, &pass_hex)?;
        let passphrase = Passphrase::new(pass_hex);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
        let sign_token = hex::encode(secret);
        let sign_token_file = dir.join("sign.token");
        write_private(&sign_token_file, &sign_token)?;
        let width = if args.nodes > 10 { 2 } else { 1 };
        let mut specs = Vec::new();
        for i in 0..args.nodes {
            let keys = NodeKeys::generate();
            let key_file = dir.join(format!("node-{i}.key"));
            let _ = std::fs::remove_file(&key_file);
            keystore::write(&key_file, &keys, &passphrase, KdfParams::light())
                .map_err(|e| e.to_string())?;
            contract = contract.fund(keys.identity().public(), stake(i));
            let name = format!("node-{i:0width$}");
            observer.names.insert(
                hex::encode(keys.identity().public().as_bytes()),
                name.clone(),
            );
            let p2p = free_port(ports)?;
            specs.push(NodeSpec {
                name,
                key_file,
                p2p,
                address: format!("/ip4/127.0.0.1/tcp/{p2p}/p2p/{}", keys.peer_id()),
                status: free_port(ports)?,
            });
        }
        contract
            .validate()
            .map_err(|e| format!("invalid demo genesis: {e}"))?;
        let nodes = Self {
            specs,
            pass_file,
            sign_token,
            sign_token_file,
            faulty: (args.committee - args.faulty()..args.committee).collect(),
        };
        Ok((nodes, contract))
    }

    /// One `keyquorum node` process per node, on the chain at `chain_port`.
    fn spawn(
        &self,
        args: &DemoArgs,
        dir: &Path,
        chain_port: u16,
        contract_digest: &[u8; 32],
    ) -> Result<Vec<NodeProc>, String> {
        let launcher = NodeLauncher::new(
            dir,
            &self.pass_file,
            self.specs.iter().map(|s| s.address.as_str()),
        )?;
        let mut procs = Vec::new();
        for (i, s) in self.specs.iter().enumerate() {
            let mut cmd = launcher.command(
                i,
                &NodeLaunch {
                    name: &s.name,
                    key_file: &s.key_file,
                    p2p: s.p2p,
                    status: s.status,
                    stake: stake(i),
                },
            )?;
            cmd.arg("--chain-url")
                .arg(format!("http://127.0.0.1:{chain_port}"))
                .arg("--sign-token-file")
                .arg(&self.sign_token_file);
            if !args.nodes_verify_chain() {
                cmd.arg("--trust-chain");
            } else {
                cmd.arg("--chain-config-digest")
                    .arg(hex::encode(contract_digest));
            }
            if let Some(k) = self.faulty.iter().position(|f| *f == i) {
                cmd.arg("--fault").arg(args.fault_of(k).name());
            }
            procs.push(NodeLauncher::spawn(&s.name, cmd)?);
        }
        Ok(procs)
    }

    /// Waits until every node answers on its status port.
    async fn wait_listening(
        &self,
        ui: &Ui,
        http: &Client,
        args: &DemoArgs,
        dir: &Path,
    ) -> Result<(), String> {
        let starting = ui.counter(args.nodes as u64, "nodes");
        starting.set_message("starting");
        for s in &self.specs {
            let client = http
                .at(&format!("http://127.0.0.1:{}", s.status))
                .map_err(|e| e.to_string())?
                .with_timeout(Duration::from_secs(2));
            let deadline = Instant::now() + Duration::from_secs(60 + args.nodes as u64);
            while client.get::<Status>("/status").await.is_err() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "a node did not start; see the logs in {}",
                        dir.display()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            starting.inc(1);
        }
        starting.finish_with_message("listening");
        Ok(())
    }
}

/// The progress bars that follow the chain: registrations, then one bar per view.
struct Progress<'a> {
    ui: &'a Ui,
    nodes: usize,
    registering: ProgressBar,
    /// Per view: its bar and the height its current ceremony started at.
    views: std::collections::BTreeMap<u64, (ProgressBar, u64)>,
    view_blocks: u64,
    noted_registration: bool,
}

impl<'a> Progress<'a> {
    fn new(ui: &'a Ui, nodes: usize, view_blocks: u64) -> Self {
        Self {
            ui,
            nodes,
            registering: ui.counter(nodes as u64, "register"),
            views: Default::default(),
            view_blocks,
            noted_registration: false,
        }
    }

    /// One chain event at `height`, already recorded by `observer`.
    fn on_event(&mut self, e: &Event, height: u64, observer: &Observer) {
        match e {
            Event::Registered { .. } => {
                self.registering
                    .set_position(observer.registered.len() as u64);
                if observer.registered.len() == self.nodes {
                    self.registering.finish_with_message("all registered");
                }
            }
            Event::CommitteeSelected {
                view,
                ceremony_number,
                ..
            } => {
                if !self.noted_registration && observer.registered.len() < self.nodes {
                    self.ui.say(format!(
                        "  note: {} of {} nodes had registered when the first committee was selected",
                        observer.registered.len(),
                        self.nodes
                    ));
                }
                self.noted_registration = true;
                let (ui, view_blocks) = (self.ui, self.view_blocks);
                let (bar, start) = self.views.entry(*view).or_insert_with(|| {
                    let bar = ui.bars.add(ProgressBar::new(view_blocks));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {msg}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("view {view}"));
                    (bar, height)
                });
                bar.set_position(0);
                bar.set_message(format!("ceremony {ceremony_number}: committee selected"));
                *start = height;
            }
            Event::PhaseChanged {
                view,
                ceremony_number,
                attempt,
                phase,
                deadline,
            } => {
                if let Some((bar, _)) = self.views.get(view) {
                    let phase = phase.as_str();
                    if phase != "idle" {
                        bar.set_message(format!(
                            "ceremony {ceremony_number}: {phase}{} until block {deadline}",
                            if *attempt > 0 {
                                format!(" (attempt {})", attempt + 1)
                            } else {
                                String::new()
                            }
                        ));
                    }
                }
            }
            Event::CeremonyFailed {
                view,
                ceremony_number,
                reason,
                ..
            } => {
                self.ui.say(format!(
                    "  view {view} ceremony {ceremony_number} failed: {reason}; the contract starts a new ceremony without the culprits"
                ));
            }
            Event::SigningKeyCreated { view, key } => {
                self.ui.say(format!(
                    "  view {view} signing key made: {} qualified dealers, {} exclusions, {} slashed",
                    key.qualified.len(),
                    key.excluded.len(),
                    key.excluded.iter().filter(|e| e.penalty.is_some()).count()
                ));
            }
            Event::ViewActivated { view, .. } => {
                if let Some((bar, _)) = self.views.get(view) {
                    bar.set_position(self.view_blocks);
                    bar.finish_with_message("activated");
                }
            }
            _ => {}
        }
    }

    /// The end of the block at `height`: every running view's bar moves on.
    fn at_height(&self, height: u64) {
        for (bar, start) in self.views.values() {
            if !bar.is_finished() {
                bar.set_position(height.saturating_sub(*start).min(self.view_blocks));
            }
        }
    }

    fn clear(&self) {
        self.registering.finish_and_clear();
        for (bar, _) in self.views.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// The beacon as the demo fetches it from the nodes and verifies it.
struct Beacon {
    log: BeaconLog,
    http: reqwest::Client,
    /// Each node's status port, by name.
    port_of: std::collections::BTreeMap<String, u16>,
}

impl Beacon {
    fn new(nodes: &Nodes) -> Result<Self, String> {
        Ok(Self {
            log: BeaconLog::default(),
            http: BeaconLog::client()?,
            port_of: nodes
                .specs
                .iter()
                .map(|s| (s.name.clone(), s.status))
                .collect(),
        })
    }

    /// Fetches and verifies the rounds the nodes serve.
    async fn fetch(&mut self, observer: &Observer) -> Result<(), String> {
        let ports = beacon_ports(observer, &self.port_of);
        self.log.fetch(&self.http, &ports).await
    }

    /// Lets the final view's committee produce `rounds` rounds (`--beacon-rounds`), so the
    /// beacon is shown in every view.
    async fn wait_for_rounds(
        &mut self,
        ui: &Ui,
        observer: &Observer,
        rounds: u32,
        period: Duration,
        run_limit: &mut RunLimit,
    ) -> Result<(), String> {
        let view = observer.current_view;
        let waiting = ui.bars.add(ProgressBar::new_spinner());
        waiting.set_prefix("beacon");
        waiting.set_message(format!("waiting for {rounds} rounds in view {view}"));
        let wait = beacon_wait(rounds, period);
        let deadline = Instant::now() + wait;
        let result = loop {
            if run_limit.interrupted() {
                break Err("interrupted".to_owned());
            }
            if let Some(out) = run_limit.timed_out() {
                break Err(format!(
                    "{out} waiting for {rounds} beacon rounds in view {view}"
                ));
            }
            let last_error = self.fetch(observer).await.err();
            let have = self.log.rounds_in(view, &activations(observer));
            waiting.set_message(format!("{have} of {rounds} rounds in view {view}"));
            if have >= rounds as usize {
                break Ok(());
            }
            if Instant::now() > deadline {
                break Err(format!(
                    "the beacon did not produce {rounds} rounds in view {view} within {} s{}",
                    wait.as_secs(),
                    last_error.map(|e| format!(": {e}")).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        waiting.finish_and_clear();
        result
    }
}

/// Follows the chain until every view is active (and, with `--curve secp256k1`, has signed
/// with its signing key), fetching the beacon after each view change. Returns why it stopped
/// before that, if it did.
#[allow(clippy::too_many_arguments)]
async fn follow(
    args: &DemoArgs,
    chain: &keyquorum_devchain::ChainHandle,
    nodes: &Nodes,
    observer: &mut Observer,
    progress: &mut Progress<'_>,
    beacon: &mut Beacon,
    run_limit: &mut RunLimit,
    procs: &mut [NodeProc],
) -> Result<Option<String>, String> {
    let mut from = 1u64;
    loop {
        if observer.current_view >= args.views && signing_keys_done(args, observer) {
            return Ok(None);
        }
        if let Some(reason) = run_limit.stop_reason(observer, args.views) {
            return Ok(Some(reason));
        }
        for (name, status) in NodeProc::newly_exited(procs) {
            progress.ui.say(format!(
                "  {name} exited ({status}){}",
                if args.fault == Some(Fault::Crash) {
                    " — the crash fault"
                } else {
                    ""
                }
            ));
        }
        chain
            .wait_for_height(from, Duration::from_millis(500))
            .await;
        let mut beacon_due = false;
        for b in chain.blocks_from(from, 50).map_err(|e| e.to_string())? {
            from = b.height + 1;
            let b = chain_block(b);
            let events = b
                .txs
                .iter()
                .flat_map(|t| t.events.iter())
                .chain(b.end_block_events.iter());
            for e in events {
                observer.on_event(e, b.height, b.time_ms);
                progress.on_event(e, b.height, observer);
                beacon_due |= matches!(e, Event::ViewActivated { .. });
            }
            progress.at_height(b.height);
        }
        if args.curve == DemoCurve::Secp256k1
            && let Err(e) =
                sign_with_signing_key(observer, &beacon.port_of, &nodes.sign_token).await
        {
            return Ok(Some(e));
        }
        if beacon_due {
            // The rounds of the view that ended; the new view's chain may not be served yet
            // (a fresh key's chain starts a period after activation), which the next fetch
            // picks up.
            if let Err(e) = beacon.fetch(observer).await {
                progress.ui.say(format!("  beacon not fetched yet: {e}"));
            }
        }
    }
}

/// One threshold signature on demand by the last view's committee, checked under its group
/// key.
async fn sign_on_demand(
    observer: &Observer,
    beacon: &Beacon,
    token: &str,
) -> Result<demo_sign::OnDemand, String> {
    let view = observer.current_view;
    let key = observer
        .views
        .get(&view)
        .and_then(|v| v.group_key.clone())
        .ok_or_else(|| format!("no group key known for view {view}"))?;
    let ports = beacon_ports(observer, &beacon.port_of);
    let message = format!("keyquorum demo: signed on demand once view {view} was active");
    demo_sign::sign_once(&ports, token, message.as_bytes(), &key, view).await
}

/// The chain of activated magic blocks, as a light client would check it from the first
/// view's key: each block's key confirmation, the previous committee's handover under the
/// previous key, and a reshare keeping the key. Prints the outcome; returns the failure.
async fn verify_chain(ui: &Ui, http: &Client, observer: &Observer) -> Option<String> {
    let activated: Vec<u64> = observer
        .views
        .values()
        .filter(|v| v.activated)
        .map(|v| v.view)
        .collect();
    if activated.is_empty() {
        return None;
    }
    // Generous: with a hundred node processes on two cores the chain answers slowly.
    let api = http.clone().with_timeout(Duration::from_secs(60));
    let mut blocks: Vec<SignedMagicBlock> = Vec::new();
    let mut bad_chain = None;
    for v in &activated {
        match api.get(&format!("/views/{v}/magic-block")).await {
            Ok(b) => blocks.push(b),
            Err(e) => bad_chain = Some(e.to_string()),
        }
    }
    if bad_chain.is_none()
        && let Some(first) = blocks.first()
        && let Err(e) = verify_magic_block_chain(&first.block.group_key.0, &blocks)
    {
        bad_chain = Some(e.to_string());
    }
    if !ui.json {
        match &bad_chain {
            None => out!(
                "chain of {} magic blocks verified from the first group key (handovers included)",
                activated.len()
            ),
            Some(e) => out!("chain of magic blocks DOES NOT VERIFY: {e}"),
        }
    }
    bad_chain
}

/// Traffic per node, from each node's status, before stopping them: the average in the text
/// output, every node's counters in `--metrics-out`.
async fn report_traffic(
    args: &DemoArgs,
    ui: &Ui,
    http: &Client,
    nodes: &Nodes,
) -> Result<(), String> {
    let mut traffic = Vec::new();
    for s in &nodes.specs {
        if let Some(t) = node_traffic(http, s.status).await {
            traffic.push((s.name.clone(), t));
        }
    }
    if !traffic.is_empty() && !ui.json {
        let sent: u64 = traffic.iter().map(|(_, t)| t.total.bytes_sent).sum();
        out!(
            "traffic: {:.1} KiB sent per node on average (deals, acks and transactions)",
            sent as f64 / traffic.len() as f64 / 1024.0
        );
    }
    if let Some(path) = &args.metrics_out {
        let nodes: Vec<serde_json::Value> = traffic
            .iter()
            .map(|(name, t)| serde_json::json!({ "node": name, "metrics": t }))
            .collect();
        std::fs::write(path, serde_json::json!({ "nodes": nodes }).to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Whether every activated view's signing key has its BIP-340 signature (always, without
/// `--curve secp256k1`).
fn signing_keys_done(args: &DemoArgs, observer: &Observer) -> bool {
    args.curve == DemoCurve::Bls12381
        || observer
            .views
            .values()
            .filter(|v| v.activated)
            .all(|v| v.signing_key.as_ref().is_some_and(|k| k.bip340.is_some()))
}

/// Once the active view's signing key is on chain, asks its committee for one BIP-340
/// signature with it (share holders first) and keeps it, verified; a signing key that was not
/// made, or a signature that does not verify, fails the demo.
async fn sign_with_signing_key(
    observer: &mut Observer,
    port_of: &std::collections::BTreeMap<String, u16>,
    token: &str,
) -> Result<(), String> {
    if let Some((view, reason)) = observer.views.values().find_map(|v| {
        let failed = v.signing_key.as_ref()?.failed.as_ref()?;
        Some((v.view, failed.clone()))
    }) {
        return Err(format!("view {view}'s signing key was not made: {reason}"));
    }
    let view = observer.current_view;
    let Some(key) = observer
        .views
        .get(&view)
        .and_then(|v| v.signing_key.as_ref())
        .filter(|k| k.bip340.is_none())
        .and_then(|k| k.record.clone())
    else {
        return Ok(());
    };
    let holders = key
        .qualified
        .iter()
        .filter_map(|p| key.members.get(*p as usize));
    let ports: Vec<u16> = holders
        .filter_map(|m| {
            port_of
                .get(&observer.name(&hex::encode(m.identity.0)))
                .copied()
        })
        .collect();
    let message = format!("signed with BIP-340 by view {view}'s committee");
    let signed = demo_signing_key::sign_bip340(&ports, token, message.as_bytes(), &key)
        .await
        .map_err(|e| format!("view {view}: {e}"))?;
    if let Some(k) = observer
        .views
        .get_mut(&view)
        .and_then(|v| v.signing_key.as_mut())
    {
        k.bip340 = Some(signed);
    }
    Ok(())
}

/// Rounds the demo waits for in the last view unless `--beacon-rounds` says otherwise.
const DEFAULT_BEACON_ROUNDS: u32 = 2;

/// Most rounds `--beacon-rounds` may ask for.
const MAX_BEACON_ROUNDS: u32 = 1000;

/// How long the demo waits, after the last view change, for `rounds` beacon rounds of
/// `period`: genesis is a period after activation, then the rounds, with 30 s of room for a
/// loaded machine (40 s in all for the default two 3 s rounds).
/// The demo's time limit without `--timeout-secs`: three attempts of every view change, each
/// view's length, the wait for the beacon's rounds at the end, and slack for starting the
/// nodes.
fn default_time_limit(args: &DemoArgs, contract: &ContractConfig) -> Duration {
    let phases = &contract.phases;
    let view_blocks = phases.contribute + phases.share + phases.publish + phases.wait;
    // With a signing key, each view lasts until its key is made.
    let key_blocks = match args.curve {
        DemoCurve::Bls12381 => 0,
        DemoCurve::Secp256k1 => contract.view_length,
    };
    let blocks = contract.first_view_change
        + args.views * (view_blocks * 3 + key_blocks + contract.view_length);
    Duration::from_secs(30 + blocks * args.block_ms() / 1000 + args.nodes as u64)
        + beacon_wait(
            args.beacon_rounds.unwrap_or(DEFAULT_BEACON_ROUNDS),
            Duration::from_secs(contract.beacon.period_secs.into()),
        )
}

fn beacon_wait(rounds: u32, period: Duration) -> Duration {
    period * (rounds + 1) + Duration::from_secs(30)
}

/// Activation block time (Unix ms) of every activated view.
fn activations(observer: &Observer) -> std::collections::BTreeMap<u64, u64> {
    observer
        .views
        .values()
        .filter_map(|v| Some((v.view, v.activated_ms.filter(|_| v.activated)?)))
        .collect()
}

/// Status ports to ask for the beacon: the active view's committee first, then every other
/// node (a member that joined in a reshare lacks the rounds from before it joined).
fn beacon_ports(
    observer: &Observer,
    port_of: &std::collections::BTreeMap<String, u16>,
) -> Vec<u16> {
    let members = observer
        .views
        .get(&observer.current_view)
        .map(|v| v.members.clone())
        .unwrap_or_default();
    let mut ports: Vec<u16> = members
        .iter()
        .filter_map(|m| port_of.get(&observer.name(m)).copied())
        .collect();
    for p in port_of.values() {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    ports
}

/// A node's traffic counters, from its `/status` (the same counters `/metrics` exposes).
pub(crate) async fn node_traffic(http: &Client, status_port: u16) -> Option<Traffic> {
    node_status(http, status_port).await.map(|s| s.traffic)
}

/// A node's `/status`, if it answers within 5 s.
async fn node_status(http: &Client, status_port: u16) -> Option<Status> {
    http.at(&format!("http://127.0.0.1:{status_port}"))
        .ok()?
        .with_timeout(Duration::from_secs(5))
        .get::<Status>("/status")
        .await
        .ok()
}

/// The beacon partials the nodes refused as their sender's fault (malformed, under another
/// member's index, or not verifying), from each node's `/status`: by sender (identity, hex),
/// how many, and how many nodes refused some.
async fn refused_partials(http: &Client, nodes: &Nodes) -> BTreeMap<String, (u64, usize)> {
    let mut by_sender: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for s in &nodes.specs {
        let Some(status) = node_status(http, s.status).await else {
            continue;
        };
        for r in status.beacon.refused_partials {
            let entry = by_sender.entry(r.identity).or_default();
            entry.0 += r.count;
            entry.1 += 1;
        }
    }
    by_sender
}

/// One line per sender of [`refused_partials`], named as the demo names nodes.
fn refused_partials_lines(
    observer: &Observer,
    by_sender: &BTreeMap<String, (u64, usize)>,
) -> Vec<String> {
    by_sender
        .iter()
        .map(|(identity, (count, refusers))| {
            format!(
                "beacon partials refused as their sender's fault (malformed or not verifying): \
                 {}'s, {count} refusals by {refusers} node{}",
                observer.name(identity),
                if *refusers == 1 { "" } else { "s" }
            )
        })
        .collect()
}

/// When a demo's wait for its views gives up: on Ctrl-C or SIGTERM, past its time limit, or
/// once the chain aborted a view change. Both demos (embedded chain and anvil) stop on the same
/// rules with the same messages.
pub(crate) struct RunLimit {
    interrupted: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    /// The future above completed (it must not be polled again).
    was_interrupted: bool,
    started: Instant,
    limit: Duration,
}

impl RunLimit {
    /// A limit of `limit` counted from `started` (the demo's start, so set-up counts too).
    pub(crate) fn new(started: Instant, limit: Duration) -> Self {
        Self {
            interrupted: Box::pin(interrupted()),
            was_interrupted: false,
            started,
            limit,
        }
    }

    /// Whether Ctrl-C or SIGTERM has come.
    pub(crate) fn interrupted(&mut self) -> bool {
        if !self.was_interrupted {
            self.was_interrupted = futures_poll_ready(&mut self.interrupted);
        }
        self.was_interrupted
    }

    /// Why the demo must stop now, if it must, as its failure message.
    pub(crate) fn stop_reason(&mut self, observer: &Observer, views: u64) -> Option<String> {
        if self.interrupted() {
            return Some("interrupted".into());
        }
        if let Some(out) = self.timed_out() {
            return Some(format!(
                "{out} at view {} of {views}",
                observer.current_view
            ));
        }
        observer.aborted()
    }

    /// "timed out after N s" once the demo's time limit (`--timeout-secs`) has passed.
    pub(crate) fn timed_out(&self) -> Option<String> {
        (self.started.elapsed() > self.limit)
            .then(|| format!("timed out after {} s", self.limit.as_secs()))
    }
}

/// Resolves on Ctrl-C or SIGTERM, so the demo stops its node processes before exiting.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Whether a pinned future has completed, without waiting.
fn futures_poll_ready<F: std::future::Future<Output = ()> + ?Sized>(
    f: &mut std::pin::Pin<Box<F>>,
) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    f.as_mut().poll(&mut cx).is_ready()
}

pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    use std::io::Write;
    let mut f = o
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_directories_of_demos_that_are_gone_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let alive = std::process::id();
        let make_dir = |name: String| {
            std::fs::create_dir(tmp.path().join(&name)).unwrap();
            std::fs::write(tmp.path().join(&name).join("chain.redb"), b"x").unwrap();
        };
        make_dir(format!("keyquorum-demo-{gone}-1700000000000"));
        make_dir(format!("keyquorum-demo-{alive}-1700000000000"));
        make_dir("keyquorum-demo-notes".into());
        make_dir(format!("keyquorum-demo-{gone}-backup"));
        std::fs::write(tmp.path().join(format!("keyquorum-demo-{gone}-5")), b"x").unwrap();
        assert_eq!(super::remove_leftover_demo_dirs(tmp.path()), 1);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![
            format!("keyquorum-demo-{alive}-1700000000000"),
            format!("keyquorum-demo-{gone}-5"),
            format!("keyquorum-demo-{gone}-backup"),
            "keyquorum-demo-notes".to_string(),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    use super::*;

    #[test]
    fn a_data_dir_of_an_earlier_run_is_refused_and_left_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("new");
        unused_data_dir(&fresh).unwrap();
        std::fs::create_dir(&fresh).unwrap();
        unused_data_dir(&fresh).unwrap();
        let key = fresh.join("node-0.key");
        std::fs::write(&key, b"earlier run").unwrap();
        let e = unused_data_dir(&fresh).unwrap_err();
        assert!(e.contains("is not empty"), "{e}");
        assert_eq!(std::fs::read(&key).unwrap(), b"earlier run");
    }

    /// The demo's beacon client with no node to ask.
    fn no_beacon() -> Beacon {
        Beacon {
            log: BeaconLog::default(),
            http: BeaconLog::client().unwrap(),
            port_of: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_time_limit_ends_the_wait_for_beacon_rounds() {
        let mut beacon = no_beacon();
        let mut expired = RunLimit {
            interrupted: Box::pin(std::future::pending()),
            was_interrupted: false,
            started: Instant::now() - Duration::from_secs(60),
            limit: Duration::from_secs(40),
        };
        // No node serves a round and the rounds' own deadline is an hour away: only
        // `--timeout-secs` (40 s, passed) ends the wait.
        let e = tokio::time::timeout(
            Duration::from_secs(30),
            beacon.wait_for_rounds(
                &Ui::new(true),
                &Observer::default(),
                1,
                Duration::from_secs(1800),
                &mut expired,
            ),
        )
        .await
        .expect("the wait ends at the time limit")
        .unwrap_err();
        assert_eq!(
            e,
            "timed out after 40 s waiting for 1 beacon rounds in view 0"
        );
    }

    #[tokio::test]
    async fn an_interrupt_ends_the_wait_for_beacon_rounds() {
        let mut beacon = no_beacon();
        let mut interrupted = RunLimit {
            interrupted: Box::pin(std::future::ready(())),
            was_interrupted: false,
            started: Instant::now(),
            limit: Duration::from_secs(3600),
        };
        // No node serves a round: without the interrupt this waits out the rounds' deadline
        // and fails for want of rounds.
        let e = beacon
            .wait_for_rounds(
                &Ui::new(true),
                &Observer::default(),
                1,
                Duration::from_secs(1),
                &mut interrupted,
            )
            .await
            .unwrap_err();
        assert_eq!(e, "interrupted");
        // Asked again, it still says so (the signal's future is not polled twice).
        assert!(interrupted.interrupted());
    }

    #[test]
    fn the_beacon_period_grows_with_the_partials_a_round_sends_unless_given() {
        for n in [1, 4, 7, 64] {
            assert_eq!(demo_beacon_period(n), 3, "n = {n}");
        }
        assert_eq!(demo_beacon_period(65), 4);
        assert_eq!(demo_beacon_period(128), 13);
        for n in 2..MAX_NODES {
            assert!(demo_beacon_period(n) >= demo_beacon_period(n - 1));
        }
        assert_eq!(demo_beacon_period(MAX_NODES), 3600);
        let period = |flags: &[&str]| {
            contract_config(&demo_args(flags))
                .unwrap()
                .beacon
                .period_secs
        };
        assert_eq!(period(&["--nodes", "128", "--committee", "128"]), 13);
        assert_eq!(period(&["--nodes", "16", "--committee", "16"]), 3);
        assert_eq!(
            period(&[
                "--nodes",
                "128",
                "--committee",
                "128",
                "--beacon-period",
                "2"
            ]),
            2
        );
    }

    #[test]
    fn stakes_make_the_slashed_node_fall_behind_its_standby() {
        // Every demo size has positive, distinct stakes (the 128-node demo once failed at
        // genesis with a zero stake).
        assert!(stake(MAX_NODES - 1) > 0);
        for i in 1..MAX_NODES {
            assert!(stake(i) < stake(i - 1));
            // 10% off stake(i - 1) is below stake(i).
            assert!(stake(i - 1) - stake(i - 1) / 10 < stake(i));
        }
        // Phases grow with the committee and never drop below three blocks.
        let small = phase_blocks(8, 200);
        let large = phase_blocks(64, 200);
        for (s, l) in small.iter().zip(&large) {
            assert!(*s >= 3 && l > s);
        }
        assert_eq!(phase_blocks(4, 10_000), [3; 4]);
    }

    /// Parses `keyquorum demo ARGS` into the demo's arguments.
    fn demo_args(args: &[&str]) -> DemoArgs {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            demo: DemoArgs,
        }
        <Wrapper as clap::Parser>::try_parse_from(
            std::iter::once("demo").chain(args.iter().copied()),
        )
        .unwrap()
        .demo
    }

    /// The default time limit leaves room for the beacon rounds the demo waits for at the
    /// end, however long the period given (it used to time out at `--beacon-period 600`).
    #[test]
    fn the_default_time_limit_covers_the_beacon_rounds_waited_for() {
        let limit = |extra: &[&str]| {
            let args = demo_args(extra);
            default_time_limit(&args, &contract_config(&args).unwrap())
        };
        let long = limit(&["--beacon-period", "600", "--beacon-rounds", "2"]);
        assert!(long > Duration::from_secs(3 * 600), "{long:?}");
        assert!(long > limit(&["--beacon-period", "3", "--beacon-rounds", "2"]));
    }

    /// A threshold of one is warned about, given or the default of a committee of one;
    /// any other threshold is not.
    #[test]
    fn a_threshold_of_one_is_warned_about() {
        let warning = |args: &[&str]| demo_args(args).single_holder_warning();
        let given = warning(&["--committee", "2", "--threshold", "1"]).unwrap();
        assert!(given.contains("threshold is 1 of 2"), "{given}");
        assert!(warning(&["--nodes", "1", "--committee", "1", "--faulty", "0"]).is_some());
        assert_eq!(warning(&["--committee", "2", "--threshold", "2"]), None);
        assert_eq!(warning(&[]), None);
    }

    /// `--variant complaint` alone runs: its faulty nodes default to the complaint variant's
    /// own fault, not to an ack-or-reveal one that is then refused.
    #[test]
    fn the_default_fault_follows_the_variant() {
        let complaint = demo_args(&["--variant", "complaint"]);
        check_args(&complaint).unwrap();
        assert_eq!(complaint.fault_of(0), Fault::BadShare);
        assert_eq!(demo_args(&[]).fault_of(0), Fault::Equivocate);
    }

    /// A default number of faulty nodes the other parameters refuse is lowered, with a note; an
    /// explicit one, or a refusal that no lower number avoids, is still refused.
    #[test]
    fn a_default_fault_count_that_does_not_fit_is_lowered() {
        let lowered = |given: &[&str]| {
            let mut args = demo_args(given);
            let note = check_args_lowering_default_faults(&mut args);
            (note, args.faulty())
        };
        // Three seats with threshold 2 hold no dealer of bad shares (the complaint variant's
        // default fault).
        let small = ["--variant", "complaint", "--nodes", "4", "--committee", "3"];
        let (note, faulty) = lowered(&small);
        assert_eq!(faulty, 0);
        let note = note.unwrap().unwrap();
        assert!(
            note.contains("the default --faulty 1 does not fit"),
            "{note}"
        );
        assert!(note.contains("running with 0 faulty nodes"), "{note}");
        // With --curve secp256k1 the default is one per signing-key fault; four seats with
        // threshold 3 hold one, as two disqualified dealers would leave two holders.
        let secp = [
            "--committee",
            "4",
            "--variant",
            "complaint",
            "--curve",
            "secp256k1",
        ];
        let (note, faulty) = lowered(&secp);
        assert!(note.unwrap().unwrap().contains("--faulty 3"));
        assert_eq!(faulty, 1);
        let two = check_args(&demo_args(&[&secp[..], &["--faulty", "2"]].concat()));
        assert!(two.unwrap_err().contains("fewer than the threshold 3"));
        // The defaults that fit are kept, without a note.
        assert_eq!(lowered(&[]), (Ok(None), 1));
        assert_eq!(demo_args(&[]).faulty_summary(), "1 faulty (equivocate)");
        assert_eq!(
            demo_args(&["--faulty", "0"]).faulty_summary(),
            "no faulty nodes"
        );
        // Given, it is refused as before.
        let mut given = demo_args(&[&small[..], &["--faulty", "1"]].concat());
        assert!(check_args_lowering_default_faults(&mut given).is_err());
        // A fault named for nobody to commit is no way out of a refusal.
        let (refused, _) = lowered(&[&small[..], &["--fault", "bad-share"]].concat());
        assert!(refused.is_err());
        // Nor is a threshold above the quorum, whatever the faults.
        let (refused, faulty) = lowered(&["--committee", "4", "--threshold", "4"]);
        assert!(refused.unwrap_err().contains("above the dealer quorum"));
        assert_eq!(faulty, 1);
    }

    #[test]
    fn the_quorum_leaves_room_for_faulty_dealers() {
        let k = |args: &[&str]| demo_args(args).quorum().resolve(7);
        // 75% of 7 is 6, which one faulty dealer leaves.
        assert_eq!(k(&["--committee", "7", "--fault", "bad-share"]), 6);
        assert_eq!(k(&["--committee", "7", "--faulty", "0"]), 6);
        // Two bad-share dealers of seven: five honest ones make the quorum, so a player is
        // excluded only on more than two dealers' reports, more than the faulty can give.
        assert_eq!(
            k(&["--committee", "7", "--faulty", "2", "--fault", "bad-share"]),
            5
        );
        // Two disqualified dealers: lowered too, so the first attempt completes.
        assert_eq!(
            k(&["--committee", "7", "--faulty", "2", "--fault", "equivocate"]),
            5
        );
        // Three: four would be below the threshold, so the quorum stays and a retry with
        // standbys completes the view change.
        assert_eq!(
            k(&["--committee", "7", "--faulty", "3", "--fault", "equivocate"]),
            6
        );
        check_args(&demo_args(&["--committee", "7", "--faulty", "3"])).unwrap();
        // Silent, crashed and beacon-faulty nodes deal nothing wrong.
        for fault in ["silent", "crash", "bad-beacon"] {
            assert_eq!(
                k(&["--committee", "7", "--faulty", "2", "--fault", fault]),
                6
            );
        }
        // The largest percentage that fits: 65 bad-share dealers of 200 leave 135, and 67%
        // counts 134 (68% would count 136).
        assert_eq!(
            demo_args(&[
                "--committee",
                "200",
                "--faulty",
                "65",
                "--fault",
                "bad-share"
            ])
            .quorum()
            .resolve(200),
            134
        );
        // A threshold refused for itself is not blamed on the faults.
        let refused = check_args(&demo_args(&[
            "--committee",
            "8",
            "--threshold",
            "3",
            "--fault",
            "bad-share",
        ]))
        .unwrap_err();
        assert!(
            refused.contains("t must be at least 5")
                && refused.contains("(75% of it)")
                && !refused.contains("bad-share"),
            "{refused}"
        );
        // Three bad-share dealers of seven leave four, fewer than the threshold of five.
        let refused = check_args(&demo_args(&[
            "--committee",
            "7",
            "--faulty",
            "3",
            "--fault",
            "bad-share",
        ]))
        .unwrap_err();
        assert!(
            refused.contains("unless the quorum is the 4 honest dealers"),
            "{refused}"
        );
    }
}
