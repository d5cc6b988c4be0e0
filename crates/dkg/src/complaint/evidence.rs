//! Checking the complaint variant's evidence as a third party would: from the session and the
//! evidence alone, without the board that produced it.
//!
//! [`verify_exclusion`] decides whether an [`Exclusion`]'s evidence proves its fault (see
//! [`super::board`] for what each fault carries). Faults whose evidence is the absence of a post,
//! or that need the whole board (the clique), are not judged.

use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;

use super::checks;
use super::messages::{
    CommitmentStatement, ComplaintPost, Disclosure, Justification, Report, SignedComplaintPost,
    feldman_hash, pedersen_hash,
};
use super::verdict::{Verdict, judge};
use super::verify_equivocation;
use crate::board::{Evidence, Exclusion, FaultKind, Role};
use crate::ceremony::Ceremony;

/// An authenticated evidence item: a dealer's statement or a signed post of this session.
enum Item<C: Curve> {
    Statement(CommitmentStatement),
    Post(ComplaintPost<C>),
}

fn parse<C: Curve>(ceremony: &Ceremony<C>, bytes: &[u8]) -> Option<Item<C>> {
    if let Ok(s) = CommitmentStatement::decode(bytes) {
        return (s.session == *ceremony.id() && checks::statement(ceremony, &s))
            .then_some(Item::Statement(s));
    }
    let s = SignedComplaintPost::<C>::decode(bytes, ceremony.n(), ceremony.dealer_count()).ok()?;
    if s.post.session() != ceremony.id() {
        return None;
    }
    let author = s.post.author();
    let key = identity(ceremony, author.0, author.1)?;
    checks::post_signature(ceremony, author, key, &s.post.encode(), &s.signature)
        .then_some(Item::Post(s.post))
}

fn identity<C: Curve>(
    ceremony: &Ceremony<C>,
    role: Role,
    index: u32,
) -> Option<&crate::identity::IdentityPublicKey> {
    let list = match role {
        Role::Dealer => ceremony.dealers(),
        Role::Player => ceremony.players(),
    };
    list.get(index as usize).map(|p| &p.identity)
}

/// Every item must authenticate; `None` if one does not.
fn parse_all<C: Curve>(ceremony: &Ceremony<C>, items: &[Vec<u8>]) -> Option<Vec<Item<C>>> {
    items.iter().map(|i| parse(ceremony, i)).collect()
}

fn posts<C: Curve>(items: &[Item<C>]) -> impl Iterator<Item = &ComplaintPost<C>> {
    items.iter().filter_map(|i| match i {
        Item::Post(p) => Some(p),
        Item::Statement(_) => None,
    })
}

/// The dealer's Pedersen commitment as the items establish it: one carried by a post (its
/// justification, or a player's disclosure) whose hash the dealer signed (a statement or its
/// justification).
fn pedersen_of<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    items: &[Item<C>],
) -> Option<EvalCommitment<C>> {
    let session = ceremony.id();
    let mut signed = Vec::new();
    let mut carried: Vec<&EvalCommitment<C>> = Vec::new();
    for item in items {
        match item {
            Item::Statement(s) if s.dealer == dealer => signed.push(s.hash),
            Item::Statement(_) => {}
            Item::Post(ComplaintPost::Justification(j)) if j.dealer == dealer => {
                signed.push(pedersen_hash::<C>(session, dealer, &j.commitment));
                carried.push(&j.commitment);
            }
            Item::Post(ComplaintPost::Complaint(d) | ComplaintPost::Reconstruction(d)) => {
                carried.extend(
                    d.commitments
                        .iter()
                        .filter(|(x, _)| *x == dealer)
                        .map(|(_, c)| c),
                );
            }
            Item::Post(_) => {}
        }
    }
    carried
        .into_iter()
        .find(|c| {
            c.points().len() == ceremony.n() + 1
                && signed.contains(&pedersen_hash::<C>(session, dealer, c))
        })
        .cloned()
}

