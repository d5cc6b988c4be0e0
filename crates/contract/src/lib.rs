//! # keyquorum-contract
//!
//! The view-change coordinator as a pure, deterministic state machine that any chain can embed:
//! `state + signed transaction + block height -> new state + events`, or a typed [`Rejection`]
//! that leaves the state untouched. In the seeds the blockchain itself coordinates the DKG and is
//! its broadcast channel (seed 001: "Züs uses a novel approach by using the blockchain itself to
//! solve this problem"; seed 000's five phases; seed 003's smart-contract coordinator); this crate
//! is that contract.
//!
//! ## Driving it
//! For a block at height `h`, the chain calls [`Contract::apply_tx`] for each transaction (on
//! `Err` the transaction changed nothing), then [`Contract::end_block`]`(h)`, which runs every
//! deadline that is due. Phase deadlines are block heights: a phase with deadline `D` accepts
//! transactions in blocks up to and including `D` and ends with `end_block(D)`, or earlier, with
//! `end_block(h)` of the block `h` that brought the last post the phase expects
//! (`phases.close_early`, see [`Contract::end_block`]): deadlines bound a phase only when
//! someone is silent (and, in the complaint variant, the phases whose posts the chain cannot
//! expect), and a view change takes as long as its work and its network. Nothing reads a
//! clock, draws randomness or iterates a hash map: replaying the same blocks gives the same
//! state and events. [`Contract::check_tx`] is a side-effect-free pre-check for a mempool and
//! [`Contract::query`] answers the HTTP API.
//!
//! ## Transactions ([`tx`])
//! Signed by the sender's identity key (`Purpose::Transaction`) over the chain id, sender, nonce
//! and body; the nonce is the sender's transaction count (kept after deregistration, so nothing
//! replays). `Register` carries the identity key with its proof of possession (verified here:
//! it is what makes ack aggregation safe against rogue keys), the share-encryption key, the
//! network identity (libp2p peer id and addresses, bounded) and the stake; `AddStake`,
//! `Unbond` and `Deregister` manage it (stake cannot leave while the node is in the active
//! committee or the view change in progress: `Unbond` is refused then, and `Deregister` only
//! schedules the leave, completed at the end of the first block in which the stake is free);
//! `DkgPost` carries a signed board post of the
//! current ceremony; `MagicBlockSignature` a partial signature on the pending magic block.
//!
//! ## Accounts and stake
//! The configuration's `genesis` list allocates the whole supply to identity keys; `Transfer`
//! moves balance between accounts. Stake is locked from the free balance: `Register{stake}` and
//! `AddStake` above it are refused (`insufficient_balance`) and change nothing, so a node's
//! weight is what it holds, not what it claims. `Unbond` (and `Deregister`, for the whole stake)
//! takes stake out of committee selection at once; `ClaimUnbonded` returns it to the balance
//! once `staking.unbonding_views` more views have been activated. A key that holds nothing
//! (no balance, registration or unbonding stake) can send nothing, so a flood from fresh keys is
//! refused by [`Contract::check_tx`] and never reaches a block or the state. The supply is
//! conserved: free balances + locked stakes + unbonding + burned = the genesis supply
//! ([`ContractState::supply`]).
//!
//! ## A view change (seeds 000 and 001: start, contribute, share, publish, wait)
//! - **Start** (at `first_view_change`, then `view_length` blocks after each view's first
//!   round): the committee is the top `n` eligible nodes by stake, ties broken by a hash of the
//!   previous view's random seed and the identity, with up to `keep_previous_percent` of the
//!   seats kept for previous members (0chain, [`select`]). `n, t, k` come from the configuration
//!   as numbers or percentages (Züs: `t` = 66%, `k` = 75%) and are validated by
//!   [`keyquorum_dkg::Params`]. The contract creates the `Ceremony` (ack-or-reveal variant,
//!   sequential indices; for a reshare with the previous committee as dealers) and a
//!   [`Board`](keyquorum_dkg::board::Board). The committee and the ceremony's definition are published in the
//!   `CommitteeSelected` event and the `views/{v}` query, the list that nodes outside the
//!   committee fetch (seed 000).
//! - **Contribute, share, publish**: every `DkgPost` goes to `Board::apply` and every phase
//!   deadline to `Board::advance`. The board is the one implementation of the qualification
//!   rules (the nodes replay the same board from the same chain data); the contract only checks
//!   that a post belongs to the current ceremony, phase and sender, and uses the board's outcome
//!   as is: who missed a deadline, whose log is invalid, who qualified, the group key, the public
//!   key shares, and the board's own publish-phase retries.
//! - **Wait**: the magic block of the next view is built ([`magic`]) and both committees sign
//!   it; the new view starts at its first round if both signatures are in (in the block after
//!   the one that completes them, when the phase closes early).
//!
//! ## Failures and what is kept
//! - Within a ceremony the board retries the publish phase (up to `board::MAX_ATTEMPTS`) without
//!   the culprits of the failed attempt; every honest dealer's commitment, encrypted shares and
//!   acks stay valid and are reused, since none of them depends on the attempt.
//! - If the ceremony still has too few qualified dealers (or the magic block is not signed by
//!   the wait deadline), its culprits are recorded, banned from the rest of this view change,
//!   and a new ceremony of the same view starts at once, with the committee re-selected from the
//!   registry without them (standby nodes fill the seats). Contributions cannot carry over to the
//!   new ceremony: its session id differs (it binds the committee and the ceremony number), and
//!   with it the indices, commitments and encryption contexts. What is kept is everything else:
//!   the registry and stakes, the previous view and its key (a reshare ceremony reuses the same
//!   previous committee minus culprits), the ranking, and the evidence; the new ceremony starts at
//!   its contribute phase, not at a full restart of the schedule. 0chain instead wiped everything
//!   and restarted from Start (its issue 190: 726 restarts while one miner was down); MaidSafe
//!   (seed 002) restarts DKG without the failed nodes, as here.
//! - After `max_ceremonies_per_view` failed ceremonies the view change is abandoned and tried again
//!   `retry_delay` blocks later; the active view stays in force meanwhile. The retry lifts the
//!   bans (one that outlived its outage could leave a reshare too few previous members), so an
//!   absence is charged once per round of the view change, not once per ceremony that seats
//!   the absent node.
//!
//! ## Faults and stake
//! Every exclusion the board reports that carries a penalty (`FaultKind::penalty`): provable
//! misbehaviour (equivocation, invalid commitment, bad ack aggregate, bad reveal) or absence
//! (missed contribution or publication, unresponsive player), with its evidence, becomes one
//! [`SlashingRecord`] per node, role and ceremony; missing magic-block signatures at a failed
//! wait deadline are recorded too. The stake effect is configured separately for provable
//! misbehaviour and for absence ([`config::SlashingConfig`]). Faults nobody can be proven to
//! have committed (a dealer whose players withheld acks, a player some publications report as
//! not acking) become a [`state::NamedRecord`] instead: named with the evidence, no stake
//! taken, no ban, the seat kept. Names, phases and roles on chain come from explicit codes
//! (`FaultKind::code`), never from `Debug`.
//! A slashed amount is burned, except `reporter_percent` of it, paid to the member the board
//! names as having proven the fault (`Exclusion::reporter`: the author of the report, dispute or
//! complaint that established it, when nobody else could have posted it), never the culprit
//! itself. The board names it where it decides the fault, not from the order
//! of the evidence, whose last item is often the dealer's own commitment proof. A fault proven
//! by the culprit's own posts (equivocation included), an absence, a fault others only claim
//! (missing acks, a missed deal) or a missing signature has no reporter: its slash is burned
//! entirely. A view's signing-key ceremony slashes its proven faults through the same path
//! ([`signing_key`], "Slashing").
//!
//! ## Posts that cannot be honest, and floods of them
//! A `DkgPost` whose post does not decode (unless its prefix names another session: a post of
//! an earlier ceremony retried, refused for its session at no cost), names no dealer, is not the sender's own, or carries
//! a bad post signature ([`Rejection::charges_sender`]) is refused by [`Contract::check_tx`],
//! the same checks as in a block (the signature's answer is remembered in the ceremony's check
//! cache, so an honest post is verified once), so it never enters a mempool or a block. If a
//! block carries one anyway (another producer's mempool, or a ceremony that changed since), the
//! transaction is applied as refused: the sender's chain key signed it, so the refusal is its
//! own, and it costs the sender a nonce, adds one to its [`state::NodeRecord`]'s
//! `refused_posts` and emits a fixed-size `PostRefused` event; the post is not kept and no board
//! sees it. What the contract keeps per refused post is therefore nothing but those two
//! counters per registered node: a flood of any size grows the state by a few bytes
//! (`tests/integration/flood.rs`: 2,000 badly signed posts, at most 64 bytes of serialized state), and the
//! ceremony's check cache stays within `CHECK_CACHE_CAPACITY` entries. Refusals that timing
//! alone explains (a late, duplicate or out-of-phase post) stay rejections that change nothing,
//! as an honest node meets them. A complaint-variant reconstruction post is the one exception to
//! checking the post signature on arrival (the board checks those at the reconstruct deadline,
//! in one batch): one that fails there was reported taken, so the deadline emits `PostDropped`
//! naming its author and adds one to the author's `refused_posts`, as on arrival.
//!
//! ## The chain of magic blocks
//! [`verify_magic_block_chain`] checks a sequence of signed magic blocks from the genesis key:
//! each block is signed under its own group key by its committee, and under the previous group
//! key by the previous committee (MaidSafe's handover, seed 002), on two role-tagged messages so
//! that one signature never stands for the other; a reshare must keep the group key.

#![warn(missing_docs)]

pub mod config;
mod contract;
pub mod error;
pub mod events;
pub mod follow;
pub mod hex;
pub mod magic;
pub mod query;
pub mod select;
pub mod signing_key;
pub mod state;
pub mod tx;

pub use config::{BeaconConfig, BeaconScheme, ContractConfig, KeyMode, Size};
pub use contract::{
    Contract, Group, MAX_NONCE_GAP, RestoreError, fault_name, genesis_seed, view_seed,
};
pub use error::Rejection;
pub use events::{CommitteeEntry, Event};
pub use follow::{Follower, Step};
pub use magic::{ChainError, MagicBlock, SignedMagicBlock, verify_magic_block_chain};
pub use state::{CeremonySpec, ContractState, SlashingRecord, Supply, ViewChangePhase};
pub use tx::{NetworkIdentity, SignerRole, Transaction, TxBody};
