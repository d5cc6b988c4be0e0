//! The invariants checked after every simulated ceremony (see the crate docs), and in the
//! complaint variant that the evidence of every exclusion that is provable from its evidence
//! alone proves it ([`verify_exclusion`]).

use std::sync::Arc;

use group::prime::PrimeCurveAffine;
use keyquorum_crypto::poly::lagrange_at_zero;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::board::Exclusion;
use keyquorum_dkg::complaint::verify_exclusion;
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_dkg::participant::{DkgOutput, Failure, FailureReason, Participant};
use keyquorum_dkg::{Ceremony, Variant};

use crate::adversary::AdversaryKind;
use crate::engine::Keys;

/// One participant's run.
pub struct MemberResult<C: Curve> {
    /// Member number in the run.
    pub member: usize,
    /// Identity key.
    pub identity: IdentityPublicKey,
    /// Adversary placed on it, if any.
    pub kind: Option<AdversaryKind>,
    /// What it reported.
    pub result: Option<Result<Box<DkgOutput<C>>, Failure>>,
}

/// What one ceremony produced.
pub struct CeremonyResult<C: Curve> {
    /// The ceremony.
    pub ceremony: Arc<Ceremony<C>>,
    /// Per participant.
    pub results: Vec<MemberResult<C>>,
    /// Direct messages that honest participants dropped because their claimed author was not
    /// their sender.
    pub wrong_sender: u64,
    /// Board posts the chain refused because their sender was not their author.
    pub foreign_posts: u64,
}

/// Summary of a checked ceremony.
pub struct Summary<C: Curve> {
    /// An honest participant's output (all agree).
    pub output: Option<Box<DkgOutput<C>>>,
    /// Qualified dealers (of the corrupt members' key, unchecked, when no honest member
    /// finished: see `beyond_fault_bound`).
    pub qualified: Vec<u32>,
    /// Exclusions as `role index (member m) fault`, the role's position and the member's
    /// number (they differ for a reshare's players), with the stable names:
    /// `dealer 3 (member 3) bad_reveal`.
    pub excluded: Vec<String>,
    /// Attempt that succeeded (or the last).
    pub attempts: u32,
    /// Set when the adversaries exceed what the parameters tolerate ([`FaultBound`]): the
    /// liveness checks did not apply, and this says why and what the honest members lost.
    pub beyond_fault_bound: Option<String>,
}

/// How many corrupt members one ceremony has against how many its parameters tolerate.
///
/// Players: the ceremony's `n - k` (see `keyquorum_dkg::Params`). Dealers: the same for a fresh
/// key; when resharing the dealers are the old committee, whose bound is its own `n - k`. Every
/// adversary kind counts as corrupt, crash faults included: a crashed member may miss the
/// deadlines that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultBound {
    /// Corrupt members among the players.
    pub corrupt_players: usize,
    /// The most corrupt players the parameters tolerate.
    pub player_bound: usize,
    /// Corrupt members among the dealers.
    pub corrupt_dealers: usize,
    /// The most corrupt dealers the dealers' committee tolerates.
    pub dealer_bound: usize,
}

impl FaultBound {
    /// Counts the corrupt members of `r`; `dealer_bound` is the dealers' committee's `n - k`.
    pub fn of<C: Curve>(r: &CeremonyResult<C>, dealer_bound: usize) -> Self {
        let ceremony = &r.ceremony;
        let corrupt = r.results.iter().filter(|m| m.kind.is_some());
        FaultBound {
            corrupt_players: corrupt
                .clone()
                .filter(|m| ceremony.player_position(&m.identity).is_some())
                .count(),
            player_bound: ceremony.params().fault_bound(),
            corrupt_dealers: corrupt
                .filter(|m| ceremony.dealer_position(&m.identity).is_some())
                .count(),
            dealer_bound,
        }
    }

    /// Whether the protocol's guarantees apply: both counts within their bounds.
    pub fn within(&self) -> bool {
        self.corrupt_players <= self.player_bound && self.corrupt_dealers <= self.dealer_bound
    }
}

impl std::fmt::Display for FaultBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} corrupt players (tolerated: {}), {} corrupt dealers (tolerated: {})",
            self.corrupt_players, self.player_bound, self.corrupt_dealers, self.dealer_bound
        )
    }
}

/// Curve-specific part of the checks: can `t` honest shares act together?
pub trait SimCurve: Curve {
    /// Any `t` of `shares` (player index, secret share) must produce something that verifies under
    /// `group_key`.
    fn threshold_check(
        t: usize,
        shares: &[(Self::Scalar, Secret<Self::Scalar>)],
        group_key: &Self::Affine,
    ) -> Result<(), String>;
}

