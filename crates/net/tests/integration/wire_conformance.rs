//! Golden vectors and fuzz harnesses of the network layer's own encodings: signed address
//! records (stored in and read from the DHT) and the frames of the `/keyquorum/dkg/1.0.0`
//! request-response protocol.
//!
//! Vectors: a record signed by a fixed ed25519 test identity (the records of a real node carry
//! the BLS identity instead; the layout is the same), and data, hello and response frames; they
//! are compared with `tests/vectors/wire.json`, decoded again and re-encoded. Rewrite the file
//! after an intentional change with
//!
//! ```text
//! KQ_UPDATE_VECTORS=1 cargo test -p keyquorum-net --release --test integration wire_conformance::
//! ```
//!
//! Fuzzing: random bytes and mutations of the vectors go to `AddressRecord::decode`,
//! `verify_record_bytes`-style checks, and the codec's request and response readers. Nothing
//! panics, and a record or request that decodes re-encodes to exactly its bytes.
//! `KQ_FUZZ_CASES=<n>` sets the number of cases (see `docs/testing.md`).

use keyquorum_dkg::testing::fuzzing;

use bytes::Bytes;
use futures::executor::block_on;
use futures::io::Cursor;
use keyquorum_dkg::testing::golden::Vectors;
use keyquorum_net::libp2p::identity::{Keypair, ed25519};
use keyquorum_net::libp2p::request_response::Codec;
use keyquorum_net::testing::verify_test_signature;
use keyquorum_net::wire::{DkgCodec, WireRequest, WireResponse};
use keyquorum_net::{AddressRecord, DKG_PROTOCOL, IdentitySigner, Multiaddr};
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const CODEC: DkgCodec = DkgCodec {
    max_request: 1 << 20,
    max_response: 1 << 20,
};

/// An ed25519 identity from a fixed secret (ed25519 signatures are deterministic).
struct FixedIdentity(ed25519::Keypair);

impl FixedIdentity {
    fn new(seed: u8) -> Self {
        let secret = ed25519::SecretKey::try_from_bytes([seed; 32]).unwrap();
        FixedIdentity(ed25519::Keypair::from(secret))
    }
}

impl IdentitySigner for FixedIdentity {
    fn public_key(&self) -> Vec<u8> {
        self.0.public().to_bytes().to_vec()
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg)
    }
}

fn record() -> AddressRecord {
    let peer = Keypair::ed25519_from_bytes([0x70; 32])
        .unwrap()
        .public()
        .to_peer_id();
    let addresses: Vec<Multiaddr> = vec![
        "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
        "/dns4/node.example/udp/4001/quic-v1".parse().unwrap(),
    ];
    AddressRecord::new_signed(&FixedIdentity::new(0x71), peer, addresses, 9).unwrap()
}

fn write_request(req: WireRequest) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    block_on(CODEC.clone().write_request(&DKG_PROTOCOL, &mut out, req)).unwrap();
    out.into_inner()
}

fn write_response(res: WireResponse) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    block_on(CODEC.clone().write_response(&DKG_PROTOCOL, &mut out, res)).unwrap();
    out.into_inner()
}

fn frames() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let rec = Bytes::from(record().encode().unwrap());
    vec![
        (
            "frame/request/data",
            "a data request (kind 3) carrying the record above and a 5-byte payload, length-prefixed",
            write_request(WireRequest::Data {
                session: [0x5e; 32],
                kind: 3,
                sender_record: Some(rec.clone()),
                payload: Bytes::from_static(b"hello"),
            }),
        ),
        (
            "frame/request/data-without-record",
            "a data request (kind 1) without a record and with an empty payload",
            write_request(WireRequest::Data {
                session: [0x01; 32],
                kind: 1,
                sender_record: None,
                payload: Bytes::new(),
            }),
        ),
        (
            "frame/request/hello",
            "a hello request carrying the record above",
            write_request(WireRequest::Hello {
                sender_record: Some(rec),
            }),
        ),
        (
            "frame/response/ok",
            "a successful response with a 3-byte payload",
            write_response(WireResponse::ok(vec![1, 2, 3])),
        ),
        (
            "frame/response/error",
            "an error response (the responder is busy)",
            write_response(WireResponse::error(keyquorum_net::RemoteError::Busy)),
        ),
    ]
}

#[test]
fn encodings_match_the_vectors() {
    let mut v = Vectors::new(DIR, "wire.json");
    let rec = record();
    let bytes = rec.encode().unwrap();
    assert_eq!(AddressRecord::decode(&bytes).unwrap(), rec);
    assert!(rec.verify_signature(&verify_test_signature).is_ok());
    v.add(
        "address-record",
        "a record signed by the ed25519 test identity of secret [0x71; 32]: peer of secret \
         [0x70; 32], two addresses, sequence 9",
        &bytes,
    );
    v.add(
        "address-record-signing-message",
        "what the identity signs for the record above",
        &rec.signing_message().unwrap(),
    );
    v.add(
        "address-record-dht-key",
        "the DHT key the record above is stored under",
        &rec.dht_key(),
    );
    for (name, note, frame) in frames() {
        check_frame(&frame);
        v.add(name, note, &frame);
    }
    v.check();
}

/// Reads a frame as a request and as a response; whatever decodes is written back to the same
/// bytes.
fn check_frame(frame: &[u8]) {
    if let Ok(req) = block_on(
        CODEC
            .clone()
            .read_request(&DKG_PROTOCOL, &mut Cursor::new(frame)),
    ) {
        assert_eq!(write_request(req), frame_prefix(frame));
    }
    if let Ok(res) = block_on(
        CODEC
            .clone()
            .read_response(&DKG_PROTOCOL, &mut Cursor::new(frame)),
    ) {
        assert_eq!(write_response(res), frame_prefix(frame));
    }
}

/// The frame the reader consumed: the prefix and as many bytes as it announces (a reader stops
/// there; trailing bytes belong to the stream, not the frame).
fn frame_prefix(frame: &[u8]) -> Vec<u8> {
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    frame[..4 + len].to_vec()
}

fn corpus() -> Vec<Vec<u8>> {
    let mut c = vec![record().encode().unwrap()];
    c.extend(frames().into_iter().map(|(_, _, f)| f));
    c
}

proptest! {
    #![proptest_config(fuzzing::config(2048))]

    #[test]
    fn record_decoder(bytes in fuzzing::input(corpus(), 600)) {
        if let Ok(r) = AddressRecord::decode(&bytes) {
            prop_assert_eq!(r.encode().unwrap(), bytes.clone());
            let _ = r.verify_signature(&verify_test_signature);
        }
    }

    #[test]
    fn frame_readers(bytes in fuzzing::input(corpus(), 600)) {
        check_frame(&bytes);
        // The body alone, as the request decoder sees it after the frame is read.
        let _ = WireRequest::decode(bytes);
    }
}
