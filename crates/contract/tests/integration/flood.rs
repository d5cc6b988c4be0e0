//! A flood of badly signed posts from a registered committee member, in the middle of a view
//! change: every one is refused at admission ([`Contract::check_tx`]), and those a block carries
//! anyway are applied as refused, each consuming a nonce of its sender. What the contract keeps
//! does not grow with the flood: its state grows by a few bytes (the sender's nonce and
//! refusal count, whatever their values), the board and its log are untouched, the ceremony's
//! check cache stays within its capacity, and each refusal's event has a fixed size. The honest
//! ceremony then completes, the flooder included.

use crate::common;

use common::*;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{Contract, Event, Group, Transaction, ViewChangePhase};
use keyquorum_dkg::ceremony::CHECK_CACHE_CAPACITY;
use keyquorum_dkg::identity::Purpose;
use keyquorum_dkg::messages::SignedPost;

/// Transactions in the flood: enough that any per-refusal growth of the state, the board or
/// its log would show. The check cache's bound under more distinct posts than it holds is
/// `keyquorum-dkg`'s `rules` test; here it is only checked after each refusal.
const FLOOD: usize = 2_000;
/// How much the serialized contract state may grow over the whole flood: the sender's nonce and
/// refusal count gain digits, nothing else changes.
const STATE_GROWTH_BOUND: usize = 64;
/// Largest serialized `PostRefused` event (identity in hex and a short code).
const EVENT_BOUND: usize = 320;

fn state_len(c: &Contract) -> usize {
    serde_json::to_vec(c.state()).unwrap().len()
}

#[test]
fn a_flood_of_badly_signed_posts_costs_its_sender_and_grows_nothing() {
    let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20, 10]);
    sim.step(); // the view change starts; the contributions wait in `pending`
    assert_eq!(sim.contract.state().phase(), ViewChangePhase::Contribute);
    let flooder = 5;
    let key = identity(flooder);
    let sender = Hex(key.public().to_bytes());
    let ceremony = sim.contract.ceremony().unwrap().clone();
    let own = sim
        .pending
        .iter()
        .find_map(|(i, b)| match b {
            TxBody::DkgPost { post } if *i == flooder => Some(post.clone()),
            _ => None,
        })
        .expect("the flooder's own contribution");
    let signed = SignedPost::<Group>::decode(&own, ceremony.n()).unwrap();

    let h = sim.height + 1;
    let nonce = sim.contract.next_nonce(key.public());
    let state_before = state_len(&sim.contract);
    let log_before = sim
        .contract
        .state()
        .change
        .as_ref()
        .unwrap()
        .board_log
        .len();
    let mut refused = 0u64;
    for k in 0..FLOOD {
        // The flooder's own post with a signature that is not over it: every fourth a valid
        // signature on another message, the others bytes that are no signature at all.
        let mut bad = signed.clone();
        if k % 4 == 0 {
            bad.signature = key.sign(Purpose::Post, &(k as u64).to_be_bytes());
        } else {
            bad.signature.0[..8].copy_from_slice(&(k as u64).to_be_bytes());
        }
        let tx = Transaction::sign(
            CHAIN,
            &key,
            nonce + k as u64,
            TxBody::DkgPost { post: bad.encode() },
        )
        .encode();
        if k < 100 {
            // Admission refuses it: it never reaches a mempool.
            let err = sim.contract.check_tx(&tx).unwrap_err();
            assert!(
                ["bad_post_signature", "malformed_post"].contains(&err.code()),
                "{err}"
            );
        }
        // A block that carries it anyway.
        let events = sim.contract.apply_tx(&tx, h).expect("applied as refused");
        match &events[..] {
            [e @ Event::PostRefused { identity, .. }] => {
                assert_eq!(identity, &sender);
                assert!(serde_json::to_vec(e).unwrap().len() <= EVENT_BOUND);
            }
            other => panic!("{other:?}"),
        }
        refused += 1;
        assert!(ceremony.cached_checks() <= CHECK_CACHE_CAPACITY);
    }
    let state = sim.contract.state();
    assert_eq!(state.nodes[&sender].refused_posts, refused);
    assert_eq!(sim.contract.next_nonce(key.public()), nonce + FLOOD as u64);
    assert_eq!(
        state.change.as_ref().unwrap().board_log.len(),
        log_before,
        "nothing refused reaches the board's log"
    );
    let growth = state_len(&sim.contract).saturating_sub(state_before);
    assert!(
        growth <= STATE_GROWTH_BOUND,
        "the state grew by {growth} bytes over {FLOOD} refused posts"
    );
    assert!(state.slashings.is_empty(), "a refusal is not a fault");

    // The honest ceremony, the flooder's real contribution included (with its next nonce).
    sim.run_until(30, |s| s.contract.state().current_view == 1);
    let view = sim.contract.view(1).unwrap();
    let members = &view.magic_block.block.members;
    assert_eq!(members.len(), 6);
    assert!(
        members
            .iter()
            .any(|m| m.identity.0 == key.public().to_bytes())
    );
    assert!(sim.contract.state().slashings.is_empty());
}