impl SimCurve for Bls12381G1 {
    fn threshold_check(
        t: usize,
        shares: &[(blstrs::Scalar, Secret<blstrs::Scalar>)],
        group_key: &blstrs::G1Affine,
    ) -> Result<(), String> {
        let msg = b"keyquorum simulated beacon round";
        let partials: Vec<_> = shares
            .iter()
            .take(t)
            .map(|(x, s)| tbls::partial_sign::<MinPk>(s, *x, msg))
            .collect();
        let sig = tbls::combine::<MinPk>(t, &partials).map_err(|e| e.to_string())?;
        tbls::verify::<MinPk>(group_key, msg, &sig)
            .map_err(|e| format!("combined threshold signature does not verify: {e}"))
    }
}

impl SimCurve for Secp256k1 {
    fn threshold_check(
        t: usize,
        shares: &[(k256::Scalar, Secret<k256::Scalar>)],
        group_key: &k256::AffinePoint,
    ) -> Result<(), String> {
        // No threshold signature scheme on secp256k1 here: check that any t shares interpolate to
        // the discrete log of the group key.
        let xs: Vec<k256::Scalar> = shares.iter().take(t).map(|(x, _)| *x).collect();
        let l = lagrange_at_zero(&xs).map_err(|e| e.to_string())?;
        let mut secret = k256::Scalar::ZERO;
        for ((_, s), li) in shares.iter().take(t).zip(l) {
            secret += *s.expose() * li;
        }
        if Secp256k1::mul_generator(&secret) != group_key.to_curve() {
            return Err("t honest shares do not interpolate to the group secret".into());
        }
        Ok(())
    }
}

/// The complaint-variant participant (see `keyquorum_dkg::complaint`).
pub fn complaint_node<C: Curve>(
    ceremony: &Arc<Ceremony<C>>,
    keys: &Keys,
    old_share: Option<Secret<C::Scalar>>,
    seed: [u8; 32],
) -> Box<dyn Participant<C>> {
    Box::new(
        keyquorum_dkg::complaint::ComplaintParticipant::new(
            ceremony.clone(),
            keys.identity(),
            keys.verifiable(),
            old_share,
            seed,
        )
        .expect("member of the ceremony"),
    )
}

/// The exclusions of honest members among `exclusions`, as "member m as role for fault".
fn honest_exclusions<C: Curve>(
    honest: &[&MemberResult<C>],
    exclusions: &[Exclusion],
) -> Vec<String> {
    exclusions
        .iter()
        .filter_map(|e| {
            let m = honest.iter().find(|m| m.identity == e.identity)?;
            Some(format!(
                "member {} as {}: {}",
                m.member,
                e.role.as_str(),
                e.fault.code()
            ))
        })
        .collect()
}

/// The honest members that are dealers of `ceremony` but not among `qualified` (positions).
fn unqualified_honest_dealers<C: Curve>(
    ceremony: &Ceremony<C>,
    honest: &[&MemberResult<C>],
    qualified: &[u32],
) -> Vec<usize> {
    honest
        .iter()
        .filter(|m| {
            ceremony
                .dealer_position(&m.identity)
                .is_some_and(|d| !qualified.contains(&d))
        })
        .map(|m| m.member)
        .collect()
}

/// Checks one ceremony's results against the invariants.
///
/// Safety (agreement, shares matching the public key shares, threshold signing, evidence proving
/// each exclusion, replays) is checked in every run. Liveness, that every honest member finishes
/// and every honest dealer qualifies, is what the protocol promises only within its fault bound
/// ([`FaultBound::within`]); beyond it a run is not failed for losing honest dealers but marked
/// [`Summary::beyond_fault_bound`]. Crash-faulty members count as corrupt and need not qualify.
/// `dealer_bound` is the dealers' committee's `n - k`; `stage` names the ceremony in the
/// notes and errors when a run has two (`"fresh key"`, `"reshare"`), empty otherwise.
pub fn check<C: SimCurve>(
    r: &CeremonyResult<C>,
    dealer_bound: usize,
    stage: &str,
) -> Result<Summary<C>, String> {
    check_stage(r, dealer_bound, stage).map_err(|e| {
        if stage.is_empty() {
            e
        } else {
            format!("{stage}: {e}")
        }
    })
}

