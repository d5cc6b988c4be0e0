//! `POST /sign` on the node's status server.
//!
//! Request: `Authorization: Bearer <token>` and `{"domain": "...", "message": "<hex>"}`
//! (threshold BLS; `"scheme": "bls"` may be given), or `{"scheme": "frost-secp256k1" |
//! "bip340", "message": "<hex>"}` for a Schnorr signature with the view's signing key
//! ([`super::frost`]). A Schnorr request whose signer set fails (an invalid share, a refused
//! or unanswered round two) is tried again with fresh nonces from a signer set without the
//! culprits, up to [`super::frost::MAX_ATTEMPTS`] attempts while `t` members remain.
//! Answer `200`: `{"signature", "public_key", "view", "domain", "message"}` (hex without `0x`),
//! for a Schnorr scheme `{"scheme", "signature", "public_key", "view", "message"}`.
//! Errors are `{"error": code, "message": text}` (plus `valid_partials`, `threshold`,
//! `culprits` and `other_view` (committee positions) for `no_quorum` and `view_changing`,
//! `retry_after_secs` for `rate_limited`; for a Schnorr scheme's `no_quorum`,
//! `view_changing` and `invalid_shares`: `round`, `signers`, `threshold`, `attempts`,
//! `culprits` (identity keys, hex), `faults` (identity to `invalid_share`, `unresponsive`,
//! `refused` or `malformed`) and `other_view` (identity keys of the members that answered for
//! another view, no culprits)), checked in this order:
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 404 | `sign_disabled` | no `sign.token_file` is configured |
//! | 401 | `unauthorized` | missing or wrong bearer token |
//! | 429 | `rate_limited` | the caller's (remote IP's) bucket is empty; `Retry-After` set |
//! | 413 | `too_large` | a body above [`MAX_REQUEST_JSON`] bytes |
//! | 400 | `bad_body`, `bad_json`, `bad_domain`, `bad_message`, `message_too_long` | malformed request (`bad_body`: the body did not arrive whole) |
//! | 400 | `bad_scheme` | a `scheme` other than `bls`, `frost-secp256k1` or `bip340` |
//! | 409 | `no_active_view`, `not_a_member` | no view is active, or this node holds no share of it (Schnorr too: a node outside the view's committee) |
//! | 409 | `no_signing_key` | Schnorr: the active view has no signing key on this node, or this member holds no share of it (left out of the key's ceremony; `view` names the active view); after each activation until the view's signing-key ceremony ends |
//! | 503 | `no_nonce_store` | Schnorr: the nonce store did not open |
//! | 503 | `signer_unavailable` | Schnorr: this node could not make its own commitment or share (its nonce store is full of other requests' nonces, or failing); `culprits` and `faults` name members earlier attempts named |
//! | 503 | `queue_full` | `sign.max_pending` requests are signing already |
//! | 503 | `view_changing` | short of `t` because members answered for another view than this node's, and with them there would have been `t` (no bad partial or invalid share): a view change under way, or this node behind the chain; `Retry-After: 1` |
//! | 504 | `no_quorum` | fewer than `t` valid partials within `sign.timeout_ms`; Schnorr: fewer than `t` commitments or shares within `sign.timeout_ms` in an attempt's round, after the retries (no culprit sent an invalid share) |
//! | 502 | `invalid_shares` | Schnorr: signers sent invalid signature shares and the retries without them did not sign (too few members left, or [`super::frost::MAX_ATTEMPTS`] attempts made) |
//! | 500 | `combine_failed` | verified partials did not combine to a valid signature (Schnorr: with `culprits` and `faults` from earlier attempts) |

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keyquorum_beacon::sign::{MAX_REQUEST_JSON, RequestError, SignRequest};
use serde_json::{Value, json};

use super::frost::{self, Scheme};
use super::{SignError, SignService};

fn error(status: StatusCode, code: &str, message: String, extra: Value) -> Response {
    let mut body = json!({ "error": code, "message": message });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    (status, axum::Json(body)).into_response()
}

/// Whether reading a body failed on its length limit.
fn over_the_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The bearer token presented, if any. The scheme's name is case-insensitive (RFC 9110
/// section 11.1), the token is not.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = v.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

fn rejected(s: &SignService, code: &str) {
    s.metrics().sign.outcome(Some(code));
}

