//! A gRPC codec whose messages are raw bytes both ways: the forwarder sends pre-encoded export
//! requests with it, and tests and benchmarks send malformed or pre-encoded messages.

/// Sends a request body as raw bytes and returns the raw response.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawGrpcCodec;

/// Encoder half of [`RawGrpcCodec`].
#[derive(Debug)]
pub struct RawEncoder;

/// Decoder half of [`RawGrpcCodec`].
#[derive(Debug)]
pub struct RawDecoder;

impl tonic::codec::Codec for RawGrpcCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: bytes::Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<bytes::Bytes>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n)))
    }
}
