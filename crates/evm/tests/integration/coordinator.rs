//! The coordinator contract in revm (Prague): registration with real proofs of possession,
//! stake, a full fresh-key ceremony whose posts go through the contract and whose board is
//! replayed from the contract's events with the Rust board code, activation with a real
//! threshold signature on the magic block `keyquorum-contract` encodes, an equivocation proof,
//! and a rejection for each bad input.

use crate::common;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolError};
use blstrs::Scalar;
use common::*;
use group::Group as _;
use keyquorum_contract::SignerRole;
use keyquorum_contract::events::Event;
use keyquorum_contract::hex::{Bytes as HexBytes, Hex};
use keyquorum_contract::magic::{MagicBlockPlace, signing_message};
use keyquorum_contract::select::{select_committee, tiebreak};
use keyquorum_contract::state::{CeremonySpec, ViewChangePhase};
use keyquorum_contract::tx::NetworkIdentity;
use keyquorum_contract::{BeaconConfig, BeaconScheme, KeyMode, MagicBlock, genesis_seed};
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Curve};
use keyquorum_dkg::board::{Board, Outcome};
use keyquorum_dkg::identity::Purpose;
use keyquorum_dkg::messages::{Post, SignedPost};
use keyquorum_dkg::testing::ceremony::RunResult;
use keyquorum_evm::client::{BoardInput, ConfirmedBlock, Phase};
use keyquorum_evm::events::Translator;
use keyquorum_evm::stagger::{Held, Turn};
use keyquorum_evm::{Coordinator, g1_point, g2_point};

const STAKE: u64 = 1_000;

/// The BLS12-381 base field modulus p, big-endian.
const FIELD_MODULUS: [u8; 48] = [
    0x1a, 0x01, 0x11, 0xea, 0x39, 0x7f, 0xe6, 0x9a, 0x4b, 0x1b, 0xa7, 0xb6, 0x43, 0x4b, 0xac, 0xd7,
    0x64, 0x77, 0x4b, 0x84, 0xf3, 0x85, 0x12, 0xbf, 0x67, 0x30, 0xd2, 0xa0, 0xf6, 0xb0, 0xf6, 0x24,
    0x1e, 0xab, 0xff, 0xfe, 0xb1, 0x53, 0xff, 0xff, 0xb9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xab,
];

/// Registers nodes `0..count` (node `i` staking `STAKE + i`, so the ranking is by index,
/// highest first).
fn registered(n: u32, count: u32) -> (Chain, Vec<Node>) {
    let nodes: Vec<Node> = (0..count).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let mut chain = Chain::new(config(n), &accounts);
    for node in &nodes {
        let call = node.register_call(chain.contract);
        chain
            .send(node.account, STAKE + node.index as u64, call)
            .ok();
    }
    (chain, nodes)
}

struct Started {
    /// The contract that started it.
    contract: Address,
    id: U256,
    sel: Coordinator::CommitteeSelected,
    committee: Vec<usize>,
}

fn start(chain: &mut Chain, nodes: &[Node]) -> Started {
    chain.set_block(10);
    let r = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    let committee = sel
        .committee
        .iter()
        .map(|a| nodes.iter().position(|n| n.account == *a).unwrap())
        .collect();
    Started {
        contract: chain.contract,
        id: sel.ceremony,
        sel,
        committee,
    }
}

/// The committee's nodes in seat order.
fn seated<'a>(nodes: &'a [Node], s: &Started) -> Vec<&'a Node> {
    s.committee.iter().map(|&i| &nodes[i]).collect()
}

fn spec(nodes: &[Node], s: &Started) -> CeremonySpec {
    ceremony_spec(s.contract, &s.sel, &seated(nodes, s))
}

/// The first view's magic block for `s`'s fresh-key ceremony under `group_key`, every seat's
/// public key share set to the group key (the contract checks the key and the signatures, not
/// the shares).
fn first_view_block(s: &Started, seats: &[&Node], group_key: [u8; 48]) -> MagicBlock {
    MagicBlock {
        chain_id: CHAIN_NAME.into(),
        view: s.sel.viewNumber,
        ceremony_number: s.sel.number,
        key_mode: KeyMode::Fresh,
        session_id: Hex(s.sel.sessionId.0),
        n: s.sel.n,
        t: s.sel.t,
        k: s.sel.k,
        group_key: Hex(group_key),
        members: seats
            .iter()
            .enumerate()
            .map(|(seat, x)| keyquorum_contract::magic::MagicBlockMember {
                index: seat as u64 + 1,
                identity: Hex(x.identity),
                encryption_key: Hex(x.encryption_key),
                peer_id: HexBytes(x.peer_id()),
                addresses: x.addresses(),
                public_share: Hex(group_key),
            })
            .collect(),
        previous_hash: Hex([0; 32]),
        first_round: s.sel.waitEnd + 1,
        beacon: BeaconConfig::default(),
    }
}

#[test]
fn registration_checks_the_proof_of_possession_and_the_binding() {
    let nodes: Vec<Node> = (0..3).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let mut chain = Chain::new(config(4), &accounts);
    let c = chain.contract;

    // Another key's proof of possession.
    let mut bad = nodes[0].register_call(c);
    bad.pop = nodes[1].register_call(c).pop;
    chain
        .send(nodes[0].account, STAKE, bad)
        .reverts_with::<Coordinator::BadProofOfPossession>();
    // A binding signed for another account: someone replaying a registration they saw.
    let theirs = nodes[0].register_call(c);
    chain
        .send(nodes[1].account, STAKE, theirs)
        .reverts_with::<Coordinator::BadRegistrationSignature>();
    // A network identity other than the one signed.
    let mut bad = nodes[0].register_call(c);
    bad.peerId = Bytes::from_static(b"someone-else");
    chain
        .send(nodes[0].account, STAKE, bad)
        .reverts_with::<Coordinator::BadRegistrationSignature>();
    // The uncompressed key must be the compressed one.
    let mut bad = nodes[0].register_call(c);
    bad.identityPoint = nodes[1].register_call(c).identityPoint;
    chain
        .send(nodes[0].account, STAKE, bad)
        .reverts_with::<Coordinator::BadIdentityKey>();
    // The identity point with an identity "signature" passes any pairing check, so the key
    // itself must be refused: as the precompiles write it (all zeros) under a compressed form
    // with x = 0 (which no G2 point has), and with the ZCash infinity flag.
    for flags in [0x80u8, 0xc0] {
        let mut bad = nodes[0].register_call(c);
        let mut compressed = [0u8; 96];
        compressed[0] = flags;
        bad.identity = Bytes::copy_from_slice(&compressed);
        bad.identityPoint = Bytes::from(vec![0u8; 256]);
        bad.pop = Bytes::from(vec![0u8; 128]);
        bad.binding = Bytes::from(vec![0u8; 128]);
        chain
            .send(nodes[0].account, STAKE, bad)
            .reverts_with::<Coordinator::BadIdentityKey>();
    }

    let r = chain
        .send(nodes[0].account, STAKE, nodes[0].register_call(c))
        .ok();
    let reg = r.events::<Coordinator::Registered>().remove(0);
    assert_eq!(reg.identity.as_ref(), &nodes[0].identity[..]);
    assert_eq!(reg.stake, U256::from(STAKE));
    assert!(r.gas_used < BLOCK_GAS_LIMIT);
    chain
        .send(nodes[0].account, STAKE, nodes[0].register_call(c))
        .reverts_with::<Coordinator::AlreadyRegistered>();
    assert_eq!(chain.read(Coordinator::eligibleCountCall {}), U256::from(1));
}

/// The coordinator creates the verifier it trusts, so its own code fixes it: `bls()` holds the
/// committed `Bls12381Verifier`'s code, and the creation code that carries both stays under
/// EIP-3860's 49,152-byte limit on initcode.
#[test]
fn the_coordinator_creates_its_verifier() {
    let mut chain = Chain::new(config(4), &[]);
    let bls = chain.read(Coordinator::blsCall {});
    assert_ne!(bls, Address::ZERO);
    assert_eq!(
        chain.code(bls),
        keyquorum_evm::Bls12381Verifier::DEPLOYED_BYTECODE
    );
    let initcode = coordinator_code(config(4)).len();
    assert!(initcode <= 49_152, "{initcode} bytes of initcode");
}

#[test]
fn stake_unbonds_and_is_withdrawn_after_the_unbonding_period() {
    let (mut chain, nodes) = registered(4, 1);
    let a = nodes[0].account;
    chain
        .send(a, 0, Coordinator::withdrawCall {})
        .reverts_with::<Coordinator::NothingToWithdraw>();
    chain.send(a, 500, Coordinator::addStakeCall {}).ok();
    chain
        .send(
            a,
            0,
            Coordinator::unbondCall {
                amount: U256::from(10_000),
            },
        )
        .reverts_with::<Coordinator::InsufficientStake>();
    let r = chain
        .send(
            a,
            0,
            Coordinator::unbondCall {
                amount: U256::from(700),
            },
        )
        .ok();
    let release = r.events::<Coordinator::Unbonding>()[0].releaseBlock;
    assert_eq!(release, chain.block() + 20);
    let s = chain.read(Coordinator::stakeOfCall { account: a });
    assert_eq!((s.stake, s.unbonding), (U256::from(800), U256::from(700)));
    chain
        .send(a, 0, Coordinator::withdrawCall {})
        .reverts_with::<Coordinator::StillUnbonding>();
    chain.set_block(release);
    let before = chain.balance(a);
    chain.send(a, 0, Coordinator::withdrawCall {}).ok();
    assert_eq!(chain.balance(a) - before, U256::from(700));
    // Below the minimum stake a node is no longer eligible.
    chain
        .send(
            a,
            0,
            Coordinator::unbondCall {
                amount: U256::from(750),
            },
        )
        .ok();
    assert_eq!(chain.read(Coordinator::eligibleCountCall {}), U256::ZERO);
}