/// The pair a disclosure of `player` (of the wanted kind) reveals for `dealer`.
fn disclosed<C: Curve>(
    items: &[Item<C>],
    complaint: bool,
    player: u32,
    dealer: u32,
) -> Option<(C::Scalar, C::Scalar, &Disclosure<C>)> {
    posts(items).find_map(|p| {
        let d = match (p, complaint) {
            (ComplaintPost::Complaint(d), true) | (ComplaintPost::Reconstruction(d), false) => d,
            _ => return None,
        };
        if d.player != player {
            return None;
        }
        d.shares
            .iter()
            .find(|(x, _, _)| *x == dealer)
            .map(|(_, s, b)| (*s, *b, d))
    })
}

/// Reports by distinct players of this session, each missing `dealer`'s deal.
fn missing_reports<C: Curve>(ceremony: &Ceremony<C>, dealer: u32, reports: &[Vec<u8>]) -> bool {
    let mut players = Vec::new();
    for bytes in reports {
        let Some(Item::Post(ComplaintPost::Report(r))) = parse(ceremony, bytes) else {
            return false;
        };
        if !r.misses(dealer) || players.contains(&r.player) {
            return false;
        }
        players.push(r.player);
    }
    !players.is_empty()
}

/// The hash a report heard for `dealer`.
fn heard_hash<C: Curve>(r: &Report<C>, dealer: u32) -> Option<[u8; 32]> {
    r.heard.iter().find(|e| e.dealer == dealer).map(|e| e.hash)
}

/// Whether a report's complaint about `dealer` is authentic: about a dealer heard from, with
/// the commitment of the heard hash and a ciphertext the dealer signed for the player.
fn complaint_is_authentic<C: Curve>(ceremony: &Ceremony<C>, r: &Report<C>, dealer: u32) -> bool {
    let (Some(c), Some(hash)) = (r.complaint(dealer), heard_hash(r, dealer)) else {
        return false;
    };
    pedersen_hash::<C>(ceremony.id(), dealer, &c.commitment) == hash
        && checks::share_signature(
            ceremony,
            (dealer, r.player, &hash),
            &c.ciphertext,
            &c.signature,
        )
}

/// Whether a report breaks the rules by itself: a statement that is not its dealer's, a dealer
/// validated without being heard from, or a complaint that is not authentic or about a dealer
/// it validated.
fn report_is_bad<C: Curve>(ceremony: &Ceremony<C>, r: &Report<C>) -> bool {
    let dealers = ceremony.dealer_count();
    r.statements()
        .any(|s| s.dealer as usize >= dealers || !checks::statement(ceremony, &s))
        || r.conflicting_statement().is_some_and(|s| {
            heard_hash(r, s.dealer).is_none_or(|h| h == s.hash) || !checks::statement(ceremony, &s)
        })
        || r.valid
            .iter()
            .any(|d| !r.heard.iter().any(|e| e.dealer == *d))
        || r.complaints
            .iter()
            .any(|c| r.validates(c.dealer) || !complaint_is_authentic(ceremony, r, c.dealer))
}

/// The verdict on `player`'s complaint about `dealer` as the items show it: a report with an
/// authentic complaint, or a dispute-phase reveal of a pair the dealer's justification sent
/// again. `None` if the items hold neither.
fn complaint_verdict<C: Curve>(
    ceremony: &Ceremony<C>,
    player: u32,
    dealer: u32,
    items: &[Item<C>],
) -> Option<Verdict> {
    for p in posts(items) {
        if let ComplaintPost::Report(r) = p
            && r.player == player
            && complaint_is_authentic(ceremony, r, dealer)
        {
            let c = r.complaint(dealer)?;
            let hash = heard_hash(r, dealer)?;
            return Some(judge(
                ceremony,
                (dealer, &c.commitment, &hash),
                player,
                &c.ciphertext,
                c.reveal.as_ref(),
            ));
        }
    }
    let reveal = posts(items).find_map(|p| match p {
        ComplaintPost::Dispute(d) if d.player == player => d
            .reveals
            .iter()
            .find(|(x, _)| *x == dealer)
            .map(|(_, k)| *k),
        _ => None,
    })?;
    let j: &Justification<C> = posts(items).find_map(|p| match p {
        ComplaintPost::Justification(j) if j.dealer == dealer => Some(j),
        _ => None,
    })?;
    let ct = j.deals.iter().find(|(p, _)| *p == player)?;
    let hash = pedersen_hash::<C>(ceremony.id(), dealer, &j.commitment);
    Some(judge(
        ceremony,
        (dealer, &j.commitment, &hash),
        player,
        &ct.1,
        Some(&reveal),
    ))
}