fn check_stage<C: SimCurve>(
    r: &CeremonyResult<C>,
    dealer_bound: usize,
    stage: &str,
) -> Result<Summary<C>, String> {
    let ceremony = &r.ceremony;
    let honest: Vec<&MemberResult<C>> = r.results.iter().filter(|m| m.kind.is_none()).collect();
    let bound = FaultBound::of(r, dealer_bound);
    let within = bound.within();
    // Honest members that lost something; a failure within the bound, noted beyond it.
    let mut losses: Vec<String> = Vec::new();

    let mut outputs: Vec<(usize, &DkgOutput<C>)> = Vec::new();
    let mut failed = Vec::new();
    let mut first_failure: Option<&Failure> = None;
    for m in &honest {
        match &m.result {
            Some(Ok(o)) => outputs.push((m.member, o)),
            Some(Err(f)) => {
                failed.push((m.member, Some(f.reason)));
                first_failure.get_or_insert(f);
            }
            None => failed.push((m.member, None)),
        }
    }
    if !failed.is_empty() {
        let mut loss = format!("honest members failed: {}", describe_failed(&failed));
        if let Some(f) = first_failure {
            loss.push_str(&format!(
                "; the first failure had {} qualified dealers, honest dealers not qualified {:?}, honest members excluded [{}]",
                f.qualified.len(),
                unqualified_honest_dealers(ceremony, &honest, &f.qualified),
                honest_exclusions(&honest, &f.exclusions).join(", ")
            ));
        }
        if within {
            return Err(format!("{loss}, within the fault bound ({bound})"));
        }
        losses.push(loss);
    }
    let beyond = |losses: &[String]| {
        (!within).then(|| {
            let place = if stage.is_empty() {
                String::new()
            } else {
                format!(" in the {stage}")
            };
            let mut note = format!("beyond the fault bound{place}: no guarantee ({bound})");
            if !losses.is_empty() {
                note.push_str("; ");
                note.push_str(&losses.join("; "));
            }
            note
        })
    };
    let Some((_, first)) = outputs.first() else {
        // No honest member finished: possible only beyond the bound (within it every honest
        // member must finish), for instance when every member is an adversary. Corrupt members
        // that run the protocol honestly (crash, spoof, garbage) may still have made a key; say
        // so rather than report none, without vouching for it.
        let made: Vec<&DkgOutput<C>> = r
            .results
            .iter()
            .filter_map(|m| match &m.result {
                Some(Ok(o)) => Some(&**o),
                _ => None,
            })
            .collect();
        // The outcome most of them hold (the first of those most held).
        let agreeing = |o: &DkgOutput<C>| made.iter().filter(|m| m.public == o.public).count();
        let shown = made.iter().copied().rev().max_by_key(|o| agreeing(o));
        if let Some(o) = shown {
            if within {
                // Within the bound every honest member must finish (checked above), so an
                // honest member exists and finished; this cannot be reached.
                return Err("no honest member finished, within the fault bound".into());
            }
            losses.push(format!(
                "no honest member finished; {} corrupt members finished, {} of them with the \
                 key of {} qualified dealers shown here, unchecked",
                made.len(),
                agreeing(o),
                o.public.qualified.len()
            ));
        }
        return Ok(Summary {
            output: None,
            qualified: shown
                .map(|o| o.public.qualified.clone())
                .unwrap_or_default(),
            excluded: shown.map(|o| excluded_names(r, o)).unwrap_or_default(),
            attempts: shown.map_or(0, |o| o.attempt + 1),
            beyond_fault_bound: beyond(&losses),
        });
    };
    if bool::from(first.public.group_key.is_identity()) {
        return Err("group key is the identity".into());
    }
    for (m, o) in &outputs {
        if o.public != first.public {
            return Err(format!("member {m} disagrees on the outcome"));
        }
    }
    // Restarted participants that finished must agree too: after replaying their inputs
    // (crash), or as a player rebuilt from the board (lost storage), whose share must also
    // be its public key share's.
    for m in &r.results {
        if !matches!(
            m.kind,
            Some(AdversaryKind::Crash | AdversaryKind::LostStorage)
        ) {
            continue;
        }
        let Some(Ok(o)) = &m.result else { continue };
        if o.public != first.public {
            return Err(format!(
                "restarted member {} disagrees on the outcome",
                m.member
            ));
        }
        if let (Some(idx), Some(s)) = (o.player_index, &o.secret_share)
            && C::mul_generator(s.expose()) != first.public.public_shares[idx as usize].to_curve()
        {
            return Err(format!(
                "restarted member {}'s share does not match its public key share",
                m.member
            ));
        }
    }
    // Public key shares match secret shares.
    let mut shares = Vec::new();
    for (m, o) in &outputs {
        if let (Some(idx), Some(s)) = (o.player_index, &o.secret_share) {
            let expect = first.public.public_shares[idx as usize];
            if C::mul_generator(s.expose()) != expect.to_curve() {
                return Err(format!(
                    "member {m}: public key share does not match its secret share"
                ));
            }
            shares.push((ceremony.player_indices()[idx as usize], s.clone()));
        }
    }
    let t = ceremony.t();
    let honest_players = honest
        .iter()
        .filter(|m| ceremony.player_position(&m.identity).is_some())
        .count();
    if shares.len() >= t {
        C::threshold_check(t, &shares, &first.public.group_key)?;
        let reversed: Vec<_> = shares.iter().rev().cloned().collect();
        C::threshold_check(t, &reversed, &first.public.group_key)?;
    } else if within && honest_players >= t {
        return Err(format!(
            "only {} honest shares for threshold {t}",
            shares.len()
        ));
    }
    // No honest participant was excluded, in any role, and every honest dealer qualified.
    let mut excluded_honest = Vec::new();
    let excluded = honest_exclusions(&honest, &first.exclusions);
    if !excluded.is_empty() {
        excluded_honest.push(format!(
            "honest members excluded: [{}]",
            excluded.join(", ")
        ));
    }
    let unqualified = unqualified_honest_dealers(ceremony, &honest, &first.public.qualified);
    if !unqualified.is_empty() {
        excluded_honest.push(format!(
            "honest dealers {unqualified:?} not qualified ({} of {} dealers qualified)",
            first.public.qualified.len(),
            ceremony.dealers().len()
        ));
    }
    if within && !excluded_honest.is_empty() {
        return Err(format!(
            "{}, within the fault bound ({bound})",
            excluded_honest.join("; ")
        ));
    }
    losses.extend(excluded_honest);
    // Complaint variant: every exclusion whose evidence is self-contained is proven by it.
    if ceremony.config().variant == Variant::Complaint {
        for e in &first.exclusions {
            if verify_exclusion(ceremony, e) == Some(false) {
                return Err(format!(
                    "the evidence against {:?} {} does not prove {:?}",
                    e.role, e.index, e.fault
                ));
            }
        }
    }
    Ok(Summary {
        output: Some(Box::new((*first).clone())),
        qualified: first.public.qualified.clone(),
        // The member too: a reshare's players are numbered by their seats in the new
        // committee, adversaries by member.
        excluded: excluded_names(r, first),
        attempts: first.attempt + 1,
        beyond_fault_bound: beyond(&losses),
    })
}