/// A member of the running ceremony may step down: unbond below the minimum stake (a partial
/// unbond that keeps it eligible is refused while it serves). The amount leaves selection at
/// once but stays held and slashable, its release is pending (`u64::MAX`) and `withdraw` is
/// refused while the member serves. Here nothing activates, so its service ends with the
/// ceremony's wait phase (a member of an activated view serves that whole view): the first
/// `withdraw` after it starts the full unbonding period, so a fraud proof has all of it after
/// the member's last post.
#[test]
fn a_member_unbonding_while_it_serves_starts_its_clock_once_its_stake_is_free() {
    let (mut chain, nodes) = registered(4, 6);
    let s = start(&mut chain, &nodes);
    let member = seated(&nodes, &s)[0].account;
    let held = chain
        .read(Coordinator::stakeOfCall { account: member })
        .stake;
    let min = config(4).minStake;
    for kept_eligible in [U256::from(1), held - min] {
        chain
            .send(
                member,
                0,
                Coordinator::unbondCall {
                    amount: kept_eligible,
                },
            )
            .reverts_with::<Coordinator::StakeLocked>();
    }
    let r = chain
        .send(member, 0, Coordinator::unbondCall { amount: held })
        .ok();
    assert_eq!(
        r.events::<Coordinator::Unbonding>()[0].releaseBlock,
        u64::MAX
    );
    let st = chain.read(Coordinator::stakeOfCall { account: member });
    assert_eq!((st.stake, st.unbonding), (U256::ZERO, held));
    assert_eq!(chain.read(Coordinator::eligibleCountCall {}), U256::from(5));
    chain
        .send(member, 0, Coordinator::withdrawCall {})
        .reverts_with::<Coordinator::StakeLocked>();

    // The ceremony's wait phase is over: the member no longer serves.
    chain.set_block(s.sel.waitEnd + 1);
    let before = chain.balance(member);
    let r = chain.send(member, 0, Coordinator::withdrawCall {}).ok();
    let started = r.events::<Coordinator::Unbonding>().remove(0);
    assert_eq!(started.amount, U256::ZERO);
    assert_eq!(started.releaseBlock, chain.block() + 20);
    assert_eq!(
        chain.balance(member),
        before,
        "paid before the unbonding period"
    );
    chain
        .send(member, 0, Coordinator::withdrawCall {})
        .reverts_with::<Coordinator::StillUnbonding>();
    chain.set_block(started.releaseBlock);
    chain.send(member, 0, Coordinator::withdrawCall {}).ok();
    assert_eq!(chain.balance(member) - before, held);
}

/// The member the selection ranks first is chosen view after view, so it is always serving;
/// unbonding its stake while it serves is how it steps down: the next view change leaves it
/// out, and its stake stays locked until it no longer serves.
#[test]
fn a_member_the_selection_keeps_choosing_steps_down_by_unbonding() {
    let (mut chain, nodes) = registered(4, 6);
    let s = start(&mut chain, &nodes);
    activate_synthetic(&mut chain, &nodes, &s);
    let top = nodes[5].account;
    assert!(s.sel.committee.contains(&top));
    let held = chain.read(Coordinator::stakeOfCall { account: top }).stake;
    chain
        .send(top, 0, Coordinator::unbondCall { amount: held })
        .ok();
    chain
        .send(top, 0, Coordinator::withdrawCall {})
        .reverts_with::<Coordinator::StakeLocked>();
    let r = chain.start_next_view_change(nodes[0].account);
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    assert_eq!(sel.committee.len(), 4);
    assert!(!sel.committee.contains(&top), "{:?}", sel.committee);
    // Still a member of the active view until the next one activates.
    chain
        .send(top, 0, Coordinator::withdrawCall {})
        .reverts_with::<Coordinator::StakeLocked>();
}

/// The contract's bound on eligible nodes (`MAX_CANDIDATES` in Coordinator.sol).
const MAX_CANDIDATES: usize = 300;

/// Accounts that fill the candidate list with the minimum stake cannot keep a higher stake out:
/// a newcomer with more evicts the candidate the selection ranks last (among equal stakes, the
/// greatest tie-break under the current seed), one at or below the lowest stake is refused and
/// changes nothing, and the evicted node keeps its stake, comes back only by outbidding the
/// lowest, or unbonds and withdraws it.
#[test]
fn a_flood_of_minimum_stakes_cannot_keep_a_higher_stake_out() {
    let nodes: Vec<Node> = (0..MAX_CANDIDATES as u32 + 1).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let cfg = config(4);
    let min = cfg.minStake.to::<u64>();
    let mut chain = Chain::new(cfg, &accounts);
    let (flood, newcomer) = nodes.split_at(MAX_CANDIDATES);
    let newcomer = &newcomer[0];
    for node in flood {
        let call = node.register_call(chain.contract);
        chain.send(node.account, min, call).ok();
    }
    let seed = chain.read(Coordinator::currentSeedCall {}).0;
    let ranked_last = |among: &mut dyn Iterator<Item = &Node>| {
        among
            .max_by_key(|x| tiebreak(&seed, &Hex(x.identity)))
            .unwrap()
            .account
    };
    let eligible = |chain: &mut Chain| chain.read(Coordinator::eligibleCountCall {});
    let stake = |chain: &mut Chain, account| chain.read(Coordinator::stakeOfCall { account });

    let balance = chain.balance(newcomer.account);
    let r = chain.send(
        newcomer.account,
        min,
        newcomer.register_call(chain.contract),
    );
    r.reverts_with::<Coordinator::CandidateListFull>();
    let refused = Coordinator::CandidateListFull::abi_decode(&r.output).unwrap();
    assert_eq!(refused.lowestStake, U256::from(min));
    assert_eq!(chain.balance(newcomer.account), balance);
    assert_eq!(stake(&mut chain, newcomer.account).stake, U256::ZERO);
    assert_eq!(eligible(&mut chain), U256::from(MAX_CANDIDATES));

    let first = ranked_last(&mut flood.iter());
    let r = chain
        .send(
            newcomer.account,
            min + 1,
            newcomer.register_call(chain.contract),
        )
        .ok();
    assert_eq!(
        r.events::<Coordinator::Evicted>(),
        vec![Coordinator::Evicted {
            account: first,
            by: newcomer.account,
            stake: U256::from(min),
        }]
    );
    assert_eq!(eligible(&mut chain), U256::from(MAX_CANDIDATES));
    assert_eq!(stake(&mut chain, first).stake, U256::from(min));

    // Back in only with more than the lowest stake, which evicts the next one ranked last.
    chain
        .send(first, 0, Coordinator::addStakeCall {})
        .reverts_with::<Coordinator::CandidateListFull>();
    let second = ranked_last(&mut flood.iter().filter(|x| x.account != first));
    let r = chain.send(first, 2, Coordinator::addStakeCall {}).ok();
    assert_eq!(r.events::<Coordinator::Evicted>()[0].account, second);

    // The evicted stake unbonds and is withdrawn as any other; the list is untouched.
    chain
        .send(
            second,
            0,
            Coordinator::unbondCall {
                amount: U256::from(min),
            },
        )
        .ok();
    chain.set_block(chain.block() + 20);
    let before = chain.balance(second);
    chain.send(second, 0, Coordinator::withdrawCall {}).ok();
    assert_eq!(chain.balance(second) - before, U256::from(min));
    assert_eq!(eligible(&mut chain), U256::from(MAX_CANDIDATES));

    // The selection sees the list as it now is: the two higher stakes first.
    let s = start(&mut chain, &nodes);
    let candidates: Vec<(Hex<96>, u64)> = nodes
        .iter()
        .filter(|x| x.account != second)
        .map(|x| {
            let at = stake(&mut chain, x.account).stake.to::<u64>();
            (Hex(x.identity), at)
        })
        .collect();
    let expected = select_committee(&candidates, &Default::default(), &seed, 4, 0);
    let seated: Vec<Hex<96>> = s
        .committee
        .iter()
        .map(|&i| Hex(nodes[i].identity))
        .collect();
    assert_eq!(seated, expected);
    assert_eq!(s.sel.committee[..2], [first, newcomer.account]);
}

/// Activates the view ceremony `s` selected with synthetic contributions (the contract checks
/// of a contribution only its session, dealer and `f(0) G`; dealer `d`'s is `(d + 1) G`), the
/// group key their sum, signed under it and endorsed by `t` seats.
fn activate_synthetic(chain: &mut Chain, nodes: &[Node], s: &Started) {
    let secret = post_synthetic(chain, nodes, s);
    activate_synthetic_with(chain, nodes, s, secret, BeaconConfig::default()).ok();
}

/// Posts [`activate_synthetic`]'s contributions and moves past the publish phase: the group
/// secret.
fn post_synthetic(chain: &mut Chain, nodes: &[Node], s: &Started) -> Scalar {
    let seats = seated(nodes, s);
    let n = s.sel.n;
    let mut secret = Scalar::from(0u64);
    for (d, seat) in seats.iter().enumerate() {
        let a = Scalar::from(d as u64 + 1);
        secret += a;
        let f0 = blstrs::G1Affine::from(blstrs::G1Projective::generator() * a).to_uncompressed();
        let mut post = vec![0xaa; 48];
        post.push(1);
        post.extend_from_slice(&s.sel.sessionId.0);
        post.extend_from_slice(&(d as u32).to_be_bytes());
        post.extend_from_slice(&(n + 1).to_be_bytes());
        for _ in 0..=n {
            post.extend_from_slice(&f0);
        }
        chain.send(seat.account, 0, post_call(&post)).ok();
    }
    chain.set_block(s.sel.publishEnd + 1);
    secret
}

