//! What the demo observed, built from the chain's events alone, and its renderings: the text
//! summary, the `--format json` object and the self-contained `ceremony-report.html`.
//!
//! The observer replays each ceremony's board from the events exactly as a node does
//! (`keyquorum_dkg::board::Board`, or `keyquorum_dkg::complaint::ComplaintBoard` for a ceremony
//! whose spec names the complaint variant), which gives the qualified set and, from an
//! ack-or-reveal dealer's publications, the dealer-by-player matrix (acked, revealed, missing;
//! the complaint variant's acknowledgements stay off chain, so its matrix is empty), without
//! asking any node: anyone with the chain can compute the same. A view's secp256k1 signing key
//! (`--curve secp256k1`) is reported from the record the chain announces with it
//! (`SigningKeyCreated`), which the contract computed from that ceremony's board.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use keyquorum_contract::signing_key::{SigningKeyExclusion, SigningKeyRecord};
use keyquorum_contract::state::{FaultCeremony, FaultRole, SlashingRecord};
use keyquorum_contract::{Event, Group};
use keyquorum_dkg::board::{Board, Outcome};
use keyquorum_dkg::complaint::ComplaintBoard;
use keyquorum_dkg::complaint::messages::SignedComplaintPost;
use keyquorum_dkg::messages::SignedPost;
use keyquorum_dkg::{Ceremony, Variant};
use serde_json::{Value, json};

use crate::demo_signing_key::{self, Bip340};

/// One phase as seen on chain.
#[derive(Debug, Clone)]
pub struct PhaseSpan {
    pub phase: String,
    pub attempt: u32,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    pub start_height: u64,
}

/// Cell of the dealer-by-player matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Acked,
    Revealed,
    Missing,
}

/// One ceremony of a view change.
pub struct CeremonyObs {
    pub ceremony_number: u32,
    pub key_mode: String,
    pub committee: Vec<String>,
    pub dealers: Vec<String>,
    pub ceremony: Option<Arc<Ceremony<Group>>>,
    pub board: Option<ReplayedBoard>,
    pub phases: Vec<PhaseSpan>,
    pub failed: Option<String>,
    pub qualified: Vec<String>,
    pub matrix: Vec<Vec<Cell>>,
}

/// A ceremony's board, of its spec's variant, replayed from the chain's events.
pub enum ReplayedBoard {
    AckReveal(Box<Board<Group>>),
    Complaint(Box<ComplaintBoard<Group>>),
}

impl ReplayedBoard {
    fn new(ceremony: Arc<Ceremony<Group>>) -> Self {
        match ceremony.config().variant {
            Variant::AckReveal => ReplayedBoard::AckReveal(Box::new(Board::new(ceremony))),
            Variant::Complaint => ReplayedBoard::Complaint(Box::new(ComplaintBoard::new(ceremony))),
        }
    }

    fn apply(&mut self, post: &[u8], c: &Ceremony<Group>) {
        // Refusals are the contract's too (same board); the replay just follows.
        match self {
            ReplayedBoard::AckReveal(b) => {
                if let Ok(signed) = SignedPost::<Group>::decode(post, c.n()) {
                    let _ = b.apply(&signed);
                }
            }
            ReplayedBoard::Complaint(b) => {
                if let Ok(signed) =
                    SignedComplaintPost::<Group>::decode(post, c.n(), c.dealer_count())
                {
                    let _ = b.apply(&signed);
                }
            }
        }
    }

    fn advance(&mut self) {
        match self {
            ReplayedBoard::AckReveal(b) => b.advance(),
            ReplayedBoard::Complaint(b) => b.advance(),
        }
    }

    fn outcome(&self) -> Option<&Outcome<Group>> {
        match self {
            ReplayedBoard::AckReveal(b) => b.outcome(),
            ReplayedBoard::Complaint(b) => b.outcome(),
        }
    }
}

/// An exclusion or fault recorded on chain.
#[derive(Debug, Clone)]
pub struct Excluded {
    pub identity: String,
    pub ceremony_number: u32,
    pub role: String,
    pub reason: String,
    /// Slashed (a penalty), or only named on chain.
    pub penalty: bool,
    /// What the embedded chain's slash took, where it says (an EVM chain's slashes are
    /// [`ViewObs::proven_slashes`]).
    pub slashed: Option<Slash>,
}

/// The stake a slash took and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slash {
    pub amount: u64,
    pub stake_after: u64,
    pub reporter_reward: u64,
    pub burned: u64,
}

impl Excluded {
    /// An exclusion the chain recorded: `fault` is its code and details; the reason says
    /// whether it carried a penalty.
    fn new(
        identity: &keyquorum_contract::state::IdentityKey,
        ceremony_number: u32,
        role: keyquorum_contract::state::FaultRole,
        (code, detail): (&str, &str),
        penalty: bool,
    ) -> Self {
        let mut reason = if detail.is_empty() {
            code.to_string()
        } else {
            format!("{code} ({detail})")
        };
        if !penalty {
            reason.push_str(", no penalty");
        }
        Excluded {
            identity: hex::encode(identity.0),
            ceremony_number,
            role: role.as_str().to_string(),
            reason,
            penalty,
            slashed: None,
        }
    }
}

