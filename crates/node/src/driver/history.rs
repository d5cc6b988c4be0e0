//! Events of blocks the node replays (after a restart, or from a new database) are history:
//! a ceremony that failed an hour ago is not a warning about now. While a block is below the
//! chain's head ([`Driver::behind`]), such events are logged at debug and counted here; once
//! the node has processed the head, the count is said in one line (a warning only if the chain
//! charged this node a fault meanwhile), so that the warnings an operator reads are current.

use tracing::{info, warn};

use super::Driver;

/// What a kind of replayed event is called in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replayed {
    /// A ceremony failed.
    CeremonyFailed,
    /// A view change was abandoned until its retry.
    ViewChangeAborted,
    /// This node did not take part in a ceremony (refused, or its spec did not fit).
    CeremonyNotJoined,
    /// A post was dropped at its deadline.
    PostDropped,
    /// This node's own post was dropped at its deadline.
    PostOfOursDropped,
    /// A fault was recorded on chain against another node.
    Fault,
    /// A fault was recorded on chain against this node.
    FaultOfOurs,
}

/// The counts of replayed events since the last summary, and the blocks they came from.
#[derive(Debug, Default)]
pub(super) struct HistoryTally {
    counts: [u64; 7],
    blocks: Option<(u64, u64)>,
}

impl HistoryTally {
    /// One replayed event of `kind` in the block at `height`.
    pub(super) fn note(&mut self, kind: Replayed, height: u64) {
        self.counts[kind as usize] += 1;
        self.blocks = Some(match self.blocks {
            Some((first, last)) => (first.min(height), last.max(height)),
            None => (height, height),
        });
    }

    /// Says what was counted, once, and starts over: nothing if nothing was.
    pub(super) fn report(&mut self) {
        let Some((first, last)) = self.blocks.take() else {
            return;
        };
        let counts = std::mem::take(&mut self.counts);
        let of = |kind: Replayed| counts[kind as usize];
        let ours = of(Replayed::FaultOfOurs);
        let our_posts = of(Replayed::PostOfOursDropped);
        let summary = format!(
            "{} ceremonies failed, {} view changes abandoned until a retry, {} ceremonies this \
             node did not take part in, {} posts dropped ({our_posts} of this node's), {} \
             faults recorded ({ours} against this node)",
            of(Replayed::CeremonyFailed),
            of(Replayed::ViewChangeAborted),
            of(Replayed::CeremonyNotJoined),
            of(Replayed::PostDropped) + our_posts,
            of(Replayed::Fault) + ours,
        );
        if ours > 0 || our_posts > 0 {
            warn!(first, last, %summary, "caught up with the chain; in the blocks it replayed, the chain charged this node");
        } else {
            info!(first, last, %summary, "caught up with the chain; what the blocks it replayed held (logged at debug level)");
        }
    }
}

impl Driver {
    /// The node has processed the chain's head: says what the replayed blocks held, and, the
    /// first time in this process, whether the active view lists this node without its share
    /// (a database lost or replaced: nothing else says so until the node is asked to sign).
    pub(super) fn reached_head(&mut self) {
        self.history.report();
        if std::mem::replace(&mut self.head_reached, true) {
            return;
        }
        let me = self.me.to_bytes();
        let view = self.state.current_view;
        let listed = self
            .active_block
            .as_ref()
            .is_some_and(|b| b.member_by_identity(&me).is_some());
        if let Some(block) = self.active_block.as_ref().filter(|b| b.view == view) {
            super::magic::warn_if_every_share_needed(block);
        }
        if listed && !self.state.shares.iter().any(|s| s.view == view) {
            self.warn_no_share(view);
        }
    }

    /// The active `view` lists this node, which holds no share of its key: warned once per
    /// view, whether seen live at the activation or when the node reached the head.
    pub(super) fn warn_no_share(&mut self, view: u64) {
        if self.no_share.is_news(view) {
            warn!(
                view,
                "the view's magic block lists this node, but it holds no share of the view's \
                 key (it did not finish the ceremony, or its database was lost or replaced): \
                 it signs nothing for this view, and takes part again at the next view change \
                 that seats it (as a player only if it is also a dealer of a reshare)"
            );
        }
    }

    /// Whether an event of the block at `height` is history ([`Driver::behind`]); if so, it is
    /// counted for the summary and the caller logs it at debug level.
    pub(super) fn replayed(&mut self, kind: Replayed, height: u64) -> bool {
        if !self.is_history(height) {
            return false;
        }
        self.history.note(kind, height);
        true
    }

    /// Whether the block at `height` is one this process replays while catching up. Only
    /// before it first reached the head: a live node is told the head before each batch of
    /// blocks, so the blocks of a batch are below it for a moment.
    pub(super) fn is_history(&self, height: u64) -> bool {
        !self.head_reached && self.behind(height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_spans_the_blocks_counted_and_starts_over_after_a_report() {
        let mut tally = HistoryTally::default();
        tally.note(Replayed::CeremonyFailed, 40);
        tally.note(Replayed::FaultOfOurs, 12);
        tally.note(Replayed::CeremonyFailed, 77);
        assert_eq!(tally.blocks, Some((12, 77)));
        assert_eq!(tally.counts[Replayed::CeremonyFailed as usize], 2);
        assert_eq!(tally.counts[Replayed::FaultOfOurs as usize], 1);
        tally.report();
        assert_eq!(tally.blocks, None);
        assert_eq!(tally.counts, [0; 7]);
    }
}