/// [`activate_synthetic`]'s activation with a magic block naming `beacon`, correctly signed
/// and endorsed: its receipt.
fn activate_synthetic_with(
    chain: &mut Chain,
    nodes: &[Node],
    s: &Started,
    secret: Scalar,
    beacon: BeaconConfig,
) -> Receipt {
    let seats = seated(nodes, s);
    let group_key =
        blstrs::G1Affine::from(blstrs::G1Projective::generator() * secret).to_compressed();
    let mut block = first_view_block(s, &seats, group_key);
    block.beacon = beacon;
    chain.send(
        seats[0].account,
        0,
        synthetic_activation(&block, secret, &seats),
    )
}

/// The constructor refuses threshold and quorum percentages that some committee size from
/// `minSize` to `maxSize` cannot use, exactly when `Params::from_percent` refuses one: every
/// view change seating that size would revert (`BadParams`), and the configuration is fixed.
#[test]
fn the_coordinator_refuses_thresholds_some_committee_size_cannot_use() {
    use keyquorum_dkg::Params;
    let mut chain = Chain::new(config(4), &[]);
    for (min, max) in [(1u32, 1u32), (1, 12), (4, 4), (4, 7), (10, 16)] {
        for (tp, qp) in [
            (10u8, 10u8),
            (10, 75),
            (34, 67),
            (50, 90),
            (67, 75),
            (67, 67),
            (100, 100),
        ] {
            let mut cfg = config(max);
            cfg.minSize = min;
            cfg.thresholdPercent = tp;
            cfg.quorumPercent = qp;
            let works =
                (min..=max).all(|n| Params::from_percent(n as usize, tp.into(), qp.into()).is_ok());
            let r = chain.deploy(coordinator_code(cfg));
            if works {
                r.ok();
            } else {
                r.reverts_with::<Coordinator::BadConfig>();
            }
        }
    }
}

/// The coordinator's beacon is its deployment's: it refuses to be configured with an unknown
/// scheme or a period of 0 or above an hour, reports its configuration, and activates only a
/// magic block that names that scheme and period (the configuration is fixed at deployment
/// and a reshare keeps the previous view's, so every view runs the configured beacon), however
/// well signed and endorsed another is.
#[test]
fn the_coordinator_activates_only_a_magic_block_with_its_configured_beacon() {
    for (scheme, period) in [(0, 2), (3, 2), (2, 0), (2, 3601)] {
        let mut bad = config(4);
        bad.beaconScheme = scheme;
        bad.beaconPeriod = period;
        let mut chain = Chain::new(config(4), &[]);
        let r = chain.deploy(coordinator_code(bad));
        r.reverts_with::<Coordinator::BadConfig>();
    }
    let unchained = BeaconConfig {
        scheme: BeaconScheme::PedersenBlsUnchained,
        period_secs: 2,
    };
    let mut configured = config(4);
    configured.beaconScheme = unchained.scheme.tag();
    configured.beaconPeriod = unchained.period_secs;
    let nodes: Vec<Node> = (0..4).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let mut chain = Chain::new(configured, &accounts);
    for node in &nodes {
        let call = node.register_call(chain.contract);
        chain
            .send(node.account, STAKE + node.index as u64, call)
            .ok();
    }
    let c = chain.read(Coordinator::beaconConfigCall {});
    assert_eq!((c.scheme, c.period), (2, 2));
    let s = start(&mut chain, &nodes);
    let secret = post_synthetic(&mut chain, &nodes, &s);
    for other in [
        BeaconConfig::default(),
        BeaconConfig {
            period_secs: 3,
            ..unchained
        },
        BeaconConfig {
            scheme: BeaconScheme::PedersenBlsChained,
            ..unchained
        },
    ] {
        activate_synthetic_with(&mut chain, &nodes, &s, secret, other)
            .reverts_with::<Coordinator::BadMagicBlock>();
    }
    let r = activate_synthetic_with(&mut chain, &nodes, &s, secret, unchained).ok();
    assert_eq!(r.events::<Coordinator::ViewActivated>().len(), 1);
    assert_eq!(chain.read(Coordinator::currentViewCall {}), 1);
}

/// Eviction spares the nodes that serve: the seats `keepPreviousPercent` reserves for the
/// active view cannot be taken by outsiders that fill the list and outbid its members. With
/// the active view's members at the lowest stake, a newcomer above them but at or below every
/// other candidate is refused (naming the lowest evictable stake), one above that evicts the
/// last-ranked of the others, and the next selection still gives the active view its seats.
#[test]
fn eviction_spares_the_active_view() {
    const ACTIVE: usize = 4;
    let nodes: Vec<Node> = (0..MAX_CANDIDATES as u32 + 1).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let mut cfg = config(4);
    cfg.keepPreviousPercent = 50;
    let min = cfg.minStake.to::<u64>();
    let mut chain = Chain::new(cfg, &accounts);
    let (active, rest) = nodes.split_at(ACTIVE);
    let (others, newcomer) = rest.split_at(MAX_CANDIDATES - ACTIVE);
    let newcomer = &newcomer[0];
    for node in active {
        let call = node.register_call(chain.contract);
        chain.send(node.account, min, call).ok();
    }
    let s = start(&mut chain, &nodes);
    activate_synthetic(&mut chain, &nodes, &s);
    assert_eq!(chain.read(Coordinator::currentViewCall {}), 1);
    for node in others {
        let call = node.register_call(chain.contract);
        chain.send(node.account, min + 5, call).ok();
    }
    let eligible = chain.read(Coordinator::eligibleCountCall {});
    assert_eq!(eligible, U256::from(MAX_CANDIDATES));

    // Above every active member, at the others' stake: nobody it may evict ranks below it.
    let r = chain.send(
        newcomer.account,
        min + 5,
        newcomer.register_call(chain.contract),
    );
    r.reverts_with::<Coordinator::CandidateListFull>();
    let refused = Coordinator::CandidateListFull::abi_decode(&r.output).unwrap();
    assert_eq!(refused.lowestStake, U256::from(min + 5));

    let seed = chain.read(Coordinator::currentSeedCall {}).0;
    let last_other = others
        .iter()
        .max_by_key(|x| tiebreak(&seed, &Hex(x.identity)))
        .unwrap()
        .account;
    let r = chain
        .send(
            newcomer.account,
            min + 6,
            newcomer.register_call(chain.contract),
        )
        .ok();
    let evicted = r.events::<Coordinator::Evicted>();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].account, last_other);

    // The next view change keeps half the seats for the active view, as the Rust selection.
    let r = chain.start_next_view_change(nodes[0].account);
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    let stake = |chain: &mut Chain, account| chain.read(Coordinator::stakeOfCall { account }).stake;
    let candidates: Vec<(Hex<96>, u64)> = nodes
        .iter()
        .filter(|x| x.account != last_other)
        .map(|x| (Hex(x.identity), stake(&mut chain, x.account).to::<u64>()))
        .collect();
    let previous = active.iter().map(|x| Hex(x.identity)).collect();
    let expected = select_committee(&candidates, &previous, &seed, 4, 50);
    let seated: Vec<Hex<96>> = sel
        .committee
        .iter()
        .map(|a| Hex(nodes.iter().find(|x| x.account == *a).unwrap().identity))
        .collect();
    assert_eq!(seated, expected);
    let kept = sel
        .committee
        .iter()
        .filter(|a| active.iter().any(|x| x.account == **a))
        .count();
    assert_eq!(kept, 2);
    assert!(sel.committee.contains(&newcomer.account));
}

/// The refusal when no candidate may be evicted: the list full and every candidate serving.
/// The active view holds at most 256 seats (`MAX_COMMITTEE`) of the 300 places, so the list
/// is covered by the active view's 256 members and a running ceremony that seats the 44
/// others (ranked first by their higher stake). A newcomer with any stake is refused with
/// `CandidateListFull(0)` and nothing changes; once the ceremony's wait phase is over, its
/// members outside the active view are evictable again.
#[test]
fn a_full_list_of_serving_candidates_refuses_every_newcomer() {
    const SEATS: usize = 256;
    let nodes: Vec<Node> = (0..MAX_CANDIDATES as u32 + 1).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let cfg = config(SEATS as u32);
    let min = cfg.minStake.to::<u64>();
    let mut chain = Chain::new(cfg, &accounts);
    let (active, rest) = nodes.split_at(SEATS);
    let (running, newcomer) = rest.split_at(MAX_CANDIDATES - SEATS);
    let newcomer = &newcomer[0];
    for node in active {
        let call = node.register_call(chain.contract);
        chain.send(node.account, min, call).ok();
    }
    let s = start(&mut chain, &nodes);
    assert_eq!(s.committee.len(), SEATS);
    activate_synthetic(&mut chain, &nodes, &s);
    for node in running {
        let call = node.register_call(chain.contract);
        chain.send(node.account, min + 1, call).ok();
    }
    let r = chain.start_next_view_change(nodes[0].account);
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    assert!(running.iter().all(|x| sel.committee.contains(&x.account)));
    assert_eq!(
        chain.read(Coordinator::eligibleCountCall {}),
        U256::from(MAX_CANDIDATES)
    );
    for node in &nodes[..MAX_CANDIDATES] {
        let account = node.account;
        assert!(chain.read(Coordinator::isLockedCall { account }));
        assert!(chain.read(Coordinator::candidacyCall { account }).listed);
    }

    let balance = chain.balance(newcomer.account);
    let r = chain.send(
        newcomer.account,
        min * 1_000,
        newcomer.register_call(chain.contract),
    );
    r.reverts_with::<Coordinator::CandidateListFull>();
    let refused = Coordinator::CandidateListFull::abi_decode(&r.output).unwrap();
    assert_eq!(refused.lowestStake, U256::ZERO);
    assert_eq!(chain.balance(newcomer.account), balance);
    let account = newcomer.account;
    assert_eq!(
        chain.read(Coordinator::stakeOfCall { account }).stake,
        U256::ZERO
    );
    assert_eq!(
        chain.read(Coordinator::eligibleCountCall {}),
        U256::from(MAX_CANDIDATES)
    );
    assert!(nodes[..MAX_CANDIDATES].iter().all(|x| {
        chain
            .read(Coordinator::candidacyCall { account: x.account })
            .listed
    }));

    // The ceremony's wait phase over, its members outside the active view no longer serve.
    chain.set_block(sel.waitEnd + 1);
    let r = chain
        .send(
            newcomer.account,
            min * 1_000,
            newcomer.register_call(chain.contract),
        )
        .ok();
    let evicted = r.events::<Coordinator::Evicted>();
    assert_eq!(evicted.len(), 1);
    assert!(running.iter().any(|x| x.account == evicted[0].account));
}

