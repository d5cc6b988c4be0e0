//! An in-process chain for the coordinator: revm at the Prague spec (so the EIP-2537
//! precompiles exist), blocks of at most 30M gas, funded test accounts, and the contract
//! deployed from the committed artifact.

#![allow(dead_code)]

use std::collections::HashMap;

use alloy_primitives::{Address, Bytes, Log, U256};
use alloy_sol_types::{SolCall, SolConstructor, SolError, SolEvent};
use blstrs::Scalar;
use keyquorum_contract::hex::{Bytes as HexBytes, Hex};
use keyquorum_contract::magic::signing_message;
use keyquorum_contract::state::{CeremonySpec, SpecParticipant};
use keyquorum_contract::{BeaconConfig, MagicBlock, SignerRole};
use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::identity::Purpose;
use keyquorum_dkg::messages::{Post, SignedPost};
use keyquorum_dkg::participant::Participant;
use keyquorum_dkg::testing::ceremony::{BoardEvent, MemberKeys, RunResult, member, run_nodes};
use keyquorum_evm::client::BoardInput;
use keyquorum_evm::{Coordinator, Deployment, g1_point, g2_point, registration_payload};
use revm::context::{CfgEnv, TxEnv};
use revm::context_interface::result::ExecutionResult;
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::TxKind;
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, MainBuilder, MainContext};

/// The block gas limit every transaction must fit in.
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;
pub const CHAIN_ID: u64 = 31337;
pub const CHAIN_NAME: &str = "kq-evm";
const DEPLOYER: Address = Address::repeat_byte(0xd0);

type Evm = revm::MainnetEvm<revm::handler::MainnetContext<CacheDB<EmptyDB>>>;

pub struct Chain {
    evm: Evm,
    pub contract: Address,
    nonces: HashMap<Address, u64>,
}

/// A transaction's result.
pub struct Receipt {
    pub success: bool,
    pub gas_used: u64,
    pub output: Bytes,
    pub logs: Vec<Log>,
}

impl Receipt {
    pub fn ok(self) -> Self {
        assert!(
            self.success,
            "transaction reverted: 0x{}",
            hex(&self.output)
        );
        self
    }

    /// Asserts a revert with error `E`.
    pub fn reverts_with<E: SolError>(&self) {
        assert!(
            !self.success,
            "expected {} but the transaction succeeded",
            E::SIGNATURE
        );
        assert!(
            self.output.starts_with(&E::SELECTOR),
            "expected {}, got 0x{}",
            E::SIGNATURE,
            hex(&self.output)
        );
    }

    pub fn events<E: SolEvent>(&self) -> Vec<E> {
        self.logs
            .iter()
            .filter_map(|l| E::decode_log(l).ok().map(|d| d.data))
            .collect()
    }

