//! Ceremonies: everything that identifies one run of the protocol among a fixed committee,
//! hashed into its session id.
//!
//! As in MaidSafe's `DkgSessionId` (seed 002), a ceremony is named by its participants and a
//! generation; keyquorum's id also binds the domain (chain), the epoch (view number), the
//! protocol variant, the curve, the parameters, every participant's identity and encryption keys
//! in committee order, the index scheme, and for resharing the previous group key and committee.
//! The resharing part enters the id as its own digest ([`reshare_digest`]): it depends on the
//! previous view alone, so a coordinator contract computes it once, when that view's magic block
//! activates, rather than reading the whole previous committee again at every start.
//! Every signed message and every ciphertext carries or is bound to the id, so nothing from one
//! ceremony can be replayed into another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ff::Field;

use keyquorum_crypto::batch::HashedMessages;
use keyquorum_crypto::commit::DualCode;
use keyquorum_crypto::encrypt::EncryptionPublicKey;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::index::{self, IndexScheme};
use keyquorum_crypto::pairing::PreparedKeys;
use keyquorum_crypto::poly::lagrange_at_zero;
use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionPublicKey;
use keyquorum_crypto::{CryptoError, Curve};
use thiserror::Error;

use crate::identity::IdentityPublicKey;
use crate::params::{Params, ParamsError};

/// A 32-byte session id.
pub type SessionId = [u8; 32];

/// Protocol variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Züs-style: acks or public reveals, the board as broadcast (seeds 000, 001).
    AckReveal,
    /// GJKR / Stinson-Strobl style: Pedersen commitments, complaints, clique, reconstruction
    /// (seed 003).
    Complaint,
}

impl Variant {
    fn tag(self) -> u8 {
        match self {
            Variant::AckReveal => 1,
            Variant::Complaint => 2,
        }
    }
}

/// A committee member (dealer or player) as registered: identity key (proof of possession
/// checked by the registry) and share-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Identity (signing) key.
    pub identity: IdentityPublicKey,
    /// HPKE key that shares are encrypted to.
    pub encryption: EncryptionPublicKey,
}

/// The previous committee and key, when resharing.
#[derive(Debug, Clone)]
pub struct Reshare<C: Curve> {
    /// The old committee, in its order; they are the dealers.
    pub dealers: Vec<Member>,
    /// The old members' indices.
    pub dealer_indices: Vec<C::Scalar>,
    /// The old threshold: at least this many old members must qualify.
    pub old_threshold: usize,
    /// The old group public key, which the new committee keeps.
    pub group_key: C::Affine,
    /// The old public key shares, in old committee order. A dealer's commitment must start with
    /// its own.
    pub public_shares: Vec<C::Affine>,
}

/// Errors building a ceremony.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CeremonyError {
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The player list does not have `n` members.
    #[error("expected {expected} players, got {actual}")]
    PlayerCount {
        /// `n`.
        expected: usize,
        /// Given.
        actual: usize,
    },
    /// A key appears twice.
    #[error("duplicate participant key")]
    Duplicate,
    /// Index assignment failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Resharing data is inconsistent.
    #[error("inconsistent resharing data: {0}")]
    Reshare(&'static str),
    /// The complaint variant needs one verifiable-encryption key per player; the ack-or-reveal
    /// variant takes none.
    #[error("expected {expected} verifiable-encryption keys, got {actual}")]
    VerifiableKeyCount {
        /// One per player (complaint variant) or none.
        expected: usize,
        /// Given.
        actual: usize,
    },
}

/// Everything that defines one ceremony.
#[derive(Debug, Clone)]
pub struct CeremonyConfig<C: Curve> {
    /// Application domain, e.g. the chain id.
    pub domain: Vec<u8>,
    /// View number / epoch the ceremony produces keys for.
    pub epoch: u64,
    /// Protocol variant.
    pub variant: Variant,
    /// Parameters of the receiving committee.
    pub params: Params,
    /// How players' indices are assigned.
    pub index_scheme: IndexScheme,
    /// The receiving committee in order (for a fresh key also the dealers).
    pub players: Vec<Member>,
    /// Complaint variant: each player's key for verifiable share encryption
    /// ([`keyquorum_crypto::verifiable_encrypt`]), in player order, so that a complaint about a
    /// deal can be checked by anyone. Empty for the ack-or-reveal variant.
    pub verifiable_keys: Vec<VerifiableEncryptionPublicKey>,
    /// Present when resharing an existing key to `players`.
    pub reshare: Option<Reshare<C>>,
}