/// The whole view change: selection (the committee and session id the Rust contract would
/// derive), posts in their phases, the board replayed from the events, the magic block signed
/// by the new committee and activated; then an equivocation proof against a dealer.
#[test]
fn a_fresh_view_change_activates_the_magic_block_the_rust_board_defines() {
    // Four seats, five candidates: node 0 has the lowest stake and stays out.
    let (mut chain, nodes) = registered(4, 5);
    chain.set_block(9);
    chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .reverts_with::<Coordinator::TooEarly>();

    let s = start(&mut chain, &nodes);
    assert_eq!((s.sel.n, s.sel.t, s.sel.k), (4, 3, 3));
    assert_eq!(s.committee, vec![4, 3, 2, 1]);
    let spec = spec(&nodes, &s);
    let ceremony = spec.ceremony().unwrap();
    // The session id the contract computed is the DKG's.
    assert_eq!(s.sel.sessionId.0, *ceremony.id());
    let member_at = |pos: usize| &nodes[s.committee[pos]];

    let (contributions, publications, results) = run_ceremony(&spec, &seated(&nodes, &s), &[]);
    assert_eq!((contributions.len(), publications.len()), (4, 4));

    // Contribute phase: a non-member, a publication too early, a post by the wrong member.
    chain
        .send(nodes[0].account, 0, post_call(&contributions[0]))
        .reverts_with::<Coordinator::NotMember>();
    let d0 = dealer_of(&publications[0], 4);
    chain
        .send(member_at(d0).account, 0, post_call(&publications[0]))
        .reverts_with::<Coordinator::WrongPhase>();
    let d = dealer_of(&contributions[0], 4);
    chain
        .send(
            member_at((d + 1) % 4).account,
            0,
            post_call(&contributions[0]),
        )
        .reverts_with::<Coordinator::WrongDealer>();
    let mut other_session = contributions[0].clone();
    other_session[49] ^= 1;
    chain
        .send(member_at(d).account, 0, post_call(&other_session))
        .reverts_with::<Coordinator::WrongSession>();
    let mut short = contributions[0].clone();
    short.truncate(short.len() - 1);
    chain
        .send(member_at(d).account, 0, post_call(&short))
        .reverts_with::<Coordinator::MalformedPost>();
    // One view change at a time.
    chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .reverts_with::<Coordinator::ViewChangeRunning>();
    let mut logged = Vec::new();
    for p in &contributions {
        let d = dealer_of(p, 4);
        let r = chain.send(member_at(d).account, 0, post_call(p)).ok();
        logged.extend(r.events::<Coordinator::PostAccepted>());
    }
    chain
        .send(member_at(d).account, 0, post_call(&contributions[0]))
        .reverts_with::<Coordinator::AlreadyPosted>();

    // Past the contribute deadline: contributions are refused, publications accepted.
    chain.set_block(s.sel.shareEnd + 1);
    chain
        .send(member_at(d).account, 0, post_call(&contributions[0]))
        .reverts_with::<Coordinator::WrongPhase>();
    for p in &publications {
        let d = dealer_of(p, 4);
        let r = chain.send(member_at(d).account, 0, post_call(p)).ok();
        logged.extend(r.events::<Coordinator::PostAccepted>());
    }

    // The board, replayed from the event log alone, with the contract's deadlines.
    let mut board = Board::new(ceremony.clone());
    for e in &logged {
        if e.kind == 2 && board.phase() == keyquorum_dkg::board::BoardPhase::Contribute {
            board.advance();
            board.advance();
        }
        let post = SignedPost::<Bls12381G1>::decode(&e.post, 4).unwrap();
        board.apply(&post).unwrap();
    }
    board.advance();
    let Some(Outcome::Success { output, .. }) = board.outcome().cloned() else {
        panic!("the ceremony failed")
    };
    chain.set_block(s.sel.publishEnd + 1);
    let place = MagicBlockPlace {
        chain_id: CHAIN_NAME.into(),
        view: 1,
        ceremony_number: 0,
        key_mode: KeyMode::Fresh,
        previous_hash: [0; 32],
        first_round: s.sel.waitEnd + 1,
        beacon: BeaconConfig::default(),
    };
    let block = MagicBlock::from_board(&place, &board, |id| {
        nodes
            .iter()
            .find(|n| n.identity == id.0)
            .map(|n| NetworkIdentity {
                peer_id: HexBytes(n.peer_id()),
                addresses: n.addresses(),
            })
    })
    .unwrap();

    // The new committee signs: t partials from the players' DKG shares, combined.
    let message = signing_message(SignerRole::New, &block.hash());
    let partials: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            RunResult::Ok(o) => Some(tbls::partial_sign::<MinPk>(
                o.secret_share.as_ref().unwrap(),
                Scalar::from(o.player_index.unwrap() as u64 + 1),
                &message,
            )),
            _ => None,
        })
        .collect();
    let signature = tbls::combine::<MinPk>(3, &partials)
        .unwrap()
        .to_compressed();
    let group_key: [u8; 48] = Bls12381G1::point_bytes(&output.group_key)
        .try_into()
        .unwrap();
    let seats = seated(&nodes, &s);
    let (endorsers, endorser_points, endorsement_point) =
        endorsement(&block.hash(), &seats, &[0, 1, 2]);
    let activation = |sig: [u8; 96], qualified: Vec<u32>| Coordinator::activateCall {
        a: Coordinator::Activation {
            magicBlock: block.encode().into(),
            groupKeyPoint: g1_point(&group_key).unwrap().to_vec().into(),
            qualified,
            signature: sig.to_vec().into(),
            signaturePoint: g2_point(&sig).unwrap().to_vec().into(),
            previousSignaturePoint: Bytes::new(),
            endorsers: endorsers.clone(),
            endorserPoints: endorser_points.clone(),
            endorsement: endorsement_point.clone(),
        },
    };

    // Activation belongs to the wait phase, and the publish phase is over.
    for early_or_late in [s.sel.publishEnd, s.sel.waitEnd + 1] {
        chain.set_block(early_or_late);
        chain
            .send(
                nodes[0].account,
                0,
                activation(signature, output.qualified.clone()),
            )
            .reverts_with::<Coordinator::WrongPhase>();
    }
    chain.set_block(s.sel.publishEnd + 1);
    let d0 = dealer_of(&publications[0], 4);
    chain
        .send(member_at(d0).account, 0, post_call(&publications[0]))
        .reverts_with::<Coordinator::WrongPhase>();

    // A signature on the handover message, not on the new-committee one.
    let wrong_message = signing_message(SignerRole::Old, &block.hash());
    let wrong_partials: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            RunResult::Ok(o) => Some(tbls::partial_sign::<MinPk>(
                o.secret_share.as_ref().unwrap(),
                Scalar::from(o.player_index.unwrap() as u64 + 1),
                &wrong_message,
            )),
            _ => None,
        })
        .collect();
    let wrong = tbls::combine::<MinPk>(3, &wrong_partials)
        .unwrap()
        .to_compressed();
    chain
        .send(
            nodes[0].account,
            0,
            activation(wrong, output.qualified.clone()),
        )
        .reverts_with::<Coordinator::BadCommitteeSignature>();
    // A qualified set whose contributions do not add up to the group key.
    chain
        .send(
            nodes[0].account,
            0,
            activation(signature, output.qualified[..3].to_vec()),
        )
        .reverts_with::<Coordinator::GroupKeyMismatch>();
    // Endorsed by fewer than t players, or on another magic block.
    let (few, few_points, few_sig) = endorsement(&block.hash(), &seats, &[0, 1]);
    let mut underendorsed = activation(signature, output.qualified.clone());
    underendorsed.a.endorsers = few;
    underendorsed.a.endorserPoints = few_points;
    underendorsed.a.endorsement = few_sig;
    chain
        .send(nodes[0].account, 0, underendorsed)
        .reverts_with::<Coordinator::TooFewEndorsers>();
    let mut misendorsed = activation(signature, output.qualified.clone());
    misendorsed.a.endorsement = endorsement(&[0x11; 32], &seats, &[0, 1, 2]).2;
    chain
        .send(nodes[0].account, 0, misendorsed)
        .reverts_with::<Coordinator::BadEndorsement>();
    // A magic block changed after signing.
    let mut changed = activation(signature, output.qualified.clone());
    let mut other = block.clone();
    other.first_round += 1;
    changed.a.magicBlock = other.encode().into();
    chain
        .send(nodes[0].account, 0, changed)
        .reverts_with::<Coordinator::BadMagicBlock>();

    let r = chain
        .send(
            nodes[0].account,
            0,
            activation(signature, output.qualified.clone()),
        )
        .ok();
    let activated = r.events::<Coordinator::ViewActivated>().remove(0);
    assert_eq!(activated.viewNumber, 1);
    assert_eq!(activated.magicBlockHash.0, block.hash());
    assert_eq!(chain.read(Coordinator::currentViewCall {}), 1);
    assert_eq!(
        chain.read(Coordinator::seedCall {}).0,
        keyquorum_contract::view_seed(&signature)
    );
    // The magic block the contract accepted verifies as the first link of the Rust chain.
    let signed = keyquorum_contract::SignedMagicBlock {
        hash: Hex(block.hash()),
        block: block.clone(),
        signature: Some(Hex(signature)),
        previous_signature: None,
    };
    assert_eq!(
        keyquorum_contract::verify_magic_block_chain(&group_key, &[signed]),
        Ok(())
    );

    equivocation(&mut chain, &nodes, &s, &contributions);
}