/// One view change.
#[derive(Default)]
pub struct ViewObs {
    pub view: u64,
    pub ceremonies: Vec<CeremonyObs>,
    pub excluded: Vec<Excluded>,
    pub magic_block_hash: Option<String>,
    pub group_key: Option<String>,
    pub signature: Option<String>,
    pub previous_signature: Option<String>,
    pub activated: bool,
    pub aborted: Option<String>,
    pub signature_verified: Option<bool>,
    pub members: Vec<String>,
    /// Block time of the first committee selection and of the activation (Unix ms).
    pub started_ms: Option<u64>,
    pub activated_ms: Option<u64>,
    /// The view's secp256k1 signing key, once its ceremony started.
    pub signing_key: Option<SigningKeyObs>,
    /// The transaction that activated the view, where the chain is an EVM one.
    pub activation_tx: Option<ChainTx>,
    /// The slashes on a fraud proof in this view's ceremonies, where the chain is an EVM one
    /// (the embedded chain's slashes are exclusions, `excluded`).
    pub proven_slashes: Vec<ProvenSlash>,
}

/// A transaction on an EVM chain.
#[derive(Debug, Clone)]
pub struct ChainTx {
    pub block: u64,
    /// `0x`-prefixed.
    pub tx_hash: String,
    pub gas_used: u64,
}

/// A slash of the coordinator contract on a fraud proof (its `Slashed` log), with the
/// culprit's stake after it as the contract holds it. Amounts in wei.
#[derive(Debug, Clone)]
pub struct ProvenSlash {
    pub ceremony_number: u32,
    /// Node name and account of the culprit and of the reporter (the proof's sender).
    pub culprit: String,
    pub culprit_account: String,
    pub reporter: String,
    pub reporter_account: String,
    /// The fault as the contract names it (`bad_ack_signature`, `bad_reveal`).
    pub fault: String,
    pub amount: u64,
    pub reward: u64,
    pub burned: u64,
    /// `stakeOf(culprit)` at the slash's block.
    pub stake_after: u64,
    pub tx: ChainTx,
}

impl ProvenSlash {
    fn json(&self) -> Value {
        json!({
            "ceremony_number": self.ceremony_number,
            "culprit": self.culprit,
            "culprit_account": self.culprit_account,
            "fault": self.fault,
            "amount": self.amount,
            "reporter": self.reporter,
            "reporter_account": self.reporter_account,
            "reward": self.reward,
            "burned": self.burned,
            "stake_after": self.stake_after,
            "block": self.tx.block,
            "tx_hash": self.tx.tx_hash,
            "gas_used": self.tx.gas_used,
        })
    }
}

/// A view's signing-key ceremony as the chain announced it, and the committee's BIP-340
/// signature with the key.
#[derive(Default)]
pub struct SigningKeyObs {
    /// The record (`SigningKeyCreated`).
    pub record: Option<SigningKeyRecord>,
    /// Why there is no key (`SigningKeyFailed`).
    pub failed: Option<String>,
    /// The committee's signature, verified.
    pub bip340: Option<Bip340>,
    /// The ceremony's culprits the chain slashed (`Slashed`, signing-key records).
    pub slashed: Vec<SlashingRecord>,
    /// The view whose key the ceremony reshared (`SigningKeyStarted`); `None` for a new key.
    pub reshared_from: Option<u64>,
}

impl SigningKeyObs {
    /// The slash of an exclusion's member in its role, if the chain took one.
    fn slash_of(&self, e: &SigningKeyExclusion) -> Option<&SlashingRecord> {
        self.slashed
            .iter()
            .find(|r| r.identity == e.identity && r.role == e.role)
    }
}

impl ViewObs {
    /// Seconds from the first committee selection to the activation.
    pub fn duration_s(&self) -> Option<f64> {
        Some((self.activated_ms? as f64 - self.started_ms? as f64) / 1000.0)
    }
}

/// Everything observed, keyed by view.
#[derive(Default)]
pub struct Observer {
    pub views: BTreeMap<u64, ViewObs>,
    pub names: BTreeMap<String, String>,
    pub registered: Vec<String>,
    pub height: u64,
    pub current_view: u64,
}

impl Observer {
    /// The first view change the chain aborted, as the demo's failure message.
    pub fn aborted(&self) -> Option<String> {
        self.views.iter().find_map(|(v, o)| {
            o.aborted
                .as_ref()
                .map(|r| format!("view change {v} aborted: {r}"))
        })
    }

    pub fn name(&self, identity: &str) -> String {
        self.names
            .get(identity)
            .cloned()
            .unwrap_or_else(|| format!("{}..", &identity[..identity.len().min(12)]))
    }

    fn view(&mut self, v: u64) -> &mut ViewObs {
        self.views.entry(v).or_insert_with(|| ViewObs {
            view: v,
            ..Default::default()
        })
    }

    fn ceremony(&mut self, v: u64, s: u32) -> Option<&mut CeremonyObs> {
        self.views
            .get_mut(&v)?
            .ceremonies
            .iter_mut()
            .find(|x| x.ceremony_number == s)
    }