/// `output`'s exclusions as `role index (member m) fault`, the role's position and the
/// member's number (they differ for a reshare's players, adversaries are named by member), with
/// the stable names: `dealer 3 (member 3) bad_reveal`.
fn excluded_names<C: Curve>(r: &CeremonyResult<C>, output: &DkgOutput<C>) -> Vec<String> {
    output
        .exclusions
        .iter()
        .map(|e| {
            let member = r
                .results
                .iter()
                .find(|m| m.identity == e.identity)
                .expect("an excluded identity is a member of the run")
                .member;
            format!(
                "{} {} (member {member}) {}",
                e.role.as_str(),
                e.index,
                e.fault.code()
            )
        })
        .collect()
}

/// Why an honest member ended without a key, in words.
fn failure_words(reason: Option<FailureReason>) -> String {
    match reason {
        Some(FailureReason::Board) => {
            "the board failed: too few qualified dealers or players, after the retries".into()
        }
        Some(FailureReason::MissingShare { dealer }) => {
            format!("no share from qualified dealer {dealer}, neither dealt nor revealed")
        }
        Some(FailureReason::ShareMismatch) => {
            "its share does not match its public key share".into()
        }
        None => "did not finish".into(),
    }
}

/// The honest members that ended without a key (member, why; `None`: did not finish), grouped
/// by why in the order first seen: `0, 2 (the board failed: ...), 5 (did not finish)`.
fn describe_failed(failed: &[(usize, Option<FailureReason>)]) -> String {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (member, reason) in failed {
        let words = failure_words(*reason);
        match groups.iter_mut().find(|(w, _)| *w == words) {
            Some((_, members)) => members.push(*member),
            None => groups.push((words, vec![*member])),
        }
    }
    groups
        .iter()
        .map(|(words, members)| {
            let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            format!("{} ({words})", members.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's failure names each member once, grouped by a reason in words (not a bare tag
    /// such as `board`).
    #[test]
    fn failed_members_are_grouped_by_a_reason_in_words() {
        let failed = [
            (0, Some(FailureReason::Board)),
            (5, None),
            (2, Some(FailureReason::Board)),
            (3, Some(FailureReason::MissingShare { dealer: 4 })),
        ];
        assert_eq!(
            describe_failed(&failed),
            "0, 2 (the board failed: too few qualified dealers or players, after the retries), \
             5 (did not finish), 3 (no share from qualified dealer 4, neither dealt nor revealed)"
        );
        assert_eq!(
            describe_failed(&[(1, Some(FailureReason::ShareMismatch))]),
            "1 (its share does not match its public key share)"
        );
    }
}
