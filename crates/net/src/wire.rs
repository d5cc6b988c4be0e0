//! Wire format of the `/keyquorum/dkg/1.0.0` request-response protocol.
//!
//! Every request and response is one frame: a big-endian `u32` length and
//! that many bytes. The length is checked against the local limit before any
//! buffer is reserved, and the body is then read incrementally, so a peer
//! announcing a huge frame costs us nothing and one sending a large-but-legal
//! frame costs only what it actually sends. The libp2p handler resets the
//! stream on a codec error, which is how the sender learns of the rejection.
//!
//! Request body: `tag u8 | record_len u16 | record | (session [32] | kind u8 |
//! payload)`. Requests carry the sender's own signed address record so the
//! receiver can attribute them to a validator identity without trusting the
//! DHT (see `task.rs`). `Hello` is the same minus the data part; its response
//! carries the responder's record, which lets a sender confirm whom it
//! reached when it only had an address hint.
//!
//! Response body: `status u8 | payload`. Payload bytes are opaque here.

use std::fmt;
use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

use crate::error::RemoteError;

/// Protocol name of DKG message delivery.
pub const DKG_PROTOCOL: StreamProtocol = StreamProtocol::new("/keyquorum/dkg/1.0.0");

/// Opaque session identifier chosen by the DKG layer.
pub type SessionId = [u8; 32];

const TAG_DATA: u8 = 1;
const TAG_HELLO: u8 = 2;
const MAX_RECORD_IN_REQUEST: usize = u16::MAX as usize;
/// Bytes a data request adds on top of the payload and record.
pub const DATA_OVERHEAD: usize = 1 + 2 + 32 + 1;
/// Growth step when reading a frame body: memory follows received bytes.
const READ_CHUNK: usize = 64 * 1024;

/// A request as carried on the wire.
#[derive(Clone)]
pub enum WireRequest {
    Data {
        session: SessionId,
        kind: u8,
        sender_record: Option<Bytes>,
        payload: Bytes,
    },
    Hello {
        sender_record: Option<Bytes>,
    },
}

// Manual impl: payloads must never end up in logs.
impl fmt::Debug for WireRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireRequest::Data {
                session,
                kind,
                sender_record,
                payload,
            } => f
                .debug_struct("Data")
                .field("session", &short_hex(session))
                .field("kind", kind)
                .field("has_record", &sender_record.is_some())
                .field("payload_len", &payload.len())
                .finish(),
            WireRequest::Hello { sender_record } => f
                .debug_struct("Hello")
                .field("has_record", &sender_record.is_some())
                .finish(),
        }
    }
}

impl WireRequest {
    /// Size of the encoded body (without the length prefix).
    pub fn encoded_len(&self) -> usize {
        match self {
            WireRequest::Data {
                sender_record,
                payload,
                ..
            } => DATA_OVERHEAD + sender_record.as_ref().map_or(0, |r| r.len()) + payload.len(),
            WireRequest::Hello { sender_record } => {
                3 + sender_record.as_ref().map_or(0, |r| r.len())
            }
        }
    }

    fn encode_header(&self) -> io::Result<Vec<u8>> {
        let (tag, record) = match self {
            WireRequest::Data { sender_record, .. } => (TAG_DATA, sender_record),
            WireRequest::Hello { sender_record } => (TAG_HELLO, sender_record),
        };
        let record: &[u8] = record.as_deref().unwrap_or_default();
        if record.len() > MAX_RECORD_IN_REQUEST {
            return Err(invalid("sender record too long"));
        }
        let mut out = Vec::with_capacity(DATA_OVERHEAD + record.len());
        out.push(tag);
        out.extend_from_slice(&(record.len() as u16).to_be_bytes());
        out.extend_from_slice(record);
        if let WireRequest::Data { session, kind, .. } = self {
            out.extend_from_slice(session);
            out.push(*kind);
        }
        Ok(out)
    }