    /// The posts this receipt logged, as the follower reports them to the translator.
    pub fn posts(&self) -> Vec<BoardInput> {
        self.events::<Coordinator::PostAccepted>()
            .into_iter()
            .map(|e| BoardInput::PostAccepted {
                ceremony: e.ceremony,
                dealer: e.dealer,
                kind: e.kind,
                post: e.post,
            })
            .collect()
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn address_of(i: u32) -> Address {
    let mut a = [0u8; 20];
    a[0] = 0xa0;
    a[16..].copy_from_slice(&i.to_be_bytes());
    Address::from(a)
}

pub fn config(n: u32) -> Coordinator::Config {
    Coordinator::Config {
        chainId: Bytes::from(CHAIN_NAME.as_bytes().to_vec()),
        maxSize: n,
        minSize: n.min(4),
        thresholdPercent: 67,
        quorumPercent: 75,
        keepPreviousPercent: 0,
        minStake: U256::from(100),
        contributeBlocks: 5,
        shareBlocks: 5,
        publishBlocks: 5,
        waitBlocks: 5,
        firstViewChange: 10,
        viewLength: 100,
        unbondingBlocks: 20,
        misbehaviourPercent: 50,
        reporterPercent: 10,
        beaconScheme: BeaconConfig::default().scheme.tag(),
        beaconPeriod: BeaconConfig::default().period_secs,
        keyMode: 1,
    }
}

/// The coordinator's creation code with `config` (it creates its verifier itself).
pub fn coordinator_code(config: Coordinator::Config) -> Vec<u8> {
    let mut code = Coordinator::BYTECODE.to_vec();
    code.extend(Coordinator::constructorCall { c: config }.abi_encode());
    code
}

impl Chain {
    /// A chain at block 1 with `accounts` funded and the contract deployed with `config`.
    pub fn new(config: Coordinator::Config, accounts: &[Address]) -> Self {
        let mut db = CacheDB::<EmptyDB>::default();
        for a in accounts.iter().chain([&DEPLOYER]) {
            db.insert_account_info(
                *a,
                AccountInfo {
                    balance: U256::from(10u128.pow(24)),
                    ..Default::default()
                },
            );
        }
        let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE);
        cfg.chain_id = CHAIN_ID;
        let evm = Context::mainnet()
            .with_db(db)
            .with_cfg(cfg)
            .modify_block_chained(|b| {
                b.number = U256::from(1);
                b.gas_limit = BLOCK_GAS_LIMIT;
            })
            .build_mainnet();
        let mut chain = Chain {
            evm,
            contract: Address::ZERO,
            nonces: HashMap::new(),
        };
        let r = chain.deploy(coordinator_code(config));
        assert!(r.success, "deployment failed: 0x{}", hex(&r.output));
        chain
    }

    /// Deploys `code` (creation bytecode and constructor arguments) from the deployer; on
    /// success later calls go to the new contract.
    pub fn deploy(&mut self, code: Vec<u8>) -> Receipt {
        let nonce = self.nonces.get(&DEPLOYER).copied().unwrap_or(0);
        let r = self.transact(DEPLOYER, TxKind::Create, U256::ZERO, code.into());
        if r.success {
            self.contract = DEPLOYER.create(nonce);
        }
        r
    }

    pub fn block(&self) -> u64 {
        self.evm.ctx.block.number.to::<u64>()
    }

    pub fn set_block(&mut self, number: u64) {
        self.evm.ctx.block.number = U256::from(number);
    }

    /// The code deployed at `who` (empty for an account without code).
    pub fn code(&mut self, who: Address) -> Bytes {
        use revm::Database;
        let db = &mut self.evm.ctx.journaled_state.database;
        let Some(info) = db.basic(who).unwrap() else {
            return Bytes::new();
        };
        match info.code {
            Some(code) => code.original_bytes(),
            None => db.code_by_hash(info.code_hash).unwrap().original_bytes(),
        }
    }

    pub fn balance(&mut self, who: Address) -> U256 {
        use revm::Database;
        self.evm
            .ctx
            .journaled_state
            .database
            .basic(who)
            .unwrap()
            .map(|a| a.balance)
            .unwrap_or_default()
    }

    fn transact(&mut self, from: Address, kind: TxKind, value: U256, data: Bytes) -> Receipt {
        let nonce = self.nonces.entry(from).or_insert(0);
        let tx = TxEnv::builder()
            .caller(from)
            .kind(kind)
            .value(value)
            .data(data)
            .nonce(*nonce)
            .gas_limit(BLOCK_GAS_LIMIT)
            .gas_price(0)
            .chain_id(Some(CHAIN_ID))
            .build()
            .unwrap();
        *nonce += 1;
        match self.evm.transact_commit(tx).expect("valid transaction") {
            ExecutionResult::Success {
                gas, output, logs, ..
            } => Receipt {
                success: true,
                gas_used: gas.used(),
                output: output.into_data(),
                logs,
            },
            ExecutionResult::Revert { gas, output, logs } => Receipt {
                success: false,
                gas_used: gas.used(),
                output,
                logs,
            },
            ExecutionResult::Halt { reason, gas, .. } => {
                panic!("halted ({reason:?}) after {} gas", gas.used())
            }
        }
    }

    pub fn send<C: SolCall>(&mut self, from: Address, value: u64, call: C) -> Receipt {
        let to = self.contract;
        self.transact(
            from,
            TxKind::Call(to),
            U256::from(value),
            call.abi_encode().into(),
        )
    }

    /// Moves to the block of the coordinator's next view change and starts it from `from`:
    /// the receipt.
    pub fn start_next_view_change(&mut self, from: Address) -> Receipt {
        let next = self.read(Coordinator::nextStartCall {});
        self.set_block(next);
        self.send(from, 0, Coordinator::startViewChangeCall {}).ok()
    }

    /// A read-only call's return value from the contract at `to` (as [`Chain::read`]).
    pub fn read_at<C: SolCall>(&mut self, to: Address, call: C) -> C::Return {
        let r = self
            .transact(
                Address::repeat_byte(0xee),
                TxKind::Call(to),
                U256::ZERO,
                call.abi_encode().into(),
            )
            .ok();
        C::abi_decode_returns(&r.output).unwrap()
    }

    /// A read-only call's return value (as a transaction from an unfunded address that commits
    /// nothing it could change).
    pub fn read<C: SolCall>(&mut self, call: C) -> C::Return {
        let r = self.send(Address::repeat_byte(0xee), 0, call).ok();
        C::abi_decode_returns(&r.output).unwrap()
    }
}

/// A registered test node: its keys and account.
pub struct Node {
    pub index: u32,
    pub keys: MemberKeys,
    pub account: Address,
    pub identity: [u8; 96],
    pub encryption_key: [u8; 32],
}

impl Node {
    pub fn new(index: u32) -> Self {
        let keys = member(index);
        let identity = keys.identity.public().to_bytes();
        let encryption_key = keys.encryption.public_key().to_bytes();
        Node {
            index,
            keys,
            account: address_of(index),
            identity,
            encryption_key,
        }
    }