async fn sign(State(s): State<SignService>, req: Request) -> Response {
    let Some(token) = s.token() else {
        rejected(&s, "sign_disabled");
        return error(
            StatusCode::NOT_FOUND,
            "sign_disabled",
            "on-demand signing is off on this node: no sign.token_file is configured".into(),
            Value::Null,
        );
    };
    if !bearer(req.headers()).is_some_and(|t| token.matches(t)) {
        rejected(&s, "unauthorized");
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token".into(),
            Value::Null,
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let caller = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    if let Err(wait) = s.rate_check(&caller) {
        rejected(&s, "rate_limited");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from {caller}; retry in {wait} s"),
            json!({ "retry_after_secs": wait }),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
        return r;
    }
    let body: Bytes = match axum::body::to_bytes(req.into_body(), MAX_REQUEST_JSON).await {
        Ok(b) => b,
        Err(e) if over_the_limit(&e) => {
            let e = RequestError::TooLarge {
                max: MAX_REQUEST_JSON,
            };
            rejected(&s, e.code());
            // 413, as the chain's API answers an oversized body.
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                e.code(),
                e.to_string(),
                Value::Null,
            );
        }
        // The body did not arrive whole (the client went away, most likely): not a size.
        Err(e) => {
            rejected(&s, "bad_body");
            return error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {e}"),
                Value::Null,
            );
        }
    };
    let body = match schnorr_request(body) {
        Ok(Parsed::Schnorr(scheme, message)) => return sign_schnorr(&s, scheme, message).await,
        Ok(Parsed::Bls(body)) => body,
        Err((code, text)) => {
            rejected(&s, code);
            return error(StatusCode::BAD_REQUEST, code, text, Value::Null);
        }
    };
    let request = match SignRequest::from_json(&body) {
        Ok(r) => r,
        Err(e) => {
            rejected(&s, e.code());
            return error(
                StatusCode::BAD_REQUEST,
                e.code(),
                e.to_string(),
                Value::Null,
            );
        }
    };
    let view = match s.check_member() {
        Ok(v) => v,
        Err(e) => return sign_error(&s, e),
    };
    let Some(_slot) = s.try_slot() else {
        rejected(&s, "queue_full");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "too many signing requests pending on this node; retry later".into(),
            Value::Null,
        );
    };
    match s.sign(&view, &request).await {
        Ok(signed) => {
            s.metrics().sign.outcome(None);
            (StatusCode::OK, axum::Json(signed)).into_response()
        }
        Err(e) => sign_error(&s, e),
    }
}

