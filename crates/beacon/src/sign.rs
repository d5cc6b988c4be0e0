//! On-demand threshold signatures by the committee of a view, on caller-chosen messages.
//!
//! A caller asks one committee member to sign `(domain, message)`. That member (the
//! coordinator) asks the others for partial signatures, checks each against the signer's public
//! key share, combines `t` of them and checks the result against the group key. The signature
//! is an ordinary BLS signature in the IETF proof-of-possession ciphersuite with keys in G1 and
//! signatures in G2 (`keyquorum_crypto::tbls::MinPk`, tag
//! [`keyquorum_crypto::tbls::MIN_PK_POP_DST`], as in Ethereum's consensus layer), so any
//! implementation of that ciphersuite verifies it under the view's group key.
//!
//! # Signed bytes
//! [`signing_bytes`]: `"keyquorum/sign/v1" || u8(len(domain)) || domain || message`, with the
//! domain 1 to [`MAX_DOMAIN_LEN`] bytes of printable ASCII (0x20..=0x7e) and the message at
//! most [`MAX_MESSAGE_LEN`] bytes. The length prefix makes the split between domain and message
//! unambiguous, and the tag keeps these signatures apart from anything else the group key
//! signs (the beacon's round digests are hashed under another ciphersuite tag as well).
//!
//! # What is here
//! Deterministic and free of I/O: the HTTP request ([`SignRequest`]), the request a coordinator
//! sends a member and the member's answer ([`PartialRequest`], [`PartialAnswer`]), the member's
//! decision ([`answer_partial`]), the view's group ([`SignGroup`]) and the coordinator's
//! collection of partials ([`Collector`]), which names members whose partials do not verify.

use std::collections::BTreeSet;

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk, PartialSignature, PublicKey, Signature};
use keyquorum_crypto::{Bls12381G1, CryptoError};
use serde::Deserialize;

/// Tag that starts every signed message.
pub const SIGNING_TAG: &[u8] = b"keyquorum/sign/v1";
/// Longest domain, in bytes.
pub const MAX_DOMAIN_LEN: usize = 64;
/// Longest message, in bytes.
pub const MAX_MESSAGE_LEN: usize = 65536;
/// Largest HTTP request body accepted: the hex message, the domain and JSON around them.
pub const MAX_REQUEST_JSON: usize = 2 * MAX_MESSAGE_LEN + 1024;
/// Largest [`PartialRequest`] encoding: view, domain length, domain, message.
pub const MAX_PARTIAL_REQUEST_LEN: usize = 8 + 1 + MAX_DOMAIN_LEN + MAX_MESSAGE_LEN;
/// Largest [`PartialAnswer`] encoding: a status byte and a partial signature.
pub const MAX_PARTIAL_ANSWER_LEN: usize = 1 + PartialSignature::<MinPk>::ENCODED_LEN;

/// Why a signing request is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not the expected JSON object.
    #[error("request is not {{\"domain\": string, \"message\": hex}}: {0}")]
    Json(String),
    /// The body is larger than [`MAX_REQUEST_JSON`].
    #[error("request body larger than {max} bytes")]
    TooLarge {
        /// Largest body accepted.
        max: usize,
    },
    /// The domain is empty, too long or not printable ASCII.
    #[error(
        "domain must be 1 to {MAX_DOMAIN_LEN} bytes of printable ASCII (0x20 to 0x7e), got {len} \
         bytes{}",
        match first_unprintable {
            Some(at) => format!(", byte {at} not printable"),
            None => String::new(),
        }
    )]
    BadDomain {
        /// The domain's length in bytes.
        len: usize,
        /// The position of its first byte that is not printable ASCII, if any.
        first_unprintable: Option<usize>,
    },
    /// The message is not hex (without `0x`).
    #[error("message is not hex")]
    MessageNotHex,
    /// A [`PartialRequest`] ends before its domain does.
    #[error("partial request truncated")]
    Truncated,
    /// The message is longer than [`MAX_MESSAGE_LEN`].
    #[error("message longer than {MAX_MESSAGE_LEN} bytes ({len} bytes)")]
    MessageTooLong {
        /// The message's length in bytes.
        len: usize,
    },
}

