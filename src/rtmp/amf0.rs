//! AMF0 (Action Message Format 0) encoder and decoder, complete and bounded against hostile input.
//!
//! Section numbers in comments refer to the Adobe "AMF 0 Specification" (2006).
//!
//! The decoder treats its input as untrusted: it never allocates more than the remaining input
//! can justify, never recurses deeper than [`MAX_DEPTH`], and stops with an error once one decode
//! call has produced [`MAX_VALUES`] values or [`MAX_DECODED_BYTES`] bytes of strings. It never
//! panics. The limits and the budget are shared with an AMF3 value embedded through the AVM+
//! marker (§3.1).

use super::amf3::{self, Amf3Decoder, Amf3Value};
use super::error::{ProtocolError, Result};

/// Deepest nesting of objects/arrays the decoder accepts.
pub const MAX_DEPTH: usize = 64;
/// Most entries one object, ECMA array or strict array may announce or hold.
pub const MAX_COLLECTION_LEN: usize = 65_536;
/// Most values (counting nested ones) one decode call may produce.
pub const MAX_VALUES: usize = 1_000_000;
/// Most bytes of strings, keys and byte arrays one decode call may produce.
///
/// AMF0 data cannot produce more bytes than it contains, but AMF3 string and object references
/// (reachable from AMF0 through the AVM+ marker) can repeat one long string many times.
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;

/// Type markers (§2.1).
mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const RECORDSET: u8 = 0x0E;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS: u8 = 0x11;
}

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

impl Amf0Value {
    /// Builds an anonymous [`Amf0Value::Object`] from `(key, value)` pairs, keeping their order.
    pub fn object<I, K>(props: I) -> Self
    where
        I: IntoIterator<Item = (K, Amf0Value)>,
        K: Into<String>,
    {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The text of a [`String`](Amf0Value::String) or [`LongString`](Amf0Value::LongString).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a [`Number`](Amf0Value::Number).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a [`Boolean`](Amf0Value::Boolean).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an [`Object`](Amf0Value::Object), [`EcmaArray`](Amf0Value::EcmaArray)
    /// or [`TypedObject`](Amf0Value::TypedObject), in wire order.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(props)
            | Amf0Value::EcmaArray(props)
            | Amf0Value::TypedObject {
                properties: props, ..
            } => Some(props),
            _ => None,
        }
    }

    /// The value of the first property named `key`, if this value has properties.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

/// Appends the AMF0 encoding of `value` to `out`.
///
/// Things the format cannot represent are adapted rather than refused:
/// - a [`String`](Amf0Value::String) longer than 65535 bytes is written as a long string (so it
///   decodes as [`LongString`](Amf0Value::LongString));
/// - property names and class names longer than 65535 bytes, and long strings / XML documents
///   longer than `u32::MAX` bytes, are cut at the last UTF-8 character boundary that fits;
/// - a strict array with more than `u32::MAX` items is cut to `u32::MAX` items.
///
/// An [`AvmPlus`](Amf0Value::AvmPlus) value starts a fresh AMF3 context (its own reference
/// tables), matching the decoder.
///
/// The encoder recurses once per nesting level of `value`.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) {
    match value {
        Amf0Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => {
            out.push(marker::BOOLEAN);
            out.push(u8::from(*b));
        }
        Amf0Value::String(s) if s.len() <= usize::from(u16::MAX) => {
            out.push(marker::STRING);
            write_short_str(s, out);
        }
        // §2.4: strings that do not fit a u16 length need the long-string type.
        Amf0Value::String(s) | Amf0Value::LongString(s) => {
            out.push(marker::LONG_STRING);
            write_long_str(s, out);
        }
        Amf0Value::Object(props) => {
            out.push(marker::OBJECT);
            write_properties(props, out);
        }
        Amf0Value::Null => out.push(marker::NULL),
        Amf0Value::Undefined => out.push(marker::UNDEFINED),
        Amf0Value::Reference(index) => {
            out.push(marker::REFERENCE);
            out.extend_from_slice(&index.to_be_bytes());
        }
        Amf0Value::EcmaArray(props) => {
            out.push(marker::ECMA_ARRAY);
            // §2.10: the count is only a hint; the object-end marker is authoritative.
            let count = u32::try_from(props.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            write_properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            for item in items.iter().take(count as usize) {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&timezone.to_be_bytes());
        }
        Amf0Value::Unsupported => out.push(marker::UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.push(marker::XML_DOCUMENT);
            write_long_str(s, out);
        }
        Amf0Value::TypedObject {
            class_name,
            properties,
        } => {
            out.push(marker::TYPED_OBJECT);
            write_short_str(class_name, out);
            write_properties(properties, out);
        }
        Amf0Value::AvmPlus(inner) => {
            out.push(marker::AVMPLUS);
            amf3::encode(inner, out);
        }
    }
}