/// A validated ceremony with the values every participant derives from it.
#[derive(Debug)]
pub struct Ceremony<C: Curve> {
    config: CeremonyConfig<C>,
    id: SessionId,
    player_indices: Vec<C::Scalar>,
    dual_code: DualCode<C::Scalar>,
    /// Results of pure, expensive checks (signatures, degree checks) keyed by a digest of
    /// everything they depend on, so that components sharing a ceremony (a node's participant and
    /// its replica of the contract, or the simulated nodes of one process) check each post once.
    verified: Mutex<CheckCache>,
    /// Ack messages hashed to G1 by this process's player when it signed them, so that its
    /// replica of the board verifies the aggregates of the same messages without hashing them
    /// again. Only signing fills it (one message per dealer), so the board's input cannot.
    signed_hashes: HashedMessages,
    /// The identity keys of the players and of the dealers that are not players, with their
    /// Miller-loop lines, built by the first batch signature check and reused by the later ones
    /// (the contribution and publication phases check signatures under the same keys).
    batch_keys: OnceLock<BatchKeys>,
}

/// Identity keys in batch-verification slots: the players first (ack sets index them), then the
/// dealers that are not players.
#[derive(Debug)]
pub(crate) struct BatchKeys {
    /// The keys of the slots, with their lines.
    pub(crate) prepared: PreparedKeys,
    /// Each dealer's slot.
    pub(crate) dealer_slot: Vec<usize>,
}

/// Most check results a [`Ceremony`] remembers. A ceremony of [`MAX_PARTICIPANTS`] needs about
/// `n` post signatures and `n` ack aggregates per attempt; twice that fits in one generation.
///
/// [`MAX_PARTICIPANTS`]: crate::params::MAX_PARTICIPANTS
pub const CHECK_CACHE_CAPACITY: usize = 4 * crate::params::MAX_PARTICIPANTS;

/// A bounded memo of check results in two generations: inserts go to `current`; when it holds
/// half the capacity it becomes `previous` and the old `previous` is dropped. Lookups see both,
/// so what was checked recently stays remembered while the total never exceeds the capacity.
#[derive(Debug, Default)]
struct CheckCache {
    current: HashMap<[u8; 32], bool>,
    previous: HashMap<[u8; 32], bool>,
}

impl CheckCache {
    fn get(&self, key: &[u8; 32]) -> Option<bool> {
        self.current
            .get(key)
            .or_else(|| self.previous.get(key))
            .copied()
    }