    /// Parses a request body. Never panics on arbitrary input.
    pub fn decode(body: Vec<u8>) -> io::Result<Self> {
        let mut body = Bytes::from(body);
        if body.len() < 3 {
            return Err(invalid("request too short"));
        }
        let tag = body[0];
        let rec_len = usize::from(u16::from_be_bytes([body[1], body[2]]));
        if body.len() < 3 + rec_len {
            return Err(invalid("truncated sender record"));
        }
        let _ = body.split_to(3);
        let record = body.split_to(rec_len);
        let sender_record = (!record.is_empty()).then_some(record);
        match tag {
            TAG_DATA => {
                if body.len() < 33 {
                    return Err(invalid("truncated data header"));
                }
                let mut session = [0u8; 32];
                session.copy_from_slice(&body[..32]);
                let kind = body[32];
                let payload = body.split_off(33);
                Ok(WireRequest::Data {
                    session,
                    kind,
                    sender_record,
                    payload,
                })
            }
            TAG_HELLO if body.is_empty() => Ok(WireRequest::Hello { sender_record }),
            TAG_HELLO => Err(invalid("hello with trailing bytes")),
            _ => Err(invalid("unknown request tag")),
        }
    }
}

/// Status byte of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err(RemoteError),
}

impl Status {
    fn to_byte(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Err(RemoteError::NotMember) => 1,
            Status::Err(RemoteError::UnknownSession) => 2,
            Status::Err(RemoteError::Busy) => 3,
            Status::Err(RemoteError::NoReply) => 4,
            Status::Err(RemoteError::ResponseTooLarge) => 5,
            Status::Err(RemoteError::Malformed) => 6,
            Status::Err(RemoteError::Unknown(b)) => b,
        }
    }

    fn from_byte(b: u8) -> Self {
        match b {
            0 => Status::Ok,
            1 => Status::Err(RemoteError::NotMember),
            2 => Status::Err(RemoteError::UnknownSession),
            3 => Status::Err(RemoteError::Busy),
            4 => Status::Err(RemoteError::NoReply),
            5 => Status::Err(RemoteError::ResponseTooLarge),
            6 => Status::Err(RemoteError::Malformed),
            other => Status::Err(RemoteError::Unknown(other)),
        }
    }
}

/// A response as carried on the wire.
#[derive(Clone)]
pub struct WireResponse {
    pub status: Status,
    pub payload: Vec<u8>,
}

impl fmt::Debug for WireResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireResponse")
            .field("status", &self.status)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl WireResponse {
    pub fn ok(payload: Vec<u8>) -> Self {
        WireResponse {
            status: Status::Ok,
            payload,
        }
    }

    pub fn error(e: RemoteError) -> Self {
        WireResponse {
            status: Status::Err(e),
            payload: Vec::new(),
        }
    }

    /// Size of the encoded body (without the length prefix).
    pub fn encoded_len(&self) -> usize {
        1 + self.payload.len()
    }
}

/// Length-prefixed codec with independent request and response limits.
#[derive(Debug, Clone, Copy)]
pub struct DkgCodec {
    pub max_request: usize,
    pub max_response: usize,
}

impl Codec for DkgCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = WireResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, self.max_request).await?;
        WireRequest::decode(body)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut body = read_frame(io, self.max_response).await?;
        if body.is_empty() {
            return Err(invalid("empty response"));
        }
        let status = Status::from_byte(body.remove(0));
        Ok(WireResponse {
            status,
            payload: body,
        })
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: WireRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let len = req.encoded_len();
        check_len(len, self.max_request)?;
        io.write_all(&(len as u32).to_be_bytes()).await?;
        io.write_all(&req.encode_header()?).await?;
        if let WireRequest::Data { payload, .. } = &req {
            io.write_all(payload).await?;
        }
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: WireResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let len = res.encoded_len();
        check_len(len, self.max_response)?;
        io.write_all(&(len as u32).to_be_bytes()).await?;
        io.write_all(&[res.status.to_byte()]).await?;
        io.write_all(&res.payload).await?;
        io.flush().await
    }
}

fn check_len(len: usize, max: usize) -> io::Result<()> {
    if len > max || u32::try_from(len).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    Ok(())
}

