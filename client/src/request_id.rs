//! Fills in an empty `request_id` of an encoded request, so that a create can be sent again
//! and the service answers it once. Works on the gRPC frame, below the generated stubs, so
//! every create and batch of the contract gets it without a wrapper per method.

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

/// The gRPC frame `frame` (flag byte, 4-byte length, message) with the string field `field`
/// set to a new UUID if the message leaves it empty; unchanged when it is set. None when the
/// frame cannot be read (compressed, or not valid protobuf): then nobody can tell whether a
/// repeat would be answered once, so the call must not be repeated.
pub(crate) fn ensure_request_id(frame: Bytes, field: u32) -> Option<Bytes> {
    const HEADER: usize = 5;
    if frame.len() < HEADER || frame[0] != 0 {
        return None;
    }
    let length = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    if frame.len() != HEADER + length {
        return None;
    }
    if string_field_is_set(&frame[HEADER..], field)? {
        return Some(frame);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut message = BytesMut::with_capacity(length + id.len() + 8);
    message.put_slice(&frame[HEADER..]);
    // A field that appears twice takes its last value, so appending sets it.
    encode_key(field, WireType::LengthDelimited, &mut message);
    encode_varint(id.len() as u64, &mut message);
    message.put_slice(id.as_bytes());
    let mut out = BytesMut::with_capacity(HEADER + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(&message);
    Some(out.freeze())
}

/// Whether the top-level string field `field` holds a non-empty value (the last occurrence
/// counts); none when the message is not valid protobuf.
fn string_field_is_set(mut message: &[u8], field: u32) -> Option<bool> {
    let mut set = false;
    while !message.is_empty() {
        let (tag, wire_type) = decode_key(&mut message).ok()?;
        let skip = match wire_type {
            WireType::Varint => {
                decode_varint(&mut message).ok()?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                let length = usize::try_from(decode_varint(&mut message).ok()?).ok()?;
                if tag == field {
                    set = length > 0;
                }
                length
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        message = message.get(skip..)?;
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::{CreateObserverRequest, Observer};
    use prost::Message;

    fn frame(request: &CreateObserverRequest) -> Bytes {
        let message = request.encode_to_vec();
        let mut out = BytesMut::new();
        out.put_u8(0);
        out.put_u32(message.len() as u32);
        out.put_slice(&message);
        out.freeze()
    }

    fn decode(frame: &Bytes) -> CreateObserverRequest {
        CreateObserverRequest::decode(&frame[5..]).unwrap()
    }

    fn request(request_id: &str) -> CreateObserverRequest {
        CreateObserverRequest {
            parent: "elections/kz-2023".into(),
            observer_id: "o-1".into(),
            observer: Some(Observer {
                given_name: "Aigerim".into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        }
    }

    #[test]
    fn an_empty_request_id_gets_a_uuid_and_nothing_else_changes() {
        let filled = decode(&ensure_request_id(frame(&request("")), 4).unwrap());
        assert!(uuid::Uuid::parse_str(&filled.request_id).is_ok());
        assert_eq!(
            CreateObserverRequest {
                request_id: String::new(),
                ..filled
            },
            request("")
        );
    }

    #[test]
    fn a_given_request_id_is_kept() {
        let given = "9f1c9f5e-3c5a-4a61-9e0b-0f4f0e6f8a11";
        let original = frame(&request(given));
        assert_eq!(ensure_request_id(original.clone(), 4), Some(original));
    }

    #[test]
    fn each_call_gets_its_own_id() {
        let a = decode(&ensure_request_id(frame(&request("")), 4).unwrap()).request_id;
        let b = decode(&ensure_request_id(frame(&request("")), 4).unwrap()).request_id;
        assert_ne!(a, b);
    }

    #[test]
    fn compressed_or_unreadable_frames_cannot_be_made_safe_to_repeat() {
        let mut compressed = frame(&request("")).to_vec();
        compressed[0] = 1;
        let compressed = Bytes::from(compressed);
        assert_eq!(ensure_request_id(compressed, 4), None);
        let garbage = Bytes::from_static(&[0, 0, 0, 0, 2, 0x0a, 0x7f]);
        assert_eq!(ensure_request_id(garbage, 4), None);
    }
}