    /// Consumes one event of the block at `height` produced at `time_ms`.
    pub fn on_event(&mut self, e: &Event, height: u64, time_ms: u64) {
        self.height = height;
        if let Some((view, ceremony_number, post)) = e.board_post() {
            if let Some(s) = self.ceremony(view, ceremony_number)
                && let (Some(b), Some(c)) = (s.board.as_mut(), s.ceremony.as_ref())
            {
                b.apply(post, c);
            }
            return;
        }
        match e {
            Event::Registered { identity, .. } => {
                self.registered.push(hex::encode(identity.0));
            }
            Event::CommitteeSelected {
                view,
                ceremony_number,
                key_mode,
                committee,
                dealers,
                spec,
                ..
            } => {
                let ceremony = spec.ceremony().ok();
                let board = ceremony.clone().map(ReplayedBoard::new);
                let committee: Vec<String> = committee
                    .iter()
                    .map(|c| hex::encode(c.identity.0))
                    .collect();
                let v = self.view(*view);
                v.started_ms.get_or_insert(time_ms);
                let dealers = if dealers.is_empty() {
                    committee.clone()
                } else {
                    dealers.iter().map(|d| hex::encode(d.0)).collect()
                };
                self.view(*view).ceremonies.push(CeremonyObs {
                    ceremony_number: *ceremony_number,
                    key_mode: key_mode.as_str().to_string(),
                    committee,
                    dealers,
                    ceremony,
                    board,
                    phases: Vec::new(),
                    failed: None,
                    qualified: Vec::new(),
                    matrix: Vec::new(),
                });
            }
            Event::PhaseChanged {
                view,
                ceremony_number,
                attempt,
                phase,
                ..
            } => {
                let name = phase.as_str().to_string();
                if let Some(s) = self.ceremony(*view, *ceremony_number) {
                    if let Some(last) = s.phases.last_mut()
                        && last.end_ms.is_none()
                    {
                        last.end_ms = Some(time_ms);
                    }
                    if name != "idle" {
                        s.phases.push(PhaseSpan {
                            phase: name,
                            attempt: *attempt,
                            start_ms: time_ms,
                            end_ms: None,
                            start_height: height,
                        });
                    }
                }
            }
            Event::BoardDeadline {
                view,
                ceremony_number,
                ..
            } => {
                if let Some(s) = self.ceremony(*view, *ceremony_number) {
                    if let Some(b) = s.board.as_mut() {
                        b.advance();
                    }
                    s.settle();
                }
            }
            Event::CeremonyFailed {
                view,
                ceremony_number,
                reason,
                ..
            } => {
                if let Some(s) = self.ceremony(*view, *ceremony_number) {
                    s.failed = Some(reason.clone());
                    s.close(time_ms);
                }
            }
            Event::ViewChangeAborted { view, reason, .. } => {
                self.view(*view).aborted = Some(reason.clone());
            }
            Event::MagicBlockCreated {
                view,
                hash,
                magic_block,
                ..
            } => {
                let v = self.view(*view);
                v.magic_block_hash = Some(hex::encode(hash.0));
                v.group_key = Some(hex::encode(magic_block.group_key.0));
                v.members = magic_block
                    .members
                    .iter()
                    .map(|m| hex::encode(m.identity.0))
                    .collect();
            }
            Event::MagicBlockSigned {
                view,
                role,
                signature,
                ..
            } => {
                let v = self.view(*view);
                match role {
                    keyquorum_contract::SignerRole::New => {
                        v.signature = Some(hex::encode(signature.0))
                    }
                    keyquorum_contract::SignerRole::Old => {
                        v.previous_signature = Some(hex::encode(signature.0))
                    }
                }
            }
            Event::ViewActivated { view, .. } => {
                self.current_view = *view;
                let v = self.view(*view);
                v.activated = true;
                v.activated_ms = Some(time_ms);
                if let Some(s) = v.ceremonies.last_mut() {
                    s.close(time_ms);
                }
            }
            Event::SigningKeyStarted { view, reshare, .. } => {
                self.view(*view).signing_key = Some(SigningKeyObs {
                    reshared_from: reshare.as_ref().map(|r| r.from_view),
                    ..SigningKeyObs::default()
                });
            }
            Event::SigningKeyCreated { view, key } => {
                self.view(*view)
                    .signing_key
                    .get_or_insert_with(Default::default)
                    .record = Some(key.clone());
            }
            Event::SigningKeyFailed { view, reason } => {
                self.view(*view)
                    .signing_key
                    .get_or_insert_with(Default::default)
                    .failed = Some(reason.clone());
            }
            Event::Slashed { record } if record.ceremony == FaultCeremony::SigningKey => {
                self.view(record.view)
                    .signing_key
                    .get_or_insert_with(Default::default)
                    .slashed
                    .push(record.clone());
            }
            Event::Slashed { record } => {
                let mut e = Excluded::new(
                    &record.identity,
                    record.ceremony_number,
                    record.role,
                    (&record.fault, &record.detail),
                    true,
                );
                e.slashed = Some(Slash {
                    amount: record.amount,
                    stake_after: record.stake_after,
                    reporter_reward: record.reporter_reward,
                    burned: record.burned,
                });
                self.view(record.view).excluded.push(e);
            }
            // Exclusions without a penalty (a dealer whose publication others' withheld acks
            // left incomplete, a player reported for not acking): named on chain too.
            Event::Named { record } => {
                let e = Excluded::new(
                    &record.identity,
                    record.ceremony_number,
                    record.role,
                    (&record.fault, &record.detail),
                    false,
                );
                self.view(record.view).excluded.push(e);
            }
            _ => {}
        }
    }
}

impl CeremonyObs {
    fn close(&mut self, time_ms: u64) {
        if let Some(last) = self.phases.last_mut()
            && last.end_ms.is_none()
        {
            last.end_ms = Some(time_ms);
        }
    }