impl RequestError {
    /// A stable code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Json(_) => "bad_json",
            RequestError::TooLarge { .. } => "too_large",
            RequestError::BadDomain { .. } => "bad_domain",
            RequestError::MessageNotHex => "bad_message",
            RequestError::Truncated => "truncated",
            RequestError::MessageTooLong { .. } => "message_too_long",
        }
    }
}

/// Checks a domain: 1 to [`MAX_DOMAIN_LEN`] bytes, each printable ASCII.
pub fn check_domain(domain: &[u8]) -> Result<(), RequestError> {
    let first_unprintable = domain.iter().position(|b| !(0x20..=0x7e).contains(b));
    if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN || first_unprintable.is_some() {
        return Err(RequestError::BadDomain {
            len: domain.len(),
            first_unprintable,
        });
    }
    Ok(())
}

/// The bytes the group signs for `(domain, message)` (see the module docs).
pub fn signing_bytes(domain: &[u8], message: &[u8]) -> Result<Vec<u8>, RequestError> {
    check_domain(domain)?;
    if message.len() > MAX_MESSAGE_LEN {
        return Err(RequestError::MessageTooLong { len: message.len() });
    }
    let mut out = Vec::with_capacity(SIGNING_TAG.len() + 1 + domain.len() + message.len());
    out.extend_from_slice(SIGNING_TAG);
    out.push(domain.len() as u8);
    out.extend_from_slice(domain);
    out.extend_from_slice(message);
    Ok(out)
}

/// A validated signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The domain (printable ASCII, 1 to [`MAX_DOMAIN_LEN`] bytes).
    pub domain: String,
    /// The message (at most [`MAX_MESSAGE_LEN`] bytes).
    pub message: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    domain: String,
    message: String,
}

/// A request's `message`: hex without `0x`, of at most [`MAX_MESSAGE_LEN`] bytes (the length
/// is checked before decoding). Every scheme's request decodes its message with this.
pub fn decode_message(hex_text: &str) -> Result<Vec<u8>, RequestError> {
    if hex_text.len() > 2 * MAX_MESSAGE_LEN {
        return Err(RequestError::MessageTooLong {
            len: hex_text.len() / 2,
        });
    }
    hex::decode(hex_text).map_err(|_| RequestError::MessageNotHex)
}

impl SignRequest {
    /// A request from its parts, validated.
    pub fn new(domain: &str, message: &[u8]) -> Result<Self, RequestError> {
        signing_bytes(domain.as_bytes(), message)?;
        Ok(SignRequest {
            domain: domain.to_owned(),
            message: message.to_vec(),
        })
    }

    /// Decodes `{"domain": "...", "message": "<hex>"}`, bounded and validated.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        if body.len() > MAX_REQUEST_JSON {
            return Err(RequestError::TooLarge {
                max: MAX_REQUEST_JSON,
            });
        }
        // An object only: serde would also take the fields as a JSON array, a form nobody
        // documents.
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
        if !value.is_object() {
            return Err(RequestError::Json(
                "the request must be a JSON object".into(),
            ));
        }
        let wire: RequestJson =
            serde_json::from_value(value).map_err(|e| RequestError::Json(e.to_string()))?;
        check_domain(wire.domain.as_bytes())?;
        let message = decode_message(&wire.message)?;
        SignRequest::new(&wire.domain, &message)
    }

    /// [`signing_bytes`] of the request.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(self.domain.as_bytes(), &self.message).expect("validated on construction")
    }
}

/// What a coordinator asks each member to sign: a request, for a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialRequest {
    /// The view whose shares are to sign.
    pub view: u64,
    /// The request.
    pub request: SignRequest,
}