    pub fn peer_id(&self) -> Vec<u8> {
        format!("peer-{}", self.index).into_bytes()
    }

    pub fn addresses(&self) -> Vec<String> {
        vec![format!("/ip4/127.0.0.1/tcp/{}", 9000 + self.index)]
    }

    /// A registration call with a real proof of possession and binding signature.
    pub fn register_call(&self, contract: Address) -> Coordinator::registerCall {
        let pop = self.keys.identity.proof_of_possession();
        let payload = registration_payload(
            CHAIN_ID,
            contract,
            self.account,
            &self.encryption_key,
            &self.peer_id(),
            &self.addresses(),
        );
        let binding = self.keys.identity.sign(Purpose::Transaction, &payload);
        Coordinator::registerCall {
            identity: self.identity.to_vec().into(),
            identityPoint: g2_point(&self.identity).unwrap().to_vec().into(),
            pop: g1_point(&pop.0).unwrap().to_vec().into(),
            binding: g1_point(&binding.0).unwrap().to_vec().into(),
            encryptionKey: self.encryption_key.into(),
            peerId: self.peer_id().into(),
            addresses: self.addresses(),
        }
    }
}

/// The test deployment at `contract`.
pub fn deployment(contract: Address) -> Deployment {
    Deployment {
        chain_id: CHAIN_ID,
        contract,
        chain_name: CHAIN_NAME.into(),
        beacon: BeaconConfig::default(),
        view_length: config(4).viewLength,
    }
}

/// The ceremony the contract at `contract` starts with selection `sel`, with `committee` in
/// seat order.
pub fn ceremony_spec(
    contract: Address,
    sel: &Coordinator::CommitteeSelected,
    committee: &[&Node],
) -> CeremonySpec {
    CeremonySpec {
        domain: HexBytes(deployment(contract).session_domain(sel.viewNumber, sel.number)),
        view: sel.viewNumber,
        ceremony_number: sel.number,
        n: sel.n,
        t: sel.t,
        k: sel.k,
        players: committee
            .iter()
            .map(|n| SpecParticipant {
                identity: Hex(n.identity),
                encryption_key: Hex(n.encryption_key),
            })
            .collect(),
        reshare: None,
        variant: keyquorum_contract::config::DkgVariant::AckReveal,
        verifiable_keys: Vec::new(),
    }
}

/// Contributions and publications in board order, and each player's result.
pub type CeremonyRun = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<RunResult<Bls12381G1>>);

