//! `keyquorum demo --chain anvil`: the demo against the Solidity coordinator
//! (`contracts/src/Coordinator.sol`) on a local anvil that the demo starts itself.
//!
//! It starts anvil (the pinned npm package, [`keyquorum_evm::anvil`]), deploys the contract with
//! `keyquorum deploy`'s code ([`crate::deploy::deploy_configured`]) and a configuration sized
//! to the demo (the committee's seats, threshold and quorum as the percentages the contract
//! takes, phases in blocks, 10% of a culprit's stake slashed on a proof and 10% of that paid to
//! the reporter), funds one account per node with its stake and gas (`anvil_setBalance`), and
//! starts one `keyquorum node --chain evm` process per node, which registers itself with its
//! stake. The nodes start each view change on chain when it is due, post the DKG through the
//! contract, and a member activates the view with the new committee's threshold signature and,
//! from view 2 on, the previous committee's handover signature under the previous group key.
//! The contract is deployed to reshare, as the embedded demo's chain does: view 1 makes a fresh
//! key, and from view 2 on the previous view's members deal shares of their shares to the new
//! committee, so the group key stays.
//!
//! The faulty nodes run `--fault forge-ack-aggregate`, the fault the contract can check from
//! the post itself: every board disqualifies their publications, and an honest node proves the
//! forgery on chain (`proveBadAckAggregate`), which slashes the culprit and pays the reporter.
//! The demo waits, after the last activation, until each faulty dealer of each activated
//! ceremony is slashed in it. A faulty node left out of view 1's magic block deals in no
//! reshare, so it is slashed in view 1's ceremony only.
//!
//! The demo follows the contract's logs with the nodes' own follower and translator
//! ([`keyquorum_evm::follower::Follower`], [`keyquorum_evm::events::Translator`]), so its report
//! ([`crate::demo_report`]) is built from the same events as the embedded demo's, with the
//! same board replay. Then it reads every transaction to the contract with its receipt for what
//! the logs lack: each activation's transaction and signatures (the committee's signature
//! checked again with `blst`, and the chain of magic blocks with `verify_magic_block_chain`),
//! each slash's transaction and the culprit's stake after it (`stakeOf` at that block), and the
//! gas used per kind of transaction. After each activation it reads the group key the contract
//! holds and each node's `/status`, and fails if they do not all agree with the magic block.
//!
//! JSON (`--format json`): `{chain: "anvil", contract, deployed_at, views: [the embedded
//! demo's view object, plus activation: {block, tx_hash, gas_used}, slashes: [{ceremony_number,
//! culprit, culprit_account, fault, amount, reporter, reporter_account, reward, burned,
//! stake_after, block, tx_hash, gas_used}], nodes: [{node, view, group_key, share_index,
//! magic_block_mismatch}]],
//! faulty: [node], stakes: [{node, account, faulty, registered, stake}], gas: [{kind, count,
//! reverted, gas_used, max_gas}]}`, amounts in wei.
//!
//! Not on anvil: the random beacon and the on-demand signature (the nodes run with
//! `--no-beacon`), the complaint variant and the secp256k1 signing key (the contract has
//! neither), and faults other than forge-ack-aggregate (the one fault the contract slashes on
//! a node's proof); [`check_args`] refuses those options.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keyquorum_contract::hex::Hex;
use keyquorum_contract::{
    BeaconConfig, Event, KeyMode, MagicBlock, SignedMagicBlock, Size, verify_magic_block_chain,
};
use keyquorum_devchain::Client as HttpClient;
use keyquorum_evm::Coordinator::{self, CoordinatorEvents};
use keyquorum_evm::alloy_primitives::{Address, U256};
use keyquorum_evm::alloy_sol_types::SolCall;
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{BoardInput, Client, ContractTx, Follower, chain_key};
use keyquorum_evm::events::Translator;
use keyquorum_evm::{Deployment, PrivateKeySigner, g1_point, g2_compressed};
use keyquorum_node::keystore::{self, KdfParams, Passphrase};
use keyquorum_node::status::Status;
use keyquorum_node::{Fault, NodeKeys};
use serde_json::{Value, json};

use crate::OutputFormat;
use crate::demo::{
    DemoArgs, DemoCurve, DemoVariant, NodeLaunch, NodeLauncher, NodeProc, RunLimit, SignedMessages,
    free_port, phase_blocks, stake, verify_signatures, write_private,
};
use crate::demo_report::{self, ChainTx, Excluded, Observer, ProvenSlash};
use crate::deploy::{DeployConfig, deploy_configured};

/// The chain name the demo's contract binds ceremonies and magic blocks to.
const CHAIN_NAME: &str = "keyquorum-demo-anvil";
/// Most seats and most eligible nodes the contract takes (its `MAX_COMMITTEE` and
/// `MAX_CANDIDATES`).
const MAX_SEATS: usize = 256;
const MAX_CANDIDATES: usize = 300;
/// Shortest phases, in milliseconds: each node process sends its posts one transaction at a
/// time and waits for the receipt, and acts on a block only once one more is built on it.
const MIN_PHASE_MS: [u64; 4] = [6000, 6000, 6000, 8000];
/// How long the demo waits, after the last activation, for the faulty members' slashes.
const SLASH_WAIT: Duration = Duration::from_secs(60);
/// How long the demo waits, after an activation, for every node to report the view.
const STATUS_WAIT: Duration = Duration::from_secs(30);

