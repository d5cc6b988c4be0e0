//! The coordinator on a real JSON-RPC chain: anvil (Prague), the contract deployed and called
//! through [`keyquorum_evm::client`], its logs followed at a confirmation depth. A fresh view
//! change runs end to end: registrations with real proofs of possession, committee selection,
//! every post through the contract, the board replayed from the follower's inputs alone (posts
//! and deadlines by block number) with the Rust board code, and activation with a threshold
//! signature on the magic block that board defines.
//!
//! anvil is the pinned npm package in `contracts/` (`npm ci` there installs it); without it
//! these tests fail and say how to install it.

use crate::common;

use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, U256};
use alloy_provider::Provider;
use blstrs::Scalar;
use common::{
    CHAIN_NAME, Node, ceremony_spec, config, dealer_of, deployment, endorsement, post_call,
    run_ceremony,
};
use keyquorum_contract::SignerRole;
use keyquorum_contract::follow::CeremonyEnd;
use keyquorum_contract::hex::Bytes as HexBytes;
use keyquorum_contract::magic::{MagicBlockPlace, signing_message};
use keyquorum_contract::tx::NetworkIdentity;
use keyquorum_contract::{BeaconConfig, KeyMode, MagicBlock};
use keyquorum_contract::{Event, Step};
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Curve};
use keyquorum_dkg::board::{Board, Outcome};
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_dkg::messages::SignedPost;
use keyquorum_dkg::testing::ceremony::RunResult;
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{
    BoardInput, CallOutcome, Client, ConfirmedBlock, FollowError, Follower, Phase, Revert,
    chain_key, deploy,
};
use keyquorum_evm::events::Translator;
use keyquorum_evm::{Coordinator, g1_point, g2_point};

const STAKE: u64 = 1_000;
const CONFIRMATIONS: u64 = 2;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn anvil() -> Anvil {
    Anvil::start(&repo(), None).unwrap_or_else(|e| panic!("{e}"))
}

fn ether() -> U256 {
    U256::from(10u128.pow(18))
}

/// The coordinator (committees of four) deployed on `anvil` from a funded deployer: its address.
async fn deployed(anvil: &Anvil) -> Address {
    let deployer = chain_key(b"test deployer");
    anvil.fund(deployer.address(), ether()).await.unwrap();
    deploy(anvil.url(), deployer, config(4)).await.unwrap().0
}

/// Node 0 registered with [`STAKE`], its client waiting half a second for a receipt (so a
/// send is left unconfirmed while anvil does not mine).
async fn registered_impatient(anvil: &Anvil, contract: Address) -> (Node, Client) {
    let (n, c) = node(anvil, 0, contract).await;
    included(
        c.send(n.register_call(contract), U256::from(STAKE))
            .await
            .unwrap(),
    );
    (
        n,
        c.with_receipt_timeout(std::time::Duration::from_millis(500)),
    )
}

/// Node 0 (unregistered) with a client waiting half a second for a receipt, and a twin: another
/// client of the same account, which knows nothing of the first one's sends.
async fn impatient_with_twin(anvil: &Anvil, contract: Address) -> (Node, Client, Client) {
    let half_a_second = std::time::Duration::from_millis(500);
    let (n, c) = node(anvil, 0, contract).await;
    let (_, twin) = node(anvil, 0, contract).await;
    (
        n,
        c.with_receipt_timeout(half_a_second),
        twin.with_receipt_timeout(half_a_second),
    )
}

/// The handle of a send answered `Unconfirmed` (anything else fails the test).
fn unconfirmed(
    sent: Result<CallOutcome, keyquorum_evm::client::ClientError>,
) -> alloy_primitives::B256 {
    match sent {
        Err(keyquorum_evm::client::ClientError::Unconfirmed { tx_hash, .. }) => tx_hash,
        other => panic!("{other:?}"),
    }
}

/// The account's nonce counting the node's pool.
async fn pending_count(c: &Client, account: Address) -> u64 {
    c.provider()
        .get_transaction_count(account)
        .pending()
        .await
        .unwrap()
}

async fn stake_of(c: &Client, account: Address) -> U256 {
    c.read(Coordinator::stakeOfCall { account })
        .await
        .unwrap()
        .stake
}

/// A test node whose account is its chain key's, funded on anvil.
async fn node(anvil: &Anvil, index: u32, contract: Address) -> (Node, Client) {
    let key = chain_key(format!("test node {index}").as_bytes());
    let mut node = Node::new(index);
    node.account = key.address();
    anvil.fund(node.account, ether()).await.unwrap();
    let client = Client::connect(anvil.url(), key, contract).await.unwrap();
    (node, client)
}

/// Node `index` registered with [`STAKE`] (its registration mined).
async fn registered(anvil: &Anvil, index: u32, contract: Address) -> Node {
    let (n, c) = node(anvil, index, contract).await;
    included(
        c.send(n.register_call(contract), U256::from(STAKE))
            .await
            .unwrap(),
    );
    n
}

fn included(o: CallOutcome) -> u64 {
    match o {
        CallOutcome::Included { block, .. } => block,
        CallOutcome::Reverted(r) => panic!("reverted: {r:?}"),
    }
}

/// Polls until the follower has reported block `until`.
async fn follow_to(follower: &mut Follower, until: u64) -> Vec<ConfirmedBlock> {
    let mut out = Vec::new();
    while follower.next_block() <= until {
        let (blocks, _) = follower.poll().await.unwrap();
        out.extend(blocks);
    }
    out
}