    /// After each board deadline: the qualified set and the matrix of the current attempt.
    fn settle(&mut self) {
        let (Some(b), Some(c)) = (self.board.as_ref(), self.ceremony.as_ref()) else {
            return;
        };
        let qualified = match b.outcome() {
            Some(Outcome::Success { output, .. }) => output.qualified.clone(),
            Some(Outcome::Failure { qualified, .. }) => qualified.clone(),
            None => return,
        };
        self.qualified = qualified
            .iter()
            .filter_map(|d| c.dealers().get(*d as usize))
            .map(|p| hex::encode(p.identity.as_bytes()))
            .collect();
        let n = c.n();
        let ReplayedBoard::AckReveal(b) = b else {
            // Complaint variant: who acknowledged whom stays off chain.
            self.matrix = Vec::new();
            return;
        };
        self.matrix = (0..c.dealer_count())
            .map(|d| {
                let mut row = vec![Cell::Missing; n];
                if let Some(p) = b.publication(d as u32) {
                    for a in &p.acks {
                        if let Some(x) = row.get_mut(*a as usize) {
                            *x = Cell::Acked;
                        }
                    }
                    for (j, _) in &p.reveals {
                        if let Some(x) = row.get_mut(*j as usize) {
                            *x = Cell::Revealed;
                        }
                    }
                }
                row
            })
            .collect();
    }
}

fn short(h: &str) -> String {
    format!(
        "{}…{}",
        &h[..8.min(h.len())],
        &h[h.len().saturating_sub(6)..]
    )
}

/// The human summary of one view.
pub fn text(obs: &Observer, v: &ViewObs) -> String {
    let mut out = String::new();
    let names = |ids: &[String]| {
        ids.iter()
            .map(|i| obs.name(i))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for s in &v.ceremonies {
        let _ = writeln!(
            out,
            "view {} · {} key · ceremony {}{}",
            v.view,
            s.key_mode,
            s.ceremony_number,
            match &s.failed {
                Some(r) => format!(" · FAILED: {r}"),
                None => String::new(),
            }
        );
        let _ = writeln!(
            out,
            "  committee   {} ({} of {} registered)",
            names(&s.committee),
            s.committee.len(),
            obs.registered.len()
        );
        if s.key_mode == "reshare" {
            let _ = writeln!(out, "  dealers     {}", names(&s.dealers));
        }
        // A ceremony that ends well always has a qualified set, so one with neither a
        // qualified set nor a failure was still running when the observation stopped.
        if s.failed.is_none() && s.qualified.is_empty() {
            let _ = writeln!(
                out,
                "  qualified   not yet: the ceremony was still running (phase {})",
                s.phases.last().map_or("-", |p| p.phase.as_str())
            );
        } else {
            let _ = writeln!(
                out,
                "  qualified   {} ({} dealers)",
                names(&s.qualified),
                s.qualified.len()
            );
        }
        // Dealers that dealt nothing that counted: the faulty ones (also under "excluded") and
        // those that could not complete their part without being at fault, such as an
        // ack-or-reveal dealer short of acks, which publishes nothing and is not penalised.
        let unqualified: Vec<String> = s
            .dealers
            .iter()
            .filter(|d| !s.qualified.contains(d))
            .cloned()
            .collect();
        if s.failed.is_none() && !s.qualified.is_empty() && !unqualified.is_empty() {
            let _ = writeln!(
                out,
                "  unqualified {} (their contributions did not count; a dealer proven faulty is also listed as excluded)",
                names(&unqualified)
            );
        }
        let ex: Vec<&Excluded> = v
            .excluded
            .iter()
            .filter(|e| e.ceremony_number == s.ceremony_number)
            .collect();
        if !ex.iter().any(|e| e.penalty) {
            let _ = writeln!(out, "  excluded    none");
        }
        for e in ex {
            let _ = writeln!(
                out,
                "  {} {} as {}: {}{}",
                // Named without a penalty (a withheld ack, an incomplete publication) keeps
                // its seat: not an exclusion.
                if e.penalty {
                    "excluded   "
                } else {
                    "named      "
                },
                obs.name(&e.identity),
                e.role,
                e.reason,
                e.slashed.map_or(String::new(), |s| format!(
                    "; slashed {} of its stake, {} left ({} to the reporter, {} burned)",
                    s.amount, s.stake_after, s.reporter_reward, s.burned
                ))
            );
        }
    }
    if let Some(r) = &v.aborted {
        let _ = writeln!(out, "  view change aborted: {r}");
    }
    if v.activated {
        let _ = writeln!(out, "  members     {}", names(&v.members));
        let _ = writeln!(
            out,
            "  group key   {}",
            v.group_key.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "  magic block {}",
            v.magic_block_hash.as_deref().unwrap_or("-")
        );
        if let Some(d) = v.duration_s() {
            let _ = writeln!(
                out,
                "  took        {d:.1} s from committee selection to activation"
            );
        }
        let _ = writeln!(
            out,
            "  signature   {} ({})",
            v.signature
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "-".into()),
            match v.signature_verified {
                Some(true) => "threshold BLS, verified with blst",
                Some(false) => "DOES NOT VERIFY",
                None => "not checked",
            }
        );
        if let Some(p) = &v.previous_signature {
            let _ = writeln!(
                out,
                "  handover    {} (view {}'s committee under its group key)",
                short(p),
                v.view.saturating_sub(1)
            );
        }
        if let Some(tx) = &v.activation_tx {
            let _ = writeln!(
                out,
                "  activated   block {}, tx {} ({} gas)",
                tx.block, tx.tx_hash, tx.gas_used
            );
        }
    }
    for p in &v.proven_slashes {
        let _ = writeln!(
            out,
            "  slashed     {} {} wei for {} in ceremony {} (block {}, tx {}, {} gas): {} wei to the reporter {}, {} burned; {} wei of stake left",
            p.culprit,
            p.amount,
            p.fault,
            p.ceremony_number,
            p.tx.block,
            p.tx.tx_hash,
            p.tx.gas_used,
            p.reward,
            p.reporter,
            p.burned,
            p.stake_after
        );
    }
    if let Some(k) = &v.signing_key {
        signing_key_text(obs, v, k, &mut out);
    }
    out
}