impl PartialRequest {
    /// `view (8 bytes, big-endian) || u8(len(domain)) || domain || message`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = self.request.domain.as_bytes();
        let mut out = Vec::with_capacity(9 + d.len() + self.request.message.len());
        out.extend_from_slice(&self.view.to_be_bytes());
        out.push(d.len() as u8);
        out.extend_from_slice(d);
        out.extend_from_slice(&self.request.message);
        out
    }

    /// Decodes [`PartialRequest::to_bytes`], bounded and validated like an HTTP request.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RequestError> {
        if bytes.len() > MAX_PARTIAL_REQUEST_LEN {
            return Err(RequestError::TooLarge {
                max: MAX_PARTIAL_REQUEST_LEN,
            });
        }
        let (view, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or(RequestError::Truncated)?;
        let (len, rest) = rest.split_first().ok_or(RequestError::Truncated)?;
        let (domain, message) = rest
            .split_at_checked(usize::from(*len))
            .ok_or(RequestError::Truncated)?;
        check_domain(domain)?;
        let domain = std::str::from_utf8(domain).expect("printable ASCII is UTF-8");
        let request = SignRequest::new(domain, message)?;
        Ok(PartialRequest {
            view: u64::from_be_bytes(*view),
            request,
        })
    }
}

/// Why a member did not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request is for a view other than the member's active one.
    #[error("not the member's active view")]
    OtherView = 1,
    /// The member holds no share of the active view.
    #[error("the member holds no share of the view")]
    NoShare = 2,
    /// The request is malformed.
    #[error("malformed request")]
    Malformed = 3,
}

/// A member's answer to a [`PartialRequest`].
// Short-lived (decoded, then consumed at once): boxing the partial would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartialAnswer {
    /// The member's partial signature on the request's signing bytes.
    Partial(PartialSignature<MinPk>),
    /// The member did not sign.
    Refused(Refusal),
}

impl PartialAnswer {
    /// `0 || partial` or `1 || refusal code`.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PartialAnswer::Partial(p) => {
                let mut out = vec![0u8];
                out.extend_from_slice(&p.to_bytes());
                out
            }
            PartialAnswer::Refused(r) => vec![1, *r as u8],
        }
    }

    /// Decodes [`PartialAnswer::to_bytes`]; `None` for anything else (wrong length, unknown
    /// code, an index that is zero or not canonical, a point off the curve or the subgroup).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0, rest @ ..] => PartialSignature::<MinPk>::from_bytes(rest)
                .ok()
                .map(PartialAnswer::Partial),
            [1, 1] => Some(PartialAnswer::Refused(Refusal::OtherView)),
            [1, 2] => Some(PartialAnswer::Refused(Refusal::NoShare)),
            [1, 3] => Some(PartialAnswer::Refused(Refusal::Malformed)),
            _ => None,
        }
    }
}

/// A member's share of the active view: its share index and secret share.
#[derive(Debug)]
pub struct SignerShare {
    /// Evaluation point of the share.
    pub index: Scalar,
    /// The secret share.
    pub share: Secret<Scalar>,
}

/// The member side: signs a well-formed request for `active_view` with `share`, refuses
/// anything else.
pub fn answer_partial(
    active_view: u64,
    share: Option<&SignerShare>,
    payload: &[u8],
) -> PartialAnswer {
    let Ok(req) = PartialRequest::from_bytes(payload) else {
        return PartialAnswer::Refused(Refusal::Malformed);
    };
    if req.view != active_view {
        return PartialAnswer::Refused(Refusal::OtherView);
    }
    let Some(s) = share else {
        return PartialAnswer::Refused(Refusal::NoShare);
    };
    PartialAnswer::Partial(tbls::partial_sign::<MinPk>(
        &s.share,
        s.index,
        &req.request.signing_bytes(),
    ))
}

/// Why a view's group is unusable for signing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Not `1 <= t <= n`.
    #[error("threshold {threshold} of {n} members")]
    BadThreshold {
        /// The threshold.
        threshold: usize,
        /// The committee size.
        n: usize,
    },
    /// Indices, public shares or the group key are invalid.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The first `t` public shares do not interpolate to the group key.
    #[error("public key shares do not match the group key")]
    SharesDoNotMatchGroupKey,
}

/// The signing group of a view: threshold, each member's share index and public key share (in
/// committee order), and the group key.
#[derive(Debug, Clone)]
pub struct SignGroup {
    threshold: usize,
    members: Vec<(Scalar, PublicKey<MinPk>)>,
    group_key: PublicKey<MinPk>,
}