/// A dealer's commitment post (justification or Feldman) with its hash, from single-post
/// evidence.
fn own_commitment<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    items: &[Item<C>],
) -> Option<(EvalCommitment<C>, [u8; 32])> {
    let session = ceremony.id();
    posts(items).find_map(|p| match p {
        ComplaintPost::Justification(j) if j.dealer == dealer => Some((
            j.commitment.clone(),
            pedersen_hash::<C>(session, dealer, &j.commitment),
        )),
        ComplaintPost::Feldman(f) if f.dealer == dealer => Some((
            f.commitment.clone(),
            feldman_hash::<C>(session, dealer, &f.commitment),
        )),
        _ => None,
    })
}

/// Whether an exclusion's evidence proves its fault, checked against the session only.
///
/// `None` when the fault is not provable from the evidence alone: absences (a missing report,
/// Feldman post or reconstruction pair, whose proof is the chain itself), exclusion from the
/// clique (which needs every report), and a justification that names a player who did not
/// complain (which needs that player's report). `Some(false)` when the evidence does not
/// authenticate (wrong session, bad signature, wrong author) or does not show the fault.
pub fn verify_exclusion<C: Curve>(ceremony: &Ceremony<C>, e: &Exclusion) -> Option<bool> {
    if identity(ceremony, e.role, e.index) != Some(&e.identity) {
        return Some(false);
    }
    let n = ceremony.n();
    match (&e.fault, &e.evidence) {
        (FaultKind::Equivocation, ev) => {
            Some(e.role == Role::Dealer && verify_equivocation(ceremony, e.index, ev))
        }
        (FaultKind::MissingJustification { complaints }, Evidence::Reports(r)) => Some(
            e.role == Role::Dealer
                && r.len() == *complaints
                && missing_reports(ceremony, e.index, r),
        ),
        (
            FaultKind::MissedReport
            | FaultKind::NotInClique
            | FaultKind::MissedFeldman
            | FaultKind::MissedReconstruction { .. },
            _,
        ) => None,
        (fault, Evidence::SignedPosts(raw)) => {
            let Some(items) = parse_all(ceremony, raw) else {
                return Some(false);
            };
            verify_signed(ceremony, e.role, e.index, fault, &items, n)
        }
        _ => Some(false),
    }
}