/// Encodes `values` one after the other, as in the body of an RTMP command message.
pub fn encode_all(values: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode(value, &mut out);
    }
    out
}

/// Writes `UTF-8` (§1.3.1): a u16 byte length and the bytes, cut to fit the u16.
fn write_short_str(s: &str, out: &mut Vec<u8>) {
    let s = &s[..s.floor_char_boundary(usize::from(u16::MAX))];
    // Cannot fail after the cut above.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Writes `UTF-8-long` (§1.3.1): a u32 byte length and the bytes, cut to fit the u32.
fn write_long_str(s: &str, out: &mut Vec<u8>) {
    let max = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
    let s = &s[..s.floor_char_boundary(max)];
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Writes `object-property`s followed by the empty name and the object-end marker (§2.5).
fn write_properties(props: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        write_short_str(key, out);
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

/// Decodes one AMF0 value from the front of `input` and advances `input` past it.
///
/// On error `input` is left unchanged. Strings that are not valid UTF-8 are decoded lossily.
/// A [`Reference`](Amf0Value::Reference) is kept as is, but its index must name one of the
/// objects, ECMA arrays, strict arrays or typed objects that started earlier in this call
/// (§2.9), otherwise the result is [`ProtocolError::InvalidAmfReference`].
pub fn decode(input: &mut &[u8]) -> Result<Amf0Value> {
    let mut cursor = *input;
    let value = Decoder::default().value(&mut cursor, 0)?;
    *input = cursor;
    Ok(value)
}

/// Decodes AMF0 values until `data` ends, as in the body of an RTMP command message.
///
/// The values share one object table (references may point into earlier values) and one
/// [`MAX_VALUES`] / [`MAX_DECODED_BYTES`] budget.
pub fn decode_all(data: &[u8]) -> Result<Vec<Amf0Value>> {
    let mut input = data;
    let mut decoder = Decoder::default();
    let mut values = Vec::new();
    while !input.is_empty() {
        values.push(decoder.value(&mut input, 0)?);
    }
    Ok(values)
}

/// How much output a decode call has produced (or one value costs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Cost {
    /// Number of values, nested ones included.
    pub(super) values: usize,
    /// Bytes of strings, property names and byte arrays.
    pub(super) bytes: usize,
}

impl Cost {
    /// What was spent between `earlier` and `self`.
    pub(super) fn since(self, earlier: Cost) -> Cost {
        Cost {
            values: self.values.saturating_sub(earlier.values),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// The output budget of one decode call, shared by AMF0 and any AMF3 value inside it.
///
/// Everything that ends up in the decoded value is charged, including the copies an AMF3
/// reference produces: that is what stops "billion laughs" inputs whose output grows
/// exponentially with their size.
#[derive(Debug, Default)]
pub(super) struct Budget {
    spent: Cost,
}

impl Budget {
    /// Everything charged so far.
    pub(super) fn spent(&self) -> Cost {
        self.spent
    }

    /// Charges `cost`, failing once a limit is exceeded.
    pub(super) fn charge(&mut self, cost: Cost) -> Result<()> {
        let values = self.spent.values.saturating_add(cost.values);
        if values > MAX_VALUES {
            return Err(too_large("value count", values, MAX_VALUES));
        }
        let bytes = self.spent.bytes.saturating_add(cost.bytes);
        if bytes > MAX_DECODED_BYTES {
            return Err(too_large("decoded byte count", bytes, MAX_DECODED_BYTES));
        }
        self.spent = Cost { values, bytes };
        Ok(())
    }

    /// Charges one value.
    pub(super) fn charge_value(&mut self) -> Result<()> {
        self.charge(Cost {
            values: 1,
            bytes: 0,
        })
    }

    /// Charges `len` bytes of string or byte-array payload.
    pub(super) fn charge_bytes(&mut self, len: usize) -> Result<()> {
        self.charge(Cost {
            values: 0,
            bytes: len,
        })
    }
}

/// The depth of the members of a container at `depth`, or an error past [`MAX_DEPTH`].
pub(super) fn enter(depth: usize) -> Result<usize> {
    let inner = depth + 1;
    if inner > MAX_DEPTH {
        return Err(ProtocolError::AmfTooDeep { max: MAX_DEPTH }.into());
    }
    Ok(inner)
}

/// A [`ProtocolError::AmfTooLarge`] as an [`Error`](super::error::Error).
pub(super) fn too_large(what: &'static str, len: usize, max: usize) -> super::error::Error {
    ProtocolError::AmfTooLarge { what, len, max }.into()
}

/// The error for a collection with `len` (> [`MAX_COLLECTION_LEN`]) entries.
pub(super) fn collection_too_large(len: usize) -> super::error::Error {
    too_large("collection length", len, MAX_COLLECTION_LEN)
}

/// Fails with [`ProtocolError::AmfTooLarge`] if a collection announces more than
/// [`MAX_COLLECTION_LEN`] entries, and with [`ProtocolError::Truncated`] (naming `what`) if the
/// rest of the input cannot hold `count` entries of at least `min_entry_len` bytes each.
/// Run before allocating, so a huge announced count costs nothing.
pub(super) fn check_count(
    count: usize,
    min_entry_len: usize,
    input: &[u8],
    what: &'static str,
) -> Result<()> {
    if count > MAX_COLLECTION_LEN {
        return Err(collection_too_large(count));
    }
    if count.saturating_mul(min_entry_len) > input.len() {
        return Err(ProtocolError::Truncated { what }.into());
    }
    Ok(())
}

/// Bounds-checked big-endian reads from the front of a byte slice, shared with the AMF3 decoder.
pub(super) mod wire {
    use crate::rtmp::error::{ProtocolError, Result};

    /// Takes the first `len` bytes of `input`.
    pub(in crate::rtmp) fn take<'a>(
        input: &mut &'a [u8],
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8]> {
        let data: &'a [u8] = input;
        let (head, tail) = data
            .split_at_checked(len)
            .ok_or(ProtocolError::Truncated { what })?;
        *input = tail;
        Ok(head)
    }

    /// Takes the first `N` bytes of `input` as an array.
    pub(in crate::rtmp) fn array<const N: usize>(
        input: &mut &[u8],
        what: &'static str,
    ) -> Result<[u8; N]> {
        let data: &[u8] = input;
        let (head, tail) = data
            .split_first_chunk::<N>()
            .ok_or(ProtocolError::Truncated { what })?;
        *input = tail;
        Ok(*head)
    }

    /// Reads one byte.
    pub(in crate::rtmp) fn u8(input: &mut &[u8], what: &'static str) -> Result<u8> {
        array::<1>(input, what).map(|[b]| b)
    }

    /// Reads a big-endian u16.
    pub(in crate::rtmp) fn u16(input: &mut &[u8], what: &'static str) -> Result<u16> {
        array(input, what).map(u16::from_be_bytes)
    }

    /// Reads a big-endian u32.
    pub(in crate::rtmp) fn u32(input: &mut &[u8], what: &'static str) -> Result<u32> {
        array(input, what).map(u32::from_be_bytes)
    }

    /// Reads a big-endian IEEE 754 double.
    pub(in crate::rtmp) fn f64(input: &mut &[u8], what: &'static str) -> Result<f64> {
        array(input, what).map(f64::from_be_bytes)
    }

    /// Takes `len` bytes as text, replacing invalid UTF-8 (never an error: servers do send it).
    pub(in crate::rtmp) fn text(
        input: &mut &[u8],
        len: usize,
        what: &'static str,
    ) -> Result<String> {
        take(input, len, what).map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }
}

/// State of one AMF0 decode call.
#[derive(Debug, Default)]
struct Decoder {
    /// Output produced so far.
    budget: Budget,
    /// Objects, ECMA arrays, strict arrays and typed objects started so far: the size of the
    /// object table that references index into (§2.9).
    complex_seen: usize,
}

impl Decoder {
    /// Decodes one value (§2.1) nested inside `depth` containers.
    fn value(&mut self, input: &mut &[u8], depth: usize) -> Result<Amf0Value> {
        let marker = wire::u8(input, "AMF0 type marker")?;
        self.budget.charge_value()?;
        let value = match marker {
            marker::NUMBER => Amf0Value::Number(wire::f64(input, "AMF0 number")?),
            marker::BOOLEAN => Amf0Value::Boolean(wire::u8(input, "AMF0 boolean")? != 0),
            marker::STRING => Amf0Value::String(self.short_str(input, "AMF0 string")?),
            marker::OBJECT => Amf0Value::Object(self.object_body(input, depth)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::REFERENCE => self.reference(input)?,
            marker::ECMA_ARRAY => {
                // §2.10: the associative count is a hint we neither trust nor need.
                wire::u32(input, "AMF0 ECMA array count")?;
                Amf0Value::EcmaArray(self.object_body(input, depth)?)
            }
            marker::STRICT_ARRAY => Amf0Value::StrictArray(self.strict_array(input, depth)?),
            marker::DATE => Amf0Value::Date {
                millis: wire::f64(input, "AMF0 date")?,
                timezone: i16::from_be_bytes(wire::array(input, "AMF0 date time zone")?),
            },
            marker::LONG_STRING => Amf0Value::LongString(self.long_str(input, "AMF0 long string")?),
            marker::UNSUPPORTED => Amf0Value::Unsupported,
            marker::XML_DOCUMENT => {
                Amf0Value::XmlDocument(self.long_str(input, "AMF0 XML document")?)
            }
            marker::TYPED_OBJECT => {
                let class_name = self.short_str(input, "AMF0 typed object class name")?;
                let properties = self.object_body(input, depth)?;
                Amf0Value::TypedObject {
                    class_name,
                    properties,
                }
            }
            // §3.1: the next value is AMF3, in a fresh AMF3 context. It shares our budget and
            // depth so nesting AMF3 inside AMF0 cannot escape the limits.
            marker::AVMPLUS => Amf0Value::AvmPlus(Amf3Decoder::new().decode_nested(
                input,
                &mut self.budget,
                depth,
            )?),
            // MovieClip (§2.6) and RecordSet (§2.16) are reserved, object-end (§2.11) is only
            // valid as a terminator, and anything above 0x11 does not exist.
            marker::MOVIECLIP | marker::RECORDSET | marker::OBJECT_END | 0x12.. => {
                return Err(ProtocolError::InvalidAmfMarker { version: 0, marker }.into());
            }
        };
        Ok(value)
    }

    /// Reads `UTF-8` (u16 length) text and charges its bytes.
    fn short_str(&mut self, input: &mut &[u8], what: &'static str) -> Result<String> {
        let len = wire::u16(input, what)?;
        let text = wire::text(input, usize::from(len), what)?;
        self.budget.charge_bytes(text.len())?;
        Ok(text)
    }

    /// Reads `UTF-8-long` (u32 length) text and charges its bytes.
    fn long_str(&mut self, input: &mut &[u8], what: &'static str) -> Result<String> {
        let len = wire::u32(input, what)?;
        // `take` checks the length against the remaining input before anything is allocated.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let text = wire::text(input, len, what)?;
        self.budget.charge_bytes(text.len())?;
        Ok(text)
    }

    /// Reads a reference (§2.9) and checks that it names an object already started.
    fn reference(&mut self, input: &mut &[u8]) -> Result<Amf0Value> {
        let index = wire::u16(input, "AMF0 reference")?;
        if usize::from(index) >= self.complex_seen {
            return Err(ProtocolError::InvalidAmfReference {
                version: 0,
                table: "object",
                index: usize::from(index),
            }
            .into());
        }
        Ok(Amf0Value::Reference(index))
    }

    /// Registers a complex value in the object table and returns the depth of its members.
    fn start_complex(&mut self, depth: usize) -> Result<usize> {
        let inner = enter(depth)?;
        self.complex_seen += 1;
        Ok(inner)
    }

    /// Reads `object-property`s up to the empty name + object-end marker (§2.5), for objects,
    /// ECMA arrays and typed objects.
    fn object_body(&mut self, input: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf0Value)>> {
        let inner = self.start_complex(depth)?;
        let mut props = Vec::new();
        loop {
            let key = self.short_str(input, "AMF0 property name")?;
            if key.is_empty() && input.first() == Some(&marker::OBJECT_END) {
                wire::u8(input, "AMF0 object end")?; // consume the marker just seen
                return Ok(props);
            }
            // An empty name followed by a real value is tolerated as an ordinary property, so
            // that everything the encoder writes decodes again.
            if props.len() >= MAX_COLLECTION_LEN {
                return Err(collection_too_large(props.len() + 1));
            }
            let value = self.value(input, inner)?;
            props.push((key, value));
        }
    }

    /// Reads a strict array (§2.12): a u32 count, then that many values.
    fn strict_array(&mut self, input: &mut &[u8], depth: usize) -> Result<Vec<Amf0Value>> {
        let inner = self.start_complex(depth)?;
        let count = wire::u32(input, "AMF0 strict array")?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        // Every value takes at least its marker byte.
        check_count(count, 1, input, "AMF0 strict array")?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(input, inner)?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::amf3::tests::{Rng, every_amf3_variant, mutate};
    use crate::rtmp::error::Error;

    /// The protocol error of `result`, failing the test if there is none.
    fn protocol_error<T: std::fmt::Debug>(result: Result<T>) -> ProtocolError {
        match result {
            Err(Error::Protocol(err)) => err,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    fn decode_one(mut bytes: &[u8]) -> Result<Amf0Value> {
        decode(&mut bytes)
    }

    /// One of every AMF0 variant, with nesting.
    fn every_variant() -> Vec<Amf0Value> {
        vec![
            Amf0Value::Number(0.0),
            Amf0Value::Number(-1.5e300),
            Amf0Value::Number(f64::INFINITY),
            Amf0Value::Boolean(false),
            Amf0Value::Boolean(true),
            Amf0Value::String(String::new()),
            Amf0Value::String("héllo wörld".into()),
            Amf0Value::object([
                ("a", Amf0Value::Number(1.0)),
                ("", Amf0Value::Null),
                (
                    "nested",
                    Amf0Value::object([("b", Amf0Value::Boolean(true))]),
                ),
            ]),
            Amf0Value::Object(Vec::new()),
            Amf0Value::Null,
            Amf0Value::Undefined,
            Amf0Value::StrictArray(vec![
                Amf0Value::object([("self", Amf0Value::Reference(0))]),
                Amf0Value::Reference(1),
            ]),
            Amf0Value::EcmaArray(vec![
                ("duration".into(), Amf0Value::Number(12.5)),
                ("0".into(), Amf0Value::String("zero".into())),
            ]),
            Amf0Value::StrictArray(Vec::new()),
            Amf0Value::Date {
                millis: 1.7e12,
                timezone: -60,
            },
            Amf0Value::LongString("short but long-typed".into()),
            Amf0Value::Unsupported,
            Amf0Value::XmlDocument("<a b=\"c\"/>".into()),
            Amf0Value::TypedObject {
                class_name: "flex.messaging.io.ArrayCollection".into(),
                properties: vec![("source".into(), Amf0Value::StrictArray(Vec::new()))],
            },
            Amf0Value::AvmPlus(crate::rtmp::amf3::Amf3Value::Array {
                assoc: Vec::new(),
                dense: every_amf3_variant(),
            }),
        ]
    }

    /// `connect` command name, transaction id 1 and a command object, written by hand (§2.4,
    /// §2.2, §2.5).
    const CONNECT: &[u8] = &[
        0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', // "connect"
        0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0,    // 1.0
        0x03, // object
        0x00, 0x03, b'a', b'p', b'p', 0x02, 0x00, 0x04, b'l', b'i', b'v', b'e', // app: "live"
        0x00, 0x04, b't', b'y', b'p', b'e', 0x02, 0x00, 0x0A, b'n', b'o', b'n', b'p', b'r', b'i',
        b'v', b'a', b't', b'e', // type: "nonprivate"
        0x00, 0x0E, b'o', b'b', b'j', b'e', b'c', b't', b'E', b'n', b'c', b'o', b'd', b'i', b'n',
        b'g', 0x00, 0, 0, 0, 0, 0, 0, 0, 0, // objectEncoding: 0.0
        0x00, 0x00, 0x09, // object end
    ];

    fn connect_values() -> Vec<Amf0Value> {
        vec![
            Amf0Value::String("connect".into()),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::String("live".into())),
                ("type", Amf0Value::String("nonprivate".into())),
                ("objectEncoding", Amf0Value::Number(0.0)),
            ]),
        ]
    }

    #[test]
    fn decodes_connect_command_bytes() {
        let values = decode_all(CONNECT).unwrap();
        assert_eq!(values, connect_values());
        let command = &values[2];
        assert_eq!(command.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(
            command.get("objectEncoding").and_then(Amf0Value::as_f64),
            Some(0.0)
        );
        assert_eq!(command.get("missing"), None);
    }

    #[test]
    fn encodes_connect_command_bytes() {
        assert_eq!(encode_all(&connect_values()), CONNECT);
    }

    #[test]
    fn encodes_known_scalars() {
        let cases: &[(Amf0Value, &[u8])] = &[
            (
                Amf0Value::Number(1.5),
                &[0x00, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0],
            ),
            (Amf0Value::Boolean(true), &[0x01, 0x01]),
            (Amf0Value::Boolean(false), &[0x01, 0x00]),
            (Amf0Value::String("a".into()), &[0x02, 0x00, 0x01, b'a']),
            (Amf0Value::Null, &[0x05]),
            (Amf0Value::Undefined, &[0x06]),
            (Amf0Value::Reference(0x0102), &[0x07, 0x01, 0x02]),
            (
                Amf0Value::EcmaArray(vec![("a".into(), Amf0Value::Null)]),
                &[0x08, 0, 0, 0, 1, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09],
            ),
            (
                Amf0Value::StrictArray(vec![Amf0Value::Null]),
                &[0x0A, 0, 0, 0, 1, 0x05],
            ),
            (
                Amf0Value::Date {
                    millis: 0.0,
                    timezone: -1,
                },
                &[0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF],
            ),
            (Amf0Value::LongString("a".into()), &[0x0C, 0, 0, 0, 1, b'a']),
            (Amf0Value::Unsupported, &[0x0D]),
            (
                Amf0Value::XmlDocument("x".into()),
                &[0x0F, 0, 0, 0, 1, b'x'],
            ),
            (
                Amf0Value::TypedObject {
                    class_name: "C".into(),
                    properties: Vec::new(),
                },
                &[0x10, 0x00, 0x01, b'C', 0x00, 0x00, 0x09],
            ),
            (
                Amf0Value::AvmPlus(crate::rtmp::amf3::Amf3Value::Integer(1)),
                &[0x11, 0x04, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            encode(value, &mut out);
            assert_eq!(out, *bytes, "encoding {value:?}");
            // A lone reference names nothing: see references_must_name_an_object_already_started.
            if !matches!(value, Amf0Value::Reference(_)) {
                assert_eq!(decode_one(bytes).unwrap(), *value, "decoding {bytes:02x?}");
            }
        }
    }

    #[test]
    fn every_variant_round_trips() {
        for value in every_variant() {
            let mut bytes = Vec::new();
            encode(&value, &mut bytes);
            let mut input = &bytes[..];
            assert_eq!(decode(&mut input).unwrap(), value);
            assert!(input.is_empty(), "{value:?} left {} bytes", input.len());
        }
        let all = every_variant();
        assert_eq!(decode_all(&encode_all(&all)).unwrap(), all);
    }

    #[test]
    fn decode_consumes_one_value_and_leaves_input_alone_on_error() {
        let mut input: &[u8] = &[0x05, 0x06, 0x02, 0x00];
        assert_eq!(decode(&mut input).unwrap(), Amf0Value::Null);
        assert_eq!(input, &[0x06, 0x02, 0x00]);
        assert_eq!(decode(&mut input).unwrap(), Amf0Value::Undefined);
        assert!(decode(&mut input).is_err());
        assert_eq!(input, &[0x02, 0x00]);
    }

    #[test]
    fn long_strings_switch_to_the_long_string_type() {
        let fits = "x".repeat(65_535);
        let mut out = Vec::new();
        encode(&Amf0Value::String(fits.clone()), &mut out);
        assert_eq!(out[..3], [0x02, 0xFF, 0xFF]);
        assert_eq!(decode_one(&out).unwrap(), Amf0Value::String(fits));

        let long = "x".repeat(65_536);
        out.clear();
        encode(&Amf0Value::String(long.clone()), &mut out);
        assert_eq!(out[..5], [0x0C, 0x00, 0x01, 0x00, 0x00]);
        let decoded = decode_one(&out).unwrap();
        assert_eq!(decoded.as_str(), Some(long.as_str()));
        assert_eq!(decoded, Amf0Value::LongString(long));
    }

    #[test]
    fn overlong_property_names_are_cut_at_a_char_boundary() {
        // 32768 two-byte characters: 65536 bytes, one too many for a u16 length.
        let key = "é".repeat(32_768);
        let mut out = Vec::new();
        encode(&Amf0Value::object([(key, Amf0Value::Null)]), &mut out);
        let decoded = decode_one(&out).unwrap();
        let props = decoded.properties().unwrap();
        assert_eq!(props[0].0, "é".repeat(32_767));
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let value = decode_one(&[0x02, 0x00, 0x03, b'a', 0xFF, 0xC3]).unwrap();
        assert_eq!(value, Amf0Value::String("a\u{FFFD}\u{FFFD}".into()));
        let value = decode_one(&[0x03, 0x00, 0x01, 0xFE, 0x05, 0x00, 0x00, 0x09]).unwrap();
        assert_eq!(value.get("\u{FFFD}"), Some(&Amf0Value::Null));
    }

    #[test]
    fn helpers() {
        let object = Amf0Value::object([
            ("k", Amf0Value::Boolean(true)),
            ("k", Amf0Value::Boolean(false)),
        ]);
        assert_eq!(object.get("k").and_then(Amf0Value::as_bool), Some(true));
        assert_eq!(object.properties().map(<[_]>::len), Some(2));
        assert_eq!(Amf0Value::Null.properties(), None);
        assert_eq!(Amf0Value::Null.get("k"), None);
        assert_eq!(Amf0Value::LongString("l".into()).as_str(), Some("l"));
        assert_eq!(Amf0Value::Number(2.0).as_str(), None);
        assert_eq!(Amf0Value::Number(2.0).as_f64(), Some(2.0));
        assert_eq!(Amf0Value::Null.as_f64(), None);
        assert_eq!(Amf0Value::Null.as_bool(), None);
        let typed = Amf0Value::TypedObject {
            class_name: "C".into(),
            properties: vec![("p".into(), Amf0Value::Null)],
        };
        assert_eq!(typed.get("p"), Some(&Amf0Value::Null));
        let ecma = Amf0Value::EcmaArray(vec![("e".into(), Amf0Value::Undefined)]);
        assert_eq!(ecma.get("e"), Some(&Amf0Value::Undefined));
    }

    #[test]
    fn references_must_name_an_object_already_started() {
        // A strict array holding a reference to itself (index 0) is fine.
        let value = decode_one(&[0x0A, 0, 0, 0, 1, 0x07, 0x00, 0x00]).unwrap();
        assert_eq!(value, Amf0Value::StrictArray(vec![Amf0Value::Reference(0)]));
        // Nothing started yet.
        assert_eq!(
            protocol_error(decode_one(&[0x07, 0x00, 0x00])),
            ProtocolError::InvalidAmfReference {
                version: 0,
                table: "object",
                index: 0
            }
        );
        // One object started, index 1 does not exist.
        let bytes = [0x03, 0x00, 0x01, b'a', 0x07, 0x00, 0x01, 0x00, 0x00, 0x09];
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::InvalidAmfReference {
                version: 0,
                table: "object",
                index: 1
            }
        );
        // decode_all shares the table between the values of a message.
        let values = decode_all(&[0x03, 0x00, 0x00, 0x09, 0x07, 0x00, 0x00]).unwrap();
        assert_eq!(values[1], Amf0Value::Reference(0));
    }

    #[test]
    fn reserved_and_unknown_markers_are_refused() {
        for marker in [0x04, 0x09, 0x0E, 0x12, 0x7F, 0xFF] {
            assert_eq!(
                protocol_error(decode_one(&[marker, 0, 0, 0, 0, 0, 0, 0, 0])),
                ProtocolError::InvalidAmfMarker { version: 0, marker },
                "marker 0x{marker:02x}"
            );
        }
        // Object-end after a non-empty name is not a value either.
        let bytes = [0x03, 0x00, 0x01, b'a', 0x09];
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::InvalidAmfMarker {
                version: 0,
                marker: 0x09
            }
        );
        // And an AMF3 marker error surfaces through the AVM+ switch.
        assert_eq!(
            protocol_error(decode_one(&[0x11, 0x12])),
            ProtocolError::InvalidAmfMarker {
                version: 3,
                marker: 0x12
            }
        );
    }

    #[test]
    fn empty_input_is_truncated_and_decode_all_of_nothing_is_empty() {
        assert!(matches!(
            protocol_error(decode_one(&[])),
            ProtocolError::Truncated { .. }
        ));
        assert_eq!(decode_all(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn every_truncation_of_a_valid_encoding_is_an_error() {
        let bytes = encode_all(&every_variant());
        for value in every_variant() {
            let mut bytes = Vec::new();
            encode(&value, &mut bytes);
            for end in 0..bytes.len() {
                let err = protocol_error(decode_one(&bytes[..end]));
                assert!(
                    matches!(err, ProtocolError::Truncated { .. }),
                    "{value:?} cut at {end}: {err:?}"
                );
            }
        }
        // decode_all may stop on a value boundary, but never panics.
        for end in 0..bytes.len() {
            let _ = decode_all(&bytes[..end]);
        }
    }

    /// `levels` strict arrays, each holding the next, around a null.
    fn nested_strict_arrays(levels: usize) -> Vec<u8> {
        let mut bytes = [0x0A, 0, 0, 0, 1].repeat(levels);
        bytes.push(0x05);
        bytes
    }

    #[test]
    fn nesting_is_limited_to_max_depth() {
        assert!(decode_one(&nested_strict_arrays(MAX_DEPTH)).is_ok());
        assert_eq!(
            protocol_error(decode_one(&nested_strict_arrays(MAX_DEPTH + 1))),
            ProtocolError::AmfTooDeep { max: MAX_DEPTH }
        );
        // A huge bomb fails the same way, without exhausting the stack.
        assert_eq!(
            protocol_error(decode_one(&nested_strict_arrays(200_000))),
            ProtocolError::AmfTooDeep { max: MAX_DEPTH }
        );
        // Objects count too.
        let mut bytes = [0x03, 0x00, 0x01, b'a'].repeat(MAX_DEPTH + 1);
        bytes.push(0x05);
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::AmfTooDeep { max: MAX_DEPTH }
        );
    }

    #[test]
    fn amf3_inside_avmplus_shares_the_depth_limit() {
        // MAX_DEPTH - 1 strict arrays, then an AMF3 array holding an AMF3 array: one too many.
        let mut bytes = [0x0A, 0, 0, 0, 1].repeat(MAX_DEPTH - 1);
        bytes.extend_from_slice(&[0x11, 0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x01]);
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::AmfTooDeep { max: MAX_DEPTH }
        );
        // With one AMF3 level it fits.
        let mut bytes = [0x0A, 0, 0, 0, 1].repeat(MAX_DEPTH - 1);
        bytes.extend_from_slice(&[0x11, 0x09, 0x03, 0x01, 0x01]);
        assert!(decode_one(&bytes).is_ok());
    }

    #[test]
    fn huge_announced_counts_fail_fast() {
        // Strict array announcing 4 billion items: refused before allocating.
        assert_eq!(
            protocol_error(decode_one(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05])),
            ProtocolError::AmfTooLarge {
                what: "collection length",
                len: 0xFFFF_FFFF,
                max: MAX_COLLECTION_LEN
            }
        );
        // Within the limit but far more than the input holds: truncated, not allocated.
        assert!(matches!(
            protocol_error(decode_one(&[0x0A, 0x00, 0x01, 0x00, 0x00, 0x05])),
            ProtocolError::Truncated { .. }
        ));
        // Long string / XML lengths are checked against the input.
        for marker in [0x0C, 0x0F] {
            assert!(matches!(
                protocol_error(decode_one(&[marker, 0xFF, 0xFF, 0xFF, 0xFF, b'a'])),
                ProtocolError::Truncated { .. }
            ));
        }
        // The ECMA array count is only a hint.
        let value = decode_one(&[0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x09]).unwrap();
        assert_eq!(value, Amf0Value::EcmaArray(Vec::new()));
    }

    #[test]
    fn objects_with_too_many_properties_are_refused() {
        let mut bytes = vec![0x03];
        for _ in 0..=MAX_COLLECTION_LEN {
            bytes.extend_from_slice(&[0x00, 0x01, b'k', 0x05]);
        }
        bytes.extend_from_slice(&[0x00, 0x00, 0x09]);
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::AmfTooLarge {
                what: "collection length",
                len: MAX_COLLECTION_LEN + 1,
                max: MAX_COLLECTION_LEN
            }
        );
    }

    #[test]
    fn value_count_is_limited() {
        // 16 strict arrays of 65536 nulls: 1 + 16 + 1_048_576 values.
        let mut bytes = vec![0x0A, 0, 0, 0, 16];
        for _ in 0..16 {
            bytes.extend_from_slice(&[0x0A, 0x00, 0x01, 0x00, 0x00]);
            bytes.extend(std::iter::repeat_n(0x05, 65_536));
        }
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::AmfTooLarge {
                what: "value count",
                len: MAX_VALUES + 1,
                max: MAX_VALUES
            }
        );
        // decode_all shares the budget across values.
        let nulls = vec![0x05; MAX_VALUES + 1];
        assert!(matches!(
            protocol_error(decode_all(&nulls)),
            ProtocolError::AmfTooLarge {
                what: "value count",
                ..
            }
        ));
        assert_eq!(decode_all(&nulls[1..]).unwrap().len(), MAX_VALUES);
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let corpus: Vec<Vec<u8>> = every_variant()
            .iter()
            .map(|value| {
                let mut bytes = Vec::new();
                encode(value, &mut bytes);
                bytes
            })
            .chain([CONNECT.to_vec(), encode_all(&every_variant())])
            .collect();
        let mut rng = Rng::new(0x0A3F_0000_1234_5678);
        let mut decoded = 0;
        for _ in 0..10_000 {
            let input = mutate(&mut rng, &corpus, 0x12);
            let _ = decode_one(&input);
            if let Ok(values) = decode_all(&input) {
                decoded += 1;
                // Whatever decodes re-encodes to something that decodes to the same values.
                let bytes = encode_all(&values);
                let again = decode_all(&bytes).unwrap();
                assert_eq!(encode_all(&again), bytes);
                #[allow(clippy::eq_op)] // false exactly when a NaN is somewhere inside
                if values == values {
                    assert_eq!(again, values);
                }
            }
        }
        // The mutations must not be so wild that nothing decodes.
        assert!(decoded > 100, "only {decoded} inputs decoded");
    }
}
