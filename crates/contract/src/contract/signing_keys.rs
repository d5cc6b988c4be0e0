//! Signing keys: the secp256k1 key each view's committee makes after the view activates
//! ([`crate::signing_key`]): its ceremony's start, posts and deadlines, and the record.

use std::sync::Arc;

use keyquorum_dkg::Ceremony;
use keyquorum_dkg::complaint::messages::SignedComplaintPost;
use keyquorum_dkg::complaint::{
    ComplaintBoard, ComplaintBoardError, ComplaintBoardPhase, author_key,
    check_authentic as check_complaint_authentic,
};
use keyquorum_dkg::identity::IdentityPublicKey;

use crate::config::SigningKeyLifetime;
use crate::error::Rejection;
use crate::events::Event;
use crate::hex::{Bytes, Hex};
use crate::magic::MagicBlock;
use crate::signing_key::{
    SigningCurve, SigningKeyPenalty, SigningKeyRecord, SigningKeyRun, judged_exclusions,
    signing_ceremony, signing_key_reshare, signing_key_spec, sitting_out,
};
use crate::state::{BoardInput, FaultCeremony, FaultRole};

use super::ceremonies::{advance_reporting_drops, undecoded};
use super::slashing::{FaultInfo, evidence_record};
use super::{Contract, RestoreError, key_of};

/// The running signing-key ceremony and its board.
#[derive(Clone)]
pub(super) struct SigningLive {
    pub(super) ceremony: Arc<Ceremony<SigningCurve>>,
    pub(super) board: ComplaintBoard<SigningCurve>,
}

impl SigningLive {
    fn new(ceremony: Arc<Ceremony<SigningCurve>>) -> Self {
        SigningLive {
            board: ComplaintBoard::new(ceremony.clone()),
            ceremony,
        }
    }

    /// The board rebuilt from a stored run's log.
    pub(super) fn restore(run: &SigningKeyRun) -> Result<Self, RestoreError> {
        let mut live = SigningLive::new(signing_ceremony(&run.spec, run.reshare.as_ref())?);
        for input in &run.board_log {
            match input {
                BoardInput::Post { post } => {
                    let signed = live.decode(&post.0).map_err(|_| RestoreError::BoardLog)?;
                    let _ = live.board.apply(&signed);
                }
                BoardInput::Deadline => live.board.advance(),
            }
        }
        Ok(live)
    }

    fn decode(&self, post: &[u8]) -> Result<SignedComplaintPost<SigningCurve>, Rejection> {
        let c = &self.ceremony;
        SignedComplaintPost::<SigningCurve>::decode(post, c.n(), c.dealer_count()).map_err(|e| {
            undecoded(
                SignedComplaintPost::<SigningCurve>::claimed_session(post),
                c.id(),
                e,
            )
        })
    }

    /// `post` as `sender` may post it: it decodes, belongs to this session, its author exists
    /// and is the sender, and its signature is the author's (the board's own check; for a
    /// reconstruction post only at the reconstruct deadline, so the sender check is what keeps
    /// another member from spending a player's one reconstruction post).
    pub(super) fn authentic(
        &self,
        sender: &IdentityPublicKey,
        post: &[u8],
    ) -> Result<SignedComplaintPost<SigningCurve>, Rejection> {
        let signed = self.decode(post)?;
        if signed.post.session() != self.ceremony.id() {
            return Err(Rejection::WrongSession);
        }
        let (role, index) = signed.post.author();
        let author = author_key(&self.ceremony, role, index).ok_or(Rejection::ComplaintBoard(
            ComplaintBoardError::UnknownAuthor(role, index),
        ))?;
        if author != sender {
            return Err(Rejection::NotPostAuthor);
        }
        check_complaint_authentic(&self.ceremony, &signed).map_err(Rejection::ComplaintBoard)?;
        Ok(signed)
    }
}