/// A call the contract refuses at gas estimation is never sent, so it must not use up a nonce:
/// a gap would leave every later transaction of the account unmined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_at_estimation_leaves_no_nonce_gap() {
    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (n, c) = node(&anvil, 0, contract).await;
    included(
        c.send(n.register_call(contract), U256::from(STAKE))
            .await
            .unwrap(),
    );
    for round in 0..3 {
        let refused = c
            .send(Coordinator::withdrawCall {}, U256::ZERO)
            .await
            .unwrap();
        assert_eq!(
            refused.revert().map(Revert::name).as_deref(),
            Some("NothingToWithdraw"),
            "round {round}"
        );
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            c.send(Coordinator::addStakeCall {}, U256::from(1u64)),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: the call after a refused one was not mined"));
        included(next.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_view_change_runs_on_anvil_from_the_followed_logs() {
    let anvil = anvil();
    let deployer = chain_key(b"test deployer");
    anvil.fund(deployer.address(), ether()).await.unwrap();
    let mut cfg = config(4);
    cfg.firstViewChange = 0;
    // Room for a transaction per block (anvil mines one block per transaction).
    cfg.contributeBlocks = 20;
    cfg.shareBlocks = 20;
    cfg.publishBlocks = 20;
    cfg.waitBlocks = 20;
    let (contract, deployed_at) = deploy(anvil.url(), deployer.clone(), cfg).await.unwrap();
    let admin = Client::connect(anvil.url(), deployer, contract)
        .await
        .unwrap();
    assert_eq!(admin.chain_id().await.unwrap(), common::CHAIN_ID);
    let mut follower = Follower::new(
        admin.provider().clone(),
        contract,
        deployed_at,
        CONFIRMATIONS,
    );

    // Five candidates for four seats; node 0 stakes least and stays out.
    let mut nodes = Vec::new();
    for i in 0..5 {
        let (n, c) = node(&anvil, i, contract).await;
        included(
            c.send(n.register_call(contract), U256::from(STAKE + i as u64))
                .await
                .unwrap(),
        );
        nodes.push((n, c));
    }
    // Another account cannot take a registered identity; the revert is decoded.
    let replay = nodes[0].0.register_call(contract);
    let outcome = admin.send(replay, U256::from(STAKE)).await.unwrap();
    assert_eq!(
        outcome.revert().map(Revert::name).as_deref(),
        Some("IdentityTaken")
    );

    // Two starts mined in one block: both pass estimation, the later one reverts when mined,
    // and the client names why by replaying it on the state after the block.
    anvil.set_automine(false).await.unwrap();
    let first = {
        let c = admin.clone();
        tokio::spawn(async move {
            c.send(Coordinator::startViewChangeCall {}, U256::ZERO)
                .await
        })
    };
    let second = {
        let c = nodes[1].1.clone();
        tokio::spawn(async move {
            c.send(Coordinator::startViewChangeCall {}, U256::ZERO)
                .await
        })
    };
    // Both in the pool, or one refused at estimation: anvil estimates on its pending state,
    // which holds the other start once that one reached the pool first (a loaded machine's
    // order), and that refusal is the contract's answer too.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let both_pooled = loop {
        let pool: serde_json::Value = anvil.request("txpool_status", ()).await.unwrap();
        if pool["pending"].as_str() == Some("0x2") || pool["pending"] == 2 {
            break true;
        }
        if first.is_finished() || second.is_finished() {
            break false;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the two starts neither reached the pool nor returned: {pool}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    anvil.mine(1).await.unwrap();
    anvil.set_automine(true).await.unwrap();
    let outcomes = [
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    ];
    assert_eq!(
        outcomes.iter().filter(|o| o.revert().is_none()).count(),
        1,
        "{outcomes:?}"
    );
    let reverted = outcomes.iter().find_map(|o| o.revert()).unwrap();
    if both_pooled {
        assert!(matches!(reverted, Revert::Mined(Some(_))), "{reverted:?}");
    } else {
        assert!(matches!(reverted, Revert::Contract(_)), "{reverted:?}");
    }
    assert_eq!(reverted.name(), "ViewChangeRunning");

    // The follower reports the registrations and the selection once they are confirmed.
    let head = admin.block_number().await.unwrap();
    anvil.mine(CONFIRMATIONS).await.unwrap();
    let mut followed = follow_to(&mut follower, head).await;
    let inputs: Vec<BoardInput> = followed.iter().flat_map(|b| b.inputs.clone()).collect();
    let registered = inputs
        .iter()
        .filter(|i| matches!(i, BoardInput::Registered(_)))
        .count();
    assert_eq!(registered, 5);
    let Some(BoardInput::CommitteeSelected(sel)) = inputs.last().cloned() else {
        panic!("no selection: {inputs:?}")
    };
    assert_eq!((sel.n, sel.t, sel.k), (4, 3, 3));
    let committee: Vec<usize> = sel
        .committee
        .iter()
        .map(|a| nodes.iter().position(|(n, _)| n.account == *a).unwrap())
        .collect();
    assert_eq!(committee, vec![4, 3, 2, 1]);

    let seated: Vec<&Node> = committee.iter().map(|&i| &nodes[i].0).collect();
    let spec = ceremony_spec(contract, &sel, &seated);
    let ceremony = spec.ceremony().unwrap();
    assert_eq!(sel.sessionId.0, *ceremony.id());

    // The DKG among the committee off chain; its posts go through the contract.
    let (contributions, publications, results) = run_ceremony(&spec, &seated, &[]);
    let client_at = |pos: usize| &nodes[committee[pos]].1;
    // Someone outside the committee.
    let outcome = nodes[0]
        .1
        .send(post_call(&contributions[0]), U256::ZERO)
        .await;
    assert_eq!(
        outcome.unwrap().revert().map(Revert::name).as_deref(),
        Some("NotMember")
    );
    for p in &contributions {
        let dealer = dealer_of(p, sel.n);
        included(
            client_at(dealer)
                .send(post_call(p), U256::ZERO)
                .await
                .unwrap(),
        );
    }
    let now = admin.block_number().await.unwrap();
    assert!(now <= sel.contributeEnd, "contributions landed in time");
    // The next transaction lands in the first block after the share phase.
    anvil.mine(sel.shareEnd - now).await.unwrap();
    for p in &publications {
        let dealer = dealer_of(p, sel.n);
        included(
            client_at(dealer)
                .send(post_call(p), U256::ZERO)
                .await
                .unwrap(),
        );
    }
    let now = admin.block_number().await.unwrap();
    assert!(now <= sel.publishEnd, "publications landed in time");
    anvil
        .mine(sel.publishEnd - now + CONFIRMATIONS)
        .await
        .unwrap();

    // The board, from the follower's inputs alone.
    let mut board = Board::new(ceremony.clone());
    let mut deadlines = Vec::new();
    let blocks = follow_to(&mut follower, sel.publishEnd).await;
    followed.extend(blocks.clone());
    for input in blocks.into_iter().flat_map(|b| b.inputs) {
        match input {
            BoardInput::PostAccepted { post, .. } => {
                let post = SignedPost::<Bls12381G1>::decode(&post, 4).unwrap();
                board.apply(&post).unwrap();
            }
            BoardInput::Deadline { phase, ceremony } => {
                assert_eq!(ceremony, sel.ceremony);
                deadlines.push(phase);
                if phase != Phase::Wait {
                    board.advance();
                }
            }
            other => panic!("unexpected input {other:?}"),
        }
    }
    assert_eq!(
        deadlines,
        vec![Phase::Contribute, Phase::Share, Phase::Publish]
    );
    let Some(Outcome::Success { output, .. }) = board.outcome().cloned() else {
        panic!("the ceremony failed")
    };
    for r in &results {
        let RunResult::Ok(o) = r else {
            panic!("a player failed")
        };
        assert_eq!(o.public.group_key, output.group_key);
    }

    // Activation with the new committee's threshold signature on the board's magic block.
    let place = MagicBlockPlace {
        chain_id: CHAIN_NAME.into(),
        view: 1,
        ceremony_number: 0,
        key_mode: KeyMode::Fresh,
        previous_hash: [0; 32],
        first_round: sel.waitEnd + 1,
        beacon: BeaconConfig::default(),
    };
    let block = MagicBlock::from_board(&place, &board, |id| {
        nodes
            .iter()
            .find(|(n, _)| n.identity == id.0)
            .map(|(n, _)| NetworkIdentity {
                peer_id: HexBytes(n.peer_id()),
                addresses: n.addresses(),
            })
    })
    .unwrap();
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
    let (endorsers, endorser_points, endorsement_point) =
        endorsement(&block.hash(), &seated, &[0, 1, 2, 3]);
    let activation = Coordinator::activateCall {
        a: Coordinator::Activation {
            magicBlock: block.encode().into(),
            groupKeyPoint: g1_point(&group_key).unwrap().to_vec().into(),
            qualified: output.qualified.clone(),
            signature: signature.to_vec().into(),
            signaturePoint: g2_point(&signature).unwrap().to_vec().into(),
            previousSignaturePoint: Bytes::new(),
            endorsers,
            endorserPoints: endorser_points,
            endorsement: endorsement_point,
        },
    };
    let at = included(admin.send(activation, U256::ZERO).await.unwrap());
    assert_eq!(
        admin.read(Coordinator::currentViewCall {}).await.unwrap(),
        1
    );
    anvil.mine(CONFIRMATIONS).await.unwrap();
    let blocks = follow_to(&mut follower, at).await;
    followed.extend(blocks.clone());
    let inputs: Vec<BoardInput> = blocks.into_iter().flat_map(|b| b.inputs).collect();
    let [BoardInput::ViewActivated(activated)] = inputs.as_slice() else {
        panic!("expected the activation alone: {inputs:?}")
    };
    assert_eq!(activated.magicBlockHash.0, block.hash());
    assert_eq!(activated.magicBlock.to_vec(), block.encode());
    seat_follows_the_translated_logs(contract, &followed, &nodes[committee[0]].0, &block);

    // Past the wait phase nothing more is reported for the activated ceremony.
    let now = admin.block_number().await.unwrap();
    anvil
        .mine(sel.waitEnd.saturating_sub(now) + CONFIRMATIONS + 1)
        .await
        .unwrap();
    let (blocks, _) = follower.poll().await.unwrap();
    assert!(blocks.is_empty(), "{blocks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_within_the_confirmation_depth_is_never_reported_and_a_deeper_one_stops_the_follower()
 {
    let anvil = anvil();
    let deployer = chain_key(b"test deployer");
    anvil.fund(deployer.address(), ether()).await.unwrap();
    let (contract, deployed_at) = deploy(anvil.url(), deployer.clone(), config(4))
        .await
        .unwrap();
    let admin = Client::connect(anvil.url(), deployer, contract)
        .await
        .unwrap();
    let provider = anvil.provider().await.unwrap();
    let mut follower = Follower::new(provider.clone(), contract, deployed_at, CONFIRMATIONS);
    anvil.mine(CONFIRMATIONS).await.unwrap();
    follower.poll().await.unwrap();

    let snapshot: U256 = anvil.request("evm_snapshot", ()).await.unwrap();
    // Node 1 registers, but the block is dropped before it is confirmed...
    registered(&anvil, 1, contract).await;
    let (blocks, _) = follower.poll().await.unwrap();
    assert!(blocks.is_empty(), "an unconfirmed block was reported");
    let reverted: bool = anvil.request("evm_revert", (snapshot,)).await.unwrap();
    assert!(reverted);
    // ... and node 2's registration is in its place.
    let b = registered(&anvil, 2, contract).await;
    anvil.mine(CONFIRMATIONS).await.unwrap();
    let (blocks, _) = follower.poll().await.unwrap();
    let accounts: Vec<Address> = blocks
        .iter()
        .flat_map(|b| &b.inputs)
        .map(|i| match i {
            BoardInput::Registered(r) => r.account,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(accounts, vec![b.account]);

    // A reorg of a block already reported: the follower stops.
    let snapshot: U256 = anvil.request("evm_snapshot", ()).await.unwrap();
    anvil.mine(CONFIRMATIONS + 2).await.unwrap();
    follower.poll().await.unwrap();
    let _: bool = anvil.request("evm_revert", (snapshot,)).await.unwrap();
    registered(&anvil, 3, contract).await;
    anvil.mine(CONFIRMATIONS + 3).await.unwrap();
    assert!(matches!(
        follower.poll().await,
        Err(FollowError::Reorg { .. })
    ));
    let _ = admin;
}

/// What [`Tampering`] does to the answers to `eth_getLogs` over a block range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tamper {
    /// Nothing.
    Nothing,
    /// Every log names another block hash: logs of another branch at the same heights, as a
    /// reorg between the calls or a load-balanced node on another branch gives.
    OtherBranch,
    /// No logs at all: a lagging node that answers an empty range.
    Lagging,
    /// As `OtherBranch`, from the range answer after the first `n` since it was set.
    OtherBranchAfter(usize),
}

/// A transport layer that tampers with range log answers as [`Tamper`] says.
#[derive(Debug, Clone)]
struct Tampering<S> {
    inner: S,
    /// The mode, and the range answers given since it was set.
    mode: std::sync::Arc<std::sync::Mutex<(Tamper, usize)>>,
}

impl<S> tower::Layer<S> for Tampering<()> {
    type Service = Tampering<S>;

    fn layer(&self, inner: S) -> Tampering<S> {
        Tampering {
            inner,
            mode: self.mode.clone(),
        }
    }
}

impl<S> tower::Service<alloy_json_rpc::RequestPacket> for Tampering<S>
where
    S: tower::Service<
            alloy_json_rpc::RequestPacket,
            Response = alloy_json_rpc::ResponsePacket,
            Error = alloy_transport::TransportError,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = alloy_json_rpc::ResponsePacket;
    type Error = alloy_transport::TransportError;
    type Future = alloy_transport::TransportFut<'static>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: alloy_json_rpc::RequestPacket) -> Self::Future {
        use alloy_json_rpc::{RequestPacket, ResponsePacket, ResponsePayload};
        let range_logs = matches!(&request, RequestPacket::Single(r)
            if r.method() == "eth_getLogs"
                && !r.params().is_some_and(|p| p.get().contains("blockHash")));
        let mode = {
            let mut mode = self.mode.lock().unwrap();
            let seen = mode.1;
            if range_logs {
                mode.1 += 1;
            }
            match mode.0 {
                Tamper::OtherBranchAfter(n) if seen < n => Tamper::Nothing,
                Tamper::OtherBranchAfter(_) => Tamper::OtherBranch,
                other => other,
            }
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut answer = answer.await?;
            if let (true, ResponsePacket::Single(r)) = (range_logs, &mut answer)
                && let ResponsePayload::Success(raw) = &r.payload
            {
                let mut logs: Vec<serde_json::Value> = serde_json::from_str(raw.get()).unwrap();
                match mode {
                    Tamper::Nothing | Tamper::OtherBranchAfter(_) => {}
                    Tamper::OtherBranch => {
                        for log in &mut logs {
                            log["blockHash"] = format!("0x{}", "11".repeat(32)).into();
                        }
                    }
                    Tamper::Lagging => logs.clear(),
                }
                r.payload =
                    ResponsePayload::Success(serde_json::value::to_raw_value(&logs).unwrap());
            }
            Ok(answer)
        })
    }
}

/// A follower on `anvil`'s endpoint through [`Tampering`], from block `from`, and the handle
/// that sets what the layer does.
fn tampered_follower(
    anvil: &Anvil,
    contract: Address,
    from: u64,
) -> (Follower, std::sync::Arc<std::sync::Mutex<(Tamper, usize)>>) {
    let mode = std::sync::Arc::new(std::sync::Mutex::new((Tamper::Nothing, 0)));
    let client = alloy_rpc_client::ClientBuilder::default()
        .layer(Tampering {
            inner: (),
            mode: mode.clone(),
        })
        .http(anvil.url().parse().unwrap());
    let provider = alloy_provider::ProviderBuilder::new()
        .connect_client(client)
        .erased();
    (Follower::new(provider, contract, from, CONFIRMATIONS), mode)
}

fn registered_accounts(blocks: &[ConfirmedBlock]) -> Vec<Address> {
    blocks
        .iter()
        .flat_map(|b| &b.inputs)
        .filter_map(|i| match i {
            BoardInput::Registered(r) => Some(r.account),
            _ => None,
        })
        .collect()
}

/// The follower checks the logs of a range against the blocks' headers: logs under another
/// block's hash (another branch, from a reorg between its calls or a load-balanced node), or a
/// range answer that leaves out a block's logs (a lagging node; the block's bloom names the
/// contract), are refused as unsettled, with nothing reported, and the next consistent answer
/// reports the block once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_that_disagree_with_the_block_headers_are_refused_and_polled_again() {
    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (mut follower, mode) = tampered_follower(&anvil, contract, 0);
    anvil.mine(CONFIRMATIONS).await.unwrap();
    follower.poll().await.unwrap();

    let a = registered(&anvil, 1, contract).await;
    anvil.mine(CONFIRMATIONS).await.unwrap();
    let next = follower.next_block();
    for tamper in [Tamper::OtherBranch, Tamper::Lagging] {
        *mode.lock().unwrap() = (tamper, 0);
        match follower.poll().await {
            Err(FollowError::Unsettled { .. }) => {}
            other => panic!("{tamper:?}: {other:?}"),
        }
        assert_eq!(
            follower.next_block(),
            next,
            "{tamper:?}: the follower moved on"
        );
    }
    *mode.lock().unwrap() = (Tamper::Nothing, 0);
    let (blocks, _) = follower.poll().await.unwrap();
    assert_eq!(registered_accounts(&blocks), vec![a.account]);
}

/// A catch-up over several log ranges reports each range once it checked out: when a later
/// range's answer is refused, the ranges before it are reported, and the next poll goes on
/// from the refused one. Deep ranges (a registration 2,500 blocks back) are checked log by
/// log against their blocks' headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_catch_up_keeps_the_ranges_read_before_a_refused_one() {
    let anvil = anvil();
    let deployer = chain_key(b"test deployer");
    anvil.fund(deployer.address(), ether()).await.unwrap();
    let (contract, deployed_at) = deploy(anvil.url(), deployer, config(4)).await.unwrap();
    let a = registered(&anvil, 1, contract).await;
    anvil.mine(2_500).await.unwrap();
    let b = registered(&anvil, 2, contract).await;
    anvil.mine(CONFIRMATIONS).await.unwrap();

    let (mut follower, mode) = tampered_follower(&anvil, contract, deployed_at);
    // Every answer under other blocks' hashes: the first range, checked log by log against
    // its headers, is refused, and nothing is reported.
    *mode.lock().unwrap() = (Tamper::OtherBranch, 0);
    assert!(matches!(
        follower.poll().await,
        Err(FollowError::Unsettled { .. })
    ));
    assert_eq!(follower.next_block(), deployed_at);
    // Honest answers for the first two ranges only (the second has no logs): the newest
    // one, which holds b's registration, comes under another block's hash.
    *mode.lock().unwrap() = (Tamper::OtherBranchAfter(2), 0);
    let (blocks, confirmed) = follower.poll().await.unwrap();
    assert_eq!(registered_accounts(&blocks), vec![a.account]);
    let resumed_at = follower.next_block();
    assert_eq!(resumed_at, deployed_at + 2_000);
    assert_eq!(confirmed, Some(resumed_at - 1));
    *mode.lock().unwrap() = (Tamper::Nothing, 0);
    let (blocks, _) = follower.poll().await.unwrap();
    assert_eq!(registered_accounts(&blocks), vec![b.account]);
    assert!(blocks.iter().all(|blk| blk.number >= resumed_at));
}

/// The logs, translated into the node's chain events, take a committee member's seat through
/// the ceremony as the node's follower sees it: started with its role, every post, the three
/// deadlines, the magic block it signs (the one activated) with its index, the view with it in.
fn seat_follows_the_translated_logs(
    contract: Address,
    followed: &[ConfirmedBlock],
    me: &Node,
    activated: &MagicBlock,
) {
    let mut translator = Translator::new(deployment(contract));
    let identity = IdentityPublicKey::from_bytes(&me.identity).unwrap();
    let mut seat = keyquorum_contract::Follower::new(Some(identity));
    let mut steps = Vec::new();
    let mut events = Vec::new();
    for block in followed {
        for input in block.inputs.clone() {
            for event in translator.translate(input) {
                steps.extend(seat.event(&event));
                events.push(event);
            }
        }
        steps.extend(seat.end_block());
    }
    let created: Vec<&MagicBlock> = events
        .iter()
        .filter_map(|e| match e {
            Event::MagicBlockCreated { magic_block, .. } => Some(magic_block),
            _ => None,
        })
        .collect();
    assert_eq!(created, vec![activated]);
    let mut posts = 0;
    let mut deadlines = 0;
    let mut magic = None;
    let mut view = None;
    for step in &steps {
        match step {
            Step::CeremonyStarted { role, .. } => assert!(role.takes_part()),
            Step::Posts(p) => posts += p.len(),
            Step::Deadline => deadlines += 1,
            Step::MagicBlock { hash, index, .. } => magic = Some((*hash, *index)),
            Step::ViewActivated {
                view: v,
                member,
                hash,
            } => view = Some((*v, *hash, *member)),
            Step::CeremonyEnded {
                why: CeremonyEnd::ViewActivated,
                ..
            } => {}
            other => panic!("unexpected step {other:?}"),
        }
    }
    assert_eq!((posts, deadlines), (8, 3));
    let (hash, index) = magic.expect("a magic block to sign");
    assert_eq!(hash, activated.hash());
    assert!(index.is_some());
    let (v, h, member) = view.expect("the view activated");
    assert_eq!((v, h), (1, activated.hash()));
    assert_eq!(member.map(|m| m.1), index);
}

/// The minimum stake and the view length the node reads from the contract's storage (the
/// contract has no getter) are the deployment's; and a registration sent by the candidacy watch whose receipt was not
/// seen is looked up, not sent again, at the next checks: pending, nothing is sent; mined, it
/// counts as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimum_stake_is_read_from_the_contracts_storage_and_an_unconfirmed_send_is_not_repeated()
 {
    use keyquorum_evm::candidacy::{self, Change, Registration, Watch};
    use keyquorum_evm::client::ClientError;

    let anvil = anvil();
    let deployer = chain_key(b"test deployer");
    anvil.fund(deployer.address(), ether()).await.unwrap();
    let mut cfg = config(4);
    cfg.minStake = U256::from(777u64);
    cfg.viewLength = 321;
    cfg.firstViewChange = 0x0102_0304;
    let (contract, _) = deploy(anvil.url(), deployer, cfg).await.unwrap();
    let (n, c) = node(&anvil, 0, contract).await;
    let head = c.block_number().await.unwrap();
    assert_eq!(c.min_stake(None).await.unwrap(), U256::from(777u64));
    assert_eq!(c.min_stake(Some(head)).await.unwrap(), U256::from(777u64));
    // `viewLength` shares its slot with `firstViewChange` (below it) and the beacon settings.
    assert_eq!(c.view_length().await.unwrap(), 321);

    // The watch holds a refused registration; blocks are mined only on demand from here, so
    // the send's receipt wait ends without one.
    let c = c.with_receipt_timeout(std::time::Duration::from_millis(500));
    let registration = Registration {
        input: alloy_sol_types::SolCall::abi_encode(&n.register_call(contract)),
        value: U256::from(STAKE),
    };
    let watch = std::sync::Mutex::new(Watch::new(n.account));
    watch
        .lock()
        .unwrap()
        .on_registration_refused(registration, U256::from(1u64), false, head - 1);
    anvil.set_automine(false).await.unwrap();
    let sent = candidacy::check(&c, &watch, head).await.unwrap_err();
    let ClientError::Unconfirmed { tx_hash, .. } = sent else {
        panic!("{sent:?}")
    };
    assert_eq!(watch.lock().unwrap().unconfirmed(), Some(tx_hash));
    let pending_nonce = || pending_count(&c, n.account);
    assert_eq!(pending_nonce().await, 1);
    // Pending: looked up, nothing sent again.
    assert_eq!(
        candidacy::check(&c, &watch, head + 1).await.unwrap(),
        vec![]
    );
    assert_eq!(pending_nonce().await, 1);
    // Mined: its outcome is taken as the wait would have taken it.
    anvil.mine(1).await.unwrap();
    assert_eq!(
        candidacy::check(&c, &watch, head + 2).await.unwrap(),
        vec![Change::Registered {
            block: Some(head + 1)
        }]
    );
    assert_eq!(watch.lock().unwrap().unconfirmed(), None);
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 1);
    assert!(
        c.read(Coordinator::candidacyCall { account: n.account })
            .await
            .unwrap()
            .listed
    );
}