/// A ceremony that fails because members stayed silent is followed by one without them: the
/// same silent minority chosen again would stall the view change for ever.
#[test]
fn a_failed_ceremony_s_absent_members_sit_out_the_restart() {
    let (mut chain, nodes) = registered(4, 6);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let seats = seated(&nodes, &s);
    let (contributions, publications, _) = run_ceremony(&spec, &seats, &[]);
    // Seats 0 and 1 post everything; seat 2 only its contribution; seat 3 nothing.
    for p in &contributions {
        let d = dealer_of(p, 4);
        if d <= 2 {
            chain.send(seats[d].account, 0, post_call(p)).ok();
        }
    }
    chain.set_block(s.sel.shareEnd + 1);
    for p in &publications {
        let d = dealer_of(p, 4);
        if d <= 1 {
            chain.send(seats[d].account, 0, post_call(p)).ok();
        }
    }
    chain.set_block(s.sel.waitEnd + 1);
    let r = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    assert_eq!((sel.viewNumber, sel.number), (1, 1));
    let silent = [seats[2].account, seats[3].account];
    assert!(
        sel.committee.iter().all(|a| !silent.contains(a)),
        "the silent members were chosen again: {:?}",
        sel.committee
    );
    assert!(sel.committee.contains(&seats[0].account) && sel.committee.contains(&seats[1].account));
    assert_eq!(sel.committee.len(), 4);
}

/// Two deployments on one chain with the same chain name and committee: their session ids
/// differ (each binds its chain id and address, as `Deployment::session_domain` does, and
/// each equals the DKG's for that domain), so a post signed for one is refused by the other.
#[test]
fn a_post_signed_for_one_deployment_is_refused_by_another() {
    let (mut chain, nodes) = registered(4, 4);
    let a = start(&mut chain, &nodes);
    let first = chain.contract;
    let code = coordinator_code(config(4));
    chain.deploy(code).ok();
    assert_ne!(chain.contract, first);
    for node in &nodes {
        let call = node.register_call(chain.contract);
        chain
            .send(node.account, STAKE + node.index as u64, call)
            .ok();
    }
    let b = start(&mut chain, &nodes);
    assert_eq!(a.committee, b.committee);
    assert_eq!(
        (a.sel.viewNumber, a.sel.number),
        (b.sel.viewNumber, b.sel.number)
    );
    assert_ne!(a.sel.sessionId, b.sel.sessionId);
    for s in [&a, &b] {
        assert_eq!(s.sel.sessionId.0, *spec(&nodes, s).ceremony().unwrap().id());
    }
    let spec_a = spec(&nodes, &a);
    let (contributions, _, _) = run_ceremony(&spec_a, &seated(&nodes, &a), &[]);
    let p = &contributions[0];
    let author = nodes[b.committee[dealer_of(p, 4)]].account;
    chain
        .send(author, 0, post_call(p))
        .reverts_with::<Coordinator::WrongSession>();
    // The same member's post is accepted where it was signed.
    chain.contract = first;
    chain.send(author, 0, post_call(p)).ok();
}