/// Runs the DKG among `committee` (seat order) off chain on a perfect network, the members at
/// seats `silent` doing nothing; returns the posts in board order, contributions first, and
/// each player's output.
pub fn run_ceremony(spec: &CeremonySpec, committee: &[&Node], silent: &[usize]) -> CeremonyRun {
    let ceremony = spec.ceremony().unwrap();
    let participants: Vec<Box<dyn Participant<Bls12381G1>>> = committee
        .iter()
        .enumerate()
        .map(|(seat, n)| {
            let m = member(n.index);
            let mut seed = [3u8; 32];
            seed[..8].copy_from_slice(&(seat as u64).to_be_bytes());
            Box::new(
                AckRevealParticipant::new(ceremony.clone(), m.identity, m.encryption, None, seed)
                    .unwrap(),
            ) as Box<dyn Participant<Bls12381G1>>
        })
        .collect();
    let (results, events) = run_nodes(participants, silent, &mut |_, a| vec![a]);
    let (mut contributions, mut publications) = (Vec::new(), Vec::new());
    for e in events {
        if let BoardEvent::Post(p) = e {
            match SignedPost::<Bls12381G1>::decode(&p, spec.n as usize)
                .unwrap()
                .post
            {
                Post::Contribution(_) => contributions.push(p),
                Post::Publication(_) => publications.push(p),
            }
        }
    }
    (contributions, publications, results)
}

/// The seat of the dealer that signed the post `post` of a ceremony with `n` seats.
pub fn dealer_of(post: &[u8], n: u32) -> usize {
    SignedPost::<Bls12381G1>::decode(post, n as usize)
        .unwrap()
        .post
        .dealer() as usize
}

/// The contract call that submits a signed post.
pub fn post_call(p: &[u8]) -> Coordinator::postCall {
    Coordinator::postCall {
        signedPost: p.to_vec().into(),
    }
}

/// The endorsement of the magic block `hash` by the committee seats `seats` (ascending) of
/// `committee` (seat order): the seat bitmap, their identity keys as points, and the aggregate
/// of their signatures as a point, as `Coordinator.Activation` takes them.
pub fn endorsement(
    hash: &[u8; 32],
    committee: &[&Node],
    seats: &[usize],
) -> (Bytes, Vec<Bytes>, Bytes) {
    let mut bitmap = vec![0u8; committee.len().div_ceil(8)];
    let mut points = Vec::new();
    let mut sigs = Vec::new();
    for &seat in seats {
        bitmap[seat / 8] |= 1 << (seat % 8);
        let node = committee[seat];
        points.push(Bytes::from(g2_point(&node.identity).unwrap().to_vec()));
        sigs.push(node.keys.identity.sign(Purpose::Endorsement, hash));
    }
    let aggregate = keyquorum_dkg::identity::aggregate(&sigs).unwrap();
    let point = Bytes::from(g1_point(&aggregate.0).unwrap().to_vec());
    (bitmap.into(), points, point)
}

/// The activation of `block`, every dealer qualified, signed with the group secret `secret`
/// and endorsed by the first `t` seats (the fewest the contract takes), with no handover
/// signature.
pub fn synthetic_activation(
    block: &MagicBlock,
    secret: Scalar,
    seats: &[&Node],
) -> Coordinator::activateCall {
    let hash = block.hash();
    let signature = tbls::sign::<MinPk>(
        &Secret::new(secret),
        &signing_message(SignerRole::New, &hash),
    )
    .to_compressed();
    let endorsing: Vec<usize> = (0..block.t as usize).collect();
    let (endorsers, endorser_points, endorsement_point) = endorsement(&hash, seats, &endorsing);
    Coordinator::activateCall {
        a: Coordinator::Activation {
            magicBlock: block.encode().into(),
            groupKeyPoint: g1_point(&block.group_key.0).unwrap().to_vec().into(),
            qualified: (0..block.n).collect(),
            signature: signature.to_vec().into(),
            signaturePoint: g2_point(&signature).unwrap().to_vec().into(),
            previousSignaturePoint: Bytes::new(),
            endorsers,
            endorserPoints: endorser_points,
            endorsement: endorsement_point,
        },
    }
}
