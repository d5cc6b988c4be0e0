//! A node's place on the coordinator's candidate list, and its way back after an eviction.
//!
//! The contract lists at most `MAX_CANDIDATES` eligible nodes. When the list is full, a
//! registration or `addStake` with more stake than the lowest-ranked candidate that does not
//! serve (not in the active view nor the running ceremony) takes that candidate's place and logs
//! `Evicted`; the evicted node stays registered with its stake but is never selected until it
//! is listed again, which `addStake` does (with no value, at its current stake) once a place is
//! free or its stake outranks the lowest evictable candidate. When none is evictable, or its
//! stake does not outrank that candidate, `addStake` reverts with
//! `CandidateListFull(lowestStake)` (0 when every candidate serves).
//!
//! [`Watch`] follows this for one account:
//! - an `Evicted` log naming the account (from the follower, at the confirmation depth) makes it
//!   check, at each newly confirmed block, what the chain says: `candidacy(account)` (listed?
//!   eligible stake?) and, when it is off the list with an eligible stake, `addStake()` with no
//!   value simulated by gas estimation ([`Probe`]), which either passes or names the bar;
//! - [`assess`] is the decision, pure: listed again (by anyone's doing), or still evicted with
//!   the bar it must clear ([`Bar`]), and whether to send the re-entry now ([`Step`]). A
//!   re-entry is sent only after a simulation that passes, so a refused one costs nothing; one
//!   that still reverts when mined (the list filled again in between) holds the next attempt
//!   back for [`RETRY_BLOCKS`].
//!
//! The listing is read at the confirmed height, as the log was: a re-entry included in a
//! block not yet confirmed ends nothing. The eviction stays (`re_entering`) and nothing more is
//! sent until that block is confirmed; then the chain's answer there decides: listed (done),
//! or not, when a reorg dropped the re-entry, and the rule applies again.
//!
//! A log alone never makes the node believe it is out: a restarted node replays old
//! `Evicted` logs, and the chain's answer clears them at the first check.
//!
//! A registration meets the same full list: `register` reverts with
//! `CandidateListFull(lowestStake)` and the account stays unregistered (its stake was never
//! taken). [`Watch::on_registration_refused`] keeps the refused call, and the same check runs
//! at each confirmed block with the registration simulated instead of `addStake()`
//! ([`observe_registration`]); [`assess`] gives the same bars, and the registration is sent
//! again as soon as its simulation passes. An `AlreadyRegistered` refusal ends the watch: the
//! account registered (by a send of the node's own), and an eviction after that comes with
//! its log.
//!
//! A stake below the contract's minimum is never listed: the contract takes such a
//! registration (and keeps a stake slashed or unbonded below it) but does not select it, and
//! logs nothing about it. The node reads the minimum from the contract
//! ([`Client::min_stake`](crate::client::Client::min_stake)) and does not send a registration
//! below it ([`Watch::on_registration_below_minimum`]); a registered account's stake is read
//! again at each confirmed log that changes it (`Registered`, `StakeAdded`, `Unbonding`,
//! `Slashed`: [`Watch::on_stake_changed`]), and [`Watch::apply_stake`] reports the shortfall
//! ([`Shortfall`]) until the stake reaches the minimum.
//!
//! A send of the watch whose receipt was not seen (the wait timed out, or the node did not
//! answer) is kept by its hash, and the next check looks it up before anything is sent again:
//! a copy of a registration or re-entry that is mined after all would only revert. The look-up
//! is the client's ([`Client::sent_state`](crate::client::Client::sent_state)), which counts
//! every transaction sent for it (replacements with higher fees too), as the client's own
//! sends do before an identical call goes out.
//!
//! A check that fails (the node unreachable, the account unable to pay for gas) is retried at
//! the next confirmed block. [`Watch::on_check_failed`] keeps the failures and says when to
//! warn: at the first, when the error changes, and every [`WARN_EVERY_BLOCKS`] confirmed blocks
//! while it lasts.

use alloy_primitives::{Address, B256, U256};

use crate::Coordinator;
use crate::Coordinator::CoordinatorErrors;
use alloy_sol_types::SolCall as _;

use crate::client::{CallOutcome, Client, ClientError, Revert, SentState};

/// Confirmed blocks a mined re-entry that reverted holds the next attempt back.
pub const RETRY_BLOCKS: u64 = 10;

/// Confirmed blocks between two warnings of a check that keeps failing with the same error.
pub const WARN_EVERY_BLOCKS: u64 = 100;

/// Whether the contract lists a stake (its `_eligible`): at least the minimum, and not zero.
pub fn eligible(stake: U256, minimum: U256) -> bool {
    stake >= minimum && !stake.is_zero()
}

/// The account's stake below the contract's minimum: it is never listed, so never selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The confirmed height when it was first seen.
    pub block: u64,
    /// The stake (wei): the registration's, or the registered account's.
    pub stake: U256,
    /// The contract's minimum (wei).
    pub minimum: U256,
    /// The account is registered (it must add stake); otherwise its registration was not sent
    /// (the node's stake setting must be raised).
    pub registered: bool,
}

/// Checks that keep failing, until one succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// The confirmed height of the first failure.
    pub since: u64,
    /// The confirmed height of the last failure.
    pub last: u64,
    /// Failures so far.
    pub failures: u64,
    /// The last error.
    pub error: String,
    /// The confirmed height of the last warning.
    warned_at: u64,
}