impl SignGroup {
    /// Validates the group: `1 <= t <= n`, distinct non-zero indices, valid keys, and the
    /// first `t` public shares interpolate to the group key.
    pub fn new(
        threshold: usize,
        members: Vec<(Scalar, PublicKey<MinPk>)>,
        group_key: PublicKey<MinPk>,
    ) -> Result<Self, GroupError> {
        let n = members.len();
        if threshold == 0 || threshold > n {
            return Err(GroupError::BadThreshold { threshold, n });
        }
        let indices: Vec<Scalar> = members.iter().map(|m| m.0).collect();
        keyquorum_crypto::index::check_distinct(&indices)?;
        for (_, pk) in &members {
            tbls::validate_public_key::<MinPk>(pk)?;
        }
        tbls::validate_public_key::<MinPk>(&group_key)?;
        let shares: Vec<PublicKey<MinPk>> = members[..threshold].iter().map(|m| m.1).collect();
        let recovered = keyquorum_crypto::poly::interpolate_in_exponent::<Bls12381G1>(
            &indices[..threshold],
            &shares,
        )?;
        if group::Curve::to_affine(&recovered) != group_key {
            return Err(GroupError::SharesDoNotMatchGroupKey);
        }
        Ok(SignGroup {
            threshold,
            members,
            group_key,
        })
    }

    /// The threshold `t`.
    pub fn threshold(&self) -> usize {
        self.threshold
    }
    /// The committee size.
    pub fn len(&self) -> usize {
        self.members.len()
    }
    /// Whether the committee is empty (never, for a validated group).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// The group key.
    pub fn group_key(&self) -> &PublicKey<MinPk> {
        &self.group_key
    }
    /// Member `member`'s share index.
    pub fn index_of(&self, member: usize) -> Option<Scalar> {
        self.members.get(member).map(|m| m.0)
    }
}

/// Why the coordinator did not take a partial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartialRejected {
    /// No such member.
    #[error("member {member} is not in the committee")]
    UnknownMember {
        /// The position given.
        member: usize,
    },
    /// A partial from this member was already taken (or named bad).
    #[error("second partial from member {member}")]
    Duplicate {
        /// The member.
        member: usize,
    },
    /// The member refused ([`Refusal`]): not its fault by itself (a member that moved to the
    /// next view refuses the last one's requests).
    #[error("member {member} answered no partial: {refusal}")]
    NoPartial {
        /// The member.
        member: usize,
        /// Why.
        refusal: Refusal,
    },
    /// The member's partial does not verify under its public key share, or carries another
    /// member's index: the member is a culprit.
    #[error("member {member} sent a partial that does not verify")]
    Invalid {
        /// The member.
        member: usize,
    },
    /// `t` verified partials did not combine into a signature that verifies under the group
    /// key. Cannot happen for a group [`SignGroup::new`] accepted; reported, not assumed.
    #[error("the combined signature does not verify under the group key")]
    CombinedInvalid,
}

/// Where a collection stands after a partial was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Fewer than `t` valid partials so far.
    NeedMore {
        /// Valid partials so far.
        valid: usize,
        /// The threshold.
        threshold: usize,
    },
    /// `t` valid partials combined into a signature that verifies under the group key.
    Done(Signature<MinPk>),
}

/// No signature: the collection ended with fewer than `t` valid partials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no quorum: {valid} valid partials of {threshold} needed ({} bad{})",
    culprits.len(),
    if other_view.is_empty() { String::new() } else {
        format!(", {} members at another view", other_view.len())
    }
)]
pub struct NoQuorum {
    /// Valid partials collected.
    pub valid: usize,
    /// The threshold.
    pub threshold: usize,
    /// Members whose partials did not verify.
    pub culprits: Vec<usize>,
    /// Members that refused because the request's view is not their active one (a view
    /// change under way, or a coordinator behind the chain): no fault of theirs.
    pub other_view: Vec<usize>,
}

impl NoQuorum {
    /// Whether the members at another view explain the shortfall: no bad partial, and with
    /// their partials there would have been `t` (a view change under way, or a coordinator
    /// behind the chain; the client should retry).
    pub fn view_changing(&self) -> bool {
        !self.other_view.is_empty()
            && self.culprits.is_empty()
            && self.valid + self.other_view.len() >= self.threshold
    }
}