/// A send whose receipt was not seen is looked up when the same call is sent again, not sent a
/// second time: pending, nothing goes out and it is listed as pending (warned once per
/// period); lost by the chain's node (`anvil_dropTransaction`) while its nonce is free, the
/// same transaction is handed to the node again, never a copy; mined, its outcome is its
/// retry's, and a mined revert is replayed for its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_send_is_looked_up_before_the_same_call_goes_again() {
    use keyquorum_evm::client::{PendingSend, SentState};
    use std::time::Duration;

    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (n, c, twin) = impatient_with_twin(&anvil, contract).await;
    anvil.set_automine(false).await.unwrap();
    let input = alloy_sol_types::SolCall::abi_encode(&n.register_call(contract));
    let value = U256::from(STAKE);
    let pending_nonce = || pending_count(&c, n.account);

    let first = unconfirmed(c.send_calldata(input.clone(), value).await);
    assert_eq!(pending_nonce().await, 1);
    // Pending: the same call sends nothing, and says so again.
    assert_eq!(
        unconfirmed(c.send_calldata(input.clone(), value).await),
        first
    );
    assert_eq!(pending_nonce().await, 1);
    let hour = Duration::from_secs(3600);
    let listed = c.pending_sends(hour).await.unwrap();
    let [
        PendingSend {
            tx_hash,
            kind,
            pending_for,
            warn,
            replacements: 0,
            newest,
            problem: None,
        },
    ] = listed.as_slice()
    else {
        panic!("{listed:?}")
    };
    assert_eq!(
        (*tx_hash, *kind, *warn, *newest),
        (first, "register", true, first)
    );
    assert!(
        *pending_for >= Duration::from_millis(500),
        "{pending_for:?}"
    );
    // Warned once per period.
    assert!(!c.pending_sends(hour).await.unwrap()[0].warn);
    assert!(c.pending_sends(Duration::ZERO).await.unwrap()[0].warn);

    // Lost by the chain's node, its nonce free: the same transaction goes to the node again.
    anvil
        .request::<_, serde_json::Value>("anvil_dropTransaction", (first,))
        .await
        .unwrap();
    assert_eq!(twin.sent_state(first).await.unwrap(), SentState::Dropped);
    assert_eq!(pending_nonce().await, 0);
    assert_eq!(
        unconfirmed(c.send_calldata(input.clone(), value).await),
        first
    );
    assert_eq!(twin.sent_state(first).await.unwrap(), SentState::Pending);
    assert_eq!(pending_nonce().await, 1);

    // A copy sent with the next nonce (a fixed gas limit: estimated on the pending state, it
    // would be refused for free); both are mined, the copy reverts.
    let copy = {
        use alloy_network::TransactionBuilder;
        let tx = alloy_rpc_types_eth::TransactionRequest::default()
            .with_from(n.account)
            .with_to(contract)
            .with_input(input.clone())
            .with_value(value)
            .with_gas_limit(2_000_000);
        *twin
            .provider()
            .send_transaction(tx)
            .await
            .unwrap()
            .tx_hash()
    };
    assert_eq!(pending_nonce().await, 2);
    anvil.mine(1).await.unwrap();
    let block = c.block_number().await.unwrap();
    // Mined: the outcome is the wait's, taken by the send's retry, and nothing more is sent.
    assert_eq!(
        c.resend_calldata(input.clone(), value, first)
            .await
            .unwrap(),
        CallOutcome::Included {
            block,
            tx_hash: first
        }
    );
    assert!(!c.has_unconfirmed());
    // The copy's revert, replayed for its reason as a receipt seen in time would have been.
    let SentState::Mined(reverted) = twin.sent_state(copy).await.unwrap() else {
        panic!("{copy} not mined")
    };
    assert_eq!(
        reverted.revert().map(Revert::name).as_deref(),
        Some("AlreadyRegistered"),
        "{reverted:?}"
    );
    assert!(matches!(reverted.revert(), Some(Revert::Mined(Some(_)))));
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 2);
    // Nothing is kept any more: the same call now goes to the chain, which refuses it at
    // estimation for free.
    assert!(matches!(
        c.send_calldata(input, value).await.unwrap(),
        CallOutcome::Reverted(Revert::Contract(_))
    ));
    assert_eq!(pending_nonce().await, 2);
    assert!(c.pending_sends(hour).await.unwrap().is_empty());
}