/// Refuses what the demo cannot do on anvil (usage errors).
pub(crate) fn check_args(args: &DemoArgs) -> Result<(), String> {
    if args.curve != DemoCurve::Bls12381 {
        return Err("--curve secp256k1 is not available with --chain anvil: the coordinator contract makes no secp256k1 signing key".into());
    }
    if args.variant != DemoVariant::AckReveal {
        return Err("--variant complaint is not available with --chain anvil: the coordinator contract runs ack-or-reveal ceremonies only".into());
    }
    if let Some(f) = args.fault
        && f != Fault::ForgeAckAggregate
    {
        return Err(format!(
            "--fault {} is not available with --chain anvil: the faulty nodes there forge their ack aggregates (forge-ack-aggregate), the fault an honest node proves to the contract and the contract slashes",
            f.name()
        ));
    }
    if args.beacon_rounds.is_some() {
        return Err("--beacon-rounds is not available with --chain anvil: the nodes there run without the beacon".into());
    }
    if args.trust_chain || args.verify_chain {
        return Err(format!(
            "--{} is not available with --chain anvil: it concerns the embedded chain's blocks, \
             which nodes re-execute; on anvil they follow the coordinator's logs",
            if args.trust_chain {
                "trust-chain"
            } else {
                "verify-chain"
            }
        ));
    }
    if args.block_ms() < 100 {
        return Err("--block-ms must be at least 100 with --chain anvil".into());
    }
    if args.committee > MAX_SEATS {
        return Err(format!(
            "--committee must be at most {MAX_SEATS} with --chain anvil (the contract's largest committee)"
        ));
    }
    if args.nodes > MAX_CANDIDATES {
        return Err(format!(
            "--nodes must be at most {MAX_CANDIDATES} with --chain anvil (the contract's most eligible nodes)"
        ));
    }
    percentages(args).map(|_| ())
}

/// The smallest percentage of `n` that the contract (rounding up, as `Size::Percent`) turns
/// into `count`.
fn percent_for(n: usize, count: usize) -> Option<u8> {
    (1..=100u8).find(|p| Size::Percent(*p).resolve(n) == count)
}

/// The contract's threshold and quorum percentages: the threshold as `--threshold` gives it
/// (default 66%), the quorum 75% of the committee but no more than its honest members, whose
/// publications are the only ones the boards accept; checked against the contract's rule
/// (t <= k, t + k > n, t >= 2(n - k) + 1).
fn percentages(args: &DemoArgs) -> Result<(u8, u8), String> {
    let n = args.committee;
    let t = args
        .threshold
        .unwrap_or_else(|| Size::Percent(66).resolve(n));
    let k = Size::Percent(75).resolve(n).min(n - args.faulty());
    if t > k || t + k <= n || t < 2 * (n - k) + 1 {
        return Err(format!(
            "with --chain anvil a committee of {n} with threshold {t} and {} faulty members needs a quorum of {k} dealers, which the contract refuses (it needs t <= k, t + k > n, t >= 2(n - k) + 1): use a larger --committee, another --threshold or fewer --faulty",
            args.faulty()
        ));
    }
    let none = |what: &str, c: usize| format!("no percentage of {n} seats is {c} ({what})");
    Ok((
        percent_for(n, t).ok_or_else(|| none("threshold", t))?,
        percent_for(n, k).ok_or_else(|| none("quorum", k))?,
    ))
}

/// The repository whose `contracts/` holds the pinned anvil (`npm ci` there), or whose lockfile
/// pins the package to fetch; `KEYQUORUM_ANVIL` names a binary instead.
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One node process of the demo.
struct NodeSpec {
    name: String,
    account: Address,
    /// Its encrypted keystore and its account's key file.
    key_file: PathBuf,
    chain_key_file: PathBuf,
    p2p: u16,
    /// Its p2p address with its peer id, for the others' `--bootstrap`.
    address: String,
    /// Its HTTP port (`/status`).
    status: u16,
    faulty: bool,
    stake: u64,
}

/// Gas of one kind of transaction.
#[derive(Default)]
struct GasUse {
    count: u64,
    reverted: u64,
    total: u64,
    max: u64,
}

/// The kind of a call to the contract, by its selector (a post by its kind byte).
fn call_kind(input: &[u8]) -> &'static str {
    let Some(selector) = input.get(..4) else {
        return "other";
    };
    let is = |s: [u8; 4]| selector == s;
    if is(Coordinator::registerCall::SELECTOR) {
        "register"
    } else if is(Coordinator::startViewChangeCall::SELECTOR) {
        "startViewChange"
    } else if is(Coordinator::postCall::SELECTOR) {
        match Coordinator::postCall::abi_decode(input)
            .ok()
            .and_then(|c| c.signedPost.get(48).copied())
        {
            Some(1) => "post (contribution)",
            Some(2) => "post (publication)",
            _ => "post",
        }
    } else if is(Coordinator::activateCall::SELECTOR) {
        "activate"
    } else if is(Coordinator::proveBadAckAggregateCall::SELECTOR) {
        "proveBadAckAggregate"
    } else if is(Coordinator::proveBadRevealCall::SELECTOR) {
        "proveBadReveal"
    } else if is(Coordinator::proveEquivocationCall::SELECTOR) {
        "proveEquivocation"
    } else {
        "other"
    }
}