/// What simulating `addStake()` with no value from the account says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It would list the account (a place is free, or its stake outranks the lowest evictable
    /// candidate, which it would evict).
    Enters,
    /// `CandidateListFull(lowest_stake)`: the lowest evictable candidate's stake, 0 when every
    /// candidate serves.
    ListFull {
        /// The stake to outrank.
        lowest_stake: U256,
    },
    /// Another refusal, by name.
    Refused(String),
}

/// What the chain says of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// On the candidate list.
    pub listed: bool,
    /// Its stake is at least the contract's minimum.
    pub eligible: bool,
    /// Its stake (wei).
    pub stake: U256,
    /// The re-entry's simulation; asked only when the account is off the list with an eligible
    /// stake.
    pub probe: Option<Probe>,
}

/// What an evicted node needs to be listed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bar {
    /// Not checked against the chain yet.
    Unchecked,
    /// The list is full: a stake above this one (the lowest evictable candidate's).
    Above(U256),
    /// Every candidate on the full list serves (active view or running ceremony): nobody can
    /// be evicted until a ceremony ends or a view changes.
    NoneEvictable,
    /// A place is free, or its stake outranks the lowest evictable candidate: it re-enters.
    Open,
    /// Its stake is below the minimum (slashed or unbonded): it must add stake.
    BelowMinimum,
    /// The simulation refused for another reason (named).
    Refused(String),
}

impl Bar {
    /// The least stake (wei) that lists the account, when the chain named one.
    pub fn needed_stake(&self) -> Option<U256> {
        match self {
            Bar::Above(lowest) => Some(lowest.saturating_add(U256::from(1))),
            _ => None,
        }
    }

    /// A short name for status pages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Bar::Unchecked => "unchecked",
            Bar::Above(_) => "list_full",
            Bar::NoneEvictable => "none_evictable",
            Bar::Open => "re_entering",
            Bar::BelowMinimum => "below_minimum",
            Bar::Refused(_) => "refused",
        }
    }
}

/// An eviction the chain confirmed, with what re-entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// The block of the `Evicted` log.
    pub block: u64,
    /// The account whose registration or stake evicted it.
    pub by: Address,
    /// Its stake (wei), as the chain last said.
    pub stake: U256,
    /// What re-entry needs.
    pub bar: Bar,
}

/// A registration the contract refused because its candidate list is full, with what
/// registering needs; the account is not registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The confirmed height when the refusal was first seen.
    pub block: u64,
    /// The stake (wei) the registration carries.
    pub stake: U256,
    /// What registering needs.
    pub bar: Bar,
}

/// A refused registration, ready to send again: its calldata and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The ABI-encoded `register` call.
    pub input: Vec<u8>,
    /// Its stake (wei).
    pub value: U256,
}

/// What to do after a check ([`assess`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The account is listed: the eviction is over.
    Listed,
    /// Still off the list: wait for the next block.
    Wait,
    /// Send `addStake()` with no value now.
    ReEnter,
}

/// The rule: what the chain says ([`Observed`]) and the last mined re-entry that reverted
/// (`reverted_at`, a confirmed height) at confirmed height `now` give the bar and the step.
pub fn assess(observed: &Observed, reverted_at: Option<u64>, now: u64) -> (Bar, Step) {
    if observed.listed {
        return (Bar::Open, Step::Listed);
    }
    if !observed.eligible {
        return (Bar::BelowMinimum, Step::Wait);
    }
    match &observed.probe {
        None => (Bar::Unchecked, Step::Wait),
        Some(Probe::ListFull { lowest_stake }) if lowest_stake.is_zero() => {
            (Bar::NoneEvictable, Step::Wait)
        }
        Some(Probe::ListFull { lowest_stake }) => (Bar::Above(*lowest_stake), Step::Wait),
        Some(Probe::Refused(name)) => (Bar::Refused(name.clone()), Step::Wait),
        Some(Probe::Enters) => {
            let held_back = reverted_at.is_some_and(|at| now < at.saturating_add(RETRY_BLOCKS));
            (
                Bar::Open,
                if held_back { Step::Wait } else { Step::ReEnter },
            )
        }
    }
}

/// What changed at a check, for the node to log and show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The account is evicted (newly confirmed, or its bar changed).
    Evicted(Eviction),
    /// Its re-entry was included in this block (believed once the block is confirmed).
    ReEntered {
        /// The block.
        block: u64,
    },
    /// It is listed again (by another transaction, or the `Evicted` log was old).
    Listed,
    /// Its registration is refused (newly, or its bar changed).
    RegistrationRefused(Refusal),
    /// The refused registration went through: included in this block when this watch sent it
    /// (believed once the block is confirmed), `None` when the chain shows the account
    /// registered by another send.
    Registered {
        /// The block.
        block: Option<u64>,
    },
    /// The stake is below the minimum (newly, or the stake changed).
    BelowMinimum(Shortfall),
    /// The stake reached the minimum after a shortfall.
    StakeSufficient,
}