/// Names of a signing key's qualified dealers (a reshare's are the previous key's holders).
fn dealer_names(obs: &Observer, key: &SigningKeyRecord) -> Vec<String> {
    let dealers: Vec<_> = if key.dealers.is_empty() {
        key.members.iter().map(|m| m.identity).collect()
    } else {
        key.dealers.clone()
    };
    key.qualified
        .iter()
        .filter_map(|p| dealers.get(*p as usize))
        .map(|id| obs.name(&hex::encode(id.0)))
        .collect()
}

/// The view's members (hex identities) left out of its signing key's ceremony: by the
/// contract's rule those slashed in the previous view's signing-key ceremony sit this one out
/// (`keyquorum_contract::signing_key::sitting_out`); they deal nothing and hold no share of
/// this key.
fn sat_out(view_members: &[String], key: &SigningKeyRecord) -> Vec<String> {
    let in_key: std::collections::HashSet<String> = key
        .members
        .iter()
        .map(|m| hex::encode(m.identity.0))
        .collect();
    view_members
        .iter()
        .filter(|m| !in_key.contains(*m))
        .cloned()
        .collect()
}

/// Whether an exclusion is of a qualified dealer, whose contribution the board reconstructed
/// (it failed the Feldman phase; a reshare drops such a dealer instead).
fn reconstructed(key: &SigningKeyRecord, role: FaultRole, position: u32) -> bool {
    key.dealers.is_empty() && role == FaultRole::Dealer && key.qualified.contains(&position)
}

fn role_name(role: FaultRole) -> String {
    role.as_str().to_string()
}

fn signing_key_text(obs: &Observer, v: &ViewObs, k: &SigningKeyObs, out: &mut String) {
    if let Some(r) = &k.failed {
        let _ = writeln!(out, "  signing key FAILED: {r}");
    }
    let Some(key) = &k.record else {
        if k.failed.is_none() {
            let _ = writeln!(out, "  signing key not made yet");
        }
        return;
    };
    let _ = writeln!(
        out,
        "  signing key secp256k1 {} (x-only {}), threshold {} of its {} members",
        hex::encode(key.group_key.0),
        demo_signing_key::x_only(&key.group_key.0)
            .map(hex::encode)
            .unwrap_or_else(|| "-".into()),
        key.threshold,
        key.members.len()
    );
    if let Some(from) = k.reshared_from {
        let _ = writeln!(
            out,
            "    reshared  from view {from}'s key by its holders: the same group key"
        );
    }
    let _ = writeln!(
        out,
        "    qualified {} ({} dealers)",
        dealer_names(obs, key).join(" "),
        key.qualified.len()
    );
    let sat_out = sat_out(&v.members, key);
    if !sat_out.is_empty() {
        let _ = writeln!(
            out,
            "    sat out   {} (slashed in view {}'s signing-key ceremony: no part in this one, no share of this key)",
            sat_out
                .iter()
                .map(|m| obs.name(m))
                .collect::<Vec<_>>()
                .join(" "),
            v.view.saturating_sub(1)
        );
    }
    if key.excluded.is_empty() {
        let _ = writeln!(out, "    excluded  none");
    }
    for e in &key.excluded {
        let _ = writeln!(
            out,
            "    excluded  {} as {}: {} ({}){}",
            obs.name(&hex::encode(e.identity.0)),
            role_name(e.role),
            e.fault,
            e.detail,
            if reconstructed(key, e.role, e.position) {
                "; its contribution was reconstructed into the key"
            } else {
                ""
            }
        );
        if let Some(r) = k.slash_of(e) {
            let _ = writeln!(
                out,
                "    slashed   {} {} of its stake for {} ({} rate), {} left",
                obs.name(&hex::encode(e.identity.0)),
                r.amount,
                r.fault,
                if r.misbehaviour {
                    "misbehaviour"
                } else {
                    "absence"
                },
                r.stake_after
            );
        }
    }
    match &k.bip340 {
        Some(b) => {
            let _ = writeln!(
                out,
                "    bip340    signature {} on {:?} (POST /sign to the node on :{}, verified with k256 under the x-only key)",
                hex::encode(&b.signature),
                String::from_utf8_lossy(&b.message),
                b.port
            );
        }
        None => {
            let _ = writeln!(out, "    bip340    none");
        }
    }
}

/// The `signing_key` entry of a view in `--format json`.
fn signing_key_json(obs: &Observer, v: &ViewObs, k: &SigningKeyObs) -> Value {
    let Some(key) = &k.record else {
        return json!({ "failed": k.failed });
    };
    json!({
        "group_key": hex::encode(key.group_key.0),
        "x_only": demo_signing_key::x_only(&key.group_key.0).map(hex::encode),
        "threshold": key.threshold,
        "qualified": dealer_names(obs, key),
        "reshared_from": k.reshared_from,
        "sat_out": sat_out(&v.members, key).iter().map(|m| obs.name(m)).collect::<Vec<_>>(),
        "excluded": key.excluded.iter().map(|e| json!({
            "node": obs.name(&hex::encode(e.identity.0)),
            "identity": hex::encode(e.identity.0),
            "role": role_name(e.role),
            "fault": e.fault,
            "reason": e.detail,
            "reconstructed": reconstructed(key, e.role, e.position),
            "slashed": k.slash_of(e).map(|r| json!({
                "amount": r.amount,
                "fault": r.fault,
                "penalty": if r.misbehaviour { "misbehaviour" } else { "absence" },
                "stake_after": r.stake_after,
            })),
        })).collect::<Vec<_>>(),
        "bip340": k.bip340.as_ref().map(Bip340::json),
        "failed": k.failed,
    })
}