/// A JSON object whose keys are all distinct: a request naming a field twice (two schemes,
/// say) is refused, not read by its last value.
struct UniqueKeys(serde_json::Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut fields = serde_json::Map::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    if fields.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "field {key:?} given twice"
                        )));
                    }
                    fields.insert(key, value);
                }
                Ok(UniqueKeys(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// A request by its scheme.
enum Parsed {
    /// Threshold BLS: the body for [`SignRequest::from_json`].
    Bls(Bytes),
    /// A Schnorr scheme with its message.
    Schnorr(Scheme, Vec<u8>),
}

/// The `scheme` of a request: threshold BLS when absent or `"bls"` (the body then without the
/// field), or a Schnorr scheme with its message (`{"scheme", "message"}` only).
fn schnorr_request(body: Bytes) -> Result<Parsed, (&'static str, String)> {
    let bad_json = |e: serde_json::Error| ("bad_json", e.to_string());
    let mut fields = match serde_json::from_slice::<UniqueKeys>(&body) {
        Ok(UniqueKeys(fields)) => fields,
        Err(e) => {
            return Err((
                "bad_json",
                format!(
                    "request is not a JSON object with each field once, either {{\"message\": \
                     hex, \"domain\": string}} (threshold BLS; \"scheme\": \"bls\" may be \
                     given) or {{\"scheme\": \"frost-secp256k1\" | \"bip340\", \"message\": \
                     hex}}: {e}"
                ),
            ));
        }
    };
    let scheme = match fields.get("scheme") {
        None => return Ok(Parsed::Bls(body)),
        Some(Value::String(name)) if name == "bls" => {
            fields.remove("scheme");
            let body = serde_json::to_vec(&fields).map_err(bad_json)?;
            return Ok(Parsed::Bls(Bytes::from(body)));
        }
        Some(Value::String(name)) => Scheme::parse(name).ok_or((
            "bad_scheme",
            format!("unknown scheme {name:?}: use bls, frost-secp256k1 or bip340"),
        ))?,
        Some(_) => return Err(("bad_scheme", "scheme must be a string".into())),
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Schnorr {
        scheme: String,
        message: String,
    }
    let request: Schnorr = serde_json::from_value(Value::Object(fields)).map_err(|e| {
        (
            "bad_json",
            format!(
                "a {} request is {{\"scheme\": \"{}\", \"message\": hex}} (no domain: the \
                 message is signed as given): {e}",
                scheme.as_str(),
                scheme.as_str()
            ),
        )
    })?;
    // The same rule and answer as a BLS request's message.
    let message = keyquorum_beacon::sign::decode_message(&request.message)
        .map_err(|e| (e.code(), e.to_string()))?;
    Ok(Parsed::Schnorr(scheme, message))
}

async fn sign_schnorr(s: &SignService, scheme: Scheme, message: Vec<u8>) -> Response {
    let view = match s.check_frost_member() {
        Ok(v) => v,
        Err(e) => return sign_error(s, e),
    };
    let Some(_slot) = s.try_slot() else {
        rejected(s, "queue_full");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "too many signing requests pending on this node; retry later".into(),
            Value::Null,
        );
    };
    let message_hex = hex::encode(&message);
    let view_number = view.view();
    match s.sign_schnorr(view, scheme, message).await {
        Ok(signed) => {
            s.metrics().sign.outcome(None);
            (
                StatusCode::OK,
                axum::Json(json!({
                    "scheme": signed.scheme.as_str(),
                    "signature": hex::encode(&signed.signature),
                    "public_key": hex::encode(&signed.public_key),
                    "view": view_number,
                    "message": message_hex,
                })),
            )
                .into_response()
        }
        Err(e) => sign_error(s, e),
    }
}

fn sign_error(s: &SignService, e: SignError) -> Response {
    let (status, code, extra) = match &e {
        SignError::NoActiveView => (StatusCode::CONFLICT, "no_active_view", Value::Null),
        SignError::NotAMember { view } => (
            StatusCode::CONFLICT,
            "not_a_member",
            json!({ "view": view }),
        ),
        SignError::NoQuorum(q) => (
            if q.view_changing() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::GATEWAY_TIMEOUT
            },
            if q.view_changing() {
                "view_changing"
            } else {
                "no_quorum"
            },
            json!({
                "valid_partials": q.valid,
                "threshold": q.threshold,
                "culprits": q.culprits,
                "other_view": q.other_view,
            }),
        ),
        SignError::Combine => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "combine_failed",
            Value::Null,
        ),
        SignError::NoSigningKey { view } => (
            StatusCode::CONFLICT,
            "no_signing_key",
            json!({ "view": view }),
        ),
        SignError::NoSigningKeyShare { view } => (
            StatusCode::CONFLICT,
            "no_signing_key",
            json!({ "view": view }),
        ),
        SignError::NoNonceStore => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no_nonce_store",
            Value::Null,
        ),
        SignError::SchnorrFailed(f) => {
            let (culprits, faults) = named(&f.culprits);
            let extra = json!({
                "round": f.round,
                "signers": f.signers,
                "threshold": f.threshold,
                "attempts": f.attempts,
                "culprits": culprits,
                "faults": faults,
                "other_view": f.other_view.iter().map(hex::encode).collect::<Vec<_>>(),
            });
            if f.invalid_shares() {
                (StatusCode::BAD_GATEWAY, "invalid_shares", extra)
            } else if f.view_changing() {
                (StatusCode::SERVICE_UNAVAILABLE, "view_changing", extra)
            } else {
                (StatusCode::GATEWAY_TIMEOUT, "no_quorum", extra)
            }
        }
        SignError::SchnorrUnavailable { culprits, .. } => {
            let (culprits, faults) = named(culprits);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "signer_unavailable",
                json!({ "culprits": culprits, "faults": faults }),
            )
        }
        SignError::Schnorr { culprits, .. } => {
            let (culprits, faults) = named(culprits);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "combine_failed",
                json!({ "culprits": culprits, "faults": faults }),
            )
        }
    };
    rejected(s, code);
    let view_changing = code == "view_changing";
    let text = if view_changing {
        format!(
            "{e}: members answered for another view than this node's (a view change is under \
             way, or this node is behind the chain); retry"
        )
    } else {
        e.to_string()
    };
    let mut r = error(status, code, text, extra);
    if view_changing {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
    }
    r
}

/// The members a Schnorr request named: their identities (hex), and each one's fault.
fn named(culprits: &[frost::Culprit]) -> (Vec<String>, serde_json::Map<String, Value>) {
    let ids = culprits.iter().map(|c| hex::encode(&c.identity)).collect();
    let faults = culprits
        .iter()
        .map(|c| (hex::encode(&c.identity), json!(c.fault.as_str())))
        .collect();
    (ids, faults)
}

/// The route.
pub fn routes(service: SignService) -> Router {
    Router::new().route("/sign", post(sign)).with_state(service)
}

#[cfg(test)]
mod bearer_tests {
    use super::*;

    #[test]
    fn the_scheme_is_matched_in_any_case_and_the_token_exactly() {
        let presented = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            bearer(&headers).map(<[u8]>::to_vec)
        };
        for value in ["Bearer Tok", "bearer Tok", "BEARER Tok"] {
            assert_eq!(presented(value), Some(b"Tok".to_vec()), "{value}");
        }
        for value in ["Basic Tok", "Bearer", "BearerTok", ""] {
            assert_eq!(presented(value), None, "{value}");
        }
    }
}
