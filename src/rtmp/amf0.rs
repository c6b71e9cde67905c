//! AMF0 (Action Message Format 0) encoder and decoder, complete and bounded against hostile input.
//! CONTRACT STUB: to be implemented.

use super::amf3::Amf3Value;

/// Deepest nesting of objects/arrays the decoder accepts.
pub const MAX_DEPTH: usize = 64;
/// Most entries one object, ECMA array or strict array may announce or hold.
pub const MAX_COLLECTION_LEN: usize = 65_536;
/// Most values (counting nested ones) one decode call may produce.
pub const MAX_VALUES: usize = 1_000_000;

/// An AMF0 value. Objects keep their properties in wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// 0x00 number (IEEE 754 double).
    Number(f64),
    /// 0x01 boolean.
    Boolean(bool),
    /// 0x02 string (encoded as a long string if longer than 65535 bytes).
    String(String),
    /// 0x03 anonymous object.
    Object(Vec<(String, Amf0Value)>),
    /// 0x05 null.
    Null,
    /// 0x06 undefined.
    Undefined,
    /// 0x07 reference to an earlier object (index into the object table).
    Reference(u16),
    /// 0x08 ECMA (associative) array.
    EcmaArray(Vec<(String, Amf0Value)>),
    /// 0x0A strict array.
    StrictArray(Vec<Amf0Value>),
    /// 0x0B date: milliseconds since the epoch and a (reserved) time zone.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time zone offset in minutes (reserved, should be 0).
        timezone: i16,
    },
    /// 0x0C long string.
    LongString(String),
    /// 0x0D unsupported.
    Unsupported,
    /// 0x0F XML document.
    XmlDocument(String),
    /// 0x10 typed object.
    TypedObject {
        /// Registered class name.
        class_name: String,
        /// Properties in wire order.
        properties: Vec<(String, Amf0Value)>,
    },
    /// 0x11 AVM+ switch: the following value is AMF3.
    AvmPlus(Amf3Value),
}
