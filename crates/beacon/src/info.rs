//! Chain info: what a client needs to verify every round of one chain, in drand's JSON format,
//! and the chain hash that names the chain.
//!
//! # JSON
//! drand's `/info` answer (HTTP API v1):
//! `{"public_key": hex, "period": seconds, "genesis_time": unix seconds, "hash": hex,
//! "groupHash": hex, "schemeID": id, "metadata": {"beaconID": id}}`. drand's v2 API names the
//! same fields `genesis_seed`, `chain_hash`, `scheme` and `beacon_id`; both spellings decode
//! (v2 wins where both are present, as in drand's `Info.UnmarshalJSON`). A missing scheme
//! means drand's default, `pedersen-bls-chained`; a missing beacon id means `default`.
//!
//! # Chain hash
//! As drand's `Info.Hash` (`common/chain/info.go`):
//! `sha256(period as u32 BE || genesis_time as i64 BE || public key || group hash
//! [|| beacon id, unless it is empty or "default"])`. The scheme is *not* hashed: recomputing
//! the published hashes of `quicknet` (`bls-unchained-g1-rfc9380`), the deprecated `fastnet`
//! (`bls-unchained-on-g1`) and drand's unchained testnet with the scheme appended gives other
//! values, so a pinned chain hash pins the key, the schedule and the genesis seed but not the
//! scheme. That is harmless for soundness (every round still needs a valid signature under the
//! pinned key) and is what drand does.
//!
//! # keyquorum's link between chains
//! A keyquorum view that keeps the group key (a reshare) continues its chain. A view with a
//! fresh key starts a new chain, and its info carries, in `metadata`, the hash of the magic
//! block that started it (`magicBlockHash`) and the chain hash of the chain it follows
//! (`previousChainHash`, absent for the first chain). The group hash of such a chain is
//! [`genesis_seed`] of those two, so the chain hash commits to the link; decoding refuses info
//! whose link does not hash to its group hash. drand clients ignore the extra metadata.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::InfoError;
use crate::scheme::{
    BlsUnchainedG1Rfc9380, BlsUnchainedOnG1, PedersenBlsChained, PedersenBlsUnchained, SchemeId,
};
use crate::time;

/// Upper bound on the size of chain info JSON accepted by [`ChainInfo::from_json`].
pub const MAX_INFO_JSON: usize = 8 * 1024;
/// Longest beacon id accepted.
pub const MAX_BEACON_ID_LEN: usize = 64;
/// drand's default beacon id (left out of the chain hash).
pub const DEFAULT_BEACON_ID: &str = "default";
/// The period keyquorum chains use unless the magic block says otherwise.
pub const DEFAULT_PERIOD_SECS: u32 = 3;

/// Domain tag of [`genesis_seed`].
const GENESIS_SEED_TAG: &[u8] = b"keyquorum/beacon/genesis-seed/v1";

/// Where a keyquorum chain comes from (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    /// Hash of the magic block of the view that started this chain.
    pub magic_block_hash: [u8; 32],
    /// Chain hash of the chain this one follows; `None` for a network's first chain.
    pub previous_chain_hash: Option<[u8; 32]>,
}

/// The genesis seed (drand's `groupHash`) of a keyquorum chain:
/// `sha256(tag || magic block hash || previous chain hash or 32 zero bytes)`.
pub fn genesis_seed(link: &ChainLink) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(GENESIS_SEED_TAG);
    h.update(link.magic_block_hash);
    h.update(link.previous_chain_hash.unwrap_or([0u8; 32]));
    h.finalize().into()
}

/// The public description of one chain. Built only through the validating constructors, so a
/// value always holds a valid key for its scheme, a non-zero period and a bounded beacon id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    scheme: SchemeId,
    public_key: Vec<u8>,
    period_secs: u32,
    genesis_time: i64,
    group_hash: [u8; 32],
    beacon_id: String,
    link: Option<ChainLink>,
}

impl ChainInfo {
    /// Validates and assembles chain info.
    pub fn new(
        scheme: SchemeId,
        public_key: &[u8],
        period_secs: u32,
        genesis_time: i64,
        group_hash: [u8; 32],
        beacon_id: &str,
    ) -> Result<Self, InfoError> {
        validate_public_key(scheme, public_key)?;
        if period_secs == 0 {
            return Err(InfoError::ZeroPeriod);
        }
        if genesis_time < 0 {
            return Err(InfoError::NegativeGenesis(genesis_time));
        }
        validate_beacon_id(beacon_id)?;
        Ok(ChainInfo {
            scheme,
            public_key: public_key.to_vec(),
            period_secs,
            genesis_time,
            group_hash,
            beacon_id: beacon_id.to_owned(),
            link: None,
        })
    }