/// One account's candidacy, as its `Evicted` logs and the chain's answers give it; see the
/// module docs.
#[derive(Debug, Clone)]
pub struct Watch {
    account: Address,
    /// The newest `Evicted` log of the account not yet cleared by the chain's answer.
    suspected: Option<(u64, Address, U256)>,
    evicted: Option<Eviction>,
    /// The block of a re-entry (or registration) this watch sent, until it is confirmed.
    sent_in: Option<u64>,
    /// A registration refused for a full list, to send again, and the refusal as last checked.
    registration: Option<(Registration, Refusal)>,
    checked_at: Option<u64>,
    reverted_at: Option<u64>,
    shortfall: Option<Shortfall>,
    /// A log changed the account's stake since the last check.
    stake_due: bool,
    /// A send of this watch whose receipt was not seen.
    unconfirmed: Option<B256>,
    failure: Option<CheckFailure>,
}

impl Watch {
    /// A watch of `account`, listed as far as it knows.
    pub fn new(account: Address) -> Self {
        Watch {
            account,
            suspected: None,
            evicted: None,
            sent_in: None,
            registration: None,
            checked_at: None,
            reverted_at: None,
            shortfall: None,
            stake_due: false,
            unconfirmed: None,
            failure: None,
        }
    }

    /// Takes a registration of the account with `stake`, not sent at confirmed height `now`
    /// because it is below the contract's `minimum`; returns the change to report.
    pub fn on_registration_below_minimum(
        &mut self,
        stake: U256,
        minimum: U256,
        now: u64,
    ) -> Option<Change> {
        self.set_shortfall(stake, minimum, false, now)
    }

    fn set_shortfall(
        &mut self,
        stake: U256,
        minimum: U256,
        registered: bool,
        now: u64,
    ) -> Option<Change> {
        let block = self.shortfall.as_ref().map_or(now, |s| s.block);
        let shortfall = Shortfall {
            block,
            stake,
            minimum,
            registered,
        };
        let changed = self.shortfall.as_ref() != Some(&shortfall);
        self.shortfall = Some(shortfall.clone());
        changed.then_some(Change::BelowMinimum(shortfall))
    }

    /// Takes a confirmed log that changed the account's stake (`Registered`, `StakeAdded`,
    /// `Unbonding`, `Slashed`) if `account` is this watch's; the stake is read at the next
    /// check.
    pub fn on_stake_changed(&mut self, account: Address) -> bool {
        if account != self.account {
            return false;
        }
        self.stake_due = true;
        true
    }

    /// Takes the request to read the stake ([`Watch::on_stake_changed`]) for a read about to
    /// start. A stake log confirmed while the read runs asks again, so it is read too.
    pub fn take_stake_due(&mut self) -> bool {
        std::mem::take(&mut self.stake_due)
    }

    /// Puts back a request [`Watch::take_stake_due`] took, its read having failed.
    pub fn stake_read_failed(&mut self) {
        self.stake_due = true;
    }

    /// Applies the registered account's stake and the contract's minimum at confirmed height
    /// `now` (read after [`Watch::take_stake_due`]); returns what changed.
    pub fn apply_stake(&mut self, stake: U256, minimum: U256, now: u64) -> Option<Change> {
        if eligible(stake, minimum) {
            return self.shortfall.take().map(|_| Change::StakeSufficient);
        }
        self.set_shortfall(stake, minimum, true, now)
    }

    /// The stake below the minimum, while it is.
    pub fn shortfall(&self) -> Option<&Shortfall> {
        self.shortfall.as_ref()
    }

    /// Records a failed check at confirmed height `now` (the next one is at the next confirmed
    /// block); true when it is to be logged as a warning: the first failure, an error unlike
    /// the last, or [`WARN_EVERY_BLOCKS`] blocks after the last warning.
    pub fn on_check_failed(&mut self, error: String, now: u64) -> bool {
        self.checked_at = Some(now);
        let Some(f) = &mut self.failure else {
            self.failure = Some(CheckFailure {
                since: now,
                last: now,
                failures: 1,
                error,
                warned_at: now,
            });
            return true;
        };
        f.failures += 1;
        f.last = now;
        let warn = f.error != error || now >= f.warned_at.saturating_add(WARN_EVERY_BLOCKS);
        f.error = error;
        if warn {
            f.warned_at = now;
        }
        warn
    }

    /// Records a check that succeeded; returns the failures it ends.
    pub fn on_check_succeeded(&mut self) -> Option<CheckFailure> {
        self.failure.take()
    }

    /// The checks failing since, while they do.
    pub fn check_failure(&self) -> Option<&CheckFailure> {
        self.failure.as_ref()
    }

    /// Keeps a send of this watch whose receipt was not seen, to look it up at the next check.
    pub fn on_unconfirmed(&mut self, tx_hash: B256) {
        self.unconfirmed = Some(tx_hash);
    }

    /// The send whose receipt was not seen, until it is looked up.
    pub fn unconfirmed(&self) -> Option<B256> {
        self.unconfirmed
    }

    /// Takes where the unconfirmed send stands at confirmed height `now`; true when a send may
    /// go again: mined (its outcome recorded as if the wait had seen it) or dropped. Pending, it
    /// is kept and nothing is sent.
    pub fn on_unconfirmed_state(&mut self, state: &SentState, now: u64) -> (bool, Option<Change>) {
        match state {
            SentState::Pending => {
                self.checked_at = Some(now);
                (false, None)
            }
            SentState::Dropped => {
                self.unconfirmed = None;
                (true, None)
            }
            SentState::Mined(outcome) => {
                self.unconfirmed = None;
                self.checked_at = Some(now);
                let change = if self.registration.is_some() {
                    self.registration_sent(outcome, now)
                } else {
                    self.re_entry_sent(outcome, now)
                };
                (false, change)
            }
        }
    }