/// An unconfirmed send found mined (here by the pending sends' look-up) keeps its outcome for
/// its own retry only: a new call with the same calldata and value made meanwhile (a second
/// `addStake` of the same amount) is sent, and both land; the retry takes the first's
/// outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_call_identical_to_a_mined_unconfirmed_one_is_sent() {
    use std::time::Duration;

    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (n, c) = registered_impatient(&anvil, contract).await;
    let stake = || stake_of(&c, n.account);
    let input = alloy_sol_types::SolCall::abi_encode(&Coordinator::addStakeCall {});
    let value = U256::from(50u64);

    anvil.set_automine(false).await.unwrap();
    let first = unconfirmed(c.send_calldata(input.clone(), value).await);
    anvil.mine(1).await.unwrap();
    let first_block = c.block_number().await.unwrap();
    // Found mined and kept for the retry, which has not come yet.
    assert!(
        c.pending_sends(Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(c.has_unconfirmed());
    assert_eq!(stake().await, U256::from(STAKE + 50));

    anvil.set_automine(true).await.unwrap();
    // A patient clone (it shares the kept sends): half a second for the receipt is too short
    // a wait on a loaded machine.
    let patient = c.clone().with_receipt_timeout(Duration::from_secs(30));
    let CallOutcome::Included {
        tx_hash: second, ..
    } = patient.send_calldata(input.clone(), value).await.unwrap()
    else {
        panic!("the new call reverted")
    };
    assert_ne!(second, first);
    assert_eq!(stake().await, U256::from(STAKE + 100));
    // The retry of the first send takes its outcome, once, and sends nothing.
    assert_eq!(
        c.resend_calldata(input.clone(), value, first)
            .await
            .unwrap(),
        CallOutcome::Included {
            block: first_block,
            tx_hash: first
        }
    );
    assert!(!c.has_unconfirmed());
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 3);
    assert_eq!(stake().await, U256::from(STAKE + 100));
}

