//! The codec of the generated servers: prost's, except that a response's buffer is sized to
//! the message. tonic's default gives every response an 8 KiB buffer, and an open watch
//! keeps its buffer for the stream's whole life: that was a third of what an idle watcher
//! cost (BENCHMARKS.md).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic_prost::{ProstCodec, ProstDecoder};

/// The first allocation of a response: room for the frame header and a small message;
/// `encode` reserves the rest at once.
const FIRST_BUFFER: usize = 256;
/// As tonic's default: a stream's messages are sent once this much is encoded.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost's codec with message-sized response buffers; named by `build.rs`.
#[derive(Debug)]
pub struct ServerCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ServerCodec<T, U> {
    fn default() -> Self {
        ServerCodec(PhantomData)
    }
}

impl<T, U> Codec for ServerCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = SizedEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        SizedEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::default().decoder()
    }
}

/// Encodes a message after reserving its exact length.
#[derive(Debug)]
pub struct SizedEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for SizedEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let length = item.encoded_len();
        buf.reserve(length);
        // Cannot fail after the reserve; if it did, the cause is logged, not sent.
        item.encode(buf).map_err(|error| {
            tracing::error!(%error, "a response could not be encoded");
            Status::internal("the response could not be encoded")
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(FIRST_BUFFER, YIELD_THRESHOLD)
    }
}
