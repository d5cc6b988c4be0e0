//! What runs a ceremony in this node: the DKG participant of the ceremony's variant, or that
//! variant's board alone for a node that only follows it, and the running ceremony's state.

use super::catch_up::{DealTrace, complaint_deal_trace};
use super::*;

/// What runs a ceremony in this node: the DKG participant, or the board alone for a node that
/// only follows it (see [`Seat`]), of the variant the ceremony's spec names (the chain's choice).
pub(super) enum Runner {
    Participant(Box<AckRevealParticipant<G>>),
    Board(Box<Board<G>>),
    ComplaintParticipant(Box<ComplaintParticipant<G>>),
    ComplaintBoard(Box<ComplaintBoard<G>>),
}

impl Runner {
    /// The board alone, of the ceremony's variant.
    pub(super) fn board_only(ceremony: &Arc<Ceremony<G>>) -> Self {
        match ceremony.config().variant {
            Variant::AckReveal => Runner::Board(Box::new(Board::new(ceremony.clone()))),
            Variant::Complaint => {
                Runner::ComplaintBoard(Box::new(ComplaintBoard::new(ceremony.clone())))
            }
        }
    }

    /// Whether this node takes part (rather than following the board).
    pub(super) fn is_participant(&self) -> bool {
        matches!(
            self,
            Runner::Participant(_) | Runner::ComplaintParticipant(_)
        )
    }

    /// The ack-or-reveal board, if the ceremony runs that variant.
    pub(super) fn board(&self) -> Option<&Board<G>> {
        match self {
            Runner::Participant(n) => Some(n.board()),
            Runner::Board(b) => Some(b),
            Runner::ComplaintParticipant(_) | Runner::ComplaintBoard(_) => None,
        }
    }

    /// The complaint-variant board, if the ceremony runs that variant.
    pub(super) fn complaint_board(&self) -> Option<&ComplaintBoard<G>> {
        match self {
            Runner::ComplaintParticipant(n) => Some(n.board()),
            Runner::ComplaintBoard(b) => Some(b),
            Runner::Participant(_) | Runner::Board(_) => None,
        }
    }

    /// The magic block this node's board defines, with the contract's construction for the
    /// variant.
    pub(super) fn magic_block(
        &self,
        place: &MagicBlockPlace,
        network: impl Fn(&Hex<96>) -> Option<NetworkIdentity>,
    ) -> Result<MagicBlock, BuildError> {
        match (self.board(), self.complaint_board()) {
            (Some(b), _) => MagicBlock::from_board(place, b, network),
            (_, Some(b)) => MagicBlock::from_complaint_board(place, b, network),
            _ => Err(BuildError::NoOutcome),
        }
    }

    /// Whether the deal phase is still open (deals may be pulled from dealers).
    pub(super) fn dealing(&self) -> bool {
        match (self.board(), self.complaint_board()) {
            (Some(b), _) => b.phase() <= BoardPhase::Share,
            (_, Some(b)) => super::catch_up::complaint_deal_window_open(b.phase()),
            _ => false,
        }
    }

    /// Whether a dealer joining now could still deal: in the ack-or-reveal variant while the
    /// board takes contributions, in the complaint variant until the reports close
    /// (`catch_up::complaint_deal_window_open`). A node that joins later plays only
    /// ([`Seat::Player`]).
    pub(super) fn deal_window_open(&self) -> bool {
        match (self.board(), self.complaint_board()) {
            (Some(b), _) => b.phase() == BoardPhase::Contribute,
            (_, Some(b)) => super::catch_up::complaint_deal_window_open(b.phase()),
            _ => false,
        }
    }

    /// What the board shows of whether dealer `d` (also player `player`, if it plays) dealt: in
    /// the ack-or-reveal variant its contribution or a fault of it is on the board from the
    /// start; the complaint variant's deals show only in the reports
    /// ([`super::catch_up::complaint_deal_trace`]).
    pub(super) fn deal_trace(&self, d: u32, player: Option<u32>) -> DealTrace {
        match (self.board(), self.complaint_board()) {
            (Some(b), _) if b.contribution(d).is_some() || b.faults().any(|(x, _)| x == d) => {
                DealTrace::Shown
            }
            (Some(_), _) => DealTrace::Absent,
            (_, Some(b)) => complaint_deal_trace(b, d, player),
            _ => DealTrace::NotYet,
        }
    }

    pub(super) fn received_from(&self) -> Vec<u32> {
        match self {
            Runner::Participant(n) => n.received_from(),
            Runner::ComplaintParticipant(n) => n.verified_dealers(),
            Runner::Board(_) | Runner::ComplaintBoard(_) => Vec::new(),
        }
    }