/// Reads one length-prefixed frame of at most `max` bytes.
pub async fn read_frame<T>(io: &mut T, max: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    check_len(len, max)?;
    let mut body = Vec::with_capacity(len.min(READ_CHUNK));
    let read = (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if read != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "frame shorter than announced",
        ));
    }
    Ok(body)
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// First bytes of a session id in hex, for logs.
pub fn short_hex(bytes: &[u8]) -> String {
    hex::encode(&bytes[..bytes.len().min(6)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn codec() -> DkgCodec {
        DkgCodec {
            max_request: 1024,
            max_response: 64,
        }
    }

    #[test]
    fn request_roundtrip() {
        let req = WireRequest::Data {
            session: [7; 32],
            kind: 3,
            sender_record: Some(Bytes::from_static(b"record")),
            payload: Bytes::from_static(b"payload"),
        };
        let mut buf = Cursor::new(Vec::new());
        block_on(codec().write_request(&DKG_PROTOCOL, &mut buf, req.clone())).unwrap();
        assert_eq!(buf.get_ref().len(), 4 + req.encoded_len());
        buf.set_position(0);
        match block_on(codec().read_request(&DKG_PROTOCOL, &mut buf)).unwrap() {
            WireRequest::Data {
                session,
                kind,
                sender_record,
                payload,
            } => {
                assert_eq!(session, [7; 32]);
                assert_eq!(kind, 3);
                assert_eq!(sender_record.as_deref(), Some(&b"record"[..]));
                assert_eq!(&payload[..], b"payload");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn response_roundtrip_and_status() {
        let mut buf = Cursor::new(Vec::new());
        let res = WireResponse::ok(b"share".to_vec());
        block_on(codec().write_response(&DKG_PROTOCOL, &mut buf, res)).unwrap();
        buf.set_position(0);
        let back = block_on(codec().read_response(&DKG_PROTOCOL, &mut buf)).unwrap();
        assert_eq!(back.status, Status::Ok);
        assert_eq!(back.payload, b"share");

        let mut buf = Cursor::new(Vec::new());
        let res = WireResponse::error(RemoteError::NotMember);
        block_on(codec().write_response(&DKG_PROTOCOL, &mut buf, res)).unwrap();
        buf.set_position(0);
        let back = block_on(codec().read_response(&DKG_PROTOCOL, &mut buf)).unwrap();
        assert_eq!(back.status, Status::Err(RemoteError::NotMember));
    }

    #[test]
    fn oversize_rejected_before_reading_body() {
        // Announces 4 GiB but carries nothing: must fail on the prefix alone.
        let mut buf = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = block_on(codec().read_request(&DKG_PROTOCOL, &mut buf)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut buf = Cursor::new(65u32.to_be_bytes().to_vec());
        let err = block_on(codec().read_response(&DKG_PROTOCOL, &mut buf)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let big = WireResponse::ok(vec![0; 64]);
        let mut out = Cursor::new(Vec::new());
        assert!(block_on(codec().write_response(&DKG_PROTOCOL, &mut out, big)).is_err());
        assert!(out.get_ref().is_empty());
    }

    #[test]
    fn truncated_and_garbage_frames_fail_cleanly() {
        let mut buf = Cursor::new(vec![0, 0, 0, 10, 1, 2]);
        let err = block_on(codec().read_request(&DKG_PROTOCOL, &mut buf)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        for body in [
            vec![],
            vec![1],
            vec![1, 0, 5, 1],
            vec![1, 0, 0, 1, 2],
            vec![9, 0, 0],
            vec![2, 0, 0, 1],
        ] {
            assert!(WireRequest::decode(body).is_err());
        }
        // Arbitrary bodies: decode may fail but must not panic.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..600 {
            let body: Vec<u8> = (0..len % 80)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 4) as u8
                })
                .collect();
            let _ = WireRequest::decode(body);
        }
        assert!(matches!(
            WireRequest::decode(vec![2, 0, 0]),
            Ok(WireRequest::Hello {
                sender_record: None
            })
        ));
    }
}