/// The contract ranks from its own state: a stake added, a registration and an unbonding that
/// land just before `startViewChange` change the committee it selects (as
/// `keyquorum_contract::select` selects from the stakes at that moment), never whether the
/// selection succeeds. (With a caller-supplied ranking, each of them made it revert.)
#[test]
fn stake_changes_just_before_the_selection_do_not_make_it_revert() {
    // Nodes 0..6 registered; node 6 registers just before the selection.
    let nodes: Vec<Node> = (0..7).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let mut chain = Chain::new(config(4), &accounts);
    for node in &nodes[..6] {
        let call = node.register_call(chain.contract);
        chain
            .send(node.account, STAKE + node.index as u64, call)
            .ok();
    }
    chain.set_block(10);
    // Node 0, the lowest stake, outbids everyone; node 5, the highest, drops below the minimum;
    // node 6 comes in second.
    chain
        .send(nodes[0].account, 10_000, Coordinator::addStakeCall {})
        .ok();
    chain
        .send(
            nodes[5].account,
            0,
            Coordinator::unbondCall {
                amount: U256::from(STAKE + 5 - 50),
            },
        )
        .ok();
    let call = nodes[6].register_call(chain.contract);
    chain.send(nodes[6].account, STAKE + 100, call).ok();
    let r = chain
        .send(nodes[1].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    let stakes: Vec<(Hex<96>, u64)> = nodes
        .iter()
        .filter_map(|n| {
            let s = chain.read(Coordinator::stakeOfCall { account: n.account });
            let s = s.stake.to::<u64>();
            (s >= 100).then_some((Hex(n.identity), s))
        })
        .collect();
    assert_eq!(stakes.len(), 6);
    let expected = select_committee(
        &stakes,
        &Default::default(),
        &genesis_seed(CHAIN_NAME),
        4,
        0,
    );
    let chosen: Vec<Hex<96>> = sel
        .committee
        .iter()
        .map(|a| Hex(nodes.iter().find(|n| n.account == *a).unwrap().identity))
        .collect();
    assert_eq!(chosen, expected);
    assert_eq!(chosen[0], Hex(nodes[0].identity));
    assert_eq!(chosen[1], Hex(nodes[6].identity));
    assert!(!sel.committee.contains(&nodes[5].account));
}

/// A dealer that posts last can choose its f(0) G so that the contributions add up to a key it
/// alone holds (42 G here), and sign a magic block under it: the sum check passes for the
/// qualified set it names, and only the endorsements of t players, which honest players give
/// only to the magic block their own boards define, stop it.
#[test]
fn a_rogue_contribution_cannot_take_the_first_view() {
    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let seats = seated(&nodes, &s);
    let (contributions, _, _) = run_ceremony(&spec, &seats, &[]);
    const CONSTANT_AT: usize = 48 + 41;
    let constant = |p: &[u8]| {
        let bytes: [u8; 96] = p[CONSTANT_AT..CONSTANT_AT + 96].try_into().unwrap();
        blstrs::G1Projective::from(blstrs::G1Affine::from_uncompressed(&bytes).unwrap())
    };
    let attacker = 3usize;
    let mut others = blstrs::G1Projective::identity();
    for p in contributions.iter().filter(|p| dealer_of(p, 4) != attacker) {
        chain
            .send(seats[dealer_of(p, 4)].account, 0, post_call(p))
            .ok();
        others += constant(p);
    }
    let secret = Scalar::from(42u64);
    let rogue_key = blstrs::G1Projective::generator() * secret;
    let mut rogue = contributions
        .iter()
        .find(|p| dealer_of(p, 4) == attacker)
        .unwrap()
        .clone();
    rogue[CONSTANT_AT..CONSTANT_AT + 96]
        .copy_from_slice(&blstrs::G1Affine::from(rogue_key - others).to_uncompressed());
    chain
        .send(seats[attacker].account, 0, post_call(&rogue))
        .ok();

    chain.set_block(s.sel.publishEnd + 1);
    let group_key = blstrs::G1Affine::from(rogue_key).to_compressed();
    assert_eq!(*spec.ceremony().unwrap().id(), s.sel.sessionId.0);
    let block = first_view_block(&s, &seats, group_key);
    let message = signing_message(SignerRole::New, &block.hash());
    let sig = tbls::sign::<MinPk>(&keyquorum_crypto::secret::Secret::new(secret), &message)
        .to_compressed();
    let (endorsers, endorser_points, endorsement_point) =
        endorsement(&block.hash(), &seats, &[attacker]);
    let r = chain.send(
        seats[attacker].account,
        0,
        Coordinator::activateCall {
            a: Coordinator::Activation {
                magicBlock: block.encode().into(),
                groupKeyPoint: g1_point(&group_key).unwrap().to_vec().into(),
                qualified: vec![0, 1, 2, 3],
                signature: sig.to_vec().into(),
                signaturePoint: g2_point(&sig).unwrap().to_vec().into(),
                previousSignaturePoint: Bytes::new(),
                endorsers,
                endorserPoints: endorser_points,
                endorsement: endorsement_point,
            },
        },
    );
    // Refused for want of endorsements, after every other check passed.
    r.reverts_with::<Coordinator::TooFewEndorsers>();
    assert_eq!(chain.read(Coordinator::currentViewCall {}), 0);
}

/// Dealer `d`'s on-chain contribution and a second, different contribution it signed for the
/// same session: provable equivocation.
fn equivocation(chain: &mut Chain, nodes: &[Node], s: &Started, contributions: &[Vec<u8>]) {
    let signed = SignedPost::<Bls12381G1>::decode(&contributions[1], 4).unwrap();
    let dealer = signed.post.dealer() as usize;
    let culprit = &nodes[s.committee[dealer]];
    let payload_a = signed.post.signed_payload();
    let mut payload_b = payload_a.clone();
    payload_b[72] ^= 1; // another commitment digest
    let sig_b = culprit.keys.identity.sign(Purpose::Post, &payload_b);
    let point = |sig: &[u8; 48]| Bytes::from(g1_point(sig).unwrap().to_vec());
    let identity_point = Bytes::from(g2_point(&culprit.identity).unwrap().to_vec());
    let proof = |b: &[u8], sb: &[u8; 48]| Coordinator::proveEquivocationCall {
        id: s.id,
        payloadA: payload_a.clone().into(),
        sigA: point(&signed.signature.0),
        payloadB: b.to_vec().into(),
        sigB: point(sb),
        identityPoint: identity_point.clone(),
    };
    let reporter = nodes[0].account;
    // The same post twice is no equivocation; a signature by someone else proves nothing.
    chain
        .send(reporter, 0, proof(&payload_a, &signed.signature.0))
        .reverts_with::<Coordinator::NotEquivocation>();
    let forged = nodes[0].keys.identity.sign(Purpose::Post, &payload_b);
    chain
        .send(reporter, 0, proof(&payload_b, &forged.0))
        .reverts_with::<Coordinator::BadPostSignature>();

    let stake_before = chain
        .read(Coordinator::stakeOfCall {
            account: culprit.account,
        })
        .stake;
    let balance_before = chain.balance(reporter);
    let r = chain.send(reporter, 0, proof(&payload_b, &sig_b.0)).ok();
    let slashed = r.events::<Coordinator::Slashed>().remove(0);
    assert_eq!(slashed.culprit, culprit.account);
    assert_eq!(slashed.amount, stake_before / U256::from(2));
    assert_eq!(slashed.reward, slashed.amount / U256::from(10));
    assert_eq!(chain.balance(reporter) - balance_before, slashed.reward);
    assert_eq!(
        chain
            .read(Coordinator::stakeOfCall {
                account: culprit.account
            })
            .stake,
        stake_before - slashed.amount
    );
    assert_eq!(chain.read(Coordinator::burnedCall {}), slashed.burned);
    chain
        .send(reporter, 0, proof(&payload_b, &sig_b.0))
        .reverts_with::<Coordinator::AlreadySlashed>();
}

/// A dealer publishes an ack aggregate that does not verify (another dealer's aggregate): the
/// Rust board names it `bad_ack_signature`, and the contract slashes it on a proof made of the
/// publication on chain and the ackers' keys. An honest publication proves nothing.
#[test]
fn a_forged_ack_aggregate_is_slashed() {
    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let (contributions, publications, _) = run_ceremony(&spec, &seated(&nodes, &s), &[]);
    let member_at = |pos: usize| &nodes[s.committee[pos]];
    for p in &contributions {
        chain
            .send(member_at(dealer_of(p, 4)).account, 0, post_call(p))
            .ok();
    }
    // Share phase: only a final log (every player acked, nothing revealed) is taken, as the
    // board takes it.
    chain.set_block(s.sel.contributeEnd + 1);
    let decode = |p: &[u8]| SignedPost::<Bls12381G1>::decode(p, 4).unwrap();
    let Post::Publication(mut partial) = decode(&publications[2]).post else {
        panic!("publication expected")
    };
    partial.acks.pop();
    let partial_dealer = partial.dealer as usize;
    let partial = SignedPost {
        signature: member_at(partial_dealer).keys.identity.sign(
            Purpose::Post,
            &Post::Publication(partial.clone()).signed_payload(),
        ),
        post: Post::<Bls12381G1>::Publication(partial),
    }
    .encode();
    chain
        .send(member_at(partial_dealer).account, 0, post_call(&partial))
        .reverts_with::<Coordinator::WrongPhase>();
    let (Post::Publication(honest), Post::Publication(other)) =
        (decode(&publications[0]).post, decode(&publications[1]).post)
    else {
        panic!("publications expected")
    };
    let forger = honest.dealer as usize;
    let mut forged = honest.clone();
    forged.ack_signature = other.ack_signature;
    let forged_post = Post::Publication(forged.clone());
    let forged_signed = SignedPost {
        signature: member_at(forger)
            .keys
            .identity
            .sign(Purpose::Post, &forged_post.signed_payload()),
        post: forged_post,
    }
    .encode();
    chain
        .send(member_at(forger).account, 0, post_call(&forged_signed))
        .ok();
    let mut honest_post = None;
    for p in &publications[1..] {
        chain
            .send(member_at(dealer_of(p, 4)).account, 0, post_call(p))
            .ok();
        honest_post.get_or_insert(p.clone());
    }

    // The board calls it a bad ack aggregate.
    let mut board = Board::new(spec.ceremony().unwrap());
    for p in &contributions {
        board.apply(&decode(p)).unwrap();
    }
    board.advance();
    board.advance();
    assert!(matches!(
        board.apply(&decode(&forged_signed)),
        Err(keyquorum_dkg::board::BoardError::Fault {
            fault: keyquorum_dkg::board::FaultKind::BadAckSignature,
            ..
        })
    ));

    let proof = |post: &[u8], acks: &[u32]| {
        let p = decode(post);
        let Post::Publication(publication) = &p.post else {
            unreachable!()
        };
        Coordinator::proveBadAckAggregateCall {
            id: s.id,
            signedPost: post.to_vec().into(),
            aggregatePoint: g1_point(&publication.ack_signature.unwrap().0)
                .unwrap()
                .to_vec()
                .into(),
            ackerPoints: acks
                .iter()
                .map(|&j| Bytes::from(g2_point(&member_at(j as usize).identity).unwrap().to_vec()))
                .collect(),
        }
    };
    let reporter = nodes[0].account;
    let honest_post = honest_post.unwrap();
    let honest_acks = match decode(&honest_post).post {
        Post::Publication(p) => p.acks,
        _ => unreachable!(),
    };
    chain
        .send(reporter, 0, proof(&honest_post, &honest_acks))
        .reverts_with::<Coordinator::NotAFault>();
    // The honest aggregate's x and sign with a y off the curve (1 or p - 1, whichever has the
    // sign flag's half): the pairing cannot be evaluated, which is no proof of forgery.
    let mut off_curve = proof(&honest_post, &honest_acks);
    let larger = {
        let Post::Publication(p) = &decode(&honest_post).post else {
            unreachable!()
        };
        p.ack_signature.as_ref().unwrap().0[0] & 0x20 != 0
    };
    let mut point = off_curve.aggregatePoint.to_vec();
    let y: [u8; 48] = if larger {
        let mut p_minus_1 = FIELD_MODULUS;
        p_minus_1[47] -= 1;
        p_minus_1
    } else {
        let mut one = [0u8; 48];
        one[47] = 1;
        one
    };
    point[80..128].copy_from_slice(&y);
    off_curve.aggregatePoint = point.into();
    let r = chain.send(reporter, 0, off_curve);
    assert!(
        !r.success,
        "an off-curve aggregate slashed an honest dealer"
    );
    // The ackers' keys must be the registered ones, all of them.
    chain
        .send(reporter, 0, proof(&forged_signed, &forged.acks[1..]))
        .reverts_with::<Coordinator::BadIdentityKey>();
    let mut swapped = forged.acks.clone();
    swapped.swap(0, 1);
    chain
        .send(reporter, 0, proof(&forged_signed, &swapped))
        .reverts_with::<Coordinator::BadIdentityKey>();
    // Only a publication the contract accepted counts.
    chain
        .send(reporter, 0, proof(&publications[0], &forged.acks))
        .reverts_with::<Coordinator::NoPublication>();

    let r = chain
        .send(reporter, 0, proof(&forged_signed, &forged.acks))
        .ok();
    let slashed = r.events::<Coordinator::Slashed>().remove(0);
    assert_eq!(slashed.culprit, member_at(forger).account);
    assert_eq!(slashed.fault, "bad_ack_signature");
    assert!(slashed.amount > U256::ZERO);
    chain
        .send(reporter, 0, proof(&forged_signed, &forged.acks))
        .reverts_with::<Coordinator::AlreadySlashed>();
}

/// Member 3 is silent, so each dealer reveals its share (one reveal is within the bound at
/// n = 4, t = k = 3). A dealer that reveals a wrong share is named `bad_reveal` by the board and
/// slashed on a proof made of its contribution and publication on chain; an honest reveal
/// proves nothing.
#[test]
fn a_bad_reveal_is_slashed() {
    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let (contributions, publications, _) = run_ceremony(&spec, &seated(&nodes, &s), &[3]);
    assert_eq!((contributions.len(), publications.len()), (3, 3));
    let member_at = |pos: usize| &nodes[s.committee[pos]];
    for p in &contributions {
        chain
            .send(member_at(dealer_of(p, 4)).account, 0, post_call(p))
            .ok();
    }
    chain.set_block(s.sel.shareEnd + 1);
    let decode = |p: &[u8]| SignedPost::<Bls12381G1>::decode(p, 4).unwrap();
    let Post::Publication(mut bad) = decode(&publications[0]).post else {
        panic!("publication expected")
    };
    assert_eq!(bad.reveals.len(), 1);
    let player = bad.reveals[0].0;
    bad.reveals[0].1 += Scalar::from(1u64);
    let liar = bad.dealer as usize;
    let bad_post = Post::<Bls12381G1>::Publication(bad);
    let bad_signed = SignedPost {
        signature: member_at(liar)
            .keys
            .identity
            .sign(Purpose::Post, &bad_post.signed_payload()),
        post: bad_post,
    }
    .encode();
    chain
        .send(member_at(liar).account, 0, post_call(&bad_signed))
        .ok();
    for p in &publications[1..] {
        chain
            .send(member_at(dealer_of(p, 4)).account, 0, post_call(p))
            .ok();
    }
    let contribution_of = |d: usize| {
        contributions
            .iter()
            .find(|p| dealer_of(p, 4) == d)
            .unwrap()
            .clone()
    };

    // The board calls it a bad reveal.
    let mut board = Board::new(spec.ceremony().unwrap());
    for p in &contributions {
        board.apply(&decode(p)).unwrap();
    }
    board.advance();
    board.advance();
    assert!(matches!(
        board.apply(&decode(&bad_signed)),
        Err(keyquorum_dkg::board::BoardError::Fault {
            fault: keyquorum_dkg::board::FaultKind::BadReveal { .. },
            ..
        })
    ));

    let proof =
        |contribution: Vec<u8>, publication: &[u8], player: u32| Coordinator::proveBadRevealCall {
            id: s.id,
            contribution: contribution.into(),
            publication: publication.to_vec().into(),
            player,
        };
    let reporter = nodes[0].account;
    let honest = &publications[1];
    let honest_dealer = dealer_of(honest, 4);
    chain
        .send(
            reporter,
            0,
            proof(contribution_of(honest_dealer), honest, player),
        )
        .reverts_with::<Coordinator::NotAFault>();
    // No reveal for that player, another dealer's contribution, a publication not on chain.
    chain
        .send(reporter, 0, proof(contribution_of(liar), &bad_signed, 0))
        .reverts_with::<Coordinator::NotAFault>();
    chain
        .send(
            reporter,
            0,
            proof(contribution_of(honest_dealer), &bad_signed, player),
        )
        .reverts_with::<Coordinator::NoContribution>();
    chain
        .send(
            reporter,
            0,
            proof(contribution_of(liar), &publications[0], player),
        )
        .reverts_with::<Coordinator::NoPublication>();

    // Once the ceremony is over the liar's stake is no longer locked and it unbonds all of it
    // before the proof lands: what it unbonds is still held, and still slashed.
    chain.set_block(s.sel.waitEnd + 1);
    let liar_account = member_at(liar).account;
    let held = chain
        .read(Coordinator::stakeOfCall {
            account: liar_account,
        })
        .stake;
    chain
        .send(liar_account, 0, Coordinator::unbondCall { amount: held })
        .ok();
    let r = chain
        .send(
            reporter,
            0,
            proof(contribution_of(liar), &bad_signed, player),
        )
        .ok();
    let slashed = r.events::<Coordinator::Slashed>().remove(0);
    assert_eq!(slashed.culprit, liar_account);
    assert_eq!(slashed.fault, "bad_reveal");
    assert_eq!(
        slashed.amount,
        held * U256::from(50u64) / U256::from(100u64)
    );
    let after = chain.read(Coordinator::stakeOfCall {
        account: liar_account,
    });
    assert_eq!(after.stake + after.unbonding, held - slashed.amount);
    chain
        .send(
            reporter,
            0,
            proof(contribution_of(liar), &bad_signed, player),
        )
        .reverts_with::<Coordinator::AlreadySlashed>();
}

/// A translator fed what a node reads from the contract's logs: the registrations and the
/// selection of `s`.
/// A translator announces the idle phase as the embedded chain's contract does: when a view
/// activates, until the next view change may start (`first round + viewLength`); when the wait
/// ends without an activation, from the block after it. Without it `/status` kept the last
/// ceremony's phase (`wait`) until the next view change.
#[test]
fn the_translator_announces_the_idle_phase_after_an_activation_and_after_a_wait_in_vain() {
    let idle = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::PhaseChanged {
                phase: ViewChangePhase::Idle,
                view,
                deadline,
                ..
            } => Some((*view, *deadline)),
            _ => None,
        })
    };

    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let mut t = translator_of(&nodes, &s);
    let secret = post_synthetic(&mut chain, &nodes, &s);
    let r = activate_synthetic_with(&mut chain, &nodes, &s, secret, BeaconConfig::default()).ok();
    let activated = r.events::<Coordinator::ViewActivated>().remove(0);
    let events = t.translate(BoardInput::ViewActivated(activated));
    assert!(matches!(events[0], Event::ViewActivated { view: 1, .. }));
    let first_round = s.sel.waitEnd + 1;
    assert_eq!(idle(&events), Some((1, first_round + config(4).viewLength)));

    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let mut t = translator_of(&nodes, &s);
    let wait_over = t.translate(BoardInput::Deadline {
        ceremony: s.id,
        phase: Phase::Wait,
    });
    assert_eq!(idle(&wait_over), Some((1, s.sel.waitEnd + 1)));
}