/// A send left pending because the base fee rose above its fee is replaced, once the fee bump
/// is due, with the same nonce and fees raised by at least an eighth (up to the cap; never
/// without a bump configured, nor before it is due, nor past the cap); mined, the replacement's
/// outcome is the send's, reported once, and nothing else is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_left_pending_is_replaced_with_higher_fees_and_its_replacement_settles_it() {
    use alloy_rpc_types_eth::TransactionTrait;
    use keyquorum_evm::client::{ClientError, FeeBump, SentState};
    use std::time::Duration;

    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (n, c, twin) = impatient_with_twin(&anvil, contract).await;
    let input = alloy_sol_types::SolCall::abi_encode(&n.register_call(contract));
    let value = U256::from(STAKE);
    let pending_nonce = || pending_count(&c, n.account);
    let fees = |hash| {
        let twin = twin.clone();
        async move {
            let tx = twin
                .provider()
                .get_transaction_by_hash(hash)
                .await
                .unwrap()
                .expect("known to the node");
            (
                tx.nonce(),
                tx.max_fee_per_gas(),
                tx.max_priority_fee_per_gas().unwrap(),
            )
        }
    };

    anvil.set_automine(false).await.unwrap();
    let first = unconfirmed(c.send_calldata(input.clone(), value).await);
    let (nonce, max_fee, priority) = fees(first).await;
    // The base fee rises above the send's fee. (anvil drops a transaction a block leaves out
    // for its fee, where geth keeps it pending: so no block is mined before the bump.)
    let risen = U256::from(max_fee + max_fee / 20);
    anvil
        .request::<_, serde_json::Value>(
            "anvil_setNextBlockBaseFeePerGas",
            serde_json::json!([risen]),
        )
        .await
        .unwrap();
    assert_eq!(twin.sent_state(first).await.unwrap(), SentState::Pending);

    let hour = Duration::from_secs(3600);
    let generous = max_fee * 10;
    // No bump configured, or not due yet: left as it is.
    for bump in [
        None,
        Some(FeeBump {
            after: hour,
            max_fee_per_gas: generous,
        }),
    ] {
        let listed = c
            .clone()
            .with_fee_bump(bump)
            .pending_sends(hour)
            .await
            .unwrap();
        assert_eq!(
            (listed.len(), listed[0].replacements, listed[0].newest),
            (1, 0, first)
        );
    }
    // A cap below the least raise the node takes: left as it is.
    let capped = FeeBump {
        after: Duration::ZERO,
        max_fee_per_gas: max_fee + max_fee / 10,
    };
    let listed = c
        .clone()
        .with_fee_bump(Some(capped))
        .pending_sends(hour)
        .await
        .unwrap();
    assert_eq!(listed[0].replacements, 0);

    // Due: replaced with the same nonce and fees raised by at least an eighth.
    let bumping = c.clone().with_fee_bump(Some(FeeBump {
        after: Duration::ZERO,
        max_fee_per_gas: generous,
    }));
    let listed = bumping.pending_sends(hour).await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].tx_hash, listed[0].replacements),
        (1, first, 1)
    );
    let replacement = listed[0].newest;
    assert_ne!(replacement, first);
    let (same_nonce, new_fee, new_priority) = fees(replacement).await;
    assert_eq!(same_nonce, nonce);
    assert!(
        new_fee >= max_fee + max_fee / 8,
        "{new_fee} after {max_fee}"
    );
    assert!(new_fee <= generous);
    assert!(
        new_priority >= priority + priority / 8,
        "{new_priority} after {priority}"
    );
    assert_eq!(pending_nonce().await, 1);
    // Still pending: the retry sends nothing.
    assert!(matches!(
        c.resend_calldata(input.clone(), value, first).await,
        Err(ClientError::Unconfirmed { tx_hash, .. }) if tx_hash == first
    ));

    // Mined: the replacement's outcome is the send's, given once; nothing else is sent.
    anvil.mine(1).await.unwrap();
    let block = c.block_number().await.unwrap();
    assert_eq!(
        twin.sent_state(replacement).await.unwrap(),
        SentState::Mined(CallOutcome::Included {
            block,
            tx_hash: replacement
        })
    );
    assert_eq!(
        c.resend_calldata(input.clone(), value, first)
            .await
            .unwrap(),
        CallOutcome::Included {
            block,
            tx_hash: replacement
        }
    );
    assert!(!c.has_unconfirmed());
    assert!(bumping.pending_sends(hour).await.unwrap().is_empty());
    // A late retry of the settled send gets the same outcome and sends nothing; a new call
    // goes to the chain, which refuses it at estimation for free.
    assert_eq!(
        c.resend_calldata(input.clone(), value, first)
            .await
            .unwrap(),
        CallOutcome::Included {
            block,
            tx_hash: replacement
        }
    );
    assert!(matches!(
        c.send_calldata(input, value).await.unwrap(),
        CallOutcome::Reverted(Revert::Contract(_))
    ));
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 1);
    assert_eq!(pending_nonce().await, 1);
}