impl Contract {
    /// View `view` is active: its committee starts making its signing key, if the chain has
    /// one configured. A ceremony of an earlier view still running ends without a key.
    pub(super) fn start_signing_key(&mut self, view: u64, at: u64, events: &mut Vec<Event>) {
        if self.config.dkg.signing_key.is_none() {
            return;
        }
        if let Some(old) = self.state.signing.take() {
            self.signing_live = None;
            events.push(Event::SigningKeyFailed {
                view: old.view,
                reason: format!("view {view} activated before the key was made"),
            });
        }
        let Some(record) = self.state.views.get(&view) else {
            return;
        };
        let nodes = &self.state.nodes;
        let out = sitting_out(&self.state.slashings, view);
        let built = signing_key_spec(&self.config, &record.magic_block.block, &out, |id| {
            nodes.get(id).and_then(|n| n.verifiable_key)
        })
        .and_then(|spec| {
            let reshare = self
                .key_to_reshare(view)
                .map(|(from_view, key, block)| signing_key_reshare(from_view, key, block, &out))
                .transpose()?;
            Ok((spec, reshare))
        });
        let (spec, reshare) = match built {
            Ok(built) => built,
            Err(e) => {
                events.push(Event::SigningKeyFailed {
                    view,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let ceremony = match signing_ceremony(&spec, reshare.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                events.push(Event::SigningKeyFailed {
                    view,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let session_id = Hex(*ceremony.id());
        let deadline = at.saturating_add(self.config.phases.share);
        events.push(Event::SigningKeyStarted {
            view,
            session_id,
            spec: spec.clone(),
            reshare: reshare.clone(),
            deadline,
        });
        self.signing_live = Some(SigningLive::new(ceremony));
        self.state.signing = Some(SigningKeyRun {
            view,
            session_id,
            spec,
            reshare,
            deadline,
            board_log: Vec::new(),
        });
    }

    /// The key `view`'s ceremony reshares, when keys live as long as the chain: the latest
    /// view before it with a key, that key, and that view's magic block. `None` makes a new key
    /// (keys per view, or no key made yet).
    fn key_to_reshare(&self, view: u64) -> Option<(u64, &SigningKeyRecord, &MagicBlock)> {
        let config = self.config.dkg.signing_key?;
        if config.lifetime != SigningKeyLifetime::Chain {
            return None;
        }
        self.state.views.range(..view).rev().find_map(|(v, r)| {
            r.signing_key
                .as_ref()
                .map(|k| (*v, k, &r.magic_block.block))
        })
    }

    /// A `SigningKeyPost`: an authentic post of the running signing-key ceremony goes to its
    /// board, which alone decides what it means; a post the board refuses is taken as its
    /// author's fault, as in the view's ceremonies.
    pub(super) fn signing_key_post(
        &mut self,
        sender: &IdentityPublicKey,
        post: &[u8],
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        let (Some(run), Some(live)) = (self.state.signing.as_mut(), self.signing_live.as_mut())
        else {
            return Err(Rejection::NoSigningKeyCeremony);
        };
        if height > run.deadline {
            return Err(Rejection::DeadlinePassed {
                deadline: run.deadline,
            });
        }
        let signed = live.authentic(sender, post)?;
        let accepted = match live.board.apply(&signed) {
            Ok(()) => true,
            // A fault of its author, which the board recorded.
            Err(ComplaintBoardError::Fault { .. }) => false,
            // Nothing changed on the board: refused, as a transaction.
            Err(e) => return Err(Rejection::ComplaintBoard(e)),
        };
        run.board_log.push(BoardInput::Post {
            post: Bytes(post.to_vec()),
        });
        Ok(vec![Event::SigningKeyBoardPost {
            view: run.view,
            post: Bytes(post.to_vec()),
            accepted,
        }])
    }

    /// Whether the signing-key board's current phase has every post it expects
    /// ([`ComplaintBoard::all_posts_in`]), so that it may close before its deadline.
    pub(super) fn signing_phase_complete(&self) -> bool {
        self.signing_live
            .as_ref()
            .is_some_and(|l| l.board.all_posts_in())
    }

    /// A board deadline of the signing-key ceremony at height `at`: its deadline, or the block
    /// where its phase's last expected post landed.
    pub(super) fn signing_key_deadline(&mut self, at: u64, events: &mut Vec<Event>) {
        let (Some(run), Some(live)) = (self.state.signing.as_mut(), self.signing_live.as_mut())
        else {
            self.state.signing = None;
            self.signing_live = None;
            return;
        };
        let dropped = advance_reporting_drops(&mut live.board);
        run.board_log.push(BoardInput::Deadline);
        let view = run.view;
        self.report_dropped_posts((FaultCeremony::SigningKey, view, 0), dropped, events);
        let (Some(run), Some(live)) = (self.state.signing.as_mut(), self.signing_live.as_mut())
        else {
            return;
        };
        if live.board.phase() != ComplaintBoardPhase::Done {
            run.deadline = at.saturating_add(self.config.phases.publish);
            events.push(Event::SigningKeyDeadline {
                view,
                next_deadline: Some(run.deadline),
            });
            return;
        }
        events.push(Event::SigningKeyDeadline {
            view,
            next_deadline: None,
        });
        let record = SigningKeyRecord::from_board(&live.board);
        let failure = live.board.failure_reason();
        // Slashed before the key is announced, with the board's evidence still at hand.
        self.slash_signing_key_faults(view, at, events);
        self.state.signing = None;
        self.signing_live = None;
        match record {
            Some(key) => {
                if let Some(v) = self.state.views.get_mut(&view) {
                    v.signing_key = Some(key.clone());
                }
                events.push(Event::SigningKeyCreated { view, key });
            }
            None => events.push(Event::SigningKeyFailed {
                view,
                reason: failure.map_or_else(
                    || "the ceremony's outcome could not be recorded".into(),
                    |r| r.to_string(),
                ),
            }),
        }
    }

    /// The finished signing-key board's proven faults, each slashed once by the view
    /// ceremonies' code path (`record_fault`), with the board's evidence.
    fn slash_signing_key_faults(&mut self, view: u64, at: u64, events: &mut Vec<Event>) {
        let Some(live) = self.signing_live.as_ref() else {
            return;
        };
        let Some(judged) = judged_exclusions(&live.board) else {
            return;
        };
        let faults: Vec<FaultInfo> = judged
            .into_iter()
            .filter_map(|(e, penalty)| {
                Some(FaultInfo {
                    view,
                    ceremony: FaultCeremony::SigningKey,
                    ceremony_number: 0,
                    attempt: 0,
                    identity: key_of(&e.identity),
                    role: match e.role {
                        keyquorum_dkg::board::Role::Dealer => FaultRole::Dealer,
                        keyquorum_dkg::board::Role::Player => FaultRole::Player,
                    },
                    fault: e.fault.code().to_string(),
                    detail: e.fault.to_string(),
                    misbehaviour: penalty? == SigningKeyPenalty::Misbehaviour,
                    evidence: evidence_record(&e.evidence),
                    reporter: e.reporter.as_ref().map(key_of),
                })
            })
            .collect();
        for f in faults {
            self.record_fault(f, at, events);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use keyquorum_crypto::commit::EvalCommitment;
    use keyquorum_crypto::poly::Polynomial;
    use keyquorum_dkg::board::{Evidence, Exclusion, FaultKind};
    use keyquorum_dkg::complaint::ComplaintParticipant;
    use keyquorum_dkg::complaint::messages::{
        CommitmentStatement, ComplaintPost, Deal, FeldmanPost, SignedPedersen, seal_deal,
    };
    use keyquorum_dkg::identity::SIGNATURE_LEN;
    use keyquorum_dkg::participant::Action;
    use keyquorum_dkg::testing::ceremony::{BoardEvent, MemberKeys, member, run_nodes};
    use keyquorum_dkg::{Participant, SessionId};
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    use super::*;
    use crate::config::{ContractConfig, DkgVariant};
    use crate::signing_key::{
        SigningKeyExclusion, UnprovenFault, proven_penalty, signing_key_domain,
    };
    use crate::state::{
        CeremonySpec, EvidenceRecord, IdentityKey, NodeRecord, SlashingRecord, SpecParticipant,
    };
    use crate::tx::NetworkIdentity;

    const N: u32 = 7;
    const STAKE: u64 = 1_000;
    /// The dealer that shows member 3 a second signed commitment.
    const EQUIVOCATOR: u32 = 2;
    /// The dealer that withholds its deal from member 5 and does not send it again on chain.
    const WITHHOLDER: u32 = 4;
    /// The dealer that posts no Feldman values.
    const SKIPS_FELDMAN: u32 = 6;
    /// An honest dealer whose deal to member 1 is lost on the way.
    const LOST_DEAL: u32 = 0;
    /// The dealer that posts Feldman values of another polynomial than the one it dealt.
    const FORGES_FELDMAN: u32 = 1;
    /// The player whose reconstruction post carries a signature that is not its own.
    const MISSIGNS_RECONSTRUCTION: u32 = 3;

    fn members() -> Vec<MemberKeys> {
        (0..N).map(member).collect()
    }

    fn key(i: u32) -> IdentityKey {
        key_of(member(i).identity.public())
    }

    /// A contract whose view 1 runs a signing-key ceremony among the seven test members, each
    /// staking [`STAKE`] (misbehaviour costs 10%, absence 5%).
    fn contract() -> Contract {
        let ms = members();
        let mut config = ContractConfig::defaults("slash-test", N);
        for m in &ms {
            config = config.fund(m.identity.public(), STAKE);
        }
        config.slashing.misbehaviour_percent = 10;
        config.slashing.absence_percent = 5;
        config.slashing.reporter_percent = 20;
        let mut c = Contract::new(config).unwrap();
        for m in &ms {
            let id = key_of(m.identity.public());
            c.state.balances.remove(&id);
            c.state.nodes.insert(
                id,
                NodeRecord {
                    identity: id,
                    encryption_key: Hex(m.encryption.public_key().to_bytes()),
                    network: NetworkIdentity {
                        peer_id: Bytes(vec![1]),
                        addresses: Vec::new(),
                    },
                    stake: STAKE,
                    registered_at: 1,
                    refused_posts: 0,
                    verifiable_key: Some(Hex(m.verifiable.public_key().to_bytes())),
                    leaving: false,
                },
            );
        }
        let spec = CeremonySpec {
            domain: Bytes(signing_key_domain("slash-test", 1)),
            view: 1,
            ceremony_number: 0,
            n: N,
            t: 5,
            k: 5,
            players: ms
                .iter()
                .map(|m| SpecParticipant {
                    identity: key_of(m.identity.public()),
                    encryption_key: Hex(m.encryption.public_key().to_bytes()),
                })
                .collect(),
            reshare: None,
            variant: DkgVariant::Complaint,
            verifiable_keys: ms
                .iter()
                .map(|m| Hex(m.verifiable.public_key().to_bytes()))
                .collect(),
        };
        let ceremony = signing_ceremony(&spec, None).unwrap();
        let run = SigningKeyRun {
            view: 1,
            session_id: Hex(*ceremony.id()),
            spec,
            reshare: None,
            deadline: 1,
            board_log: Vec::new(),
        };
        c.signing_live = Some(SigningLive::restore(&run).unwrap());
        c.state.signing = Some(run);
        c
    }

    /// A deal of `dealer` to `player` under a second commitment the dealer signs too, with a
    /// pair that opens it (so the player reports it valid, with its statement).
    fn second_deal(
        ceremony: &Ceremony<SigningCurve>,
        dealer: &MemberKeys,
        deal: &Deal<SigningCurve>,
    ) -> Vec<u8> {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let f = Polynomial::random(ceremony.t() - 1, None, &mut rng);
        let blind = Polynomial::random(ceremony.t() - 1, None, &mut rng);
        let signed = SignedPedersen::new(
            &dealer.identity,
            ceremony.id(),
            deal.dealer,
            EvalCommitment::<SigningCurve>::pedersen(&f, &blind, ceremony.player_indices()),
        );
        let x = &ceremony.player_indices()[deal.player as usize];
        let key = ceremony.verifiable_key(deal.player).unwrap();
        seal_deal(
            &dealer.identity,
            ceremony.id(),
            &signed,
            (deal.player, key),
            &f.evaluate(x),
            &blind.evaluate(x),
            &mut rng,
        )
        .encode()
    }

    /// Feldman values of a polynomial other than the one `dealer` dealt, signed by it: well
    /// formed, and contradicted by every player's pair.
    fn forged_feldman(
        ceremony: &Ceremony<SigningCurve>,
        dealer: u32,
        keys: &MemberKeys,
    ) -> Vec<u8> {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let g = Polynomial::random(ceremony.t() - 1, None, &mut rng);
        let post = ComplaintPost::Feldman(FeldmanPost {
            session: *ceremony.id(),
            dealer,
            commitment: EvalCommitment::<SigningCurve>::feldman(&g, ceremony.player_indices()),
        });
        SignedComplaintPost::sign(&keys.identity, post).encode()
    }

    /// Runs the ceremony with `faulty` dealers misbehaving as their constants say (and the
    /// [`LOST_DEAL`] dealer's deal to member 1 lost if `lose` is set), feeding every post and
    /// deadline to the contract in board order. Returns the events.
    fn run(c: &mut Contract, faulty: &[u32], lose: bool) -> Vec<Event> {
        let ceremony = c.signing_live.as_ref().unwrap().ceremony.clone();
        let nodes: Vec<Box<dyn Participant<SigningCurve>>> = members()
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                Box::new(
                    ComplaintParticipant::new(
                        ceremony.clone(),
                        m.identity,
                        m.verifiable,
                        None,
                        [i as u8 + 1; 32],
                    )
                    .unwrap(),
                ) as Box<dyn Participant<SigningCurve>>
            })
            .collect();
        let ms = members();
        let c2 = ceremony.clone();
        let mut tamper = |i: usize, a: Action<SigningCurve>| -> Vec<Action<SigningCurve>> {
            let i = i as u32;
            match &a {
                Action::Send { payload, .. } => {
                    let Ok(deal) = Deal::<SigningCurve>::decode(payload, c2.n()) else {
                        return vec![a];
                    };
                    match (i, deal.player) {
                        (EQUIVOCATOR, 3) if faulty.contains(&i) => {
                            let payload = second_deal(&c2, &ms[i as usize], &deal);
                            let Action::Send { to, .. } = a else {
                                unreachable!()
                            };
                            vec![Action::Send { to, payload }]
                        }
                        (WITHHOLDER, 5) if faulty.contains(&i) => vec![],
                        (LOST_DEAL, 1) if lose => vec![],
                        _ => vec![a],
                    }
                }
                Action::Post(bytes) => {
                    let post = SignedComplaintPost::<SigningCurve>::decode(
                        bytes,
                        c2.n(),
                        c2.dealer_count(),
                    )
                    .unwrap();
                    if i == FORGES_FELDMAN
                        && faulty.contains(&i)
                        && matches!(post.post, ComplaintPost::Feldman(_))
                    {
                        return vec![Action::Post(forged_feldman(&c2, i, &ms[i as usize]))];
                    }
                    if i == MISSIGNS_RECONSTRUCTION
                        && faulty.contains(&i)
                        && matches!(post.post, ComplaintPost::Reconstruction(_))
                    {
                        let mut bytes = bytes.clone();
                        bytes[SIGNATURE_LEN - 1] ^= 1;
                        return vec![Action::Post(bytes)];
                    }
                    let dropped = match post.post {
                        ComplaintPost::Justification(_) => i == WITHHOLDER,
                        ComplaintPost::Feldman(_) => i == SKIPS_FELDMAN,
                        _ => false,
                    };
                    if dropped && faulty.contains(&i) {
                        vec![]
                    } else {
                        vec![a]
                    }
                }
                _ => vec![a],
            }
        };
        let (_, board) = run_nodes(nodes, &[], &mut tamper);
        let mut events = Vec::new();
        let mut height = 1;
        for e in board {
            match e {
                BoardEvent::Post(post) => {
                    let signed = SignedComplaintPost::<SigningCurve>::decode(
                        &post,
                        ceremony.n(),
                        ceremony.dealer_count(),
                    )
                    .unwrap();
                    let (_, index) = signed.post.author();
                    let sender = member(index).identity.public().clone();
                    if let Ok(evs) = c.signing_key_post(&sender, &post, height) {
                        events.extend(evs);
                    }
                }
                BoardEvent::Deadline => {
                    if c.state.signing.is_some() {
                        let at = c.state.signing.as_ref().unwrap().deadline;
                        c.signing_key_deadline(at, &mut events);
                        height = at + 1;
                    }
                }
            }
        }
        assert!(c.state.signing.is_none(), "the ceremony ended");
        events
    }

    fn slashed(c: &Contract) -> Vec<(IdentityKey, &str, bool, u64)> {
        c.state
            .slashings
            .iter()
            .map(|r| (r.identity, r.fault.as_str(), r.misbehaviour, r.amount))
            .collect()
    }

    fn created(events: &[Event]) -> SigningKeyRecord {
        events
            .iter()
            .find_map(|e| match e {
                Event::SigningKeyCreated { view: 1, key } => Some(key.clone()),
                _ => None,
            })
            .expect("the key is made")
    }

    /// A signing-key post that does not decode is `malformed_post` if it names this session and
    /// the timing-explained `wrong_session` if it names another (an earlier view's post sent again
    /// by a restarted member, whose committee may not decode for this one), as for DKG posts.
    #[test]
    fn an_undecodable_post_of_another_session_is_a_wrong_session() {
        let c = contract();
        let live = c.signing_live.as_ref().unwrap();
        let author = member(FORGES_FELDMAN);
        let feldman = |session: SessionId| {
            let mut bytes = forged_feldman(&live.ceremony, FORGES_FELDMAN, &author);
            bytes[SIGNATURE_LEN + 1..SIGNATURE_LEN + 33].copy_from_slice(&session);
            // Cut inside the commitment: it no longer decodes for any committee.
            bytes.truncate(bytes.len() - 1);
            bytes
        };
        let sender = author.identity.public();
        let ours = *live.ceremony.id();
        assert!(matches!(
            live.authentic(sender, &feldman(ours)),
            Err(Rejection::MalformedPost(_))
        ));
        let other = feldman([9; 32]);
        assert_eq!(
            SignedComplaintPost::<SigningCurve>::claimed_session(&other),
            Some([9; 32])
        );
        assert!(matches!(
            live.authentic(sender, &other),
            Err(Rejection::WrongSession)
        ));
    }

    #[test]
    fn each_seed_003_dealer_fault_is_slashed_with_its_rate_and_an_honest_dealer_is_not() {
        let mut c = contract();
        let total = c.state.supply().total();
        let events = run(&mut c, &[EQUIVOCATOR, WITHHOLDER, SKIPS_FELDMAN], true);
        let mut got = slashed(&c);
        got.sort();
        let mut expected = vec![
            (key(EQUIVOCATOR), "equivocation", true, STAKE / 10),
            (key(WITHHOLDER), "missing_justification", false, STAKE / 20),
            (key(SKIPS_FELDMAN), "missed_feldman", false, STAKE / 20),
        ];
        expected.sort();
        assert_eq!(got, expected);
        for r in &c.state.slashings {
            assert_eq!(r.ceremony, FaultCeremony::SigningKey);
            assert_eq!((r.view, r.role), (1, FaultRole::Dealer));
            assert_eq!(r.stake_after, STAKE - r.amount);
            assert_eq!(c.state.nodes[&r.identity].stake, STAKE - r.amount);
            assert!(events.contains(&Event::Slashed { record: r.clone() }));
        }
        // The evidence: the dealer's two signed statements, the reports that asked for the
        // deal, and the chain's silence in the Feldman phase.
        let evidence = |i: u32| {
            &c.state
                .slashings
                .iter()
                .find(|r| r.identity == key(i))
                .unwrap()
                .evidence
        };
        assert!(
            matches!(evidence(EQUIVOCATOR), EvidenceRecord::SignedPosts { posts } if posts.len() == 2)
        );
        assert!(
            matches!(evidence(WITHHOLDER), EvidenceRecord::Reports { posts } if posts.len() == 1)
        );
        assert!(matches!(
            evidence(SKIPS_FELDMAN),
            EvidenceRecord::Absence { .. }
        ));
        // Nobody is paid for either: the equivocation's evidence is the dealer's own two
        // statements, which any member that saw them could have submitted, and a withheld
        // justification is an absence that the complaining member only claimed.
        let reporter = |i: u32| {
            c.state
                .slashings
                .iter()
                .find(|r| r.identity == key(i))
                .unwrap()
                .reporter
        };
        assert_eq!(reporter(EQUIVOCATOR), None);
        assert_eq!(reporter(WITHHOLDER), None);
        let settled = |i: u32| {
            let r = c
                .state
                .slashings
                .iter()
                .find(|r| r.identity == key(i))
                .unwrap();
            (r.reporter_reward, r.burned)
        };
        assert_eq!(settled(EQUIVOCATOR), (0, 100));
        assert_eq!(settled(WITHHOLDER), (0, 50));
        assert_eq!(settled(SKIPS_FELDMAN), (0, 50));
        assert_eq!(c.state.balance(&key(3)), 0);
        assert_eq!(c.state.balance(&key(5)), 0);
        assert_eq!(c.state.burned, 200);
        assert_eq!(c.state.supply().total(), total);

        // The record says who is slashed, at which rate; the rest of the exclusions carry no
        // penalty (outside the clique as players).
        let record = created(&events);
        let penalty = |p: u32| -> Vec<&SigningKeyExclusion> {
            record.excluded.iter().filter(|e| e.position == p).collect()
        };
        for (i, rate) in [
            (EQUIVOCATOR, SigningKeyPenalty::Misbehaviour),
            (WITHHOLDER, SigningKeyPenalty::Absence),
            (SKIPS_FELDMAN, SigningKeyPenalty::Absence),
        ] {
            let dealer = penalty(i)
                .into_iter()
                .find(|e| e.role == FaultRole::Dealer)
                .unwrap();
            assert_eq!(dealer.penalty, Some(rate), "{dealer:?}");
        }
        assert!(
            record
                .excluded
                .iter()
                .filter(|e| e.role == FaultRole::Player)
                .all(|e| e.fault == "not_in_clique" && e.penalty.is_none()),
            "{:?}",
            record.excluded
        );
        // The honest dealer whose deal was lost answered on chain: qualified, not excluded.
        assert!(record.qualified.contains(&LOST_DEAL));
        assert!(penalty(LOST_DEAL).is_empty());
        assert_eq!(c.state.nodes[&key(LOST_DEAL)].stake, STAKE);

        // The slashed members sit out the next view's signing-key ceremony, only that one.
        let out = sitting_out(&c.state.slashings, 2);
        assert_eq!(
            out,
            BTreeSet::from([key(EQUIVOCATOR), key(WITHHOLDER), key(SKIPS_FELDMAN)])
        );
        assert!(sitting_out(&c.state.slashings, 3).is_empty());
        assert!(sitting_out(&c.state.slashings, 1).is_empty());
    }

    /// A reconstruction post's signature is checked only at the reconstruct deadline; one that
    /// fails there was reported taken on arrival, so the deadline says it was dropped, naming
    /// its author, and counts it against the author as a post refused on arrival would be.
    #[test]
    fn a_reconstruction_post_dropped_at_the_deadline_is_reported_and_counted() {
        let mut c = contract();
        let ceremony = c.signing_live.as_ref().unwrap().ceremony.clone();
        let events = run(&mut c, &[SKIPS_FELDMAN, MISSIGNS_RECONSTRUCTION], false);
        let is_missigned = |e: &Event| {
            matches!(e, Event::SigningKeyBoardPost { post, accepted: true, .. }
            if matches!(
                SignedComplaintPost::<SigningCurve>::decode(&post.0, ceremony.n(), ceremony.dealer_count())
                    .map(|p| p.post),
                Ok(ComplaintPost::Reconstruction(d)) if d.player == MISSIGNS_RECONSTRUCTION
            ))
        };
        let taken = events
            .iter()
            .position(is_missigned)
            .expect("taken on arrival");
        let dropped: Vec<(usize, &Event)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Event::PostDropped { .. }))
            .collect();
        assert_eq!(
            dropped.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
            vec![&Event::PostDropped {
                ceremony: FaultCeremony::SigningKey,
                view: 1,
                ceremony_number: 0,
                player: MISSIGNS_RECONSTRUCTION,
                identity: key(MISSIGNS_RECONSTRUCTION),
                reason: "bad_post_signature".into(),
            }]
        );
        assert!(dropped[0].0 > taken);
        for i in 0..N {
            let expected = u64::from(i == MISSIGNS_RECONSTRUCTION);
            assert_eq!(c.state.nodes[&key(i)].refused_posts, expected, "member {i}");
        }
        // Dropped, it counts as never posted: the key is reconstructed from the others' pairs.
        let record = created(&events);
        assert!(record.qualified.contains(&SKIPS_FELDMAN));
    }

    #[test]
    fn lost_deals_answered_on_chain_slash_nobody() {
        let mut c = contract();
        let ceremony = c.signing_live.as_ref().unwrap().ceremony.clone();
        let events = run(&mut c, &[], true);
        // The dealer whose deal was lost was asked on chain and sent it again there.
        assert!(events.iter().any(|e| matches!(e,
            Event::SigningKeyBoardPost { post, accepted: true, .. }
                if matches!(
                    SignedComplaintPost::<SigningCurve>::decode(&post.0, ceremony.n(), ceremony.dealer_count())
                        .map(|p| p.post),
                    Ok(ComplaintPost::Justification(j)) if j.dealer == LOST_DEAL
                ))));
        assert_eq!(c.state.slashings, Vec::<SlashingRecord>::new());
        let record = created(&events);
        assert_eq!(record.excluded, Vec::new());
        assert_eq!(record.qualified.len(), N as usize);
    }

    #[test]
    fn a_bad_feldman_slash_pays_the_complainer_whose_pair_proved_it() {
        let mut c = contract();
        let ceremony = c.signing_live.as_ref().unwrap().ceremony.clone();
        let total = c.state.supply().total();
        let events = run(&mut c, &[FORGES_FELDMAN], false);
        // The first complaint on the board with a pair in it decides the fault (the others'
        // are empty: they have none).
        let complainer = events
            .iter()
            .find_map(|e| match e {
                Event::SigningKeyBoardPost {
                    post,
                    accepted: true,
                    ..
                } => match SignedComplaintPost::<SigningCurve>::decode(
                    &post.0,
                    ceremony.n(),
                    ceremony.dealer_count(),
                )
                .ok()?
                .post
                {
                    ComplaintPost::Complaint(d) if !d.shares.is_empty() => Some(d.player),
                    _ => None,
                },
                _ => None,
            })
            .expect("a complaint on the board");
        assert_ne!(complainer, FORGES_FELDMAN);
        assert_eq!(
            slashed(&c),
            vec![(key(FORGES_FELDMAN), "bad_feldman", true, STAKE / 10)]
        );
        // The evidence ends with the dealer's signed commitment statement, lifted from a
        // report; the reward still goes to the member whose complaint proved the fault.
        let r = &c.state.slashings[0];
        assert!(
            matches!(&r.evidence, EvidenceRecord::SignedPosts { posts } if posts.len() == 3),
            "{:?}",
            r.evidence
        );
        assert_eq!(r.reporter, Some(key(complainer)));
        assert_eq!((r.reporter_reward, r.burned), (20, 80));
        assert_eq!(c.state.balance(&key(complainer)), 20);
        assert_eq!(c.state.balance(&key(FORGES_FELDMAN)), 0);
        assert_eq!(c.state.supply().total(), total);
        // The dealer's contribution is reconstructed: the key is made with it.
        assert!(created(&events).qualified.contains(&FORGES_FELDMAN));
    }

    /// The equivocation exclusion the board made, with its evidence.
    fn equivocation(c: &mut Contract) -> (Arc<Ceremony<SigningCurve>>, Exclusion) {
        let ceremony = c.signing_live.as_ref().unwrap().ceremony.clone();
        run(c, &[EQUIVOCATOR], false);
        let r = c
            .state
            .slashings
            .iter()
            .find(|r| r.fault == "equivocation")
            .unwrap();
        let EvidenceRecord::SignedPosts { posts } = &r.evidence else {
            panic!("{r:?}");
        };
        let exclusion = Exclusion {
            role: keyquorum_dkg::board::Role::Dealer,
            index: EQUIVOCATOR,
            identity: member(EQUIVOCATOR).identity.public().clone(),
            fault: FaultKind::Equivocation,
            evidence: Evidence::SignedPosts(posts.iter().map(|p| p.0.clone()).collect()),
            reporter: None,
        };
        (ceremony, exclusion)
    }

    fn statements(e: &Exclusion) -> Vec<CommitmentStatement> {
        let Evidence::SignedPosts(items) = &e.evidence else {
            panic!("{e:?}");
        };
        items
            .iter()
            .map(|i| CommitmentStatement::decode(i).unwrap())
            .collect()
    }

    fn with_items(e: &Exclusion, items: Vec<Vec<u8>>) -> Exclusion {
        Exclusion {
            evidence: Evidence::SignedPosts(items),
            ..e.clone()
        }
    }

    #[test]
    fn forged_equivocation_evidence_is_refused_and_slashes_nobody() {
        let mut c = contract();
        let (ceremony, genuine) = equivocation(&mut c);
        let refused = Err(UnprovenFault::Refuted {
            fault: "equivocation",
        });
        assert_eq!(
            proven_penalty(&ceremony, &genuine),
            Ok(Some(SigningKeyPenalty::Misbehaviour))
        );
        let [first, second] = &statements(&genuine)[..] else {
            panic!("two statements");
        };
        let dealer = member(EQUIVOCATOR);
        // The second statement signed by another member, not the culprit.
        let other =
            CommitmentStatement::sign(&member(0).identity, first.session, EQUIVOCATOR, second.hash);
        let forged = with_items(&genuine, vec![first.encode(), other.encode()]);
        assert_eq!(proven_penalty(&ceremony, &forged), refused);
        // The same batch twice is no conflict.
        let same = with_items(&genuine, vec![first.encode(), first.encode()]);
        assert_eq!(proven_penalty(&ceremony, &same), refused);
        // Two commitments the dealer really signed, but for another session.
        let elsewhere: SessionId = [9; 32];
        let wrong = |s: &CommitmentStatement| {
            CommitmentStatement::sign(&dealer.identity, elsewhere, EQUIVOCATOR, s.hash).encode()
        };
        let other_session = with_items(&genuine, vec![wrong(first), wrong(second)]);
        assert_eq!(proven_penalty(&ceremony, &other_session), refused);
        // Genuine evidence against another member than the one who signed it.
        let framed = Exclusion {
            index: 0,
            identity: member(0).identity.public().clone(),
            ..genuine.clone()
        };
        assert_eq!(proven_penalty(&ceremony, &framed), refused);
        // An absence-rate fault with signed posts instead of the chain's silence proves
        // nothing by itself.
        let feldman = Exclusion {
            fault: FaultKind::MissedFeldman,
            ..genuine.clone()
        };
        assert_eq!(
            proven_penalty(&ceremony, &feldman),
            Err(UnprovenFault::NotProvable {
                fault: "missed_feldman"
            })
        );
        // A missing justification needs the reports that asked for the deal.
        let unasked = Exclusion {
            fault: FaultKind::MissingJustification { complaints: 1 },
            evidence: Evidence::Reports(Vec::new()),
            ..genuine.clone()
        };
        assert_eq!(
            proven_penalty(&ceremony, &unasked),
            Err(UnprovenFault::Refuted {
                fault: "missing_justification"
            })
        );
        // Only the genuine equivocation was slashed.
        assert_eq!(
            slashed(&c),
            vec![(key(EQUIVOCATOR), "equivocation", true, STAKE / 10)]
        );
    }

    #[test]
    fn a_slashed_member_sits_out_the_next_views_signing_key_ceremony() {
        use crate::config::{SigningKeyConfig, Size};
        use crate::magic::{MagicBlock, MagicBlockMember, SignedMagicBlock};
        use crate::state::ViewRecord;
        let mut c = contract();
        c.config.committee.threshold = Size::Percent(66);
        c.config.committee.quorum = Size::Percent(75);
        c.config.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
        run(&mut c, &[EQUIVOCATOR, WITHHOLDER, SKIPS_FELDMAN], false);
        let ms = members();
        let block = MagicBlock {
            chain_id: "slash-test".into(),
            view: 2,
            ceremony_number: 0,
            key_mode: crate::config::KeyMode::Reshare,
            session_id: Hex([0; 32]),
            n: N,
            t: 5,
            k: 5,
            group_key: Hex([0; 48]),
            members: ms
                .iter()
                .enumerate()
                .map(|(i, m)| MagicBlockMember {
                    index: i as u64 + 1,
                    identity: key_of(m.identity.public()),
                    encryption_key: Hex(m.encryption.public_key().to_bytes()),
                    peer_id: Bytes(vec![1]),
                    addresses: Vec::new(),
                    public_share: Hex([0; 48]),
                })
                .collect(),
            previous_hash: Hex([0; 32]),
            first_round: 100,
            beacon: Default::default(),
        };
        c.state.views.insert(
            2,
            ViewRecord {
                view: 2,
                magic_block: SignedMagicBlock {
                    hash: Hex([0; 32]),
                    block,
                    signature: None,
                    previous_signature: None,
                },
                seed: Hex([0; 32]),
                activated_at: 100,
                signing_key: None,
            },
        );
        let mut events = Vec::new();
        c.start_signing_key(2, 100, &mut events);
        let spec = events
            .iter()
            .find_map(|e| match e {
                Event::SigningKeyStarted { view: 2, spec, .. } => Some(spec.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{events:?}"));
        let players: Vec<IdentityKey> = spec.players.iter().map(|p| p.identity).collect();
        let honest: Vec<IdentityKey> = [0, 1, 3, 5].into_iter().map(key).collect();
        assert_eq!(players, honest);
        // Thresholds for the four that remain (66% and 75% of 4).
        assert_eq!((spec.n, spec.t, spec.k), (4, 3, 3));
        assert_eq!(spec.verifiable_keys.len(), 4);
    }
}