    /// Takes a registration of the account refused with `CandidateListFull(lowest_stake)` at
    /// confirmed height `now` (`mined`: the refusal cost gas, which holds the next send back
    /// as a mined re-entry's does); returns the change to report.
    pub fn on_registration_refused(
        &mut self,
        registration: Registration,
        lowest_stake: U256,
        mined: bool,
        now: u64,
    ) -> Option<Change> {
        if mined {
            self.reverted_at = Some(now);
        }
        // The contract refuses only an eligible stake for a full list.
        let observed = Observed {
            listed: false,
            eligible: true,
            stake: registration.value,
            probe: Some(Probe::ListFull { lowest_stake }),
        };
        let (bar, _) = assess(&observed, self.reverted_at, now);
        let block = self
            .registration
            .as_ref()
            .map_or(now, |(_, refusal)| refusal.block);
        let refusal = Refusal {
            block,
            stake: registration.value,
            bar,
        };
        let changed = self.refusal() != Some(&refusal);
        // Checked from the next confirmed block on.
        self.checked_at = Some(now);
        self.registration = Some((registration, refusal.clone()));
        changed.then_some(Change::RegistrationRefused(refusal))
    }

    /// `step` unless a send of this watch waits for its block to be confirmed at `now`: then
    /// nothing is sent again. Once confirmed, the chain's answer there decided the step.
    fn unless_unconfirmed(&mut self, step: Step, now: u64) -> Step {
        match self.sent_in {
            Some(block) if now < block => Step::Wait,
            _ => {
                self.sent_in = None;
                step
            }
        }
    }

    /// The refused registration, while the account is not registered.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.registration.as_ref().map(|(_, refusal)| refusal)
    }

    /// Applies the chain's answer on a refused registration at confirmed height `now`
    /// ([`observe_registration`]; `None`: the account is registered) by [`assess`]; returns
    /// the step ([`Step::ReEnter`]: send the registration) and what changed.
    pub fn apply_registration(
        &mut self,
        observed: Option<&Observed>,
        now: u64,
    ) -> (Step, Option<Change>) {
        self.checked_at = Some(now);
        let Some(since) = self.refusal().map(|r| r.block) else {
            return (Step::Listed, None);
        };
        // Registered on the latest state by the send of this watch: believed once confirmed.
        if observed.is_none() && self.sent_in.is_some_and(|block| now < block) {
            return (Step::Wait, None);
        }
        let Some(observed) = observed.filter(|o| !o.listed) else {
            let sent = self.sent_in.take();
            self.registration = None;
            self.reverted_at = None;
            // Registered by the send this watch reported already, or by another one.
            let change = sent.is_none().then_some(Change::Registered { block: None });
            return (Step::Listed, change);
        };
        let (bar, step) = assess(observed, self.reverted_at, now);
        let step = self.unless_unconfirmed(step, now);
        let refusal = Refusal {
            block: since,
            stake: observed.stake,
            bar,
        };
        let changed = self.refusal() != Some(&refusal);
        if let Some((_, r)) = &mut self.registration {
            *r = refusal.clone();
        }
        (
            step,
            changed.then_some(Change::RegistrationRefused(refusal)),
        )
    }

    /// Records the outcome of sending the refused registration again at confirmed height
    /// `now`.
    pub fn registration_sent(&mut self, outcome: &CallOutcome, now: u64) -> Option<Change> {
        match outcome {
            // Believed once its block is confirmed (module docs).
            CallOutcome::Included { block, .. } => {
                self.sent_in = Some(*block);
                if let Some((_, refusal)) = &mut self.registration {
                    refusal.bar = Bar::Open;
                }
                Some(Change::Registered {
                    block: Some(*block),
                })
            }
            CallOutcome::Reverted(Revert::Mined(_)) => {
                self.reverted_at = Some(now);
                None
            }
            CallOutcome::Reverted(_) => None,
        }
    }

    /// Takes an `Evicted` log confirmed in `block`; true when it names this account.
    pub fn on_evicted(&mut self, log: &Coordinator::Evicted, block: u64) -> bool {
        if log.account != self.account {
            return false;
        }
        self.suspected = Some((block, log.by, log.stake));
        true
    }

    /// The confirmed eviction, while the account is off the list.
    pub fn eviction(&self) -> Option<&Eviction> {
        self.evicted.as_ref()
    }

    /// Whether the chain is to be asked at confirmed height `now`: after a log that changed
    /// the account's stake; after an `Evicted` log or a refused registration, once per
    /// confirmed block, until the account is listed (or registered).
    pub fn due(&self, now: u64) -> bool {
        // A failed check is retried at the next confirmed block.
        let failed_here = self.failure.as_ref().is_some_and(|f| f.last >= now);
        !failed_here && (self.stake_due || self.candidacy_due(now))
    }

    fn candidacy_due(&self, now: u64) -> bool {
        (self.suspected.is_some() || self.registration.is_some())
            && self.checked_at.is_none_or(|at| at < now)
    }

    /// Applies the chain's answer at confirmed height `now` ([`assess`]); returns the step and
    /// what changed.
    pub fn apply(&mut self, observed: &Observed, now: u64) -> (Step, Option<Change>) {
        self.checked_at = Some(now);
        let Some((block, by, _)) = self.suspected else {
            return (Step::Listed, None);
        };
        let (bar, step) = assess(observed, self.reverted_at, now);
        if step == Step::Listed {
            let sent = self.sent_in.take();
            self.suspected = None;
            self.reverted_at = None;
            let was = self.evicted.take();
            // A re-entry of this watch was reported when sent.
            let change = was.filter(|_| sent.is_none()).map(|_| Change::Listed);
            return (step, change);
        }
        let step = self.unless_unconfirmed(step, now);
        let eviction = Eviction {
            block,
            by,
            stake: observed.stake,
            bar,
        };
        let changed = self.evicted.as_ref() != Some(&eviction);
        self.evicted = Some(eviction.clone());
        (step, changed.then_some(Change::Evicted(eviction)))
    }

    /// Records a sent re-entry's outcome at confirmed height `now`.
    pub fn re_entry_sent(&mut self, outcome: &CallOutcome, now: u64) -> Option<Change> {
        match outcome {
            // Believed once its block is confirmed (module docs).
            CallOutcome::Included { block, .. } => {
                self.sent_in = Some(*block);
                if let Some(e) = &mut self.evicted {
                    e.bar = Bar::Open;
                }
                Some(Change::ReEntered { block: *block })
            }
            // Refused at estimation costs nothing; mined, it cost gas: hold the next one back.
            CallOutcome::Reverted(Revert::Mined(_)) => {
                self.reverted_at = Some(now);
                None
            }
            CallOutcome::Reverted(_) => None,
        }
    }
}