/// A replacement the chain's node refuses (here because another transaction of the account,
/// with ten times the fees, took the send's nonce in its pool) counts for nothing: the send's
/// newest transaction stays the one before, the refusal is the send's problem, and every later
/// bump offers that same replacement again rather than a new one. Once the node would take it
/// (the other transaction gone), a bump sends it, it becomes the newest and, mined, its outcome
/// is the send's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_replacement_counts_for_nothing_until_a_later_bump_gets_it_taken() {
    use alloy_network::TransactionBuilder;
    use alloy_rpc_types_eth::TransactionTrait;
    use keyquorum_evm::client::{FeeBump, PendingSend, SentState};
    use std::time::Duration;

    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (n, c) = registered_impatient(&anvil, contract).await;
    let add_stake = alloy_sol_types::SolCall::abi_encode(&Coordinator::addStakeCall {});
    let fifty = U256::from(50u64);
    let known = |hash| {
        let c = c.clone();
        async move { c.provider().get_transaction_by_hash(hash).await.unwrap() }
    };

    anvil.set_automine(false).await.unwrap();
    let first = unconfirmed(c.send_calldata(add_stake.clone(), fifty).await);
    let sent = known(first).await.expect("in the pool");
    let (nonce, max_fee, priority) = (
        sent.nonce(),
        sent.max_fee_per_gas(),
        sent.max_priority_fee_per_gas().unwrap(),
    );
    let outbid = alloy_rpc_types_eth::TransactionRequest::default()
        .with_from(n.account)
        .with_to(contract)
        .with_input(add_stake.clone())
        .with_value(U256::from(70u64))
        .with_nonce(nonce)
        .with_gas_limit(500_000)
        .with_max_fee_per_gas(max_fee * 10)
        .with_max_priority_fee_per_gas(priority * 10);
    let outbid = *c
        .provider()
        .send_transaction(outbid)
        .await
        .unwrap()
        .tx_hash();
    assert!(known(first).await.is_none(), "outbid in the pool");

    let hour = Duration::from_secs(3600);
    let bumping = c.clone().with_fee_bump(Some(FeeBump {
        after: Duration::ZERO,
        max_fee_per_gas: max_fee * 4,
    }));
    let refused = |listed: &[PendingSend]| {
        assert_eq!(
            (listed.len(), listed[0].tx_hash, listed[0].newest),
            (1, first, first)
        );
        assert_eq!(listed[0].replacements, 0);
        let problem = listed[0].problem.as_deref().unwrap_or_default();
        assert!(problem.contains("replacement was refused"), "{problem}");
    };
    // Refused, and refused again at the next bump: the same replacement, never counted.
    refused(&bumping.pending_sends(hour).await.unwrap());
    refused(&bumping.pending_sends(hour).await.unwrap());
    assert_eq!(pending_count(&c, n.account).await, nonce + 1);

    // The other transaction gone, the next bump gets the replacement taken.
    anvil
        .request::<_, serde_json::Value>("anvil_dropTransaction", serde_json::json!([outbid]))
        .await
        .unwrap();
    let listed = bumping.pending_sends(hour).await.unwrap();
    assert_eq!((listed.len(), listed[0].replacements), (1, 1));
    assert_eq!(listed[0].problem, None);
    let replacement = listed[0].newest;
    assert_ne!(replacement, first);
    let taken = known(replacement)
        .await
        .expect("the replacement is in the pool");
    assert_eq!(taken.nonce(), nonce);
    assert!(taken.max_fee_per_gas() >= max_fee + max_fee / 8);
    assert!(taken.max_fee_per_gas() <= max_fee * 4);

    // Mined: the look-up takes the outcome, and the send's retry still gets it (remembered),
    // sending nothing.
    anvil.mine(1).await.unwrap();
    let block = c.block_number().await.unwrap();
    let mined = CallOutcome::Included {
        block,
        tx_hash: replacement,
    };
    assert_eq!(
        c.sent_state(replacement).await.unwrap(),
        SentState::Mined(mined.clone())
    );
    assert_eq!(
        c.resend_calldata(add_stake.clone(), fifty, first)
            .await
            .unwrap(),
        mined
    );
    assert_eq!(pending_count(&c, n.account).await, nonce + 1);
    assert_eq!(c.transaction_count(n.account).await.unwrap(), nonce + 1);
    assert_eq!(stake_of(&c, n.account).await, U256::from(STAKE + 50));
    // The handle names that call only: given with another value, the call is a new one, sent.
    let other = unconfirmed(c.resend_calldata(add_stake, U256::from(60u64), first).await);
    assert!(other != first && other != replacement);
    assert_eq!(pending_count(&c, n.account).await, nonce + 2);
}