    /// Chain info of a keyquorum chain started by the view whose magic block is
    /// `link.magic_block_hash`; its group hash is [`genesis_seed`] of the link.
    pub fn keyquorum(
        scheme: SchemeId,
        public_key: &[u8],
        period_secs: u32,
        genesis_time: i64,
        beacon_id: &str,
        link: ChainLink,
    ) -> Result<Self, InfoError> {
        let mut info = ChainInfo::new(
            scheme,
            public_key,
            period_secs,
            genesis_time,
            genesis_seed(&link),
            beacon_id,
        )?;
        info.link = Some(link);
        Ok(info)
    }

    /// The chain a new view signs on. A view that kept the group key (a reshare) continues
    /// `previous` unchanged: same chain hash, rounds go on. A view with another key (a fresh
    /// DKG) starts a chain whose link names `previous` and the view's magic block, with the
    /// genesis time and period the caller takes from the magic block; so does the first view
    /// (`previous` is `None`).
    pub fn for_view(
        previous: Option<&ChainInfo>,
        scheme: SchemeId,
        group_key: &[u8],
        magic_block_hash: [u8; 32],
        genesis_time: i64,
        period_secs: u32,
        beacon_id: &str,
    ) -> Result<ChainInfo, InfoError> {
        if let Some(prev) = previous
            && prev.public_key == group_key
            && prev.scheme == scheme
        {
            return Ok(prev.clone());
        }
        ChainInfo::keyquorum(
            scheme,
            group_key,
            period_secs,
            genesis_time,
            beacon_id,
            ChainLink {
                magic_block_hash,
                previous_chain_hash: previous.map(ChainInfo::hash),
            },
        )
    }

    /// The scheme.
    pub fn scheme(&self) -> SchemeId {
        self.scheme
    }
    /// The compressed group public key (valid for the scheme).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
    /// Seconds between rounds (non-zero).
    pub fn period_secs(&self) -> u32 {
        self.period_secs
    }
    /// Unix time of round 1.
    pub fn genesis_time(&self) -> i64 {
        self.genesis_time
    }
    /// The genesis seed (`groupHash`): the "previous signature" of round 1 in a chained scheme.
    pub fn group_hash(&self) -> &[u8; 32] {
        &self.group_hash
    }
    /// The beacon id (`metadata.beaconID`).
    pub fn beacon_id(&self) -> &str {
        &self.beacon_id
    }
    /// keyquorum's link to the previous chain, when the info carries one.
    pub fn link(&self) -> Option<&ChainLink> {
        self.link.as_ref()
    }

    /// The chain hash, as drand computes it (see the module documentation).
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.period_secs.to_be_bytes());
        h.update(self.genesis_time.to_be_bytes());
        h.update(&self.public_key);
        h.update(self.group_hash);
        if !is_default_beacon_id(&self.beacon_id) {
            h.update(self.beacon_id.as_bytes());
        }
        h.finalize().into()
    }

    /// When round `round` starts (`None` for round 0 or past `i64`).
    pub fn time_of_round(&self, round: u64) -> Option<i64> {
        time::time_of_round(self.genesis_time, self.period_secs, round)
    }

    /// The round in progress at Unix time `now` (0 before genesis).
    pub fn current_round(&self, now: i64) -> u64 {
        time::current_round(now, self.genesis_time, self.period_secs)
    }

    /// Encodes as drand's v1 `/info` JSON, with the chain hash and, for keyquorum chains, the
    /// link in `metadata`.
    pub fn to_json(&self) -> String {
        let wire = InfoJson {
            public_key: Some(hex::encode(&self.public_key)),
            period: Some(u64::from(self.period_secs)),
            genesis_time: Some(self.genesis_time),
            hash: Some(hex::encode(self.hash())),
            group_hash: Some(hex::encode(self.group_hash)),
            scheme_id: Some(self.scheme.as_str().to_owned()),
            metadata: Some(MetadataJson {
                beacon_id: Some(self.beacon_id.clone()),
                magic_block_hash: self.link.map(|l| hex::encode(l.magic_block_hash)),
                previous_chain_hash: self
                    .link
                    .and_then(|l| l.previous_chain_hash.map(hex::encode)),
            }),
            ..InfoJson::default()
        };
        serde_json::to_string(&wire).expect("chain info serialises")
    }

    /// Decodes drand chain info JSON (v1 or v2 field names), checking every field and that the
    /// published chain hash equals the recomputed one. The hash must be present: it is what a
    /// client pins.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InfoError> {
        if bytes.len() > MAX_INFO_JSON {
            return Err(InfoError::TooLarge {
                max: MAX_INFO_JSON,
                actual: bytes.len(),
            });
        }
        let wire: InfoJson =
            serde_json::from_slice(bytes).map_err(|e| InfoError::Json(e.to_string()))?;
        let scheme_name = wire
            .scheme
            .filter(|s| !s.is_empty())
            .or(wire.scheme_id.filter(|s| !s.is_empty()));
        let scheme = match scheme_name {
            None => SchemeId::DEFAULT,
            Some(name) => SchemeId::from_name(&name).ok_or(InfoError::UnknownScheme(name))?,
        };
        let public_key = decode_hex_field(
            "public_key",
            wire.public_key.as_deref(),
            scheme.public_key_len(),
        )?;
        let period = wire.period.ok_or(InfoError::Missing("period"))?;
        let period_secs = u32::try_from(period).map_err(|_| InfoError::PeriodTooLong(period))?;
        let genesis_time = wire
            .genesis_time
            .ok_or(InfoError::Missing("genesis_time"))?;
        let group_hash_hex = wire.genesis_seed.or(wire.group_hash);
        let group_hash: [u8; 32] = decode_hex_field("groupHash", group_hash_hex.as_deref(), 32)?
            .try_into()
            .expect("length checked");
        let metadata = wire.metadata.unwrap_or_default();
        let beacon_id = wire
            .beacon_id
            .filter(|b| !b.is_empty())
            .or(metadata.beacon_id)
            .unwrap_or_default();
        let mut info = ChainInfo::new(
            scheme,
            &public_key,
            period_secs,
            genesis_time,
            group_hash,
            &beacon_id,
        )?;
        info.link = match (metadata.magic_block_hash, metadata.previous_chain_hash) {
            (None, None) => None,
            (None, Some(_)) => return Err(InfoError::Missing("metadata.magicBlockHash")),
            (Some(mb), prev) => {
                let magic_block_hash = hash32("metadata.magicBlockHash", &mb)?;
                let previous_chain_hash = prev
                    .map(|p| hash32("metadata.previousChainHash", &p))
                    .transpose()?;
                let link = ChainLink {
                    magic_block_hash,
                    previous_chain_hash,
                };
                if genesis_seed(&link) != info.group_hash {
                    return Err(InfoError::LinkMismatch);
                }
                Some(link)
            }
        };
        let published = wire
            .chain_hash
            .filter(|h| !h.is_empty())
            .or(wire.hash)
            .ok_or(InfoError::Missing("hash"))?;
        let published = hash32("hash", &published)?;
        let computed = info.hash();
        if published != computed {
            return Err(InfoError::ChainHashMismatch {
                published: hex::encode(published),
                computed: hex::encode(computed),
            });
        }
        Ok(info)
    }
}

