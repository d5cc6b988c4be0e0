//! Accounts and stake: genesis balances, transfers, stake locked from the balance, unbonding
//! after a number of view activations, slashed stake burned or paid in part to the reporter, and
//! the supply invariant (balances + stakes + unbonding + burned = genesis supply) after any
//! sequence of transactions and blocks.

use crate::common;

use common::*;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::state::EvidenceRecord;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{Contract, ContractConfig, Event, Rejection, Transaction};
use proptest::prelude::*;

fn key(i: usize) -> Hex<96> {
    Hex(identity(i).public().to_bytes())
}

fn sign(c: &Contract, i: usize, body: TxBody) -> Vec<u8> {
    let k = identity(i);
    Transaction::sign(CHAIN, &k, c.next_nonce(k.public()), body).encode()
}

/// Applies a transaction that must be refused with `code`, and checks that nothing changed:
/// state, balances, stakes, nonces.
fn refused(bytes: &[u8], c: &mut Contract, height: u64, code: &str) -> Rejection {
    let before = c.state().clone();
    let err = c.apply_tx(bytes, height).unwrap_err();
    assert_eq!(err.code(), code, "got {err}");
    assert_eq!(
        c.state(),
        &before,
        "a refused transaction changed the state"
    );
    err
}

/// Node 0 holds 100, node 1 holds 40, nobody else anything.
fn small_chain() -> Contract {
    let cfg = ContractConfig {
        genesis: Vec::new(),
        ..config()
    }
    .fund(identity(0).public(), 100)
    .fund(identity(1).public(), 40);
    Contract::new(cfg).unwrap()
}

#[test]
fn stake_is_locked_from_the_balance_and_never_above_it() {
    let mut c = small_chain();
    // Claiming more stake than the balance, u64::MAX included, is refused and changes nothing.
    for stake in [101, u64::MAX] {
        let err = refused(
            &sign(&c, 0, register_body(0, stake)),
            &mut c,
            1,
            "insufficient_balance",
        );
        assert_eq!(
            err,
            Rejection::InsufficientBalance {
                balance: 100,
                requested: stake
            }
        );
    }
    refused(&sign(&c, 0, register_body(0, 0)), &mut c, 1, "zero_amount");
    // A key that holds nothing cannot register, nor reach a block: the mempool check refuses it,
    // naming what it lacks.
    let broke = sign(&c, 5, register_body(5, 1));
    assert_eq!(
        c.check_tx(&broke),
        Err(Rejection::InsufficientBalance {
            balance: 0,
            requested: 1
        })
    );
    refused(&broke, &mut c, 1, "insufficient_balance");
    let claim = sign(&c, 5, TxBody::ClaimUnbonded);
    assert_eq!(c.check_tx(&claim), Err(Rejection::NothingUnbonding));
    let nothing = sign(&c, 5, register_body(5, 0));
    assert_eq!(c.check_tx(&nothing), Err(Rejection::ZeroAmount));

    c.apply_tx(&sign(&c, 0, register_body(0, 60)), 1).unwrap();
    assert_eq!(c.state().balance(&key(0)), 40);
    assert_eq!(c.state().nodes[&key(0)].stake, 60);
    // A stake increase above the free balance is refused too.
    let err = refused(
        &sign(&c, 0, TxBody::AddStake { amount: 41 }),
        &mut c,
        1,
        "insufficient_balance",
    );
    assert_eq!(
        err,
        Rejection::InsufficientBalance {
            balance: 40,
            requested: 41
        }
    );
    c.apply_tx(&sign(&c, 0, TxBody::AddStake { amount: 40 }), 1)
        .unwrap();
    assert_eq!(c.state().balance(&key(0)), 0);
    assert!(!c.state().balances.contains_key(&key(0)));
    assert_eq!(c.state().nodes[&key(0)].stake, 100);
    assert_supply(&c);

    // The query API serves accounts and the supply.
    let a = c
        .query(&format!(
            "accounts/{}",
            keyquorum_contract::hex::encode(&key(0).0)
        ))
        .unwrap();
    assert_eq!(
        (a["balance"].as_u64(), a["stake"].as_u64()),
        (Some(0), Some(100))
    );
    assert_eq!(a["nonce"], 2);
    let s = c.query("supply").unwrap();
    assert_eq!(
        (s["genesis"].as_u64(), s["staked"].as_u64()),
        (Some(140), Some(100))
    );
    assert_eq!(c.query("accounts").unwrap().as_array().unwrap().len(), 2);
}