/// The chain's answer for `account` at confirmed height `now` ([`Observed`]): its listing
/// and stake there and, off the list with an eligible stake, the re-entry's simulation (on the
/// latest state, where it would be sent).
pub async fn observe(client: &Client, account: Address, now: u64) -> Result<Observed, ClientError> {
    let standing = client
        .read_at(Coordinator::candidacyCall { account }, now)
        .await?;
    let stake = client
        .read_at(Coordinator::stakeOfCall { account }, now)
        .await?
        .stake;
    let probe = if !standing.listed && standing.eligible {
        Some(
            match client
                .estimate(Coordinator::addStakeCall {}, U256::ZERO)
                .await?
            {
                Ok(_) => Probe::Enters,
                Err(Revert::Contract(CoordinatorErrors::CandidateListFull(e))) => Probe::ListFull {
                    lowest_stake: e.lowestStake,
                },
                Err(r) => Probe::Refused(r.name()),
            },
        )
    } else {
        None
    };
    Ok(Observed {
        listed: standing.listed,
        eligible: standing.eligible,
        stake,
        probe,
    })
}

/// The chain's answer on `account`'s refused `registration` at confirmed height `now`:
/// [`Observed`] with the registration's simulation (on the latest state) as the probe, listed
/// when the chain lists the account at `now`; `None` when the simulation says the account is
/// registered (by a send not yet confirmed, or another one).
pub async fn observe_registration(
    client: &Client,
    account: Address,
    registration: &Registration,
    now: u64,
) -> Result<Option<Observed>, ClientError> {
    let standing = client
        .read_at(Coordinator::candidacyCall { account }, now)
        .await?;
    let probe = if standing.listed {
        None
    } else {
        match client
            .estimate_calldata(registration.input.clone(), registration.value)
            .await?
        {
            Ok(_) => Some(Probe::Enters),
            Err(Revert::Contract(CoordinatorErrors::AlreadyRegistered(_))) => return Ok(None),
            Err(Revert::Contract(CoordinatorErrors::CandidateListFull(e))) => {
                Some(Probe::ListFull {
                    lowest_stake: e.lowestStake,
                })
            }
            Err(r) => Some(Probe::Refused(r.name())),
        }
    };
    Ok(Some(Observed {
        listed: standing.listed,
        // The contract refuses only an eligible stake for a full list (`_enter`).
        eligible: true,
        stake: registration.value,
        probe,
    }))
}