/// A kept send's nonce is never given to another call while it may still be mined: lost by the
/// chain's node, its nonce free, a different call takes the next one. Once a transaction this
/// client did not sign for it takes its nonce (here the same account's, from elsewhere), and
/// still two blocks later, it can no longer be mined: its retry sends the call anew, and it
/// lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_send_keeps_its_nonce_until_another_transaction_takes_it() {
    use alloy_network::TransactionBuilder;
    use alloy_rpc_types_eth::TransactionTrait;
    use keyquorum_evm::client::SentState;

    let anvil = anvil();
    let contract = deployed(&anvil).await;
    let (n, c) = registered_impatient(&anvil, contract).await;
    let (_, twin) = node(&anvil, 0, contract).await;
    let nonce_of = |hash| {
        let twin = twin.clone();
        async move {
            twin.provider()
                .get_transaction_by_hash(hash)
                .await
                .unwrap()
                .expect("known to the node")
                .nonce()
        }
    };
    let stake = || stake_of(&c, n.account);
    let add_stake = alloy_sol_types::SolCall::abi_encode(&Coordinator::addStakeCall {});
    let (fifty, sixty, seventy) = (U256::from(50u64), U256::from(60u64), U256::from(70u64));

    anvil.set_automine(false).await.unwrap();
    let lost = unconfirmed(c.send_calldata(add_stake.clone(), fifty).await);
    assert_eq!(nonce_of(lost).await, 1);
    anvil
        .request::<_, serde_json::Value>("anvil_dropTransaction", (lost,))
        .await
        .unwrap();
    // The node's pending count is 1 again; a different call still takes 2.
    let other = unconfirmed(c.send_calldata(add_stake.clone(), sixty).await);
    assert_eq!(nonce_of(other).await, 2);
    // Another transaction of the account takes nonce 1.
    let elsewhere = alloy_rpc_types_eth::TransactionRequest::default()
        .with_from(n.account)
        .with_to(contract)
        .with_input(add_stake.clone())
        .with_value(seventy)
        .with_nonce(1)
        .with_gas_limit(500_000);
    let _sent = twin.provider().send_transaction(elsewhere).await.unwrap();
    anvil.mine(1).await.unwrap();
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 3);
    assert_eq!(stake().await, U256::from(STAKE + 130));
    // The nonce is taken and the send not mined: its retry sends nothing until that still
    // holds two blocks later.
    assert_eq!(
        unconfirmed(c.resend_calldata(add_stake.clone(), fifty, lost).await),
        lost
    );
    assert_eq!(c.sent_state(lost).await.unwrap(), SentState::Pending);
    anvil.mine(2).await.unwrap();
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 3);
    // Then it is dropped, and its retry is a new call with the next nonce, which lands.
    let anew = unconfirmed(c.resend_calldata(add_stake.clone(), fifty, lost).await);
    assert_eq!(c.sent_state(lost).await.unwrap(), SentState::Dropped);
    assert_ne!(anew, lost);
    assert_eq!(nonce_of(anew).await, 3);
    anvil.mine(1).await.unwrap();
    let block = c.block_number().await.unwrap();
    assert_eq!(
        c.resend_calldata(add_stake.clone(), fifty, anew)
            .await
            .unwrap(),
        CallOutcome::Included {
            block,
            tx_hash: anew
        }
    );
    // The other call's outcome, found by its retry.
    assert!(matches!(
        c.resend_calldata(add_stake, sixty, other).await.unwrap(),
        CallOutcome::Included { tx_hash, .. } if tx_hash == other
    ));
    assert!(!c.has_unconfirmed());
    assert_eq!(stake().await, U256::from(STAKE + 180));
    assert_eq!(c.transaction_count(n.account).await.unwrap(), 4);
}