    fn insert(&mut self, key: [u8; 32], value: bool) {
        if self.current.len() >= CHECK_CACHE_CAPACITY / 2 {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl<C: Curve> Ceremony<C> {
    /// Validates a configuration and derives the session id, indices and check weights.
    pub fn new(config: CeremonyConfig<C>) -> Result<Arc<Self>, CeremonyError> {
        let n = config.params.n();
        if config.players.len() != n {
            return Err(CeremonyError::PlayerCount {
                expected: n,
                actual: config.players.len(),
            });
        }
        let expected_keys = match config.variant {
            Variant::Complaint => n,
            Variant::AckReveal => 0,
        };
        if config.verifiable_keys.len() != expected_keys {
            return Err(CeremonyError::VerifiableKeyCount {
                expected: expected_keys,
                actual: config.verifiable_keys.len(),
            });
        }
        let mut ids: Vec<_> = config
            .players
            .iter()
            .map(|p| p.identity.to_bytes())
            .collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(CeremonyError::Duplicate);
        }
        let keys: Vec<Vec<u8>> = config
            .players
            .iter()
            .map(|p| p.identity.to_bytes().to_vec())
            .collect();
        let player_indices = index::assign::<C>(config.index_scheme, &keys)?;
        if let Some(r) = &config.reshare {
            if r.dealers.is_empty()
                || r.dealer_indices.len() != r.dealers.len()
                || r.public_shares.len() != r.dealers.len()
            {
                return Err(CeremonyError::Reshare("dealer lists differ in length"));
            }
            if r.old_threshold == 0 || r.old_threshold > r.dealers.len() {
                return Err(CeremonyError::Reshare("old threshold out of range"));
            }
            index::check_distinct(&r.dealer_indices)?;
        }
        let dual_code = DualCode::new(&player_indices, config.params.t())?;
        let id = session_id(&config);
        let dealers = config.reshare.as_ref().map_or(n, |r| r.dealers.len());
        Ok(Arc::new(Ceremony {
            config,
            id,
            player_indices,
            dual_code,
            verified: Mutex::new(CheckCache::default()),
            signed_hashes: HashedMessages::new(crate::identity::SIG_DST, dealers),
            batch_keys: OnceLock::new(),
        }))
    }

    /// Runs a pure check once per `key` (a digest of all of its inputs) and remembers the answer.
    /// The memory is bounded ([`CHECK_CACHE_CAPACITY`]): a flood of distinct posts costs
    /// their checks, never unbounded memory.
    pub fn check_once(&self, key: [u8; 32], check: impl FnOnce() -> bool) -> bool {
        if let Some(v) = self.verified.lock().ok().and_then(|c| c.get(&key)) {
            return v;
        }
        let v = check();
        if let Ok(mut c) = self.verified.lock() {
            c.insert(key, v);
        }
        v
    }

    /// Forgets every remembered check result, so that a benchmark can time a check as the
    /// first component to see its inputs does (the answers are unchanged: see
    /// [`Ceremony::check_once`]).
    #[cfg(feature = "testing")]
    pub fn forget_checks(&self) {
        if let Ok(mut c) = self.verified.lock() {
            *c = CheckCache::default();
        }
    }

    /// Messages this process signed, hashed to G1 ([`IdentityKeypair::sign_remembered`]
    /// fills it, batch verification reads it).
    ///
    /// [`IdentityKeypair::sign_remembered`]: crate::identity::IdentityKeypair::sign_remembered
    pub fn signed_hashes(&self) -> &HashedMessages {
        &self.signed_hashes
    }

    /// The identity keys in batch-verification slots with their Miller-loop lines, computed on
    /// first use (over the current rayon pool).
    pub(crate) fn batch_keys(&self) -> &BatchKeys {
        self.batch_keys.get_or_init(|| {
            let players = self.players();
            let mut keys: Vec<blst::blst_p2_affine> =
                players.iter().map(|p| p.identity.point()).collect();
            let by_key: HashMap<&crate::identity::IdentityPublicKey, usize> = players
                .iter()
                .enumerate()
                .map(|(i, p)| (&p.identity, i))
                .collect();
            let dealer_slot = self
                .dealers()
                .iter()
                .map(|d| match by_key.get(&d.identity) {
                    Some(i) => *i,
                    None => {
                        keys.push(d.identity.point());
                        keys.len() - 1
                    }
                })
                .collect();
            BatchKeys {
                prepared: PreparedKeys::new(keys),
                dealer_slot,
            }
        })
    }

    /// How many check results are remembered (at most [`CHECK_CACHE_CAPACITY`]).
    pub fn cached_checks(&self) -> usize {
        self.verified.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// The session id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The configuration.
    pub fn config(&self) -> &CeremonyConfig<C> {
        &self.config
    }

    /// Parameters of the receiving committee.
    pub fn params(&self) -> Params {
        self.config.params
    }

    /// Number of players `n`.
    pub fn n(&self) -> usize {
        self.config.params.n()
    }

    /// Threshold `t` of the new key.
    pub fn t(&self) -> usize {
        self.config.params.t()
    }

    /// Complaint variant: player `j`'s verifiable-encryption key (`None` out of range or for
    /// the ack-or-reveal variant).
    pub fn verifiable_key(&self, player: u32) -> Option<&VerifiableEncryptionPublicKey> {
        self.config.verifiable_keys.get(player as usize)
    }

    /// The players in order.
    pub fn players(&self) -> &[Member] {
        &self.config.players
    }

    /// The dealers in order: the old committee when resharing, else the players.
    pub fn dealers(&self) -> &[Member] {
        match &self.config.reshare {
            Some(r) => &r.dealers,
            None => &self.config.players,
        }
    }

    /// Number of dealers.
    pub fn dealer_count(&self) -> usize {
        self.dealers().len()
    }

    /// Fewest qualified dealers for success: `k` for a fresh key; when resharing, the old
    /// threshold. Interpolating the old secret needs `t_old` old shares and no more: the new
    /// sharing's secrecy rests on the honest dealers' random polynomials, and `t_old`
    /// corrupt old members would hold the old key already. Asking for more (say `min(k, n_old)`
    /// when the committee grows) would let one silent old member within the old fault bound
    /// fail every reshare to a larger committee.
    pub fn dealer_quorum(&self) -> usize {
        match &self.config.reshare {
            Some(r) => r.old_threshold,
            None => self.config.params.k(),
        }
    }

    /// The most dealers that may be corrupt, which bounds how many publications can lie about
    /// a player. Fresh key: `f = n - k`. Resharing: the dealers are the old committee, whose
    /// quorum `k_old` the ceremony does not carry; its fault bound `n_old - k_old` is at most
    /// `n_old - t_old` (as `k_old >= t_old`) and at most `t_old - 1` (as `t_old + k_old >
    /// n_old`), so the smaller of the two is used. It is exact for BFT parameters, and never
    /// below the true bound, so a player is never excluded on the reports of lying dealers
    /// alone.
    pub fn dealer_fault_bound(&self) -> usize {
        match &self.config.reshare {
            Some(r) => {
                let n_old = r.dealers.len();
                (n_old - r.old_threshold).min(r.old_threshold - 1)
            }
            None => self.config.params.fault_bound(),
        }
    }

    /// The weights `w_i` with which the commitments of the qualified `dealers` (positions, in
    /// the order given) add up to the group's public values `Y = sum_i w_i E_i`. For a fresh key
    /// every dealer's polynomial is a summand, so every weight is one. When resharing, dealer
    /// `i`'s constant term is its old share `s(x_i)`, so the new secret is the old one only if
    /// the constants are combined with the Lagrange coefficients at zero over the qualified
    /// dealers' old indices (Desmedt-Jajodia redistribution): `sum_i l_i(0) s(x_i) = s(0)`.
    ///
    /// Both variants' boards use this one function, so they cannot disagree on a reshared key.
    pub fn dealer_weights(&self, dealers: &[u32]) -> Vec<C::Scalar> {
        match &self.config.reshare {
            None => vec![C::Scalar::ONE; dealers.len()],
            Some(r) => {
                let xs: Vec<C::Scalar> = dealers
                    .iter()
                    .map(|d| r.dealer_indices[*d as usize])
                    .collect();
                // `Ceremony::new` checked the old indices distinct and non-zero, and a board only
                // passes positions of its own dealers.
                lagrange_at_zero(&xs).expect("dealer indices validated distinct and non-zero")
            }
        }
    }

    /// Players' indices `x_1..x_n`.
    pub fn player_indices(&self) -> &[C::Scalar] {
        &self.player_indices
    }

    /// Dual-code weights for degree checks of evaluation-form commitments.
    pub fn dual_code(&self) -> &DualCode<C::Scalar> {
        &self.dual_code
    }

    /// The resharing data, if any.
    pub fn reshare(&self) -> Option<&Reshare<C>> {
        self.config.reshare.as_ref()
    }

    /// Position of a dealer by identity key.
    pub fn dealer_position(&self, key: &IdentityPublicKey) -> Option<u32> {
        self.dealers()
            .iter()
            .position(|p| &p.identity == key)
            .map(|i| i as u32)
    }

    /// Position of a player by identity key.
    pub fn player_position(&self, key: &IdentityPublicKey) -> Option<u32> {
        self.players()
            .iter()
            .position(|p| &p.identity == key)
            .map(|i| i as u32)
    }

    /// Fiat-Shamir seed of the degree check of one dealer's commitment.
    pub fn degree_check_seed(&self, dealer: u32, commitment_hash: &[u8; 32]) -> [u8; 32] {
        tagged_hash(
            "keyquorum/degree-check/v1",
            &[&self.id, &dealer.to_be_bytes(), commitment_hash],
        )
    }
}

/// The digest of what a resharing ceremony takes from the previous view: its group key, its
/// threshold and, in dealer order, each dealer's identity and encryption keys, old index and
/// public key share. The session id binds it in place of those parts.
pub fn reshare_digest<C: Curve>(r: &Reshare<C>) -> [u8; 32] {
    let mut parts: Vec<Vec<u8>> = vec![
        C::point_bytes(&r.group_key),
        (r.old_threshold as u64).to_be_bytes().to_vec(),
    ];
    for ((d, x), y) in r
        .dealers
        .iter()
        .zip(&r.dealer_indices)
        .zip(&r.public_shares)
    {
        parts.push(d.identity.to_bytes().to_vec());
        parts.push(d.encryption.to_bytes().to_vec());
        parts.push(C::encode_scalar(x).to_vec());
        parts.push(C::point_bytes(y));
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    tagged_hash("keyquorum/session-reshare/v1", &refs)
}

/// The session id of a configuration (see the module docs for what it binds).
pub fn session_id<C: Curve>(config: &CeremonyConfig<C>) -> SessionId {
    let mut parts: Vec<Vec<u8>> = vec![
        config.domain.clone(),
        config.epoch.to_be_bytes().to_vec(),
        vec![config.variant.tag()],
        C::NAME.as_bytes().to_vec(),
        (config.params.n() as u64).to_be_bytes().to_vec(),
        (config.params.t() as u64).to_be_bytes().to_vec(),
        (config.params.k() as u64).to_be_bytes().to_vec(),
        vec![match config.index_scheme {
            IndexScheme::Sequential => 1,
            IndexScheme::PublicKeyHash => 2,
            IndexScheme::RootsOfUnity => 3,
        }],
    ];
    for p in &config.players {
        parts.push(p.identity.to_bytes().to_vec());
        parts.push(p.encryption.to_bytes().to_vec());
    }
    match &config.reshare {
        None => parts.push(vec![0]),
        Some(r) => {
            parts.push(vec![1]);
            parts.push(reshare_digest(r).to_vec());
        }
    }
    // Only the complaint variant has these keys; leaving them out when there are none keeps the
    // ack-or-reveal ids as they were.
    if !config.verifiable_keys.is_empty() {
        parts.push(vec![2]);
        for k in &config.verifiable_keys {
            parts.push(k.to_bytes().to_vec());
        }
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    tagged_hash("keyquorum/session/v1", &refs)
}