/// Checks `watch`'s account at confirmed height `now` if due: reads its stake after a log
/// changed it; looks up a send whose receipt was not seen; asks the chain about its candidacy,
/// applies the rule and, when it says so, sends the re-entry (or the refused registration)
/// from `client` (whose account must be the watched one). Returns what changed; a failure is
/// for the caller to record ([`Watch::on_check_failed`]).
pub async fn check(
    client: &Client,
    watch: &std::sync::Mutex<Watch>,
    now: u64,
) -> Result<Vec<Change>, ClientError> {
    let lock = || watch.lock().unwrap_or_else(|e| e.into_inner());
    let (account, stake_due, candidacy_due, unconfirmed, registration) = {
        let mut w = lock();
        (
            w.account,
            w.take_stake_due(),
            w.candidacy_due(now),
            w.unconfirmed,
            w.registration.as_ref().map(|(r, _)| r.clone()),
        )
    };
    let mut changes = Vec::new();
    if stake_due {
        let read = async {
            let stake = client
                .read_at(Coordinator::stakeOfCall { account }, now)
                .await?
                .stake;
            let minimum = client.min_stake(Some(now)).await?;
            Ok::<_, ClientError>((stake, minimum))
        };
        match read.await {
            Ok((stake, minimum)) => changes.extend(lock().apply_stake(stake, minimum, now)),
            Err(e) => {
                lock().stake_read_failed();
                return Err(e);
            }
        }
    }
    if !candidacy_due {
        return Ok(changes);
    }
    if let Some(tx_hash) = unconfirmed {
        let state = client.sent_state(tx_hash).await?;
        let (may_send, change) = lock().on_unconfirmed_state(&state, now);
        changes.extend(change);
        if !may_send {
            return Ok(changes);
        }
    }
    let send = |input: Vec<u8>, value: U256| async move {
        let sent = client.send_calldata(input, value).await;
        if let Err(ClientError::Unconfirmed { tx_hash, .. }) = &sent {
            lock().on_unconfirmed(*tx_hash);
        }
        sent
    };
    if let Some(registration) = registration {
        let observed = observe_registration(client, account, &registration, now).await?;
        let (step, change) = lock().apply_registration(observed.as_ref(), now);
        changes.extend(change);
        if step == Step::ReEnter {
            let outcome = send(registration.input, registration.value).await?;
            changes.extend(lock().registration_sent(&outcome, now));
        }
        return Ok(changes);
    }
    let observed = observe(client, account, now).await?;
    let (step, change) = lock().apply(&observed, now);
    changes.extend(change);
    if step == Step::ReEnter {
        let input = Coordinator::addStakeCall {}.abi_encode();
        let outcome = send(input, U256::ZERO).await?;
        changes.extend(lock().re_entry_sent(&outcome, now));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(probe: Probe) -> Observed {
        Observed {
            listed: false,
            eligible: true,
            stake: U256::from(100),
            probe: Some(probe),
        }
    }

    #[test]
    fn a_full_list_names_the_stake_to_outrank_and_nothing_is_sent() {
        let (bar, step) = assess(
            &off(Probe::ListFull {
                lowest_stake: U256::from(150),
            }),
            None,
            7,
        );
        assert_eq!(bar, Bar::Above(U256::from(150)));
        assert_eq!(bar.needed_stake(), Some(U256::from(151)));
        assert_eq!(step, Step::Wait);
    }

    #[test]
    fn a_full_list_that_all_serves_names_no_stake() {
        let (bar, step) = assess(
            &off(Probe::ListFull {
                lowest_stake: U256::ZERO,
            }),
            None,
            7,
        );
        assert_eq!(bar, Bar::NoneEvictable);
        assert_eq!(bar.needed_stake(), None);
        assert_eq!(step, Step::Wait);
    }

    #[test]
    fn a_passing_simulation_re_enters_unless_a_mined_revert_is_recent() {
        assert_eq!(
            assess(&off(Probe::Enters), None, 7),
            (Bar::Open, Step::ReEnter)
        );
        assert_eq!(assess(&off(Probe::Enters), Some(5), 7).1, Step::Wait);
        assert_eq!(
            assess(&off(Probe::Enters), Some(5), 5 + RETRY_BLOCKS).1,
            Step::ReEnter
        );
    }

    #[test]
    fn listed_or_ineligible_sends_nothing_whatever_the_probe() {
        let mut o = off(Probe::Enters);
        o.listed = true;
        assert_eq!(assess(&o, None, 7).1, Step::Listed);
        // `addStake` with no value passes below the minimum but lists nobody.
        let mut o = off(Probe::Enters);
        o.eligible = false;
        assert_eq!(assess(&o, None, 7), (Bar::BelowMinimum, Step::Wait));
        assert_eq!(
            assess(&off(Probe::Refused("NotRegistered".into())), None, 7),
            (Bar::Refused("NotRegistered".into()), Step::Wait)
        );
    }

    fn evicted_log(account: Address) -> Coordinator::Evicted {
        Coordinator::Evicted {
            account,
            by: Address::repeat_byte(9),
            stake: U256::from(100),
        }
    }

    #[test]
    fn a_log_is_believed_only_once_the_chain_confirms_it() {
        let me = Address::repeat_byte(1);
        let mut w = Watch::new(me);
        assert!(!w.on_evicted(&evicted_log(Address::repeat_byte(2)), 3));
        assert!(!w.due(4));
        assert!(w.on_evicted(&evicted_log(me), 3));
        assert!(w.eviction().is_none());
        assert!(w.due(4));
        // The chain lists it (an old log replayed after a restart): nothing was evicted.
        let mut listed = off(Probe::Enters);
        listed.listed = true;
        assert_eq!(w.apply(&listed, 4), (Step::Listed, None));
        assert!(!w.due(5));

        assert!(w.on_evicted(&evicted_log(me), 6));
        let full = off(Probe::ListFull {
            lowest_stake: U256::from(150),
        });
        let (step, change) = w.apply(&full, 6);
        assert_eq!(step, Step::Wait);
        let Some(Change::Evicted(e)) = change else {
            panic!("{change:?}")
        };
        assert_eq!((e.block, e.bar.needed_stake()), (6, Some(U256::from(151))));
        // Asked once per confirmed block; an unchanged answer is no change.
        assert!(!w.due(6));
        assert_eq!(w.apply(&full, 7), (Step::Wait, None));
        // A place frees: re-entry; a mined revert holds the next attempt back.
        assert_eq!(w.apply(&off(Probe::Enters), 8).0, Step::ReEnter);
        assert_eq!(
            w.re_entry_sent(&CallOutcome::Reverted(Revert::Mined(None)), 8),
            None
        );
        assert_eq!(w.apply(&off(Probe::Enters), 9).0, Step::Wait);
        assert_eq!(
            w.apply(&off(Probe::Enters), 8 + RETRY_BLOCKS).0,
            Step::ReEnter
        );
        let included = CallOutcome::Included {
            block: 20,
            tx_hash: Default::default(),
        };
        assert_eq!(
            w.re_entry_sent(&included, 18),
            Some(Change::ReEntered { block: 20 })
        );
        // Over once the chain lists it at a confirmed height past the re-entry's block.
        let mut listed = off(Probe::Enters);
        listed.listed = true;
        assert_eq!(w.apply(&listed, 20), (Step::Listed, None));
        assert!(w.eviction().is_none());
        assert!(!w.due(30));
    }

    #[test]
    fn a_re_entry_is_believed_only_once_its_block_is_confirmed() {
        let me = Address::repeat_byte(1);
        let mut w = Watch::new(me);
        w.on_evicted(&evicted_log(me), 3);
        assert_eq!(w.apply(&off(Probe::Enters), 4).0, Step::ReEnter);
        let included = CallOutcome::Included {
            block: 6,
            tx_hash: Default::default(),
        };
        assert_eq!(
            w.re_entry_sent(&included, 4),
            Some(Change::ReEntered { block: 6 })
        );
        // Not confirmed yet: still shown, re-entering, and nothing sent again although the
        // latest state (listed there) lets `addStake()` pass.
        assert_eq!(w.eviction().map(|e| &e.bar), Some(&Bar::Open));
        assert!(w.due(5));
        assert_eq!(w.apply(&off(Probe::Enters), 5).0, Step::Wait);
        // Confirmed but not listed there: a reorg dropped it, and the rule applies again.
        assert_eq!(w.apply(&off(Probe::Enters), 6).0, Step::ReEnter);
        assert_eq!(
            w.re_entry_sent(&included, 6),
            Some(Change::ReEntered { block: 6 })
        );
        let mut listed = off(Probe::Enters);
        listed.listed = true;
        assert_eq!(w.apply(&listed, 7), (Step::Listed, None));
        assert!(w.eviction().is_none());

        // The same for a refused registration: registered on the latest state only.
        let registration = Registration {
            input: vec![1],
            value: U256::from(100),
        };
        w.on_registration_refused(registration, U256::from(150), false, 8);
        assert_eq!(
            w.apply_registration(Some(&off(Probe::Enters)), 9).0,
            Step::ReEnter
        );
        let included = CallOutcome::Included {
            block: 11,
            tx_hash: Default::default(),
        };
        w.registration_sent(&included, 9);
        assert_eq!(w.apply_registration(None, 10), (Step::Wait, None));
        assert_eq!(w.refusal().map(|r| &r.bar), Some(&Bar::Open));
        assert_eq!(
            w.apply_registration(Some(&listed), 11),
            (Step::Listed, None)
        );
        assert!(w.refusal().is_none());
    }

    #[test]
    fn a_refused_registration_is_reported_and_sent_again_once_it_would_pass() {
        let mut w = Watch::new(Address::repeat_byte(1));
        let registration = Registration {
            input: vec![1, 2, 3],
            value: U256::from(100),
        };
        let refused = w.on_registration_refused(registration.clone(), U256::from(150), false, 4);
        let Some(Change::RegistrationRefused(r)) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(
            (r.block, r.stake, r.bar.needed_stake(), r.bar.name()),
            (4, U256::from(100), Some(U256::from(151)), "list_full")
        );
        assert_eq!(w.refusal(), Some(&r));
        assert!(w.eviction().is_none());
        // The same refusal again is no change; the chain is asked from the next block.
        assert_eq!(
            w.on_registration_refused(registration.clone(), U256::from(150), false, 4),
            None
        );
        assert!(!w.due(4));
        assert!(w.due(5));
        let none_evictable = off(Probe::ListFull {
            lowest_stake: U256::ZERO,
        });
        let (step, change) = w.apply_registration(Some(&none_evictable), 5);
        assert_eq!(step, Step::Wait);
        let Some(Change::RegistrationRefused(r)) = change else {
            panic!("{change:?}")
        };
        assert_eq!((r.block, r.bar), (4, Bar::NoneEvictable));
        // A place frees: the registration goes at once, and the watch ends with it.
        assert_eq!(
            w.apply_registration(Some(&off(Probe::Enters)), 6).0,
            Step::ReEnter
        );
        let included = CallOutcome::Included {
            block: 7,
            tx_hash: Default::default(),
        };
        assert_eq!(
            w.registration_sent(&included, 6),
            Some(Change::Registered { block: Some(7) })
        );
        let mut listed = off(Probe::Enters);
        listed.listed = true;
        assert_eq!(w.apply_registration(Some(&listed), 7), (Step::Listed, None));
        assert!(w.refusal().is_none());
        assert!(!w.due(8));

        // A refusal mined (it cost gas) holds the next send back; the account registered by
        // another send ends the watch.
        w.on_registration_refused(registration, U256::from(150), true, 9);
        assert_eq!(
            w.apply_registration(Some(&off(Probe::Enters)), 10).0,
            Step::Wait
        );
        assert_eq!(
            w.apply_registration(None, 11),
            (Step::Listed, Some(Change::Registered { block: None }))
        );
        assert!(!w.due(12));
    }

    #[test]
    fn a_failing_check_warns_first_on_a_new_error_and_every_n_blocks() {
        let mut w = Watch::new(Address::repeat_byte(1));
        w.on_evicted(&evicted_log(Address::repeat_byte(1)), 3);
        assert!(w.on_check_failed("insufficient funds".into(), 10));
        // Retried at the next confirmed block, not again at this one.
        assert!(!w.due(10));
        assert!(w.due(11));
        for now in 11..10 + WARN_EVERY_BLOCKS {
            assert!(
                !w.on_check_failed("insufficient funds".into(), now),
                "{now}"
            );
        }
        assert!(w.on_check_failed("insufficient funds".into(), 10 + WARN_EVERY_BLOCKS));
        assert!(!w.on_check_failed("insufficient funds".into(), 11 + WARN_EVERY_BLOCKS));
        // Another error is told at once.
        assert!(w.on_check_failed("connection refused".into(), 12 + WARN_EVERY_BLOCKS));
        let f = w.check_failure().unwrap().clone();
        assert_eq!(
            (f.since, f.last, f.failures, f.error.as_str()),
            (
                10,
                12 + WARN_EVERY_BLOCKS,
                WARN_EVERY_BLOCKS + 3,
                "connection refused"
            )
        );
        // A success ends it, and the next failure warns again.
        assert_eq!(w.on_check_succeeded(), Some(f));
        assert_eq!(w.check_failure(), None);
        assert!(w.on_check_failed("connection refused".into(), 13 + WARN_EVERY_BLOCKS));
    }

    #[test]
    fn a_stake_below_the_minimum_is_reported_until_it_reaches_it() {
        let me = Address::repeat_byte(1);
        let mut w = Watch::new(me);
        assert!(!eligible(U256::ZERO, U256::ZERO));
        assert!(eligible(U256::from(100), U256::from(100)));
        let Some(Change::BelowMinimum(s)) =
            w.on_registration_below_minimum(U256::from(50), U256::from(100), 4)
        else {
            panic!("{:?}", w.shortfall())
        };
        assert_eq!(
            (s.block, s.stake, s.minimum, s.registered),
            (4, U256::from(50), U256::from(100), false)
        );
        assert_eq!(
            w.on_registration_below_minimum(U256::from(50), U256::from(100), 5),
            None
        );
        // Registered all the same (by another send): its `Registered` log has the stake read.
        assert!(!w.due(6));
        assert!(!w.on_stake_changed(Address::repeat_byte(2)));
        assert!(w.on_stake_changed(me));
        assert!(w.due(6));
        assert!(w.take_stake_due());
        let change = w.apply_stake(U256::from(50), U256::from(100), 6);
        let Some(Change::BelowMinimum(s)) = change else {
            panic!("{change:?}")
        };
        assert_eq!((s.block, s.registered), (4, true));
        assert!(!w.due(7));
        // A failed read asks again at the next check.
        w.on_stake_changed(me);
        assert!(w.take_stake_due());
        w.stake_read_failed();
        assert!(w.due(7));
        // Stake added while the stake was being read: that log is read at the next check.
        assert!(w.take_stake_due());
        w.on_stake_changed(me);
        let change = w.apply_stake(U256::from(50), U256::from(100), 7);
        assert_eq!(change, None);
        assert!(w.due(8));
        assert!(w.take_stake_due());
        assert_eq!(
            w.apply_stake(U256::from(100), U256::from(100), 8),
            Some(Change::StakeSufficient)
        );
        assert_eq!(w.shortfall(), None);
        assert!(!w.due(9));
        w.on_stake_changed(me);
        assert!(w.take_stake_due());
        assert_eq!(w.apply_stake(U256::from(100), U256::from(100), 9), None);
    }

    #[test]
    fn an_unconfirmed_send_is_looked_up_and_nothing_is_sent_while_it_is_pending() {
        let me = Address::repeat_byte(1);
        let mut w = Watch::new(me);
        w.on_evicted(&evicted_log(me), 3);
        assert_eq!(w.apply(&off(Probe::Enters), 4).0, Step::ReEnter);
        let hash = B256::repeat_byte(7);
        w.on_unconfirmed(hash);
        assert_eq!(w.unconfirmed(), Some(hash));
        assert_eq!(
            w.on_unconfirmed_state(&SentState::Pending, 5),
            (false, None)
        );
        assert_eq!(w.unconfirmed(), Some(hash));
        assert!(!w.due(5));
        // Mined after all: its outcome is taken as the wait would have, and nothing is sent.
        let included = CallOutcome::Included {
            block: 6,
            tx_hash: hash,
        };
        assert_eq!(
            w.on_unconfirmed_state(&SentState::Mined(included), 6),
            (false, Some(Change::ReEntered { block: 6 }))
        );
        assert_eq!(w.unconfirmed(), None);
        // Dropped: the rule applies again.
        w.on_unconfirmed(hash);
        assert_eq!(w.on_unconfirmed_state(&SentState::Dropped, 7), (true, None));
        assert_eq!(w.unconfirmed(), None);
    }
}