    /// Board posts in board order, with the effect of feeding each as `Input::BoardPost` in
    /// turn: an ack-or-reveal participant verifies their signatures in one batch and checks the
    /// deals waiting for contributions among them in one batch
    /// ([`AckRevealParticipant::handle_board_posts`]); its board alone pre-verifies the
    /// signatures in one batch and applies the posts; the complaint variant takes them one by
    /// one.
    pub(super) fn handle_posts(&mut self, posts: &[Vec<u8>]) -> Vec<Action<G>> {
        match self {
            Runner::Participant(n) => n.handle_board_posts(posts),
            Runner::Board(b) => {
                let n = b.ceremony().n();
                let decoded: Vec<SignedPost<G>> = posts
                    .iter()
                    .filter_map(|p| SignedPost::<G>::decode(p, n).ok())
                    .collect();
                let refs: Vec<&SignedPost<G>> = decoded.iter().collect();
                preverify_posts(b.ceremony(), &refs);
                for signed in &decoded {
                    // Refusals are the contract's too (same board); nothing to add.
                    let _ = b.apply(signed);
                }
                Vec::new()
            }
            Runner::ComplaintParticipant(_) | Runner::ComplaintBoard(_) => posts
                .iter()
                .flat_map(|p| self.handle(Input::BoardPost(p.clone())))
                .collect(),
        }
    }

    /// Feeds logged inputs in order, each run of board posts as one batch
    /// ([`Runner::handle_posts`]).
    pub(super) fn replay(&mut self, inputs: Vec<Input>) -> Vec<Action<G>> {
        let mut out = Vec::new();
        let mut posts: Vec<Vec<u8>> = Vec::new();
        for input in inputs {
            match input {
                Input::BoardPost(p) => posts.push(p),
                other => {
                    if !posts.is_empty() {
                        out.extend(self.handle_posts(&std::mem::take(&mut posts)));
                    }
                    out.extend(self.handle(other));
                }
            }
        }
        if !posts.is_empty() {
            out.extend(self.handle_posts(&posts));
        }
        out
    }

    /// The participant's actions; a board alone applies posts and deadlines as the
    /// participant's board would, and acts on nothing.
    pub(super) fn handle(&mut self, input: Input) -> Vec<Action<G>> {
        match self {
            Runner::Participant(n) => n.handle(input),
            Runner::ComplaintParticipant(n) => n.handle(input),
            Runner::Board(b) => {
                match input {
                    Input::BoardPost(bytes) => {
                        if let Ok(signed) = SignedPost::<G>::decode(&bytes, b.ceremony().n()) {
                            // Refusals are the contract's too (same board); nothing to add.
                            let _ = b.apply(&signed);
                        }
                    }
                    Input::Deadline => b.advance(),
                    _ => {}
                }
                Vec::new()
            }
            Runner::ComplaintBoard(b) => {
                follow_complaint_board(b, input);
                Vec::new()
            }
        }
    }
}

/// A complaint-variant board followed without a participant: posts and deadlines as the
/// participant's board would take them; anything else is not the board's.
pub(super) fn follow_complaint_board<C: Curve>(b: &mut ComplaintBoard<C>, input: Input) {
    match input {
        Input::BoardPost(bytes) => {
            let c = b.ceremony();
            if let Ok(signed) = SignedComplaintPost::<C>::decode(&bytes, c.n(), c.dealer_count()) {
                // Refusals are the contract's too (same board); nothing to add.
                let _ = b.apply(&signed);
            }
        }
        Input::Deadline => b.advance(),
        _ => {}
    }
}

pub(super) struct Live {
    pub(super) id: [u8; 32],
    pub(super) ceremony: Arc<Ceremony<G>>,
    pub(super) node: Runner,
    pub(super) seed: Zeroizing<[u8; 32]>,
    /// Deals this node sent, by recipient identity, for pulls.
    pub(super) outbox: HashMap<Vec<u8>, Vec<u8>>,
    pub(super) fault: FaultState,
}

impl Live {
    /// What the board shows of whether node `me` dealt in this ceremony (nothing to show for a
    /// node that does not deal in it).
    pub(super) fn own_deal_trace(&self, me: &IdentityPublicKey) -> DealTrace {
        match self.ceremony.dealer_position(me) {
            Some(d) => self.node.deal_trace(d, self.ceremony.player_position(me)),
            None => DealTrace::Absent,
        }
    }
}