#[test]
fn transfers_move_balance_and_fund_new_accounts() {
    let mut c = small_chain();
    let to = |i: usize| identity(i).public().clone();
    refused(
        &sign(
            &c,
            1,
            TxBody::Transfer {
                to: to(7),
                amount: 41,
            },
        ),
        &mut c,
        1,
        "insufficient_balance",
    );
    refused(
        &sign(
            &c,
            1,
            TxBody::Transfer {
                to: to(7),
                amount: 0,
            },
        ),
        &mut c,
        1,
        "zero_amount",
    );
    // Nothing to send from an empty account.
    refused(
        &sign(
            &c,
            6,
            TxBody::Transfer {
                to: to(7),
                amount: 1,
            },
        ),
        &mut c,
        1,
        "insufficient_balance",
    );
    let ev = c
        .apply_tx(
            &sign(
                &c,
                1,
                TxBody::Transfer {
                    to: to(7),
                    amount: 15,
                },
            ),
            1,
        )
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::Transferred {
            from: key(1),
            to: key(7),
            amount: 15
        }]
    );
    assert_eq!(c.state().balance(&key(1)), 25);
    assert_eq!(c.state().balance(&key(7)), 15);
    // The new account can now stake what it received, and no more.
    refused(
        &sign(&c, 7, register_body(7, 16)),
        &mut c,
        2,
        "insufficient_balance",
    );
    c.apply_tx(&sign(&c, 7, register_body(7, 15)), 2).unwrap();
    assert_supply(&c);
    // A transfer to oneself changes nothing but the nonce.
    c.apply_tx(
        &sign(
            &c,
            0,
            TxBody::Transfer {
                to: to(0),
                amount: 100,
            },
        ),
        2,
    )
    .unwrap();
    assert_eq!(c.state().balance(&key(0)), 100);
    assert_supply(&c);
}

/// Unbonded stake leaves selection at once and returns to the balance only after
/// `unbonding_views` view activations: one activation early is refused, on time is accepted.
#[test]
fn unbonding_takes_exactly_the_configured_number_of_views() {
    let mut cfg = config();
    cfg.staking.unbonding_views = 2;
    let stakes = [70, 60, 50, 40, 30, 20, 10];
    let mut sim = Sim::new(cfg, &stakes);
    assert_eq!(sim.contract.state().current_view, 0);
    // Before the first committee is chosen, node 0 (the largest stake) unbonds most of it.
    let ev = sim.submit_now((0, TxBody::Unbond { amount: 65 })).unwrap();
    assert!(ev.contains(&Event::UnbondingStarted {
        identity: key(0),
        amount: 65,
        release_view: 2
    }));
    assert_eq!(sim.contract.state().nodes[&key(0)].stake, 5);
    assert_supply(&sim.contract);
    // Nothing is claimable yet.
    let claim = sim.tx(0, TxBody::ClaimUnbonded);
    let h = sim.height + 1;
    refused(&claim, &mut sim.contract, h, "still_unbonding");

    // Selection uses the locked stake only: node 0 now ranks last and is the standby.
    sim.run_until(100, |s| s.contract.state().current_view == 1);
    let committee = sim
        .contract
        .view(1)
        .unwrap()
        .magic_block
        .block
        .members
        .iter()
        .map(|m| m.identity)
        .collect::<Vec<_>>();
    assert!(!committee.contains(&key(0)), "unbonded stake was selected");
    assert_eq!(committee.len(), 6);

    // One view activation (N - 1): refused, nothing changes.
    let claim = sim.tx(0, TxBody::ClaimUnbonded);
    let h = sim.height + 1;
    let err = refused(&claim, &mut sim.contract, h, "still_unbonding");
    assert_eq!(
        err,
        Rejection::StillUnbonding {
            release_view: 2,
            current_view: 1
        }
    );

    // Two view activations (N): accepted, the amount is back in the balance.
    sim.run_until(100, |s| s.contract.state().current_view == 2);
    let before = sim.contract.state().balance(&key(0));
    let ev = sim.submit_now((0, TxBody::ClaimUnbonded)).unwrap();
    assert_eq!(
        ev,
        vec![Event::UnbondedClaimed {
            identity: key(0),
            amount: 65,
            balance: before + 65
        }]
    );
    assert!(!sim.contract.state().unbonding.contains_key(&key(0)));
    assert_supply(&sim.contract);
    let again = sim.tx(0, TxBody::ClaimUnbonded);
    let h = sim.height + 1;
    refused(&again, &mut sim.contract, h, "nothing_unbonding");
}