/// The `--format json` entry of one view.
pub fn json(obs: &Observer, v: &ViewObs, message: Option<&[u8]>) -> Value {
    let s = v
        .ceremonies
        .iter()
        .rev()
        .find(|s| s.failed.is_none())
        .or(v.ceremonies.last());
    let names = |ids: &[String]| ids.iter().map(|i| obs.name(i)).collect::<Vec<_>>();
    json!({
        "view": v.view,
        "key_mode": s.map(|s| s.key_mode.clone()),
        "ceremony_number": s.map(|s| s.ceremony_number),
        "failed_ceremonies": v.ceremonies.iter().filter(|s| s.failed.is_some()).map(|s| json!({"ceremony_number": s.ceremony_number, "reason": s.failed})).collect::<Vec<_>>(),
        "committee": s.map(|s| names(&s.committee)).unwrap_or_default(),
        "qualified": s.map(|s| names(&s.qualified)).unwrap_or_default(),
        "excluded": v.excluded.iter().map(|e| json!({
            "node": obs.name(&e.identity),
            "identity": e.identity,
            "ceremony_number": e.ceremony_number,
            "role": e.role,
            "reason": e.reason,
            "penalty": e.penalty,
            "slashed": e.slashed.map(|s| json!({
                "amount": s.amount,
                "stake_after": s.stake_after,
                "reporter_reward": s.reporter_reward,
                "burned": s.burned,
            })),
        })).collect::<Vec<_>>(),
        "members": names(&v.members),
        "group_public_key": v.group_key,
        "magic_block_hash": v.magic_block_hash,
        "signature": {
            "message": message.map(hex::encode),
            "signature": v.signature,
            "verified": v.signature_verified,
        },
        "previous_signature": v.previous_signature,
        "activated": v.activated,
        "duration_s": v.duration_s(),
        "signing_key": v.signing_key.as_ref().map(|k| signing_key_json(obs, v, k)),
        "activation": v.activation_tx.as_ref().map(|tx| json!({
            "block": tx.block,
            "tx_hash": tx.tx_hash,
            "gas_used": tx.gas_used,
        })),
        "slashes": v.proven_slashes.iter().map(ProvenSlash::json).collect::<Vec<_>>(),
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The self-contained HTML report (inline CSS, no scripts, no network); `sections` (HTML) go
/// after the views, before the node list.
pub fn html(obs: &Observer, title: &str, sections: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{t}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}
h1{{font-size:1.4em}} h2{{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}}
code{{font-size:12px;word-break:break-all}}
.tl{{position:relative;height:26px;background:#f4f4f4;margin:4px 0 2px 0;border-radius:3px}}
.seg{{position:absolute;top:0;height:26px;color:#fff;font-size:11px;overflow:hidden;white-space:nowrap;padding-left:3px;box-sizing:border-box;border-right:1px solid #fff}}
.contribute{{background:#4e79a7}} .share{{background:#f28e2b}} .publish{{background:#59a14f}} .wait{{background:#b07aa1}}
table.m{{border-collapse:collapse;margin:8px 0}} table.m td,table.m th{{border:1px solid #ddd;width:22px;height:22px;text-align:center;font-size:11px;padding:0}}
td.acked{{background:#59a14f;color:#fff}} td.revealed{{background:#edc948}} td.missing{{background:#e15759;color:#fff}}
.legend span{{display:inline-block;padding:1px 6px;margin-right:6px}}
.bad{{color:#b00}} .ok{{color:#080}}
</style></head><body><h1>{t}</h1>
<p>Built from the chain's events: each ceremony's board was replayed to compute the qualified set and the dealer-by-player matrix.</p>
"#,
        t = esc(title)
    );
    let mut names: Vec<(String, String)> = obs
        .names
        .iter()
        .map(|(id, n)| (n.clone(), id.clone()))
        .collect();
    names.sort();
    for v in obs.views.values() {
        let _ = write!(h, "<h2>View {}</h2>", v.view);
        if let Some(r) = &v.aborted {
            let _ = write!(h, "<p class=bad>View change aborted: {}</p>", esc(r));
        }
        // One timeline per view: all ceremonies on one time axis.
        let t0 = v
            .ceremonies
            .iter()
            .flat_map(|s| s.phases.first())
            .map(|p| p.start_ms)
            .min()
            .unwrap_or(0);
        let t1 = v
            .ceremonies
            .iter()
            .flat_map(|s| s.phases.iter())
            .map(|p| p.end_ms.unwrap_or(p.start_ms))
            .max()
            .unwrap_or(t0)
            .max(t0 + 1);
        let span = (t1 - t0) as f64;
        for s in &v.ceremonies {
            let _ = write!(
                h,
                "<h3>Ceremony {} · {} key{}</h3>",
                s.ceremony_number,
                esc(&s.key_mode),
                s.failed
                    .as_ref()
                    .map(|r| format!(" · <span class=bad>failed: {}</span>", esc(r)))
                    .unwrap_or_default()
            );
            let _ = write!(h, "<div class=tl>");
            for p in &s.phases {
                let end = p.end_ms.unwrap_or(p.start_ms);
                let left = (p.start_ms - t0) as f64 / span * 100.0;
                let width = ((end - p.start_ms) as f64 / span * 100.0).max(0.3);
                let label = if p.attempt > 0 {
                    format!("{} (attempt {})", p.phase, p.attempt + 1)
                } else {
                    p.phase.clone()
                };
                let _ = write!(
                    h,
                    "<div class='seg {}' style='left:{left:.2}%;width:{width:.2}%' title='{} · from block {} · {:.1} s'>{} {:.1}s</div>",
                    esc(&p.phase),
                    esc(&label),
                    p.start_height,
                    (end - p.start_ms) as f64 / 1000.0,
                    esc(&label),
                    (end - p.start_ms) as f64 / 1000.0
                );
            }
            let _ = write!(h, "</div>");
            let _ = write!(
                h,
                "<p>Committee: {}<br>Qualified dealers ({}): {}</p>",
                s.committee
                    .iter()
                    .map(|i| esc(&obs.name(i)))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.qualified.len(),
                s.qualified
                    .iter()
                    .map(|i| esc(&obs.name(i)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !s.matrix.is_empty() {
                let _ = write!(
                    h,
                    "<p class=legend>Dealer (row) by player (column): <span style='background:#59a14f;color:#fff'>acked</span><span style='background:#edc948'>revealed</span><span style='background:#e15759;color:#fff'>missing</span></p><table class=m><tr><th></th>"
                );
                for (j, p) in s.committee.iter().enumerate() {
                    let _ = write!(h, "<th title='{}'>{}</th>", esc(&obs.name(p)), j + 1);
                }
                let _ = write!(h, "</tr>");
                for (d, row) in s.matrix.iter().enumerate() {
                    let dealer = s.dealers.get(d).map(|x| obs.name(x)).unwrap_or_default();
                    let _ = write!(h, "<tr><th title='{}'>{}</th>", esc(&dealer), esc(&dealer));
                    for (j, c) in row.iter().enumerate() {
                        let (class, mark) = match c {
                            Cell::Acked => ("acked", "a"),
                            Cell::Revealed => ("revealed", "r"),
                            Cell::Missing => ("missing", "·"),
                        };
                        let player = s.committee.get(j).map(|x| obs.name(x)).unwrap_or_default();
                        let _ = write!(
                            h,
                            "<td class={class} title='{} → {}: {class}'>{mark}</td>",
                            esc(&dealer),
                            esc(&player)
                        );
                    }
                    let _ = write!(h, "</tr>");
                }
                let _ = write!(h, "</table>");
            }
        }
        if !v.excluded.is_empty() {
            let _ = write!(h, "<p>Exclusions and faults recorded on chain:</p><ul>");
            for e in &v.excluded {
                let _ = write!(
                    h,
                    "<li>{} (ceremony {}, as {}): {}</li>",
                    esc(&obs.name(&e.identity)),
                    e.ceremony_number,
                    esc(&e.role),
                    esc(&e.reason)
                );
            }
            let _ = write!(h, "</ul>");
        }
        if v.activated {
            let _ = write!(
                h,
                "<p>Group public key <code>{}</code><br>Magic block <code>{}</code><br>Signature <code>{}</code> {}</p>",
                esc(v.group_key.as_deref().unwrap_or("-")),
                esc(v.magic_block_hash.as_deref().unwrap_or("-")),
                esc(v.signature.as_deref().unwrap_or("-")),
                match v.signature_verified {
                    Some(true) => "<span class=ok>verified (threshold BLS, blst)</span>",
                    Some(false) => "<span class=bad>does not verify</span>",
                    None => "",
                }
            );
        }
        if let Some(k) = &v.signing_key {
            let _ = write!(
                h,
                "<h3>Signing key (secp256k1)</h3><pre>{}</pre>",
                esc(&{
                    let mut t = String::new();
                    signing_key_text(obs, v, k, &mut t);
                    t
                })
            );
        }
    }
    h.push_str(sections);
    let _ = write!(h, "<h2>Nodes</h2><table>");
    for (n, id) in names {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            esc(&n),
            esc(&id)
        );
    }
    let _ = writeln!(h, "</table></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use keyquorum_contract::hex::Hex;
    use keyquorum_contract::signing_key::SigningKeyMember;

    use super::*;

    /// Ceremony 0 of a view, failed: the text lists its exclusions, none of its dealers.
    fn failed_ceremony() -> CeremonyObs {
        CeremonyObs {
            ceremony_number: 0,
            key_mode: "fresh".into(),
            committee: Vec::new(),
            dealers: Vec::new(),
            ceremony: None,
            board: None,
            phases: Vec::new(),
            failed: Some("too few dealers".into()),
            qualified: Vec::new(),
            matrix: Vec::new(),
        }
    }

    fn member(byte: u8) -> SigningKeyMember {
        SigningKeyMember {
            identity: Hex([byte; 96]),
            index: Hex([byte; 32]),
            public_share: Hex([2; 33]),
        }
    }

    /// Exclusions the chain names without a penalty are listed beside the slashed ones.
    #[test]
    fn an_exclusion_without_a_penalty_is_listed() {
        use keyquorum_contract::state::{EvidenceRecord, FaultRole, NamedRecord};
        let mut o = Observer::default();
        o.on_event(
            &Event::Named {
                record: NamedRecord {
                    height: 9,
                    view: 2,
                    ceremony_number: 0,
                    attempt: 0,
                    identity: Hex([7; 96]),
                    role: FaultRole::Dealer,
                    fault: "incomplete_publication".into(),
                    detail: "2 acks missing".into(),
                    evidence: EvidenceRecord::Absence {
                        phase: "publish".into(),
                        attempt: 0,
                    },
                },
            },
            9,
            0,
        );
        let excluded = &o.views[&2].excluded;
        assert_eq!(excluded.len(), 1);
        assert_eq!(excluded[0].role, "dealer");
        assert!(!excluded[0].penalty);
        assert_eq!(
            excluded[0].reason,
            "incomplete_publication (2 acks missing), no penalty"
        );
        // In the text it is named, not listed as excluded: it keeps its seat.
        let mut v = ViewObs {
            view: 2,
            excluded: excluded.clone(),
            ..ViewObs::default()
        };
        v.ceremonies.push(failed_ceremony());
        let text = text(&o, &v);
        assert!(text.contains("  excluded    none\n"), "{text}");
        assert!(text.contains("  named       "), "{text}");
        assert!(
            text.contains(" as dealer: incomplete_publication"),
            "{text}"
        );
    }

    /// A slash on the embedded chain is reported with what it took, in the text and the JSON
    /// (it used to say only `penalty: true`).
    #[test]
    fn a_slash_is_reported_with_the_stake_it_took() {
        use keyquorum_contract::state::{EvidenceRecord, FaultCeremony, FaultRole, SlashingRecord};
        let mut o = Observer::default();
        o.on_event(
            &Event::Slashed {
                record: SlashingRecord {
                    height: 9,
                    view: 1,
                    ceremony: FaultCeremony::ViewChange,
                    ceremony_number: 0,
                    attempt: 0,
                    identity: Hex([7; 96]),
                    role: FaultRole::Dealer,
                    fault: "missed_contribution".into(),
                    detail: "no contribution by the deadline".into(),
                    misbehaviour: false,
                    evidence: EvidenceRecord::Absence {
                        phase: "contribute".into(),
                        attempt: 0,
                    },
                    amount: 20,
                    stake_after: 180,
                    reporter: None,
                    reporter_reward: 0,
                    burned: 20,
                },
            },
            9,
            0,
        );
        let v = &o.views[&1];
        assert_eq!(
            v.excluded[0]
                .slashed
                .map(|s| (s.amount, s.stake_after, s.burned)),
            Some((20, 180, 20))
        );
        let mut v = ViewObs {
            view: 1,
            excluded: v.excluded.clone(),
            ..ViewObs::default()
        };
        v.ceremonies.push(failed_ceremony());
        let text = text(&o, &v);
        assert!(
            text.contains("slashed 20 of its stake, 180 left (0 to the reporter, 20 burned)"),
            "{text}"
        );
        let json = json(&o, &v, None);
        assert_eq!(json["excluded"][0]["slashed"]["amount"], 20, "{json}");
        assert_eq!(json["excluded"][0]["slashed"]["stake_after"], 180, "{json}");
    }

    /// Roles are spelled as the chain spells them (`previous_signer`, not the `Debug` text
    /// lowercased).
    #[test]
    fn roles_keep_the_chain_spelling() {
        use keyquorum_contract::state::{EvidenceRecord, FaultRole, NamedRecord};
        let mut o = Observer::default();
        o.on_event(
            &Event::Named {
                record: NamedRecord {
                    height: 9,
                    view: 2,
                    ceremony_number: 0,
                    attempt: 0,
                    identity: Hex([7; 96]),
                    role: FaultRole::PreviousSigner,
                    fault: "no_signature".into(),
                    detail: String::new(),
                    evidence: EvidenceRecord::Absence {
                        phase: "wait".into(),
                        attempt: 0,
                    },
                },
            },
            9,
            0,
        );
        assert_eq!(o.views[&2].excluded[0].role, "previous_signer");
    }

    /// A ceremony with neither a qualified set nor a failure is shown as running, in its last
    /// phase, not as one that qualified no dealer; one that qualified lists its dealers.
    #[test]
    fn a_ceremony_still_running_is_not_shown_as_qualifying_nobody() {
        let ceremony = |qualified: Vec<String>| CeremonyObs {
            ceremony_number: 0,
            key_mode: "reshare".into(),
            committee: vec!["aa".into(), "bb".into()],
            dealers: vec!["aa".into(), "bb".into()],
            ceremony: None,
            board: None,
            phases: vec![PhaseSpan {
                phase: "share".into(),
                attempt: 0,
                start_ms: 0,
                end_ms: None,
                start_height: 3,
            }],
            failed: None,
            qualified,
            matrix: Vec::new(),
        };
        let o = Observer::default();
        let mut v = ViewObs {
            view: 2,
            ..ViewObs::default()
        };
        v.ceremonies.push(ceremony(Vec::new()));
        let running = text(&o, &v);
        assert!(
            running.contains("qualified   not yet: the ceremony was still running (phase share)"),
            "{running}"
        );
        assert!(!running.contains("(0 dealers)"), "{running}");
        v.ceremonies[0] = ceremony(vec!["aa".into(), "bb".into()]);
        let done = text(&o, &v);
        assert!(done.contains("(2 dealers)"), "{done}");
        assert!(!done.contains("not yet"), "{done}");
    }

    /// The view's members missing from its signing key's members are the ones that sat the
    /// ceremony out, in the view's order; a key of every member has none.
    #[test]
    fn the_members_missing_from_a_signing_key_sat_its_ceremony_out() {
        let key = |members: Vec<SigningKeyMember>| SigningKeyRecord {
            session_id: Hex([0; 32]),
            threshold: 2,
            group_key: Hex([2; 33]),
            members,
            qualified: vec![0, 1],
            dealers: Vec::new(),
            excluded: Vec::new(),
        };
        let view: Vec<String> = [1u8, 2, 3, 4]
            .iter()
            .map(|b| hex::encode([*b; 96]))
            .collect();
        assert_eq!(
            sat_out(&view, &key(vec![member(1), member(3)])),
            vec![view[1].clone(), view[3].clone()]
        );
        assert!(sat_out(&view, &key((1..=4).map(member).collect())).is_empty());
    }
}