/// anvil run through a wrapper that stays its parent (npm's `node_modules/.bin/anvil` is a node
/// script that does) stops when its handle is dropped: the handle stops the processes under
/// the wrapper too, where killing the wrapper alone left anvil running and answering.
#[cfg(target_os = "linux")]
#[test]
fn a_wrapped_anvil_stops_with_its_handle() {
    use std::net::TcpStream;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    let real = keyquorum_evm::anvil::find_anvil(&repo()).unwrap_or_else(|e| panic!("{e}"));
    // Removed on drop, so a failed run leaves no wrapper behind either.
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("anvil");
    // No `exec`: the shell stays anvil's parent, as the node script does.
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\n\"{}\" \"$@\"\n", real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let anvil = Anvil::start_binary(&wrapper, None).unwrap_or_else(|e| panic!("{e}"));
    let addr = anvil.url().trim_start_matches("http://").to_string();
    assert!(TcpStream::connect(&addr).is_ok(), "anvil answers on {addr}");
    drop(anvil);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the wrapper's anvil still answers on {addr} after its handle was dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A chain without the EIP-2537 precompiles (before Prague) is refused before anything is
/// deployed, naming what is missing; the deployment used to succeed and every registration on
/// it then reverted with `PrecompileFailed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_without_the_bls_precompiles_is_refused_at_deployment() {
    let real = keyquorum_evm::anvil::find_anvil(&repo()).unwrap_or_else(|e| panic!("{e}"));
    let anvil =
        Anvil::start_binary_on_hardfork(&real, None, "cancun").unwrap_or_else(|e| panic!("{e}"));
    let deployer = chain_key(b"test deployer");
    anvil
        .fund(deployer.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let err = deploy(anvil.url(), deployer.clone(), common::config(4))
        .await
        .expect_err("deployed on a chain without the precompiles");
    assert!(
        matches!(err, keyquorum_evm::client::ClientError::NoBlsPrecompiles),
        "{err}"
    );
    assert!(err.to_string().contains("EIP-2537"), "{err}");
    let nonce = anvil
        .provider()
        .await
        .unwrap()
        .get_transaction_count(deployer.address())
        .await
        .unwrap();
    assert_eq!(nonce, 0, "nothing was sent");
}