fn wei(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// A random secp256k1 account key.
fn random_chain_key() -> PrivateKeySigner {
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    let key = chain_key(&secret);
    secret.fill(0);
    key
}

/// Every node's status once all report view `view` (or `None` after [`STATUS_WAIT`]).
async fn statuses_in(http: &HttpClient, specs: &[NodeSpec], view: u64) -> Option<Vec<Status>> {
    let deadline = Instant::now() + STATUS_WAIT;
    loop {
        let mut all = Vec::new();
        for s in specs {
            let status = http
                .at(&format!("http://127.0.0.1:{}", s.status))
                .ok()?
                .with_timeout(Duration::from_secs(5))
                .get::<Status>("/status")
                .await
                .ok()
                .filter(|st| st.view >= view);
            all.extend(status);
        }
        if all.len() == specs.len() {
            return Some(all);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The demo on anvil; any error is a failed run.
pub(crate) async fn demo(args: &DemoArgs, dir: &Path) -> Result<(), String> {
    let json = args.format == OutputFormat::Json;
    let started = Instant::now();
    let say = |s: String| {
        if !json {
            eprintln!("{s}");
        }
    };
    say(format!(
        "keyquorum demo on anvil: {} nodes for {} seats, {}, {} view changes, blocks every {} ms",
        args.nodes,
        args.committee,
        args.faulty_summary(),
        args.views,
        args.block_ms()
    ));
    let mut observer = Observer::default();
    let nodes = DemoNodes::create(args, dir, &mut observer)?;
    let chain = AnvilChain::start(args, &nodes.specs).await?;
    say(format!(
        "  anvil at {}, coordinator deployed at {} in block {}",
        chain.anvil.url(),
        chain.contract,
        chain.deployed_at
    ));
    let mut procs = spawn_nodes(dir, &nodes, &chain)?;

    let reader = Client::connect(chain.anvil.url(), chain.deployer.clone(), chain.contract)
        .await
        .map_err(|e| format!("anvil: {e}"))?;
    let mut followed = Followed::new(&reader, &chain, &nodes).await?;
    let mut run_limit = RunLimit::new(started, chain.time_limit(args));
    let failure = follow(
        args,
        &nodes,
        &reader,
        &mut observer,
        &mut followed,
        &mut run_limit,
        &mut procs,
        &say,
    )
    .await;
    // An interrupt from the terminal stops anvil too (same process group), so the reason the
    // run stopped comes first, not the failed reads it causes.
    let receipts = match Receipts::read(&reader, &chain, &nodes, &followed, &mut observer).await {
        Ok(r) => r,
        Err(e) => {
            return Err(match failure {
                Some(f) => format!("{f} (no report: reading the chain failed: {e})"),
                None => e,
            });
        }
    };
    let verified = Verified::check(&mut observer, &followed.magic_blocks);
    let report = Report {
        args,
        chain: &chain,
        nodes: &nodes,
        observer: &observer,
        followed: &followed,
        receipts: &receipts,
        verified: &verified,
        failure: failure.as_deref(),
    };
    if json {
        report.print_json();
    } else {
        report.print_text();
    }
    report.write_html()?;

    // Stop the nodes, then anvil.
    drop(procs);
    drop(chain);
    if !json {
        out!(
            "report written to {} · {:.1} s{}",
            args.report.display(),
            started.elapsed().as_secs_f64(),
            match &args.data_dir {
                Some(d) => format!(" · logs in {}", d.display()),
                None => String::new(),
            }
        );
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some(e) = followed.key_mismatch {
        return Err(e);
    }
    if verified.bad_signature {
        return Err("a magic block signature does not verify".into());
    }
    if let Some(e) = verified.bad_chain {
        return Err(format!("the chain of magic blocks does not verify: {e}"));
    }
    Ok(())
}

/// The demo's nodes: their key files and accounts, written before anything starts.
struct DemoNodes {
    specs: Vec<NodeSpec>,
    /// The 0600 file holding the keystores' random passphrase.
    pass_file: PathBuf,
}

impl DemoNodes {
    /// One encrypted keystore per node, one random passphrase in a 0600 file, one secp256k1
    /// account per node in a 0600 file; every node's name entered in `observer`.
    fn create(args: &DemoArgs, dir: &Path, observer: &mut Observer) -> Result<Self, String> {
        let mut pass_bytes = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut pass_bytes);
        let pass_hex = hex::encode(pass_bytes);
        let pass_file = dir.join("passphrase");
        write_private(&pass_file, &pass_hex)?;
        let passphrase = Passphrase::new(pass_hex);
        let width = if args.nodes > 10 { 2 } else { 1 };
        let faulty_from = args.committee - args.faulty();
        let mut specs = Vec::new();
        let mut ports = BTreeSet::new();
        for i in 0..args.nodes {
            let keys = NodeKeys::generate();
            let name = format!("node-{i:0width$}");
            let key_file = dir.join(format!("{name}.key"));
            keystore::write(&key_file, &keys, &passphrase, KdfParams::light())
                .map_err(|e| e.to_string())?;
            let account_key = random_chain_key();
            let chain_key_file = dir.join(format!("{name}.chain-key"));
            write_private(&chain_key_file, &hex::encode(account_key.to_bytes()))?;
            observer.names.insert(
                hex::encode(keys.identity().public().as_bytes()),
                name.clone(),
            );
            let p2p = free_port(&mut ports)?;
            let status = free_port(&mut ports)?;
            specs.push(NodeSpec {
                name,
                account: account_key.address(),
                key_file,
                chain_key_file,
                p2p,
                address: format!("/ip4/127.0.0.1/tcp/{p2p}/p2p/{}", keys.peer_id()),
                status,
                faulty: (faulty_from..args.committee).contains(&i),
                stake: stake(i),
            });
        }
        Ok(Self { specs, pass_file })
    }

    /// The node that owns `account`, or the account itself.
    fn name(&self, account: &Address) -> String {
        self.specs
            .iter()
            .find(|s| s.account == *account)
            .map_or_else(|| account.to_string(), |s| s.name.clone())
    }

    fn faulty_accounts(&self) -> BTreeSet<Address> {
        self.specs
            .iter()
            .filter(|s| s.faulty)
            .map(|s| s.account)
            .collect()
    }
}

/// Anvil, with every node's account funded and the coordinator deployed.
struct AnvilChain {
    anvil: Anvil,
    deployer: PrivateKeySigner,
    contract: Address,
    deployed_at: u64,
    /// Blocks from the deployment's configuration to the first view change.
    blocks_to_first_view_change: u64,
    /// Blocks of one ceremony's four phases.
    view_blocks: u64,
    block_ms: u64,
    /// The beacon the contract is configured with.
    beacon: BeaconConfig,
}

impl AnvilChain {
    async fn start(args: &DemoArgs, specs: &[NodeSpec]) -> Result<Self, String> {
        let (threshold_percent, quorum_percent) = percentages(args)?;
        let mut beacon = BeaconConfig::default();
        args.beacon.apply(&mut beacon);
        beacon.validate().map_err(|e| e.to_string())?;
        let block_ms = args.block_ms();
        let anvil = Anvil::start_with_block_ms(&repository(), Some(block_ms))?;
        let ether = U256::from(10u128.pow(18));
        let deployer = random_chain_key();
        anvil.fund(deployer.address(), ether).await?;
        for s in specs {
            // Its stake and gas for the ceremonies' posts, activations and proofs.
            anvil.fund(s.account, U256::from(s.stake) + ether).await?;
        }
        let probe = Client::connect(anvil.url(), deployer.clone(), Address::ZERO)
            .await
            .map_err(|e| format!("anvil: {e}"))?;
        let head = probe
            .block_number()
            .await
            .map_err(|e| format!("anvil: {e}"))?;
        let embedded = phase_blocks(args.committee, block_ms);
        let [contribute, share, publish, wait] =
            std::array::from_fn(|i| embedded[i].max(MIN_PHASE_MS[i].div_ceil(block_ms)));
        // Time for every node to start, register, and find the others before the first
        // ceremony.
        let blocks_to_first_view_change =
            (5000 + 250 * args.nodes as u64).div_ceil(block_ms).max(8);
        let config = DeployConfig {
            chain_name: CHAIN_NAME.into(),
            max_size: args.committee as u32,
            min_size: args.committee as u32,
            threshold_percent,
            quorum_percent,
            keep_previous_percent: 70,
            min_stake: 1,
            contribute_blocks: contribute,
            share_blocks: share,
            publish_blocks: publish,
            wait_blocks: wait,
            first_view_change: head + blocks_to_first_view_change,
            view_length: 2,
            unbonding_blocks: 100,
            misbehaviour_percent: 10,
            reporter_percent: 10,
            beacon_scheme: beacon.scheme,
            beacon_period: beacon.period_secs,
            key_mode: KeyMode::Reshare,
        };
        let (contract, deployed_at) =
            deploy_configured(anvil.url(), deployer.clone(), &config).await?;
        Ok(Self {
            anvil,
            deployer,
            contract,
            deployed_at,
            blocks_to_first_view_change,
            view_blocks: contribute + share + publish + wait,
            block_ms,
            beacon,
        })
    }

    /// How long the demo may take (`--timeout-secs`, or room for every view's ceremony to run
    /// twice).
    fn time_limit(&self, args: &DemoArgs) -> Duration {
        Duration::from_secs(args.timeout_secs.unwrap_or(
            60 + (self.blocks_to_first_view_change + args.views * (2 * self.view_blocks + 2))
                * self.block_ms
                / 1000
                + 2 * args.nodes as u64,
        ))
    }
}

/// One `keyquorum node --chain evm` process per node, registering with its stake; the faulty
/// ones forge their ack aggregates.
fn spawn_nodes(dir: &Path, nodes: &DemoNodes, chain: &AnvilChain) -> Result<Vec<NodeProc>, String> {
    let launcher = NodeLauncher::new(
        dir,
        &nodes.pass_file,
        nodes.specs.iter().map(|s| s.address.as_str()),
    )?;
    let mut procs = Vec::new();
    for (i, s) in nodes.specs.iter().enumerate() {
        let node_config = dir.join(format!("{}.toml", s.name));
        std::fs::write(
            &node_config,
            format!(
                "[evm]\nchain_name = \"{CHAIN_NAME}\"\nfrom_block = {}\nconfirmations = 1\n",
                chain.deployed_at
            ),
        )
        .map_err(|e| format!("{}: {e}", node_config.display()))?;
        let mut cmd = launcher.command(
            i,
            &NodeLaunch {
                name: &s.name,
                key_file: &s.key_file,
                p2p: s.p2p,
                status: s.status,
                stake: s.stake,
            },
        )?;
        cmd.arg("--config")
            .arg(&node_config)
            .args(["--chain", "evm", "--rpc", chain.anvil.url(), "--contract"])
            .arg(chain.contract.to_string())
            .arg("--chain-key-file")
            .arg(&s.chain_key_file)
            .arg("--no-beacon");
        if s.faulty {
            cmd.arg("--fault").arg(Fault::ForgeAckAggregate.name());
        }
        procs.push(NodeLauncher::spawn(&s.name, cmd)?);
    }
    Ok(procs)
}

/// What the demo learns from the contract's logs, read with the nodes' own follower and
/// translator.
struct Followed {
    follower: Follower,
    translator: Translator,
    /// The first node's HTTP client; [`check_view_keys`] reaches the others through it.
    http: HttpClient,
    /// Ceremony id => (view, ceremony number, dealers' accounts): the committee, or for a
    /// reshare the previous view's members.
    ceremonies: HashMap<U256, (u64, u32, Vec<Address>)>,
    activated: BTreeMap<u64, U256>,
    slashed: BTreeSet<(U256, Address)>,
    magic_blocks: BTreeMap<u64, MagicBlock>,
    node_statuses: BTreeMap<u64, Vec<Status>>,
    key_mismatch: Option<String>,
    last_activation: Option<Instant>,
}

impl Followed {
    async fn new(reader: &Client, chain: &AnvilChain, nodes: &DemoNodes) -> Result<Self, String> {
        let chain_id = reader.chain_id().await.map_err(|e| format!("anvil: {e}"))?;
        let view_length = reader
            .view_length()
            .await
            .map_err(|e| format!("anvil: {e}"))?;
        Ok(Self {
            follower: Follower::new(
                reader.provider().clone(),
                chain.contract,
                chain.deployed_at,
                0,
            ),
            translator: Translator::new(Deployment {
                chain_id,
                contract: chain.contract,
                chain_name: CHAIN_NAME.into(),
                beacon: chain.beacon,
                view_length,
            }),
            http: HttpClient::new(&format!("http://127.0.0.1:{}", nodes.specs[0].status))
                .map_err(|e| e.to_string())?,
            ceremonies: HashMap::new(),
            activated: BTreeMap::new(),
            slashed: BTreeSet::new(),
            magic_blocks: BTreeMap::new(),
            node_statuses: BTreeMap::new(),
            key_mismatch: None,
            last_activation: None,
        })
    }

    /// Each faulty dealer of an activated ceremony not slashed in it yet, as (view, account).
    fn unslashed(&self, faulty: &BTreeSet<Address>) -> Vec<(u64, Address)> {
        let mut missing = Vec::new();
        for (view, id) in &self.activated {
            let Some((_, _, committee)) = self.ceremonies.get(id) else {
                continue;
            };
            for a in committee.iter().filter(|a| faulty.contains(*a)) {
                if !self.slashed.contains(&(*id, *a)) {
                    missing.push((*view, *a));
                }
            }
        }
        missing
    }

    /// One contract log in block `block` (at `time_ms`): the demo's own records, then the
    /// events the nodes derive from it.
    #[allow(clippy::too_many_arguments)]
    async fn on_input(
        &mut self,
        input: BoardInput,
        block: u64,
        time_ms: u64,
        reader: &Client,
        nodes: &DemoNodes,
        observer: &mut Observer,
        say: &dyn Fn(String),
    ) {
        match &input {
            BoardInput::CommitteeSelected(sel) => {
                self.ceremonies.insert(
                    sel.ceremony,
                    (sel.viewNumber, sel.number, sel.committee.clone()),
                );
                say(format!(
                    "  view {} ceremony {}: committee {} (block {block})",
                    sel.viewNumber,
                    sel.number,
                    sel.committee
                        .iter()
                        .map(|a| nodes.name(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                ));
            }
            BoardInput::Slashed(s) => {
                self.slashed.insert((s.ceremony, s.culprit));
                say(format!(
                    "  {} slashed {} wei for {} on {}'s proof (block {block})",
                    nodes.name(&s.culprit),
                    s.amount,
                    s.fault,
                    nodes.name(&s.reporter),
                ));
            }
            BoardInput::ViewActivated(a) => {
                self.activated.insert(a.viewNumber, a.ceremony);
            }
            _ => {}
        }
        for e in self.translator.translate(input) {
            observer.on_event(&e, block, time_ms);
            match &e {
                Event::CommitteeSelected {
                    view,
                    ceremony_number,
                    dealers,
                    ..
                } if !dealers.is_empty() => {
                    let accounts: Vec<Address> = dealers
                        .iter()
                        .filter_map(|d| {
                            self.translator
                                .registered()
                                .into_iter()
                                .find(|(_, id)| id == &d.0)
                                .map(|(a, _)| a)
                        })
                        .collect();
                    for (v, n, listed) in self.ceremonies.values_mut() {
                        if (*v, *n) == (*view, *ceremony_number) {
                            *listed = accounts.clone();
                        }
                    }
                }
                Event::PostRejected {
                    view,
                    dealer,
                    reason,
                    ..
                } => {
                    let who = observer
                        .views
                        .get(view)
                        .and_then(|v| v.ceremonies.last())
                        .and_then(|c| c.committee.get(*dealer as usize))
                        .map(|i| observer.name(i))
                        .unwrap_or_else(|| format!("dealer {dealer}"));
                    say(format!(
                        "  view {view}: {who}'s post refused by every board: {reason}"
                    ));
                }
                Event::MagicBlockCreated {
                    view, magic_block, ..
                } => {
                    self.magic_blocks.insert(*view, magic_block.clone());
                }
                Event::CeremonyFailed {
                    view,
                    ceremony_number,
                    reason,
                    ..
                } => {
                    say(format!(
                        "  view {view} ceremony {ceremony_number} failed: {reason}; the next ceremony starts once its wait phase is over"
                    ));
                }
                Event::ViewActivated { view, .. } => {
                    self.last_activation = Some(Instant::now());
                    say(format!("  view {view} activated in block {block}"));
                    match check_view_keys(reader, &self.http, &nodes.specs, observer, *view, block)
                        .await
                    {
                        Ok(statuses) => {
                            self.node_statuses.insert(*view, statuses);
                        }
                        Err(e) => {
                            self.key_mismatch.get_or_insert(e);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Follows the contract as the nodes do, until every view is active and every faulty member of
/// an activated ceremony is slashed in it. Returns why it stopped before that, if it did.
#[allow(clippy::too_many_arguments)]
async fn follow(
    args: &DemoArgs,
    nodes: &DemoNodes,
    reader: &Client,
    observer: &mut Observer,
    followed: &mut Followed,
    run_limit: &mut RunLimit,
    procs: &mut [NodeProc],
    say: &dyn Fn(String),
) -> Option<String> {
    let faulty = nodes.faulty_accounts();
    loop {
        let views_done = observer.current_view >= args.views;
        let missing = followed.unslashed(&faulty);
        if views_done && missing.is_empty() {
            return None;
        }
        if let Some(reason) = run_limit.stop_reason(observer, args.views) {
            return Some(reason);
        }
        if views_done
            && followed
                .last_activation
                .is_some_and(|t| t.elapsed() > SLASH_WAIT)
        {
            let (view, culprit) = missing[0];
            return Some(format!(
                "{} forged its ack aggregates in view {view}'s ceremony but was not slashed within {} s of the last activation",
                nodes.name(&culprit),
                SLASH_WAIT.as_secs()
            ));
        }
        for (name, status) in NodeProc::newly_exited(procs) {
            say(format!("  {name} exited ({status})"));
        }
        let blocks = match followed.follower.poll().await {
            Ok((blocks, _)) => blocks,
            Err(e) => {
                say(format!("  following the contract: {e}"));
                Vec::new()
            }
        };
        if blocks.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        for b in blocks {
            let time_ms = reader
                .block_timestamp(b.number)
                .await
                .ok()
                .flatten()
                .unwrap_or(0)
                * 1000;
            for input in b.inputs {
                followed
                    .on_input(input, b.number, time_ms, reader, nodes, observer, say)
                    .await;
            }
        }
    }
}

/// What the logs lack, read from the transactions to the contract and their receipts.
struct Receipts<'a> {
    /// Gas per kind of transaction.
    gas: BTreeMap<&'static str, GasUse>,
    /// Per node: its stake at registration (if it registered) and now, in wei.
    stakes: Vec<(&'a NodeSpec, Option<u64>, u64)>,
}

impl<'a> Receipts<'a> {
    /// Reads every transaction since the deployment; records each activation's transaction
    /// and signatures, and each slash's transaction and the culprit's stake after it, in
    /// `observer`.
    async fn read(
        reader: &Client,
        chain: &AnvilChain,
        nodes: &'a DemoNodes,
        followed: &Followed,
        observer: &mut Observer,
    ) -> Result<Self, String> {
        let head = reader
            .block_number()
            .await
            .map_err(|e| format!("anvil: {e}"))?;
        let txs = reader
            .contract_transactions(chain.deployed_at, head)
            .await
            .map_err(|e| format!("reading the contract's transactions: {e}"))?;
        let mut gas: BTreeMap<&'static str, GasUse> = BTreeMap::new();
        let mut registered: HashMap<Address, u64> = HashMap::new();
        for tx in &txs {
            let g = gas.entry(call_kind(&tx.input)).or_default();
            g.count += 1;
            g.reverted += u64::from(!tx.success);
            g.total += tx.gas_used;
            g.max = g.max.max(tx.gas_used);
            for ev in &tx.events {
                match ev {
                    CoordinatorEvents::Registered(r) => {
                        registered.insert(r.account, wei(r.stake));
                    }
                    CoordinatorEvents::ViewActivated(a) => {
                        record_activation(observer, tx, a.viewNumber);
                    }
                    CoordinatorEvents::Slashed(s) => {
                        record_slash(reader, nodes, followed, observer, tx, s).await?;
                    }
                    _ => {}
                }
            }
        }
        let mut stakes = Vec::new();
        for s in &nodes.specs {
            let now = reader
                .read(Coordinator::stakeOfCall { account: s.account })
                .await
                .map(|r| wei(r.stake))
                .map_err(|e| format!("stakeOf: {e}"))?;
            stakes.push((s, registered.get(&s.account).copied(), now));
        }
        Ok(Self { gas, stakes })
    }
}

/// A slash by `tx`: its transaction and the culprit's stake after it, and the culprit's
/// exclusion (the embedded chain reports its own).
async fn record_slash(
    reader: &Client,
    nodes: &DemoNodes,
    followed: &Followed,
    observer: &mut Observer,
    tx: &ContractTx,
    s: &Coordinator::Slashed,
) -> Result<(), String> {
    let Some((view, number, _)) = followed.ceremonies.get(&s.ceremony) else {
        return Ok(());
    };
    let stake_after = reader
        .read_at(Coordinator::stakeOfCall { account: s.culprit }, tx.block)
        .await
        .map(|r| wei(r.stake))
        .map_err(|e| format!("stakeOf: {e}"))?;
    let slash = ProvenSlash {
        ceremony_number: *number,
        culprit: nodes.name(&s.culprit),
        culprit_account: s.culprit.to_string(),
        reporter: nodes.name(&s.reporter),
        reporter_account: s.reporter.to_string(),
        fault: s.fault.clone(),
        amount: wei(s.amount),
        reward: wei(s.reward),
        burned: wei(s.burned),
        stake_after,
        tx: chain_tx(tx),
    };
    if let Some(v) = observer.views.get_mut(view) {
        if let Some(identity) = followed.translator.identity_of(&s.culprit) {
            v.excluded.push(Excluded {
                identity: hex::encode(identity),
                ceremony_number: *number,
                role: "dealer".into(),
                reason: format!("{} (proven on chain by {})", s.fault, slash.reporter),
                penalty: true,
                // In wei, beside the view's other slashes (`proven_slashes`).
                slashed: None,
            });
        }
        v.proven_slashes.push(slash);
    }
    Ok(())
}

/// Every committee signature checked with a standard BLS verifier, and the chain of magic
/// blocks as a light client checks it from the first view's key.
struct Verified {
    signed: SignedMessages,
    bad_signature: bool,
    /// Magic blocks in the chain.
    blocks: usize,
    bad_chain: Option<String>,
}

impl Verified {
    fn check(observer: &mut Observer, magic_blocks: &BTreeMap<u64, MagicBlock>) -> Self {
        let (signed, bad_signature) = verify_signatures(observer);
        let signed_blocks: Vec<SignedMagicBlock> = observer
            .views
            .values()
            .filter(|v| v.activated)
            .filter_map(|v| {
                let block = magic_blocks.get(&v.view)?.clone();
                let sig = |h: &Option<String>| {
                    let mut out = [0u8; 96];
                    hex::decode_to_slice(h.as_deref()?, &mut out).ok()?;
                    Some(Hex(out))
                };
                Some(SignedMagicBlock {
                    hash: Hex(block.hash()),
                    block,
                    signature: sig(&v.signature),
                    previous_signature: sig(&v.previous_signature),
                })
            })
            .collect();
        let bad_chain = match signed_blocks.first() {
            Some(first) => verify_magic_block_chain(&first.block.group_key.0, &signed_blocks)
                .err()
                .map(|e| e.to_string()),
            None => None,
        };
        Self {
            signed,
            bad_signature,
            blocks: signed_blocks.len(),
            bad_chain,
        }
    }
}

/// Everything the demo shows at the end, as text, JSON or the HTML report.
struct Report<'a> {
    args: &'a DemoArgs,
    chain: &'a AnvilChain,
    nodes: &'a DemoNodes,
    observer: &'a Observer,
    followed: &'a Followed,
    receipts: &'a Receipts<'a>,
    verified: &'a Verified,
    /// Why the run stopped before every view was made, if it did.
    failure: Option<&'a str>,
}

impl Report<'_> {
    fn print_json(&self) {
        let observer = self.observer;
        let specs = &self.nodes.specs;
        let views: Vec<Value> = self
            .verified
            .signed
            .iter()
            .filter_map(|(view, m)| {
                let v = observer.views.get(view)?;
                let mut out = demo_report::json(observer, v, m.as_deref());
                out["nodes"] = self
                    .followed
                    .node_statuses
                    .get(view)
                    .map(|all| {
                        all.iter()
                            .zip(specs)
                            .map(|(st, s)| {
                                json!({
                                    "node": s.name,
                                    "view": st.view,
                                    "group_key": st.group_key,
                                    "share_index": st.share_index,
                                    "magic_block_mismatch": st.magic_block_mismatch,
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .into();
                Some(out)
            })
            .collect();
        let stakes: Vec<Value> = self
            .receipts
            .stakes
            .iter()
            .map(|(s, registered, now)| {
                json!({
                    "node": s.name,
                    "account": s.account.to_string(),
                    "faulty": s.faulty,
                    "registered": registered,
                    "stake": now,
                })
            })
            .collect();
        let gas: Vec<Value> = self
            .receipts
            .gas
            .iter()
            .map(|(kind, g)| {
                json!({
                    "kind": kind,
                    "count": g.count,
                    "reverted": g.reverted,
                    "gas_used": g.total,
                    "max_gas": g.max,
                })
            })
            .collect();
        out!(
            "{}",
            json!({
                "chain": "anvil",
                "contract": self.chain.contract.to_string(),
                "deployed_at": self.chain.deployed_at,
                "views": views,
                "faulty": specs.iter().filter(|s| s.faulty).map(|s| &s.name).collect::<Vec<_>>(),
                "stakes": stakes,
                "gas": gas,
            })
        );
    }

    fn print_text(&self) {
        out!();
        if let Some(f) = self.failure {
            out!("the run stopped early ({f}); below is how far each view got");
            out!();
        }
        match &self.verified.bad_chain {
            None if self.verified.blocks == 1 => {
                out!("chain of 1 magic block verified: view 1's key is fresh")
            }
            None if self.verified.blocks > 1 => out!(
                "chain of {} magic blocks verified from the first group key (handovers included); view 1's key is fresh and every later view reshares it, handed over by the previous committee's signature",
                self.verified.blocks
            ),
            None => {}
            Some(e) => out!("chain of magic blocks DOES NOT VERIFY: {e}"),
        }
        out!();
        for v in self.observer.views.values() {
            out_text!("{}", demo_report::text(self.observer, v));
            out!();
        }
        out!("stakes (wei, from the contract's stakeOf):");
        for (s, registered, now) in &self.receipts.stakes {
            out!(
                "  {:<8} {}  registered {:>9}  now {:>9}{}",
                s.name,
                s.account,
                registered.map_or("-".to_string(), |r| r.to_string()),
                now,
                if s.faulty { "  (faulty)" } else { "" }
            );
        }
        out!("gas used per transaction kind:");
        for (kind, g) in &self.receipts.gas {
            out!(
                "  {kind:<22} {:>4} sent{}  {:>10} gas in all  {:>9} at most",
                g.count,
                if g.reverted > 0 {
                    format!(" ({} reverted)", g.reverted)
                } else {
                    String::new()
                },
                g.total,
                g.max
            );
        }
        out!(
            "random beacon and on-demand signature: not run on anvil (the nodes run with --no-beacon)"
        );
    }

    fn write_html(&self) -> Result<(), String> {
        let args = self.args;
        let html = demo_report::html(
            self.observer,
            &format!(
                "keyquorum ceremony report on anvil: {} nodes, {} seats, {}",
                args.nodes,
                args.committee,
                args.faulty_summary()
            ),
            "",
        );
        std::fs::write(&args.report, html).map_err(|e| format!("{}: {e}", args.report.display()))
    }
}

fn chain_tx(tx: &ContractTx) -> ChainTx {
    ChainTx {
        block: tx.block,
        tx_hash: tx.tx_hash.to_string(),
        gas_used: tx.gas_used,
    }
}

/// The activation of `view` by `tx`: its transaction, and the signatures it carried (the new
/// committee's compressed, the handover as the point the contract verified, compressed here).
fn record_activation(observer: &mut Observer, tx: &ContractTx, view: u64) {
    let Some(v) = observer.views.get_mut(&view) else {
        return;
    };
    v.activation_tx = Some(chain_tx(tx));
    if let Ok(call) = Coordinator::activateCall::abi_decode(&tx.input) {
        v.signature = Some(hex::encode(&call.a.signature));
        v.previous_signature = g2_compressed(&call.a.previousSignaturePoint)
            .ok()
            .map(hex::encode);
    }
}

/// After `view` activated in block `block`: the group key the contract holds is the magic
/// block's, and every node reports the view with that key (or none: a node outside the
/// committee holds no share but follows the view). Returns the nodes' statuses.
async fn check_view_keys(
    reader: &Client,
    http: &HttpClient,
    specs: &[NodeSpec],
    observer: &Observer,
    view: u64,
    block: u64,
) -> Result<Vec<Status>, String> {
    let key = observer
        .views
        .get(&view)
        .and_then(|v| v.group_key.clone())
        .ok_or_else(|| format!("view {view} activated without a magic block the demo saw"))?;
    let mut compressed = [0u8; 48];
    hex::decode_to_slice(&key, &mut compressed).map_err(|e| e.to_string())?;
    let point = g1_point(&compressed).map_err(|e| format!("view {view}'s group key: {e}"))?;
    let on_chain = reader
        .read_at(Coordinator::groupKeyCall {}, block)
        .await
        .map_err(|e| format!("groupKey: {e}"))?;
    if on_chain.as_ref() != point.as_slice() {
        return Err(format!(
            "the contract holds another group key than view {view}'s magic block"
        ));
    }
    let statuses = statuses_in(http, specs, view).await.ok_or_else(|| {
        format!(
            "not every node reported view {view} within {} s",
            STATUS_WAIT.as_secs()
        )
    })?;
    for (s, st) in specs.iter().zip(&statuses) {
        if st.view == view && st.group_key.as_deref().is_some_and(|k| k != key) {
            return Err(format!(
                "{} reports another group key for view {view}",
                s.name
            ));
        }
    }
    Ok(statuses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_give_the_counts_the_contract_computes() {
        for n in 2..=256usize {
            for c in 1..=n {
                if let Some(p) = percent_for(n, c) {
                    assert_eq!(Size::Percent(p).resolve(n), c);
                }
            }
            // Every count at or above the default threshold has a percentage for small n.
            if n <= 100 {
                assert!((1..=n).all(|c| percent_for(n, c).is_some()), "{n}");
            }
        }
    }

    #[test]
    fn a_call_is_named_by_its_selector_and_a_post_by_its_kind() {
        assert_eq!(
            call_kind(&Coordinator::startViewChangeCall {}.abi_encode()),
            "startViewChange"
        );
        let mut post = vec![0u8; 48];
        post.push(2);
        let call = Coordinator::postCall {
            signedPost: post.into(),
        };
        assert_eq!(call_kind(&call.abi_encode()), "post (publication)");
        assert_eq!(call_kind(&[1, 2]), "other");
    }
}