fn is_default_beacon_id(id: &str) -> bool {
    id.is_empty() || id == DEFAULT_BEACON_ID
}

fn validate_beacon_id(id: &str) -> Result<(), InfoError> {
    if id.len() > MAX_BEACON_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(InfoError::BadBeaconId(
            id.chars().take(MAX_BEACON_ID_LEN).collect(),
        ));
    }
    Ok(())
}

/// The key must decode in the scheme's key group: canonical, on the curve, in the subgroup,
/// not the identity.
fn validate_public_key(scheme: SchemeId, public_key: &[u8]) -> Result<(), InfoError> {
    use keyquorum_crypto::tbls::decode_public_key;
    let r = match scheme {
        SchemeId::PedersenBlsChained => {
            decode_public_key::<PedersenBlsChained>(public_key).map(drop)
        }
        SchemeId::PedersenBlsUnchained => {
            decode_public_key::<PedersenBlsUnchained>(public_key).map(drop)
        }
        SchemeId::BlsUnchainedG1Rfc9380 => {
            decode_public_key::<BlsUnchainedG1Rfc9380>(public_key).map(drop)
        }
        SchemeId::BlsUnchainedOnG1 => decode_public_key::<BlsUnchainedOnG1>(public_key).map(drop),
    };
    r.map_err(InfoError::PublicKey)
}

/// Decodes a required hex field of exactly `len` bytes (length checked before decoding).
fn decode_hex_field(
    field: &'static str,
    value: Option<&str>,
    len: usize,
) -> Result<Vec<u8>, InfoError> {
    let s = value.ok_or(InfoError::Missing(field))?;
    crate::hexfield::decode_exact(s, len).map_err(|e| InfoError::Hex { field, error: e })
}

fn hash32(field: &'static str, s: &str) -> Result<[u8; 32], InfoError> {
    Ok(decode_hex_field(field, Some(s), 32)?
        .try_into()
        .expect("length checked"))
}

/// The wire form, every field optional so that absence gives a typed error.
#[derive(Debug, Default, Serialize, Deserialize)]
struct InfoJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    genesis_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(rename = "groupHash", skip_serializing_if = "Option::is_none")]
    group_hash: Option<String>,
    #[serde(rename = "schemeID", skip_serializing_if = "Option::is_none")]
    scheme_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<MetadataJson>,
    // drand HTTP API v2 names.
    #[serde(skip_serializing_if = "Option::is_none")]
    genesis_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    beacon_id: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MetadataJson {
    #[serde(rename = "beaconID", skip_serializing_if = "Option::is_none")]
    beacon_id: Option<String>,
    #[serde(rename = "magicBlockHash", skip_serializing_if = "Option::is_none")]
    magic_block_hash: Option<String>,
    #[serde(rename = "previousChainHash", skip_serializing_if = "Option::is_none")]
    previous_chain_hash: Option<String>,
}
