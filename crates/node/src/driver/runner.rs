//! What runs a ceremony in this node: the DKG participant, or the board alone for a node that only
//! follows it, and the running ceremony's state.

use super::*;

/// What runs a ceremony in this node: the DKG participant, or the board alone for a node that
/// only follows it (see [`Seat`]).
pub(super) enum Runner {
    Participant(Box<AckRevealParticipant<G>>),
    Board(Box<Board<G>>),
}

impl Runner {
    pub(super) fn board(&self) -> &Board<G> {
        match self {
            Runner::Participant(n) => n.board(),
            Runner::Board(b) => b,
        }
    }

    pub(super) fn received_from(&self) -> Vec<u32> {
        match self {
            Runner::Participant(n) => n.received_from(),
            Runner::Board(_) => Vec::new(),
        }
    }

    /// Board posts in board order, with the effect of feeding each as `Input::BoardPost` in
    /// turn: a participant verifies their signatures in one batch and checks the deals waiting
    /// for contributions among them in one batch
    /// ([`AckRevealParticipant::handle_board_posts`]); a board alone pre-verifies the signatures in one
    /// batch and applies the posts.
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
        }
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