fn verify_signed<C: Curve>(
    ceremony: &Ceremony<C>,
    role: Role,
    index: u32,
    fault: &FaultKind,
    items: &[Item<C>],
    n: usize,
) -> Option<bool> {
    match (role, fault) {
        (Role::Dealer, FaultKind::CommitmentSize { expected, actual }) => {
            let (c, _) = own_commitment(ceremony, index, items)?;
            Some(*expected == n + 1 && c.points().len() == *actual && actual != expected)
        }
        (Role::Dealer, FaultKind::CommitmentDegree) => {
            let (c, hash) = own_commitment(ceremony, index, items)?;
            Some(c.points().len() == n + 1 && !checks::degree(ceremony, index, &c, &hash))
        }
        (Role::Dealer, FaultKind::ResharePublicShareMismatch) => {
            let (c, _) = own_commitment(ceremony, index, items)?;
            let r = ceremony.reshare()?;
            Some(r.public_shares.get(index as usize) != Some(c.constant()))
        }
        (Role::Dealer, FaultKind::PointOutsideSubgroup) => {
            let (c, _) = own_commitment(ceremony, index, items)?;
            Some(c.points().iter().any(|p| !C::in_subgroup(p)))
        }
        (Role::Dealer, FaultKind::BadJustification { player }) => {
            let j = posts(items).find_map(|p| match p {
                ComplaintPost::Justification(j) if j.dealer == index => Some(j),
                _ => None,
            })?;
            match j.deals.iter().find(|(p, _)| p == player) {
                Some((p, ct)) => {
                    // A well-formed ciphertext is only wrong if nobody asked for it, which the
                    // reports would show.
                    let hash = pedersen_hash::<C>(ceremony.id(), index, &j.commitment);
                    (!super::board::resent_ciphertext_is_valid(ceremony, index, *p, &hash, ct))
                        .then_some(true)
                }
                None => Some(posts(items).any(|p| {
                    matches!(p, ComplaintPost::Report(r) if r.player == *player && r.misses(index))
                })),
            }
        }
        (Role::Dealer, FaultKind::BadDeal { player }) => Some(
            complaint_verdict(ceremony, *player, index, items) == Some(Verdict::Dealer),
        ),
        (Role::Dealer, FaultKind::BadFeldman { player }) => {
            let feldman = posts(items).find_map(|p| match p {
                ComplaintPost::Feldman(f) if f.dealer == index => Some(&f.commitment),
                _ => None,
            });
            let (Some(feldman), Some((s, b, _)), Some(pedersen)) = (
                feldman,
                disclosed(items, true, *player, index),
                pedersen_of(ceremony, index, items),
            ) else {
                return Some(false);
            };
            Some(
                pedersen.verify_pedersen_share(*player as usize, &s, &b)
                    && !feldman.verify_share(*player as usize, &s),
            )
        }
        (Role::Player, FaultKind::BadReport) => Some(posts(items).any(|p| {
            matches!(p, ComplaintPost::Report(r) if r.player == index && report_is_bad(ceremony, r))
        })),
        (Role::Player, FaultKind::FalseComplaint { dealer }) => {
            if let Some(v) = complaint_verdict(ceremony, index, *dealer, items) {
                return Some(v == Verdict::Complainer);
            }
            let Some((s, b, d)) = disclosed(items, true, index, *dealer) else {
                // A dispute about a pair the dealer's justification did not send this player:
                // shown by the justification if the evidence has it, else by the board.
                let disputed = posts(items).any(|p| {
                    matches!(p, ComplaintPost::Dispute(d)
                        if d.player == index && d.reveals.iter().any(|(x, _)| x == dealer))
                });
                let justification = posts(items).find_map(|p| match p {
                    ComplaintPost::Justification(j) if j.dealer == *dealer => Some(j),
                    _ => None,
                });
                return match (disputed, justification) {
                    (false, _) => Some(false),
                    (true, Some(j)) => Some(!j.deals.iter().any(|(p, _)| *p == index)),
                    (true, None) => None,
                };
            };
            let feldman = posts(items).find_map(|p| match p {
                ComplaintPost::Feldman(f) if f.dealer == *dealer => Some(&f.commitment),
                _ => None,
            });
            match (feldman, pedersen_of(ceremony, *dealer, items)) {
                (Some(feldman), Some(pedersen)) => Some(
                    !pedersen.verify_pedersen_share(index as usize, &s, &b)
                        || feldman.verify_share(index as usize, &s),
                ),
                // Without the dealer's commitment on the board the complaint proves nothing;
                // the complaint itself shows it did not carry one.
                _ => {
                    (!d.commitments.iter().any(|(x, _)| x == dealer)).then_some(true)
                }
            }
        }
        (Role::Player, FaultKind::BadReconstructionShare { dealer }) => {
            let (Some((s, b, _)), Some(pedersen)) = (
                disclosed(items, false, index, *dealer),
                pedersen_of(ceremony, *dealer, items),
            ) else {
                return Some(false);
            };
            Some(!pedersen.verify_pedersen_share(index as usize, &s, &b))
        }
        _ => Some(false),
    }
}