/// The coordinator's collection of partials for one request: one per member, each verified
/// against the member's public key share before it counts; a member whose partial fails is
/// named and not asked again. At `t` valid partials it combines and verifies the signature
/// under the group key.
#[derive(Debug)]
pub struct Collector<'g> {
    group: &'g SignGroup,
    message: Vec<u8>,
    valid: Vec<PartialSignature<MinPk>>,
    seen: BTreeSet<usize>,
    culprits: Vec<usize>,
    other_view: BTreeSet<usize>,
    done: Option<Signature<MinPk>>,
}

impl<'g> Collector<'g> {
    /// A collection for `request` in `group`.
    pub fn new(group: &'g SignGroup, request: &SignRequest) -> Self {
        Collector {
            group,
            message: request.signing_bytes(),
            valid: Vec::with_capacity(group.threshold),
            seen: BTreeSet::new(),
            culprits: Vec::new(),
            other_view: BTreeSet::new(),
            done: None,
        }
    }

    /// The bytes being signed.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Members whose partials did not verify, in the order they were found.
    pub fn culprits(&self) -> &[usize] {
        &self.culprits
    }

    /// Valid partials so far.
    pub fn valid(&self) -> usize {
        self.valid.len()
    }

    /// The outcome so far, as a [`NoQuorum`] if the collection ends now.
    pub fn no_quorum(&self) -> NoQuorum {
        NoQuorum {
            valid: self.valid.len(),
            threshold: self.group.threshold,
            culprits: self.culprits.clone(),
            other_view: self.other_view.iter().copied().collect(),
        }
    }

    /// Takes `member`'s answer (as [`PartialAnswer::to_bytes`] encodes it).
    pub fn add_answer(
        &mut self,
        member: usize,
        answer: &[u8],
    ) -> Result<Progress, PartialRejected> {
        match PartialAnswer::from_bytes(answer) {
            Some(PartialAnswer::Partial(p)) => self.add(member, p),
            Some(PartialAnswer::Refused(refusal)) => {
                if refusal == Refusal::OtherView && self.group.members.get(member).is_some() {
                    self.other_view.insert(member);
                }
                Err(PartialRejected::NoPartial { member, refusal })
            }
            // Bytes that do not decode as an answer are the member's fault as much as a partial
            // that does not verify.
            None => {
                if !self.seen.insert(member) {
                    return Err(PartialRejected::Duplicate { member });
                }
                self.culprits.push(member);
                Err(PartialRejected::Invalid { member })
            }
        }
    }

    /// Takes `member`'s partial: verified against its public key share and its own index.
    pub fn add(
        &mut self,
        member: usize,
        partial: PartialSignature<MinPk>,
    ) -> Result<Progress, PartialRejected> {
        let Some(&(index, public_share)) = self.group.members.get(member) else {
            return Err(PartialRejected::UnknownMember { member });
        };
        if let Some(sig) = self.done {
            // Enough already: later partials change nothing.
            return if self.seen.insert(member) {
                Ok(Progress::Done(sig))
            } else {
                Err(PartialRejected::Duplicate { member })
            };
        }
        if !self.seen.insert(member) {
            return Err(PartialRejected::Duplicate { member });
        }
        if partial.index != index
            || tbls::partial_verify::<MinPk>(&public_share, &self.message, &partial).is_err()
        {
            self.culprits.push(member);
            return Err(PartialRejected::Invalid { member });
        }
        self.valid.push(partial);
        if self.valid.len() < self.group.threshold {
            return Ok(Progress::NeedMore {
                valid: self.valid.len(),
                threshold: self.group.threshold,
            });
        }
        // t partials that verify under shares matching the group key combine to a signature
        // that verifies; checked anyway, since nothing leaves unverified.
        let sig = tbls::combine::<MinPk>(self.group.threshold, &self.valid)
            .map_err(|_| PartialRejected::CombinedInvalid)?;
        tbls::verify::<MinPk>(&self.group.group_key, &self.message, &sig)
            .map_err(|_| PartialRejected::CombinedInvalid)?;
        self.done = Some(sig);
        Ok(Progress::Done(sig))
    }
}

#[cfg(test)]
mod tests;