fn translator_of(nodes: &[Node], s: &Started) -> Translator {
    let mut t = Translator::new(deployment(s.contract));
    for node in nodes {
        t.translate(BoardInput::Registered(Coordinator::Registered {
            account: node.account,
            identity: node.identity.to_vec().into(),
            encryptionKey: node.encryption_key.into(),
            peerId: node.peer_id().into(),
            addresses: node.addresses(),
            stake: U256::from(STAKE + node.index as u64),
        }));
    }
    t.translate(BoardInput::CommitteeSelected(s.sel.clone()));
    t
}

/// Feeds the translator the posts a receipt logged.
fn feed(t: &mut Translator, r: &Receipt) {
    feed_at(t, r, 0);
}

/// [`feed`], as the logs of confirmed block `number`.
fn feed_at(t: &mut Translator, r: &Receipt, number: u64) {
    t.translate_block(ConfirmedBlock {
        number,
        inputs: r.posts(),
    });
}

/// A forged ack aggregate that is no point of the group is proven and slashed as well as one
/// that is: the identity, bytes whose x has no y on the curve, a point of the curve outside the
/// subgroup, and an x at or above p. Each forger's publication is refused by the board, the
/// translator builds the proof from the logs, and the contract slashes on it; a wrong witness,
/// or a claim that a point of the curve is none, is refused.
#[test]
fn a_forged_ack_aggregate_that_is_no_point_of_the_group_is_slashed() {
    use keyquorum_dkg::identity::IdentitySignature;
    // Node 0 stakes least and stands by: it reports.
    let (mut chain, nodes) = registered(4, 5);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let (contributions, publications, _) = run_ceremony(&spec, &seated(&nodes, &s), &[]);
    let member_at = |pos: usize| &nodes[s.committee[pos]];
    let reporter = nodes[0].account;
    assert!(!s.committee.contains(&0));
    let mut t = translator_of(&nodes, &s);
    post_and_feed(&mut chain, &mut t, &nodes, &s, &contributions);
    chain.set_block(s.sel.contributeEnd + 1);
    t.translate(BoardInput::Deadline {
        ceremony: s.id,
        phase: Phase::Contribute,
    });
    // The first x (compression flag set, sign clear) with the property asked for.
    let find = |want: fn(&[u8; 48]) -> bool| -> [u8; 48] {
        (1u8..=255)
            .map(|x| {
                let mut b = [0u8; 48];
                b[0] = 0x80;
                b[47] = x;
                b
            })
            .find(want)
            .expect("within 255 tries")
    };
    let no_y = find(|b| bool::from(blstrs::G1Affine::from_compressed_unchecked(b).is_none()));
    let outside = find(|b| {
        bool::from(blstrs::G1Affine::from_compressed_unchecked(b).is_some())
            && bool::from(blstrs::G1Affine::from_compressed(b).is_none())
    });
    let mut identity = [0u8; 48];
    identity[0] = 0xc0;
    let mut too_large = FIELD_MODULUS;
    too_large[0] |= 0x80;
    let decode = |p: &[u8]| SignedPost::<Bls12381G1>::decode(p, 4).unwrap();
    for (p, bytes) in publications
        .iter()
        .zip([identity, no_y, outside, too_large])
    {
        let Post::Publication(mut forged) = decode(p).post else {
            panic!("publication expected")
        };
        let forger = forged.dealer as usize;
        forged.ack_signature = Some(IdentitySignature(bytes));
        let forged_signed = signed_publication(member_at(forger), forged);
        let r = chain
            .send(member_at(forger).account, 0, post_call(&forged_signed))
            .ok();
        feed(&mut t, &r);
        let proof = t.fault_proof(&forged_signed).expect("a proof").clone();
        assert_eq!(proof.fault, "bad_ack_signature");
        let call = Coordinator::proveBadAckAggregateCall::abi_decode(&proof.calldata).unwrap();
        // A claim that bytes are no point needs its witness where the flags do not show it;
        // a point of the curve is not shown to be none by an empty one.
        if bytes == no_y || bytes == outside {
            let mut wrong = call.clone();
            wrong.aggregatePoint = if bytes == no_y {
                vec![0u8; 48].into()
            } else {
                Bytes::new()
            };
            chain
                .send(reporter, 0, wrong)
                .reverts_with::<Coordinator::NotAFault>();
        }
        let r = chain.send(reporter, 0, call).ok();
        let slashed = r.events::<Coordinator::Slashed>().remove(0);
        assert_eq!(slashed.culprit, member_at(forger).account);
        assert_eq!(slashed.fault, "bad_ack_signature");
    }
    // The identity is what valid acks sum to when the ackers' keys sum to the identity (keys
    // k and -k both have proofs of possession): the verifier calls it forged only under
    // another key.
    let verifier = chain.read(Coordinator::blsCall {});
    let judge = |chain: &mut Chain, bytes: [u8; 48], witness: Vec<u8>, key: Vec<u8>| {
        chain.read_at(
            verifier,
            keyquorum_evm::Bls12381Verifier::isForgedAckAggregateCall {
                compressed: bytes.to_vec().into(),
                point: witness.into(),
                aggregatePk: key.into(),
                head: vec![0u8; 72].into(),
            },
        )
    };
    let some_key = g2_point(&member_at(0).identity).unwrap().to_vec();
    assert_eq!(judge(&mut chain, identity, Vec::new(), vec![0; 256]), 0);
    assert_eq!(judge(&mut chain, identity, Vec::new(), some_key.clone()), 1);
    assert_eq!(judge(&mut chain, too_large, Vec::new(), vec![0; 256]), 1);
    let keyquorum_evm::G1Evidence::NoPoint(witness) = keyquorum_evm::g1_evidence(&no_y) else {
        panic!("no point expected")
    };
    assert_eq!(judge(&mut chain, no_y, witness, some_key.clone()), 1);
    assert_eq!(judge(&mut chain, no_y, vec![0; 48], some_key), 0);
}