/// Slashed stake is burned: the forged log is the culprit's own signed post, carried by its own
/// transaction, so nobody is paid for it even with a reporter share configured.
#[test]
fn slashed_stake_is_burned() {
    let mut cfg = config();
    cfg.slashing.misbehaviour_percent = 10;
    cfg.slashing.reporter_percent = 50;
    let stakes = [100, 90, 80, 70, 60, 50];
    let mut sim = Sim::new(cfg, &stakes);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            invalid_log: set(&[3]),
            ..Default::default()
        },
    );
    let balances: Vec<u64> = (0..stakes.len())
        .map(|i| sim.contract.state().balance(&key(i)))
        .collect();
    sim.run_until(100, |s| s.contract.state().current_view == 1);
    let records = sim.contract.state().slashings.clone();
    let own = records
        .iter()
        .find(|r| r.identity == key(3) && r.misbehaviour)
        .unwrap_or_else(|| panic!("forged log not recorded: {records:#?}"));
    assert!(matches!(own.evidence, EvidenceRecord::SignedPosts { .. }));
    assert_eq!(own.amount, 7);
    assert_eq!(
        (own.reporter, own.reporter_reward, own.burned),
        (None, 0, 7)
    );
    assert_eq!(sim.contract.state().nodes[&key(3)].stake, 63);
    let burned: u64 = records.iter().map(|r| r.burned).sum();
    assert_eq!(sim.contract.state().burned, burned);
    assert!(burned >= 7);
    // Nobody's free balance changed.
    for (i, b) in balances.iter().enumerate() {
        assert_eq!(sim.contract.state().balance(&key(i)), *b);
    }
    assert_supply(&sim.contract);
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Register(usize, u64),
    AddStake(usize, u64),
    Unbond(usize, u64),
    Deregister(usize),
    CancelLeave(usize),
    Transfer(usize, usize, u64),
    Claim(usize),
    EndBlocks(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..6;
    let amount = prop_oneof![0u64..50, 0u64..2000, Just(u64::MAX)];
    prop_oneof![
        (who.clone(), amount.clone()).prop_map(|(i, a)| Op::Register(i, a)),
        (who.clone(), amount.clone()).prop_map(|(i, a)| Op::AddStake(i, a)),
        (who.clone(), amount.clone()).prop_map(|(i, a)| Op::Unbond(i, a)),
        who.clone().prop_map(Op::Deregister),
        who.clone().prop_map(Op::CancelLeave),
        (who.clone(), who.clone(), amount).prop_map(|(i, j, a)| Op::Transfer(i, j, a)),
        who.clone().prop_map(Op::Claim),
        (1u64..6).prop_map(Op::EndBlocks),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// sum(balances) + sum(stakes) + sum(unbonding) + burned = genesis supply after every
    /// transaction and block, whatever is tried; refused transactions change nothing. View
    /// changes start (nobody takes part, so every dealer is absent and slashed by the absence
    /// rate) and fail, which exercises slashing as well.
    #[test]
    fn supply_is_conserved(
        funds in proptest::collection::vec(1u64..1000, 4),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut cfg = funds.iter().enumerate().fold(
            ContractConfig { genesis: Vec::new(), ..config() },
            |c, (i, f)| c.fund(identity(i).public(), *f),
        );
        cfg.committee.min_size = 3;
        cfg.slashing.absence_percent = 30;
        cfg.slashing.reporter_percent = 50;
        cfg.staking.unbonding_views = 0;
        let mut c = Contract::new(cfg).unwrap();
        let genesis = c.config().total_supply();
        let mut height = 1;
        for op in ops {
            let body = match op {
                Op::EndBlocks(n) => {
                    for _ in 0..n {
                        c.end_block(height);
                        height += 1;
                        prop_assert_eq!(c.state().supply().total(), genesis);
                    }
                    continue;
                }
                Op::Register(i, a) => (i, register_body(i, a)),
                Op::AddStake(i, a) => (i, TxBody::AddStake { amount: a }),
                Op::Unbond(i, a) => (i, TxBody::Unbond { amount: a }),
                Op::Deregister(i) => (i, TxBody::Deregister),
                Op::CancelLeave(i) => (i, TxBody::CancelLeave),
                Op::Transfer(i, j, a) => (
                    i,
                    TxBody::Transfer { to: identity(j).public().clone(), amount: a },
                ),
                Op::Claim(i) => (i, TxBody::ClaimUnbonded),
            };
            let bytes = sign(&c, body.0, body.1);
            let before = c.state().clone();
            if c.apply_tx(&bytes, height).is_err() {
                prop_assert_eq!(c.state(), &before);
            }
            prop_assert_eq!(c.state().supply().total(), genesis);
        }
    }
}

/// `Contract::prepare_block` verifies a block's signatures in one batch before the block is
/// applied; what the transactions and the block's end answer is the same without it: a block
/// whose batch passes, one whose batch fails for one transaction signed by another key (that
/// one refused, the others applied), and one replaying an applied transaction.
#[test]
fn preparing_a_block_changes_no_outcome() {
    let transfer = |amount: u64| TxBody::Transfer {
        to: identity(7).public().clone(),
        amount,
    };
    let (k0, k1) = (identity(0), identity(1));
    let first = Transaction::sign(CHAIN, &k0, 0, transfer(5)).encode();
    let second = Transaction::sign(CHAIN, &k0, 1, transfer(6)).encode();
    let mut forged = Transaction::sign(CHAIN, &k1, 0, transfer(7));
    forged.signature = Transaction::sign(CHAIN, &k0, 0, transfer(7)).signature;
    let honest = Transaction::sign(CHAIN, &k1, 0, transfer(8)).encode();
    let blocks = [
        vec![first.clone(), second],
        vec![forged.encode(), honest],
        vec![first],
    ];
    let (mut plain, mut prepared) = (small_chain(), small_chain());
    let mut answers = Vec::new();
    for (i, txs) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        let refs: Vec<&[u8]> = txs.iter().map(|t| t.as_slice()).collect();
        prepared.prepare_block(&refs);
        for tx in txs {
            let a = plain.apply_tx(tx, height).map_err(|e| e.code());
            let b = prepared.apply_tx(tx, height).map_err(|e| e.code());
            assert_eq!(a, b, "block {height}");
            answers.push(a.map(|_| ()));
        }
        assert_eq!(plain.end_block(height), prepared.end_block(height));
        assert_eq!(plain.state(), prepared.state());
    }
    assert_eq!(
        answers,
        [
            Ok(()),
            Ok(()),
            Err("bad_signature"),
            Ok(()),
            Err("stale_nonce")
        ]
    );
}