/// Sends each post from its dealer's account (a committee of four) and feeds the receipt to
/// the translator, as its node would see the logs.
fn post_and_feed(
    chain: &mut Chain,
    t: &mut Translator,
    nodes: &[Node],
    s: &Started,
    posts: &[Vec<u8>],
) {
    for p in posts {
        let dealer = &nodes[s.committee[dealer_of(p, 4)]];
        let r = chain.send(dealer.account, 0, post_call(p)).ok();
        feed(t, &r);
    }
}

/// Re-signs a publication as its dealer.
fn signed_publication(
    member: &Node,
    publication: keyquorum_dkg::messages::Publication<Bls12381G1>,
) -> Vec<u8> {
    let post = Post::Publication(publication);
    SignedPost {
        signature: member
            .keys
            .identity
            .sign(Purpose::Post, &post.signed_payload()),
        post,
    }
    .encode()
}

/// The proof a node's translator builds from the logs of a forged ack aggregate is the one
/// the contract slashes on; an honest publication gets none, the proof with another committee
/// member's key is refused, and once the translator sees the slash it offers the proof no more.
/// The three honest members take turns from the block that logged the forgery, one turn of
/// `confirmations + 2` blocks each in distinct ranks, the forger none; the slash settles them all.
#[test]
fn the_translator_proves_a_forged_ack_aggregate_from_the_logs() {
    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let (contributions, publications, _) = run_ceremony(&spec, &seated(&nodes, &s), &[]);
    let member_at = |pos: usize| &nodes[s.committee[pos]];
    let mut t = translator_of(&nodes, &s);
    post_and_feed(&mut chain, &mut t, &nodes, &s, &contributions);
    chain.set_block(s.sel.contributeEnd + 1);
    t.translate(BoardInput::Deadline {
        ceremony: s.id,
        phase: Phase::Contribute,
    });
    let decode = |p: &[u8]| SignedPost::<Bls12381G1>::decode(p, 4).unwrap();
    let (Post::Publication(honest), Post::Publication(other)) =
        (decode(&publications[0]).post, decode(&publications[1]).post)
    else {
        panic!("publications expected")
    };
    let forger = honest.dealer as usize;
    let mut forged = honest.clone();
    forged.ack_signature = other.ack_signature;
    let forged_signed = signed_publication(member_at(forger), forged);
    let r = chain
        .send(member_at(forger).account, 0, post_call(&forged_signed))
        .ok();
    const FOUND_AT: u64 = 77;
    const CONFIRMATIONS: u64 = 2;
    feed_at(&mut t, &r, FOUND_AT);
    post_and_feed(&mut chain, &mut t, &nodes, &s, &publications[1..]);
    assert!(t.fault_proof(&publications[1]).is_none());
    let proof = t.fault_proof(&forged_signed).expect("a proof").clone();
    assert_eq!(proof.culprit, member_at(forger).account);
    assert_eq!(proof.fault, "bad_ack_signature");
    let turn = |t: &Translator, pos: usize, confirmed: u64| {
        t.proof_turn(
            &forged_signed,
            member_at(pos).account,
            confirmed,
            CONFIRMATIONS,
            Held {
                held_ms: u64::MAX,
                idle_ms: 0,
            },
        )
        .expect("a proof")
    };
    let mut starts: Vec<u64> = (0..4)
        .filter(|&pos| pos != forger)
        .map(|pos| match turn(&t, pos, FOUND_AT) {
            Turn::Send => FOUND_AT,
            Turn::Wait { at } => {
                assert_eq!(turn(&t, pos, at - 1), Turn::Wait { at });
                assert_eq!(turn(&t, pos, at), Turn::Send);
                at
            }
            other => panic!("member {pos}: {other:?}"),
        })
        .collect();
    starts.sort_unstable();
    let step = CONFIRMATIONS + 2;
    assert_eq!(starts, [FOUND_AT, FOUND_AT + step, FOUND_AT + 2 * step]);
    assert_eq!(turn(&t, forger, u64::MAX), Turn::NotListed);
    assert_eq!(
        t.proof_turn(
            &forged_signed,
            Address::repeat_byte(0x42),
            u64::MAX,
            2,
            Held::default()
        ),
        Some(Turn::NotListed)
    );
    assert_eq!(
        t.proof_turn(
            &publications[1],
            member_at(0).account,
            0,
            2,
            Held::default()
        ),
        None
    );
    assert_eq!(proof.ceremony, s.id);
    let call = Coordinator::proveBadAckAggregateCall::abi_decode(&proof.calldata).unwrap();

    let reporter = member_at((forger + 1) % 4).account;
    let mut wrong = call.clone();
    wrong.ackerPoints.swap(0, 1);
    chain
        .send(reporter, 0, wrong)
        .reverts_with::<Coordinator::BadIdentityKey>();
    let before = chain.read(Coordinator::stakeOfCall {
        account: proof.culprit,
    });
    let r = chain.send(reporter, 0, call.clone()).ok();
    let slashed = r.events::<Coordinator::Slashed>().remove(0);
    assert_eq!(slashed.culprit, proof.culprit);
    assert_eq!(slashed.fault, proof.fault);
    assert_eq!(slashed.reporter, reporter);
    assert!(slashed.reward > U256::ZERO);
    let after = chain.read(Coordinator::stakeOfCall {
        account: proof.culprit,
    });
    assert_eq!(after.stake, before.stake - slashed.amount);
    chain
        .send(reporter, 0, call)
        .reverts_with::<Coordinator::AlreadySlashed>();
    t.translate(BoardInput::Slashed(slashed));
    assert!(t.fault_proof(&forged_signed).is_none());
    for pos in (0..4).filter(|&pos| pos != forger) {
        assert_eq!(turn(&t, pos, u64::MAX), Turn::Settled);
    }
}

/// The proof a node's translator builds from the logs of a bad reveal (member 3 silent, so
/// each dealer reveals its share) names the dealer's contribution and the player, and the
/// contract slashes on it; the same proof for a player without a reveal is refused.
#[test]
fn the_translator_proves_a_bad_reveal_from_the_logs() {
    let (mut chain, nodes) = registered(4, 4);
    let s = start(&mut chain, &nodes);
    let spec = spec(&nodes, &s);
    let (contributions, publications, _) = run_ceremony(&spec, &seated(&nodes, &s), &[3]);
    let member_at = |pos: usize| &nodes[s.committee[pos]];
    let mut t = translator_of(&nodes, &s);
    post_and_feed(&mut chain, &mut t, &nodes, &s, &contributions);
    for phase in [Phase::Contribute, Phase::Share] {
        t.translate(BoardInput::Deadline {
            ceremony: s.id,
            phase,
        });
    }
    chain.set_block(s.sel.shareEnd + 1);
    let decode = |p: &[u8]| SignedPost::<Bls12381G1>::decode(p, 4).unwrap();
    let Post::Publication(mut bad) = decode(&publications[0]).post else {
        panic!("publication expected")
    };
    let player = bad.reveals[0].0;
    bad.reveals[0].1 += Scalar::from(1u64);
    let liar = bad.dealer as usize;
    let bad_signed = signed_publication(member_at(liar), bad);
    let r = chain
        .send(member_at(liar).account, 0, post_call(&bad_signed))
        .ok();
    feed(&mut t, &r);
    for p in &publications[1..] {
        let r = chain
            .send(member_at(dealer_of(p, 4)).account, 0, post_call(p))
            .ok();
        feed(&mut t, &r);
        assert!(t.fault_proof(p).is_none());
    }
    let proof = t.fault_proof(&bad_signed).expect("a proof").clone();
    assert_eq!(proof.culprit, member_at(liar).account);
    assert_eq!(proof.fault, "bad_reveal");
    let call = Coordinator::proveBadRevealCall::abi_decode(&proof.calldata).unwrap();
    assert_eq!(call.player, player);

    let reporter = member_at((liar + 1) % 4).account;
    let mut wrong = call.clone();
    wrong.player = (player + 1) % 4;
    chain
        .send(reporter, 0, wrong)
        .reverts_with::<Coordinator::NotAFault>();
    let r = chain.send(reporter, 0, call).ok();
    let slashed = r.events::<Coordinator::Slashed>().remove(0);
    assert_eq!(slashed.culprit, proof.culprit);
    assert_eq!(slashed.fault, "bad_reveal");
    assert!(slashed.reward > U256::ZERO);
}
