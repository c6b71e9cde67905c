//! AMF3 encoder and decoder with the three reference tables, bounded against hostile input.
//!
//! Section numbers in comments refer to the Adobe "AMF 3 Specification" (January 2013).
//!
//! # Decoding and references
//!
//! AMF3 lets a value refer to an earlier string, object or object traits by index. The decoder
//! resolves every reference, so a decoded [`Amf3Value`] is a plain tree: a reference to an
//! earlier complex value becomes a copy of it. A reference to a value that is still being
//! decoded (a cycle) is refused with [`ProtocolError::InvalidAmfReference`] instead of building a
//! cyclic structure.
//!
//! Internally each complex value is stored once in the object table, with its members pointing
//! to other table entries; the tree is only copied out at the end. The table therefore stays
//! proportional to the input, while everything the output will contain (copies made by
//! references included) is charged up front against the per-call budget of
//! [`amf0::MAX_VALUES`] values and [`amf0::MAX_DECODED_BYTES`] bytes. That stops inputs whose
//! output grows exponentially with their size ("billion laughs": an array whose elements all
//! refer to the previous array). The limits [`amf0::MAX_DEPTH`] (also checked for the copies a
//! reference produces) and [`amf0::MAX_COLLECTION_LEN`] apply as in AMF0.
//!
//! # Encoding
//!
//! The encoder writes every complex value inline (it never emits object references, which is
//! valid) but does use string and traits references, as Flash Player does.

use std::collections::HashMap;

use super::amf0::{self, Budget, Cost, MAX_DEPTH, check_count, collection_too_large, enter, wire};
use super::error::{ProtocolError, Result};

/// Smallest [`Amf3Value::Integer`] that is encoded with the integer type (§3.6); smaller values
/// are encoded as doubles.
pub const INTEGER_MIN: i32 = -0x1000_0000;
/// Largest [`Amf3Value::Integer`] that is encoded with the integer type (§3.6); larger values
/// are encoded as doubles.
pub const INTEGER_MAX: i32 = 0x0FFF_FFFF;

/// Largest value of a variable-length unsigned 29-bit integer (§1.3.1).
const U29_MAX: u32 = 0x1FFF_FFFF;
/// Largest length or count that fits an inline `U29` header (the low bit is the inline flag).
const MAX_INLINE_LEN: usize = (U29_MAX >> 1) as usize;
/// Largest number of sealed members an inline traits header can announce (§3.12).
const MAX_SEALED_COUNT: usize = (U29_MAX >> 4) as usize;

/// Type markers (§3.1).
mod marker {
    pub const UNDEFINED: u8 = 0x00;
    pub const NULL: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const INTEGER: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const STRING: u8 = 0x06;
    pub const XML_DOCUMENT: u8 = 0x07;
    pub const DATE: u8 = 0x08;
    pub const ARRAY: u8 = 0x09;
    pub const OBJECT: u8 = 0x0A;
    pub const XML: u8 = 0x0B;
    pub const BYTE_ARRAY: u8 = 0x0C;
    pub const VECTOR_INT: u8 = 0x0D;
    pub const VECTOR_UINT: u8 = 0x0E;
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    pub const VECTOR_OBJECT: u8 = 0x10;
    pub const DICTIONARY: u8 = 0x11;
}

/// An AMF3 value. Members and entries keep their wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// 0x00 undefined.
    Undefined,
    /// 0x01 null.
    Null,
    /// 0x02 false / 0x03 true.
    Boolean(bool),
    /// 0x04 integer. Only [`INTEGER_MIN`]..=[`INTEGER_MAX`] (29 bits) fit the integer type; the
    /// encoder writes other values as a double, so they decode as [`Amf3Value::Double`].
    Integer(i32),
    /// 0x05 double (IEEE 754).
    Double(f64),
    /// 0x06 string.
    String(String),
    /// 0x07 legacy XMLDocument (`flash.xml.XMLDocument`), as text.
    XmlDocument(String),
    /// 0x08 date: milliseconds since 1970-01-01 UTC (no time zone on the wire).
    Date(f64),
    /// 0x09 array: an associative part and a dense (ordinal) part.
    Array {
        /// Name/value pairs, in wire order. Entries with an empty name cannot be encoded (the
        /// empty name ends the list) and are skipped by the encoder.
        assoc: Vec<(String, Amf3Value)>,
        /// Values at indices 0, 1, 2, ...
        dense: Vec<Amf3Value>,
    },
    /// 0x0A object (externalizable objects are not supported: their format is class-defined).
    Object {
        /// Class name; empty for an anonymous object.
        class_name: String,
        /// Sealed members (declared by the class), in traits order.
        sealed: Vec<(String, Amf3Value)>,
        /// Dynamic members: `Some` for a dynamic object, `None` otherwise. Members with an
        /// empty name cannot be encoded (the empty name ends the list) and are skipped by the
        /// encoder.
        dynamic: Option<Vec<(String, Amf3Value)>>,
    },
    /// 0x0B E4X XML, as text.
    Xml(String),
    /// 0x0C byte array.
    ByteArray(Vec<u8>),
    /// 0x0D `Vector.<int>`.
    VectorInt {
        /// True for a fixed-length vector.
        fixed: bool,
        /// The items.
        items: Vec<i32>,
    },
    /// 0x0E `Vector.<uint>`.
    VectorUInt {
        /// True for a fixed-length vector.
        fixed: bool,
        /// The items.
        items: Vec<u32>,
    },
    /// 0x0F `Vector.<Number>`.
    VectorDouble {
        /// True for a fixed-length vector.
        fixed: bool,
        /// The items.
        items: Vec<f64>,
    },
    /// 0x10 `Vector.<T>` for an object type `T`.
    VectorObject {
        /// True for a fixed-length vector.
        fixed: bool,
        /// Class name of `T`; `"*"` for any type.
        type_name: String,
        /// The items.
        items: Vec<Amf3Value>,
    },
    /// 0x11 `flash.utils.Dictionary`.
    Dictionary {
        /// True if the dictionary holds its keys weakly.
        weak_keys: bool,
        /// Key/value pairs, in wire order.
        entries: Vec<(Amf3Value, Amf3Value)>,
    },
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

/// Appends the AMF3 encoding of `value` to `out`, in a fresh AMF3 context.
///
/// See [`Amf3Encoder::encode`] for what cannot be represented.
pub fn encode(value: &Amf3Value, out: &mut Vec<u8>) {
    Amf3Encoder::new().encode(value, out);
}

/// An AMF3 encoding context: its string and traits tables span every value it encodes, so it
/// must be paired with one [`Amf3Decoder`] reading the values in the same order.
#[derive(Debug, Default)]
pub struct Amf3Encoder {
    /// Index of every string sent inline so far (§1.3.2: the empty string never is).
    strings: HashMap<String, u32>,
    /// Index the next inline string gets in the peer's string table.
    next_string: u32,
    /// Index of every traits sent inline so far.
    traits: HashMap<TraitsKey, u32>,
    /// Index the next inline traits get in the peer's traits table.
    next_traits: u32,
}

/// What identifies object traits (§3.12).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TraitsKey {
    class_name: String,
    sealed: Vec<String>,
    dynamic: bool,
}

impl Amf3Encoder {
    /// A context with empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the encoding of `value` to `out`.
    ///
    /// Things the format cannot represent are adapted rather than refused:
    /// - an [`Integer`](Amf3Value::Integer) outside [`INTEGER_MIN`]..=[`INTEGER_MAX`] is written
    ///   as a double;
    /// - array and dynamic members with an empty name are skipped;
    /// - strings, byte arrays and collections longer than 2^28 - 1 bytes or items, and objects
    ///   with more than 2^25 - 1 sealed members, are cut to fit.
    ///
    /// The encoder recurses once per nesting level of `value`.
    pub fn encode(&mut self, value: &Amf3Value, out: &mut Vec<u8>) {
        match value {
            Amf3Value::Undefined => out.push(marker::UNDEFINED),
            Amf3Value::Null => out.push(marker::NULL),
            Amf3Value::Boolean(false) => out.push(marker::FALSE),
            Amf3Value::Boolean(true) => out.push(marker::TRUE),
            Amf3Value::Integer(i) if (INTEGER_MIN..=INTEGER_MAX).contains(i) => {
                out.push(marker::INTEGER);
                // Two's complement in 29 bits (§3.6).
                write_u29(out, (*i as u32) & U29_MAX);
            }
            // §3.6: integers that do not fit 29 bits are sent as doubles.
            Amf3Value::Integer(i) => write_double(f64::from(*i), out),
            Amf3Value::Double(d) => write_double(*d, out),
            Amf3Value::String(s) => {
                out.push(marker::STRING);
                self.write_string(s, out);
            }
            Amf3Value::XmlDocument(s) => {
                out.push(marker::XML_DOCUMENT);
                write_inline_text(s, out);
            }
            Amf3Value::Date(millis) => {
                out.push(marker::DATE);
                write_u29(out, 1); // §3.10: inline date, no other bits in use
                out.extend_from_slice(&millis.to_be_bytes());
            }
            Amf3Value::Array { assoc, dense } => {
                out.push(marker::ARRAY);
                let count = write_inline_header(dense.len(), out);
                self.write_named_members(assoc, out);
                for item in dense.iter().take(count) {
                    self.encode(item, out);
                }
            }
            Amf3Value::Object {
                class_name,
                sealed,
                dynamic,
            } => self.write_object(class_name, sealed, dynamic.as_deref(), out),
            Amf3Value::Xml(s) => {
                out.push(marker::XML);
                write_inline_text(s, out);
            }
            Amf3Value::ByteArray(bytes) => {
                out.push(marker::BYTE_ARRAY);
                let len = write_inline_header(bytes.len(), out);
                out.extend_from_slice(bytes.get(..len).unwrap_or(bytes));
            }
            Amf3Value::VectorInt { fixed, items } => {
                out.push(marker::VECTOR_INT);
                let count = write_vector_header(items.len(), *fixed, out);
                for item in items.iter().take(count) {
                    out.extend_from_slice(&item.to_be_bytes());
                }
            }
            Amf3Value::VectorUInt { fixed, items } => {
                out.push(marker::VECTOR_UINT);
                let count = write_vector_header(items.len(), *fixed, out);
                for item in items.iter().take(count) {
                    out.extend_from_slice(&item.to_be_bytes());
                }
            }
            Amf3Value::VectorDouble { fixed, items } => {
                out.push(marker::VECTOR_DOUBLE);
                let count = write_vector_header(items.len(), *fixed, out);
                for item in items.iter().take(count) {
                    out.extend_from_slice(&item.to_be_bytes());
                }
            }
            Amf3Value::VectorObject {
                fixed,
                type_name,
                items,
            } => {
                out.push(marker::VECTOR_OBJECT);
                let count = write_vector_header(items.len(), *fixed, out);
                self.write_string(type_name, out);
                for item in items.iter().take(count) {
                    self.encode(item, out);
                }
            }
            Amf3Value::Dictionary { weak_keys, entries } => {
                out.push(marker::DICTIONARY);
                let count = write_inline_header(entries.len(), out);
                out.push(u8::from(*weak_keys));
                for (key, value) in entries.iter().take(count) {
                    self.encode(key, out);
                    self.encode(value, out);
                }
            }
        }
    }

    /// Writes `UTF-8-vr` (§1.3.2): a reference to an identical earlier string, or the string
    /// inline (then remembered under the index the decoder will give it).
    fn write_string(&mut self, s: &str, out: &mut Vec<u8>) {
        if let Some(&index) = self.strings.get(s) {
            write_u29(out, index << 1);
            return;
        }
        let s = &s[..s.floor_char_boundary(MAX_INLINE_LEN)];
        write_inline_header(s.len(), out);
        out.extend_from_slice(s.as_bytes());
        // §1.3.2: the empty string is never sent by reference, so it takes no table slot.
        if !s.is_empty() {
            let index = self.next_string;
            self.next_string = index.saturating_add(1);
            // Indices that no longer fit a reference header are simply never referenced.
            if index <= U29_MAX >> 1 {
                self.strings.entry(s.to_owned()).or_insert(index);
            }
        }
    }

    /// Writes an object (§3.12): a traits reference or inline traits, then the sealed member
    /// values, then (for a dynamic object) the dynamic members.
    fn write_object(
        &mut self,
        class_name: &str,
        sealed: &[(String, Amf3Value)],
        dynamic: Option<&[(String, Amf3Value)]>,
        out: &mut Vec<u8>,
    ) {
        out.push(marker::OBJECT);
        let sealed = sealed.get(..MAX_SEALED_COUNT).unwrap_or(sealed);
        let key = TraitsKey {
            class_name: class_name.to_owned(),
            sealed: sealed.iter().map(|(name, _)| name.clone()).collect(),
            dynamic: dynamic.is_some(),
        };
        if let Some(&index) = self.traits.get(&key) {
            // U29O-traits-ref: inline object, traits by reference.
            write_u29(out, (index << 2) | 0b01);
        } else {
            // U29O-traits: sealed count, dynamic flag, not externalizable, inline traits,
            // inline object. The count fits: `sealed` was cut to MAX_SEALED_COUNT.
            let count = sealed.len() as u32;
            write_u29(out, (count << 4) | (u32::from(key.dynamic) << 3) | 0b011);
            self.write_string(class_name, out);
            for name in &key.sealed {
                self.write_string(name, out);
            }
            let index = self.next_traits;
            self.next_traits = index.saturating_add(1);
            if index <= U29_MAX >> 2 {
                self.traits.entry(key).or_insert(index);
            }
        }
        for (_, value) in sealed {
            self.encode(value, out);
        }
        if let Some(dynamic) = dynamic {
            self.write_named_members(dynamic, out);
        }
    }

    /// Writes name/value pairs ended by the empty string (§3.11 associative part, §3.12
    /// dynamic members), skipping pairs with an empty name, which would end the list early.
    fn write_named_members(&mut self, members: &[(String, Amf3Value)], out: &mut Vec<u8>) {
        for (name, value) in members.iter().filter(|(name, _)| !name.is_empty()) {
            self.write_string(name, out);
            self.encode(value, out);
        }
        self.write_string("", out);
    }
}

/// Writes a variable-length unsigned 29-bit integer (§1.3.1); bits above 29 are dropped.
fn write_u29(out: &mut Vec<u8>, value: u32) {
    let v = value & U29_MAX;
    match v {
        0..=0x7F => out.push(v as u8),
        0x80..=0x3FFF => out.extend_from_slice(&[(v >> 7) as u8 | 0x80, (v & 0x7F) as u8]),
        0x4000..=0x1F_FFFF => out.extend_from_slice(&[
            (v >> 14) as u8 | 0x80,
            ((v >> 7) & 0x7F) as u8 | 0x80,
            (v & 0x7F) as u8,
        ]),
        // The fourth byte carries 8 bits, so the first three carry the top 21.
        _ => out.extend_from_slice(&[
            (v >> 22) as u8 | 0x80,
            ((v >> 15) & 0x7F) as u8 | 0x80,
            ((v >> 8) & 0x7F) as u8 | 0x80,
            (v & 0xFF) as u8,
        ]),
    }
}

/// Writes the header of an inline value with `len` bytes or items, cut to what fits; returns
/// the length actually announced.
fn write_inline_header(len: usize, out: &mut Vec<u8>) -> usize {
    let len = len.min(MAX_INLINE_LEN);
    // Fits: MAX_INLINE_LEN << 1 | 1 == U29_MAX.
    write_u29(out, ((len as u32) << 1) | 1);
    len
}

/// Writes `U29V-value` and the fixed-vector flag (§3.15); returns the item count announced.
fn write_vector_header(len: usize, fixed: bool, out: &mut Vec<u8>) -> usize {
    let count = write_inline_header(len, out);
    out.push(u8::from(fixed));
    count
}

/// Writes text that never goes through the string table (XML and XMLDocument, §3.9, §3.13).
fn write_inline_text(s: &str, out: &mut Vec<u8>) {
    let s = &s[..s.floor_char_boundary(MAX_INLINE_LEN)];
    write_inline_header(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

/// Writes a double value (§3.7).
fn write_double(value: f64, out: &mut Vec<u8>) {
    out.push(marker::DOUBLE);
    out.extend_from_slice(&value.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

/// Decodes one AMF3 value from the front of `input`, in a fresh AMF3 context, and advances
/// `input` past it. On error `input` is left unchanged.
///
/// Text that is not valid UTF-8 is decoded lossily. See the [module documentation](self) for
/// how references and limits are handled.
pub fn decode(input: &mut &[u8]) -> Result<Amf3Value> {
    Amf3Decoder::new().decode(input)
}

/// An AMF3 decoding context: its string, object and traits tables span every value it decodes,
/// for peers that share one context across several values.
///
/// The tables grow with every value decoded; drop the decoder when the context ends. A failed
/// [`decode`](Amf3Decoder::decode) leaves the tables (and the input) as they were.
#[derive(Debug, Default)]
pub struct Amf3Decoder {
    tables: Tables,
}

impl Amf3Decoder {
    /// A context with empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one value from the front of `input` and advances `input` past it. Each call has
    /// its own [`amf0::MAX_VALUES`] / [`amf0::MAX_DECODED_BYTES`] budget.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Amf3Value> {
        self.decode_nested(input, &mut Budget::default(), 0)
    }

    /// Decodes one value nested `depth` levels deep inside a caller (the AMF0 AVM+ marker),
    /// charging the caller's budget.
    pub(super) fn decode_nested(
        &mut self,
        input: &mut &[u8],
        budget: &mut Budget,
        depth: usize,
    ) -> Result<Amf3Value> {
        let mark = self.tables.mark();
        let mut cursor = *input;
        let node = Reader {
            tables: &mut self.tables,
            budget,
        }
        .value(&mut cursor, depth);
        match node.and_then(|node| self.tables.materialize(&node)) {
            Ok(value) => {
                *input = cursor;
                Ok(value)
            }
            Err(err) => {
                self.tables.rewind(mark);
                Err(err)
            }
        }
    }
}

/// The three reference tables of one AMF3 context (§2.2).
#[derive(Debug, Default)]
struct Tables {
    /// Non-empty strings in the order they were sent inline.
    strings: Vec<String>,
    /// Complex values (everything but scalars and strings) in the order they started.
    objects: Vec<Slot>,
    /// Object traits in the order they were sent inline.
    traits: Vec<Traits>,
}

/// Sizes of the tables at some point, to undo a failed decode.
#[derive(Debug, Clone, Copy)]
struct Mark {
    strings: usize,
    objects: usize,
    traits: usize,
}

/// An entry of the object table.
#[derive(Debug)]
enum Slot {
    /// Started but not finished: a reference to it would make a cycle.
    Pending,
    /// Fully decoded.
    Done(Entry),
}

/// A fully decoded complex value.
#[derive(Debug)]
struct Entry {
    shape: Shape,
    /// What one copy of the value costs once materialized (charged again on every reference).
    cost: Cost,
    /// Container nesting inside the value: 0 for a value without members.
    height: usize,
}

/// A complex value whose members may live elsewhere in the object table.
#[derive(Debug)]
enum Shape {
    /// Date, XML, XMLDocument, byte array or numeric vector.
    Leaf(Amf3Value),
    Array {
        assoc: Vec<(String, Node)>,
        dense: Vec<Node>,
    },
    Object {
        class_name: String,
        sealed: Vec<(String, Node)>,
        dynamic: Option<Vec<(String, Node)>>,
    },
    VectorObject {
        fixed: bool,
        type_name: String,
        items: Vec<Node>,
    },
    Dictionary {
        weak_keys: bool,
        entries: Vec<(Node, Node)>,
    },
}

/// A decoded value as seen by its container.
#[derive(Debug)]
enum Node {
    /// A scalar or a string, held directly.
    Value(Amf3Value),
    /// A complex value, held in the object table.
    Complex { index: usize, height: usize },
}

/// Object traits (§3.12). Externalizable traits are refused, so they are never stored.
#[derive(Debug, Clone)]
struct Traits {
    class_name: String,
    sealed: Vec<String>,
    dynamic: bool,
}

/// The two forms of a `U29`-headed value: a table reference or an inline value whose header
/// carries a length, count or flags.
enum Header {
    Reference(usize),
    Inline(u32),
}

impl Node {
    /// Container nesting inside the value.
    fn height(&self) -> usize {
        match self {
            Node::Value(_) => 0,
            Node::Complex { height, .. } => *height,
        }
    }
}

impl Shape {
    /// Container nesting inside the value: one more than its tallest member.
    fn height(&self) -> usize {
        let tallest = match self {
            Shape::Leaf(_) => return 0,
            Shape::Array { assoc, dense } => max_height(assoc.iter().map(|(_, n)| n).chain(dense)),
            Shape::Object {
                sealed, dynamic, ..
            } => max_height(
                sealed
                    .iter()
                    .chain(dynamic.iter().flatten())
                    .map(|(_, n)| n),
            ),
            Shape::VectorObject { items, .. } => max_height(items),
            Shape::Dictionary { entries, .. } => {
                max_height(entries.iter().flat_map(|(k, v)| [k, v]))
            }
        };
        tallest + 1
    }
}

/// The height of the tallest of `nodes`, 0 if there are none.
fn max_height<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> usize {
    nodes.into_iter().map(Node::height).max().unwrap_or(0)
}

impl Tables {
    fn mark(&self) -> Mark {
        Mark {
            strings: self.strings.len(),
            objects: self.objects.len(),
            traits: self.traits.len(),
        }
    }

    fn rewind(&mut self, mark: Mark) {
        self.strings.truncate(mark.strings);
        self.objects.truncate(mark.objects);
        self.traits.truncate(mark.traits);
    }

    /// Builds the plain value of `node`, copying table entries. The copies were charged while
    /// decoding and their nesting checked against [`MAX_DEPTH`], so this is bounded.
    fn materialize(&self, node: &Node) -> Result<Amf3Value> {
        match node {
            Node::Value(value) => Ok(value.clone()),
            Node::Complex { index, .. } => match self.objects.get(*index) {
                Some(Slot::Done(entry)) => self.materialize_shape(&entry.shape),
                // Unreachable: members only point to finished entries.
                _ => Err(invalid_reference("object", *index)),
            },
        }
    }

    fn materialize_shape(&self, shape: &Shape) -> Result<Amf3Value> {
        Ok(match shape {
            Shape::Leaf(value) => value.clone(),
            Shape::Array { assoc, dense } => Amf3Value::Array {
                assoc: self.materialize_members(assoc)?,
                dense: self.materialize_all(dense)?,
            },
            Shape::Object {
                class_name,
                sealed,
                dynamic,
            } => Amf3Value::Object {
                class_name: class_name.clone(),
                sealed: self.materialize_members(sealed)?,
                dynamic: dynamic
                    .as_ref()
                    .map(|members| self.materialize_members(members))
                    .transpose()?,
            },
            Shape::VectorObject {
                fixed,
                type_name,
                items,
            } => Amf3Value::VectorObject {
                fixed: *fixed,
                type_name: type_name.clone(),
                items: self.materialize_all(items)?,
            },
            Shape::Dictionary { weak_keys, entries } => Amf3Value::Dictionary {
                weak_keys: *weak_keys,
                entries: entries
                    .iter()
                    .map(|(k, v)| Ok((self.materialize(k)?, self.materialize(v)?)))
                    .collect::<Result<_>>()?,
            },
        })
    }

    fn materialize_all(&self, nodes: &[Node]) -> Result<Vec<Amf3Value>> {
        nodes.iter().map(|node| self.materialize(node)).collect()
    }

    fn materialize_members(&self, members: &[(String, Node)]) -> Result<Vec<(String, Amf3Value)>> {
        members
            .iter()
            .map(|(name, node)| Ok((name.clone(), self.materialize(node)?)))
            .collect()
    }
}

/// A [`ProtocolError::InvalidAmfReference`] into the AMF3 `table`.
fn invalid_reference(table: &'static str, index: usize) -> super::error::Error {
    ProtocolError::InvalidAmfReference {
        version: 3,
        table,
        index,
    }
    .into()
}

/// Reads a variable-length unsigned 29-bit integer (§1.3.1): up to three bytes of 7 bits with
/// a continuation flag, then a fourth byte of 8 bits.
fn read_u29(input: &mut &[u8], what: &'static str) -> Result<u32> {
    let mut value = 0u32;
    for _ in 0..3 {
        let byte = wire::u8(input, what)?;
        value = (value << 7) | u32::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    let byte = wire::u8(input, what)?;
    Ok((value << 8) | u32::from(byte))
}

/// Reads the `U29` header of a string or complex value: low bit 0 = reference (§3.8 ff.).
fn read_header(input: &mut &[u8], what: &'static str) -> Result<Header> {
    let value = read_u29(input, what)?;
    Ok(if value & 1 == 0 {
        Header::Reference((value >> 1) as usize)
    } else {
        Header::Inline(value >> 1)
    })
}

/// Sign-extends a 29-bit two's complement integer (§3.6).
fn integer_from_u29(value: u32) -> i32 {
    ((value << 3) as i32) >> 3
}

/// A class name fit for an error message: at most 64 characters, control characters escaped.
fn printable(name: &str) -> String {
    let mut shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().nth(64).is_some() {
        shown.push_str("...");
    }
    shown
}

/// One decode call's view of the tables and the budget.
struct Reader<'a> {
    tables: &'a mut Tables,
    budget: &'a mut Budget,
}

impl Reader<'_> {
    /// Decodes one value (§3.1) nested inside `depth` containers.
    fn value(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        let marker = wire::u8(input, "AMF3 type marker")?;
        match marker {
            marker::UNDEFINED => self.scalar(Amf3Value::Undefined),
            marker::NULL => self.scalar(Amf3Value::Null),
            marker::FALSE => self.scalar(Amf3Value::Boolean(false)),
            marker::TRUE => self.scalar(Amf3Value::Boolean(true)),
            marker::INTEGER => {
                let value = read_u29(input, "AMF3 integer")?;
                self.scalar(Amf3Value::Integer(integer_from_u29(value)))
            }
            marker::DOUBLE => self.scalar(Amf3Value::Double(wire::f64(input, "AMF3 double")?)),
            marker::STRING => {
                let text = self.string(input)?;
                self.scalar(Amf3Value::String(text))
            }
            marker::XML_DOCUMENT => self.xml(input, depth, Amf3Value::XmlDocument),
            marker::DATE => self.date(input, depth),
            marker::ARRAY => self.array(input, depth),
            marker::OBJECT => self.object(input, depth),
            marker::XML => self.xml(input, depth, Amf3Value::Xml),
            marker::BYTE_ARRAY => self.byte_array(input, depth),
            marker::VECTOR_INT => self.numeric_vector(input, depth, 4, |fixed, bytes| {
                let items = bytes.as_chunks().0.iter().map(|b| i32::from_be_bytes(*b));
                Amf3Value::VectorInt {
                    fixed,
                    items: items.collect(),
                }
            }),
            marker::VECTOR_UINT => self.numeric_vector(input, depth, 4, |fixed, bytes| {
                let items = bytes.as_chunks().0.iter().map(|b| u32::from_be_bytes(*b));
                Amf3Value::VectorUInt {
                    fixed,
                    items: items.collect(),
                }
            }),
            marker::VECTOR_DOUBLE => self.numeric_vector(input, depth, 8, |fixed, bytes| {
                let items = bytes.as_chunks().0.iter().map(|b| f64::from_be_bytes(*b));
                Amf3Value::VectorDouble {
                    fixed,
                    items: items.collect(),
                }
            }),
            marker::VECTOR_OBJECT => self.vector_object(input, depth),
            marker::DICTIONARY => self.dictionary(input, depth),
            0x12.. => Err(ProtocolError::InvalidAmfMarker { version: 3, marker }.into()),
        }
    }

    /// A value held directly by its container (scalars and strings).
    fn scalar(&mut self, value: Amf3Value) -> Result<Node> {
        self.budget.charge_value()?;
        Ok(Node::Value(value))
    }

    /// Reads `UTF-8-vr` (§1.3.2): a string reference or an inline string, and charges its
    /// bytes (every string read ends up in the output).
    fn string(&mut self, input: &mut &[u8]) -> Result<String> {
        match read_header(input, "AMF3 string")? {
            Header::Reference(index) => {
                let text = self
                    .tables
                    .strings
                    .get(index)
                    .ok_or_else(|| invalid_reference("string", index))?;
                // Charge before copying: a short reference can name a long string.
                self.budget.charge_bytes(text.len())?;
                Ok(text.clone())
            }
            Header::Inline(len) => {
                let text = wire::text(input, len as usize, "AMF3 string")?;
                self.budget.charge_bytes(text.len())?;
                // §1.3.2: the empty string is never sent by reference, so it takes no slot.
                if !text.is_empty() {
                    self.tables.strings.push(text.clone());
                }
                Ok(text)
            }
        }
    }

    /// Resolves a reference to the object table, charging a full copy of the value.
    fn object_reference(&mut self, index: usize, depth: usize) -> Result<Node> {
        // A `Pending` entry is an ancestor of this value: referring to it would make a cycle.
        let Some(Slot::Done(entry)) = self.tables.objects.get(index) else {
            return Err(invalid_reference("object", index));
        };
        // The copy lands `depth` levels down: it must not nest deeper than an inline value could.
        if depth + entry.height > MAX_DEPTH {
            return Err(ProtocolError::AmfTooDeep { max: MAX_DEPTH }.into());
        }
        self.budget.charge(entry.cost)?;
        Ok(Node::Complex {
            index,
            height: entry.height,
        })
    }

    /// Stores a complex value without members in the object table (§2.2) and charges it.
    fn leaf(&mut self, value: Amf3Value, cost: Cost) -> Result<Node> {
        self.budget.charge(cost)?;
        let index = self.tables.objects.len();
        self.tables.objects.push(Slot::Done(Entry {
            shape: Shape::Leaf(value),
            cost,
            height: 0,
        }));
        Ok(Node::Complex { index, height: 0 })
    }

    /// Decodes a container at `depth`: it enters the object table before its members (so a
    /// member referring to it is detected as a cycle), then `members` reads them one level down.
    fn container<F>(&mut self, input: &mut &[u8], depth: usize, members: F) -> Result<Node>
    where
        F: FnOnce(&mut Self, &mut &[u8], usize) -> Result<Shape>,
    {
        let inner = enter(depth)?;
        let before = self.budget.spent();
        self.budget.charge_value()?;
        let index = self.tables.objects.len();
        self.tables.objects.push(Slot::Pending);
        let shape = members(self, input, inner)?;
        let height = shape.height();
        let cost = self.budget.spent().since(before);
        let slot = self
            .tables
            .objects
            .get_mut(index)
            .ok_or_else(|| invalid_reference("object", index))?;
        *slot = Slot::Done(Entry {
            shape,
            cost,
            height,
        });
        Ok(Node::Complex { index, height })
    }

    /// XMLDocument (§3.9) or XML (§3.13): `U29X-value` text, kept in the object table.
    fn xml(
        &mut self,
        input: &mut &[u8],
        depth: usize,
        make: fn(String) -> Amf3Value,
    ) -> Result<Node> {
        match read_header(input, "AMF3 XML")? {
            Header::Reference(index) => self.object_reference(index, depth),
            Header::Inline(len) => {
                let text = wire::text(input, len as usize, "AMF3 XML")?;
                let cost = Cost {
                    values: 1,
                    bytes: text.len(),
                };
                self.leaf(make(text), cost)
            }
        }
    }

    /// Date (§3.10): `U29D-value` (only the inline flag) and a double.
    fn date(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        match read_header(input, "AMF3 date")? {
            Header::Reference(index) => self.object_reference(index, depth),
            Header::Inline(_) => {
                let millis = wire::f64(input, "AMF3 date")?;
                self.leaf(
                    Amf3Value::Date(millis),
                    Cost {
                        values: 1,
                        bytes: 0,
                    },
                )
            }
        }
    }

    /// ByteArray (§3.14): `U29B-value` length and the bytes.
    fn byte_array(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        match read_header(input, "AMF3 byte array")? {
            Header::Reference(index) => self.object_reference(index, depth),
            Header::Inline(len) => {
                let bytes = wire::take(input, len as usize, "AMF3 byte array")?;
                let cost = Cost {
                    values: 1,
                    bytes: bytes.len(),
                };
                self.leaf(Amf3Value::ByteArray(bytes.to_vec()), cost)
            }
        }
    }

    /// `Vector.<int>`, `Vector.<uint>` or `Vector.<Number>` (§3.15): count, fixed flag and
    /// `count` big-endian items of `item_len` bytes, which `build` turns into the value.
    fn numeric_vector(
        &mut self,
        input: &mut &[u8],
        depth: usize,
        item_len: usize,
        build: impl FnOnce(bool, &[u8]) -> Amf3Value,
    ) -> Result<Node> {
        let count = match read_header(input, "AMF3 vector")? {
            Header::Reference(index) => return self.object_reference(index, depth),
            Header::Inline(count) => count as usize,
        };
        let fixed = wire::u8(input, "AMF3 vector")? != 0;
        check_count(count, item_len, input, "AMF3 vector")?;
        let bytes = wire::take(input, count * item_len, "AMF3 vector")?;
        // Each item counts as a value: it costs memory like one.
        let cost = Cost {
            values: 1 + count,
            bytes: 0,
        };
        self.leaf(build(fixed, bytes), cost)
    }

    /// Array (§3.11): dense count, associative part up to the empty name, dense part.
    fn array(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        let dense_len = match read_header(input, "AMF3 array")? {
            Header::Reference(index) => return self.object_reference(index, depth),
            Header::Inline(count) => count as usize,
        };
        // Refuse an absurd count before reading anything else.
        if dense_len > amf0::MAX_COLLECTION_LEN {
            return Err(collection_too_large(dense_len));
        }
        self.container(input, depth, |reader, input, inner| {
            let assoc = reader.named_members(input, inner)?;
            check_count(dense_len, 1, input, "AMF3 array")?;
            let mut dense = Vec::with_capacity(dense_len);
            for _ in 0..dense_len {
                dense.push(reader.value(input, inner)?);
            }
            Ok(Shape::Array { assoc, dense })
        })
    }

    /// Object (§3.12): traits, sealed member values, then dynamic members if the traits say so.
    fn object(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        let header = match read_header(input, "AMF3 object")? {
            Header::Reference(index) => return self.object_reference(index, depth),
            Header::Inline(header) => header,
        };
        // Traits are read inside the container so that their names are part of its cost.
        self.container(input, depth, |reader, input, inner| {
            let traits = reader.traits(input, header)?;
            check_count(traits.sealed.len(), 1, input, "AMF3 object")?;
            let mut sealed = Vec::with_capacity(traits.sealed.len());
            for name in traits.sealed {
                let value = reader.value(input, inner)?;
                sealed.push((name, value));
            }
            let dynamic = if traits.dynamic {
                Some(reader.named_members(input, inner)?)
            } else {
                None
            };
            Ok(Shape::Object {
                class_name: traits.class_name,
                sealed,
                dynamic,
            })
        })
    }

    /// Reads the traits of an object (§3.12). `header` is the object's `U29O` without its low
    /// (inline object) bit: bit 0 = inline traits, bit 1 = externalizable, bit 2 = dynamic,
    /// bits 3.. = sealed member count; or, for a traits reference, the index in bits 1...
    fn traits(&mut self, input: &mut &[u8], header: u32) -> Result<Traits> {
        if header & 1 == 0 {
            let index = (header >> 1) as usize;
            let traits = self
                .tables
                .traits
                .get(index)
                .ok_or_else(|| invalid_reference("trait", index))?;
            // Check and charge before copying: every object using these traits gets its own
            // copy of the names, and each sealed member needs at least one byte of input.
            check_count(traits.sealed.len(), 1, input, "AMF3 object")?;
            let bytes = traits.sealed.iter().map(String::len).sum::<usize>();
            self.budget
                .charge_bytes(traits.class_name.len().saturating_add(bytes))?;
            return Ok(traits.clone());
        }
        let class_name = self.string(input)?;
        if header & 2 != 0 {
            // The member data of an externalizable object is written by the class itself
            // (IExternalizable), so there is no way to know where it ends.
            return Err(ProtocolError::Other(format!(
                "externalizable AMF3 object {} is not supported",
                printable(&class_name)
            ))
            .into());
        }
        let dynamic = header & 4 != 0;
        let count = (header >> 3) as usize;
        check_count(count, 1, input, "AMF3 object traits")?;
        let mut sealed = Vec::with_capacity(count);
        for _ in 0..count {
            sealed.push(self.string(input)?);
        }
        let traits = Traits {
            class_name,
            sealed,
            dynamic,
        };
        self.tables.traits.push(traits.clone());
        Ok(traits)
    }

    /// Reads name/value pairs up to the empty name (§3.11 associative part, §3.12 dynamic
    /// members).
    fn named_members(&mut self, input: &mut &[u8], inner: usize) -> Result<Vec<(String, Node)>> {
        let mut members = Vec::new();
        loop {
            let name = self.string(input)?;
            if name.is_empty() {
                return Ok(members);
            }
            if members.len() >= amf0::MAX_COLLECTION_LEN {
                return Err(collection_too_large(members.len() + 1));
            }
            let value = self.value(input, inner)?;
            members.push((name, value));
        }
    }

    /// `Vector.<T>` for an object type (§3.15): count, fixed flag, type name, items.
    fn vector_object(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        let count = match read_header(input, "AMF3 vector")? {
            Header::Reference(index) => return self.object_reference(index, depth),
            Header::Inline(count) => count as usize,
        };
        self.container(input, depth, |reader, input, inner| {
            let fixed = wire::u8(input, "AMF3 vector")? != 0;
            let type_name = reader.string(input)?;
            check_count(count, 1, input, "AMF3 vector")?;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(reader.value(input, inner)?);
            }
            Ok(Shape::VectorObject {
                fixed,
                type_name,
                items,
            })
        })
    }

    /// Dictionary (§3.16): entry count, weak-keys flag, then key/value pairs.
    fn dictionary(&mut self, input: &mut &[u8], depth: usize) -> Result<Node> {
        let count = match read_header(input, "AMF3 dictionary")? {
            Header::Reference(index) => return self.object_reference(index, depth),
            Header::Inline(count) => count as usize,
        };
        self.container(input, depth, |reader, input, inner| {
            let weak_keys = wire::u8(input, "AMF3 dictionary")? != 0;
            // A key and a value take at least one byte each.
            check_count(count, 2, input, "AMF3 dictionary")?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let key = reader.value(input, inner)?;
                let value = reader.value(input, inner)?;
                entries.push((key, value));
            }
            Ok(Shape::Dictionary { weak_keys, entries })
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rtmp::amf0::{MAX_COLLECTION_LEN, MAX_DECODED_BYTES, MAX_VALUES};
    use crate::rtmp::error::Error;

    /// xorshift64: a small deterministic PRNG, so failures reproduce.
    pub(in crate::rtmp) struct Rng(u64);

    impl Rng {
        pub(in crate::rtmp) fn new(seed: u64) -> Self {
            Rng(seed.max(1))
        }

        pub(in crate::rtmp) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A number in `0..n` (`n` > 0).
        pub(in crate::rtmp) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// A byte, half of the time a valid type marker (below `markers`).
        fn byte(&mut self, markers: u8) -> u8 {
            let raw = self.next() as u8;
            if self.next() & 1 == 0 {
                raw % markers
            } else {
                raw
            }
        }
    }

    /// A random input: pure noise, or a corpus entry that was bit-flipped, cut, extended,
    /// spliced or patched with boundary values.
    pub(in crate::rtmp) fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], markers: u8) -> Vec<u8> {
        let mut input = corpus[rng.below(corpus.len())].clone();
        match rng.below(6) {
            0 => {
                let len = rng.below(64);
                input = (0..len).map(|_| rng.byte(markers)).collect();
            }
            1 => {
                for _ in 0..=rng.below(4) {
                    if !input.is_empty() {
                        let at = rng.below(input.len());
                        input[at] ^= 1 << rng.below(8);
                    }
                }
            }
            2 => input.truncate(rng.below(input.len() + 1)),
            3 => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(input.len() + 1);
                    let byte = rng.byte(markers);
                    input.insert(at, byte);
                }
            }
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                for _ in 0..=rng.below(3) {
                    if !input.is_empty() {
                        let at = rng.below(input.len());
                        input[at] = [0x00, 0x01, 0x7F, 0x80, 0xBF, 0xFF][rng.below(6)];
                    }
                }
            }
        }
        input
    }

    fn point(x: f64, y: f64) -> Amf3Value {
        Amf3Value::Object {
            class_name: "Point".into(),
            sealed: vec![
                ("x".into(), Amf3Value::Double(x)),
                ("y".into(), Amf3Value::Double(y)),
            ],
            dynamic: None,
        }
    }

    /// One of every AMF3 variant, with nesting and repeated strings and traits.
    pub(in crate::rtmp) fn every_amf3_variant() -> Vec<Amf3Value> {
        vec![
            Amf3Value::Undefined,
            Amf3Value::Null,
            Amf3Value::Boolean(false),
            Amf3Value::Boolean(true),
            Amf3Value::Integer(0),
            Amf3Value::Integer(-1),
            Amf3Value::Integer(INTEGER_MIN),
            Amf3Value::Integer(INTEGER_MAX),
            Amf3Value::Double(3.5),
            Amf3Value::Double(f64::NEG_INFINITY),
            Amf3Value::String(String::new()),
            Amf3Value::String("héllo".into()),
            Amf3Value::String("héllo".into()),
            Amf3Value::XmlDocument("<doc/>".into()),
            Amf3Value::Date(1.7e12),
            Amf3Value::Array {
                assoc: vec![("héllo".into(), Amf3Value::Integer(1))],
                dense: vec![Amf3Value::String("héllo".into()), Amf3Value::Null],
            },
            Amf3Value::Array {
                assoc: Vec::new(),
                dense: Vec::new(),
            },
            Amf3Value::Object {
                class_name: String::new(),
                sealed: Vec::new(),
                dynamic: Some(vec![("a".into(), Amf3Value::String("héllo".into()))]),
            },
            Amf3Value::Object {
                class_name: String::new(),
                sealed: Vec::new(),
                dynamic: None,
            },
            point(1.0, 2.0),
            point(3.0, 4.0),
            Amf3Value::Object {
                class_name: "Foo".into(),
                sealed: vec![("".into(), Amf3Value::Integer(1))],
                dynamic: Some(vec![("z".into(), point(5.0, 6.0))]),
            },
            Amf3Value::Xml("<x/>".into()),
            Amf3Value::ByteArray(vec![0, 1, 0xFF]),
            Amf3Value::ByteArray(Vec::new()),
            Amf3Value::VectorInt {
                fixed: true,
                items: vec![-1, 0, i32::MAX, i32::MIN],
            },
            Amf3Value::VectorUInt {
                fixed: false,
                items: vec![0, u32::MAX],
            },
            Amf3Value::VectorDouble {
                fixed: false,
                items: vec![0.5, -0.0, f64::MAX],
            },
            Amf3Value::VectorObject {
                fixed: false,
                type_name: "Point".into(),
                items: vec![point(7.0, 8.0), Amf3Value::Null],
            },
            Amf3Value::Dictionary {
                weak_keys: true,
                entries: vec![
                    (Amf3Value::String("k".into()), Amf3Value::Integer(1)),
                    (point(0.0, 0.0), Amf3Value::Null),
                ],
            },
        ]
    }

    fn protocol_error<T: std::fmt::Debug>(result: Result<T>) -> ProtocolError {
        match result {
            Err(Error::Protocol(err)) => err,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    fn decode_one(mut bytes: &[u8]) -> Result<Amf3Value> {
        decode(&mut bytes)
    }

    fn encoded(value: &Amf3Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out);
        out
    }

    fn dense(items: Vec<Amf3Value>) -> Amf3Value {
        Amf3Value::Array {
            assoc: Vec::new(),
            dense: items,
        }
    }

    fn u29(value: u32) -> Vec<u8> {
        let mut out = Vec::new();
        write_u29(&mut out, value);
        out
    }

    #[test]
    fn u29_integers_match_the_spec_encoding() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (0x7F, &[0x7F]),
            (0x80, &[0x81, 0x00]),
            (0x3FFF, &[0xFF, 0x7F]),
            (0x4000, &[0x81, 0x80, 0x00]),
            (0x1F_FFFF, &[0xFF, 0xFF, 0x7F]),
            (0x20_0000, &[0x80, 0xC0, 0x80, 0x00]),
            (0x0FFF_FFFF, &[0xBF, 0xFF, 0xFF, 0xFF]),
            (-1, &[0xFF, 0xFF, 0xFF, 0xFF]),
            (-2, &[0xFF, 0xFF, 0xFF, 0xFE]),
            (-0x1000_0000, &[0xC0, 0x80, 0x80, 0x00]),
        ];
        for (value, bytes) in cases {
            let mut expected = vec![marker::INTEGER];
            expected.extend_from_slice(bytes);
            assert_eq!(encoded(&Amf3Value::Integer(*value)), expected, "{value:#x}");
            assert_eq!(
                decode_one(&expected).unwrap(),
                Amf3Value::Integer(*value),
                "{bytes:02x?}"
            );
        }
        // The largest U29 takes four bytes with all bits set.
        assert_eq!(
            read_u29(&mut &[0xFF, 0xFF, 0xFF, 0xFF][..], "t").unwrap(),
            U29_MAX
        );
        assert_eq!(u29(U29_MAX), [0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn integers_outside_29_bits_are_sent_as_doubles() {
        for value in [INTEGER_MAX + 1, INTEGER_MIN - 1, i32::MAX, i32::MIN] {
            let bytes = encoded(&Amf3Value::Integer(value));
            let mut expected = vec![marker::DOUBLE];
            expected.extend_from_slice(&f64::from(value).to_be_bytes());
            assert_eq!(bytes, expected);
            assert_eq!(
                decode_one(&bytes).unwrap(),
                Amf3Value::Double(f64::from(value))
            );
        }
    }

    #[test]
    fn decodes_known_scalar_and_leaf_bytes() {
        let cases: Vec<(Vec<u8>, Amf3Value)> = vec![
            (vec![0x00], Amf3Value::Undefined),
            (vec![0x01], Amf3Value::Null),
            (vec![0x02], Amf3Value::Boolean(false)),
            (vec![0x03], Amf3Value::Boolean(true)),
            (
                [&[0x05][..], &1.5f64.to_be_bytes()].concat(),
                Amf3Value::Double(1.5),
            ),
            (vec![0x06, 0x01], Amf3Value::String(String::new())),
            (vec![0x06, 0x05, b'h', b'i'], Amf3Value::String("hi".into())),
            (vec![0x07, 0x03, b'x'], Amf3Value::XmlDocument("x".into())),
            (
                [&[0x08, 0x01][..], &2.0f64.to_be_bytes()].concat(),
                Amf3Value::Date(2.0),
            ),
            (vec![0x0B, 0x03, b'y'], Amf3Value::Xml("y".into())),
            (
                vec![0x0C, 0x05, 0xAB, 0xCD],
                Amf3Value::ByteArray(vec![0xAB, 0xCD]),
            ),
            (
                vec![0x0D, 0x05, 0x00, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF],
                Amf3Value::VectorInt {
                    fixed: false,
                    items: vec![1, -1],
                },
            ),
            (
                vec![0x0E, 0x03, 0x01, 0xFF, 0xFF, 0xFF, 0xFF],
                Amf3Value::VectorUInt {
                    fixed: true,
                    items: vec![u32::MAX],
                },
            ),
            (
                [&[0x0F, 0x03, 0x00][..], &0.25f64.to_be_bytes()].concat(),
                Amf3Value::VectorDouble {
                    fixed: false,
                    items: vec![0.25],
                },
            ),
            (
                vec![0x10, 0x03, 0x00, 0x03, b'*', 0x01],
                Amf3Value::VectorObject {
                    fixed: false,
                    type_name: "*".into(),
                    items: vec![Amf3Value::Null],
                },
            ),
            (
                vec![0x11, 0x03, 0x01, 0x04, 0x01, 0x02],
                Amf3Value::Dictionary {
                    weak_keys: true,
                    entries: vec![(Amf3Value::Integer(1), Amf3Value::Boolean(false))],
                },
            ),
        ];
        for (bytes, value) in cases {
            assert_eq!(decode_one(&bytes).unwrap(), value, "{bytes:02x?}");
            assert_eq!(encoded(&value), bytes, "{value:?}");
        }
    }

    #[test]
    fn string_references() {
        // Array of two strings, the second a reference to the first (§1.3.2).
        let bytes = [0x09, 0x05, 0x01, 0x06, 0x05, b'a', b'b', 0x06, 0x00];
        let value = dense(vec![Amf3Value::String("ab".into()); 2]);
        assert_eq!(decode_one(&bytes).unwrap(), value);
        // The encoder makes the same reference.
        assert_eq!(encoded(&value), bytes);
        // The empty string takes no table slot, so "ab" is still index 0 after it.
        let bytes = [
            0x09, 0x07, 0x01, 0x06, 0x01, 0x06, 0x05, b'a', b'b', 0x06, 0x00,
        ];
        let value = decode_one(&bytes).unwrap();
        assert_eq!(
            value,
            dense(vec![
                Amf3Value::String(String::new()),
                Amf3Value::String("ab".into()),
                Amf3Value::String("ab".into()),
            ])
        );
        assert_eq!(encoded(&value), bytes);
    }

    #[test]
    fn trait_references() {
        // Two `Foo` objects with sealed member `x`; the second refers to the first's traits.
        let bytes = [
            0x09, 0x05, 0x01, // array, 2 dense items, no associative part
            0x0A, 0x13, 0x07, b'F', b'o', b'o', 0x03, b'x', 0x04, 0x01, // Foo { x: 1 }
            0x0A, 0x01, 0x04, 0x02, // traits reference 0, x: 2
        ];
        let foo = |x| Amf3Value::Object {
            class_name: "Foo".into(),
            sealed: vec![("x".into(), Amf3Value::Integer(x))],
            dynamic: None,
        };
        let value = dense(vec![foo(1), foo(2)]);
        assert_eq!(decode_one(&bytes).unwrap(), value);
        assert_eq!(encoded(&value), bytes);
    }

    #[test]
    fn object_references_are_resolved_by_copy() {
        // An anonymous dynamic object {a: 5}, then a reference to it (object index 1: the
        // array itself is index 0).
        let bytes = [
            0x09, 0x05, 0x01, 0x0A, 0x0B, 0x01, 0x03, b'a', 0x04, 0x05, 0x01, 0x0A, 0x02,
        ];
        let object = Amf3Value::Object {
            class_name: String::new(),
            sealed: Vec::new(),
            dynamic: Some(vec![("a".into(), Amf3Value::Integer(5))]),
        };
        assert_eq!(
            decode_one(&bytes).unwrap(),
            dense(vec![object.clone(), object])
        );
        // Leaf complex values (here a byte array, index 1) are in the same table.
        let bytes = [0x09, 0x05, 0x01, 0x0C, 0x03, 0x07, 0x0C, 0x02];
        let bytes_value = Amf3Value::ByteArray(vec![7]);
        assert_eq!(
            decode_one(&bytes).unwrap(),
            dense(vec![bytes_value.clone(), bytes_value])
        );
    }

    #[test]
    fn invalid_and_cyclic_references_are_refused() {
        let invalid = |table, index| ProtocolError::InvalidAmfReference {
            version: 3,
            table,
            index,
        };
        // An array holding itself.
        assert_eq!(
            protocol_error(decode_one(&[0x09, 0x03, 0x01, 0x09, 0x00])),
            invalid("object", 0)
        );
        // An object holding itself.
        assert_eq!(
            protocol_error(decode_one(&[
                0x0A, 0x0B, 0x01, 0x03, b'a', 0x0A, 0x00, 0x01
            ])),
            invalid("object", 0)
        );
        // Nothing decoded yet.
        for marker in [
            0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11,
        ] {
            assert_eq!(
                protocol_error(decode_one(&[marker, 0x02])),
                invalid("object", 1),
                "marker 0x{marker:02x}"
            );
        }
        assert_eq!(
            protocol_error(decode_one(&[0x06, 0x02])),
            invalid("string", 1)
        );
        // Object header 0b101: inline object, traits reference 1.
        assert_eq!(
            protocol_error(decode_one(&[0x0A, 0x05])),
            invalid("trait", 1)
        );
    }

    #[test]
    fn externalizable_objects_are_refused() {
        let err = protocol_error(decode_one(&[0x0A, 0x07, 0x07, b'F', b'o', b'o']));
        assert_eq!(
            err,
            ProtocolError::Other("externalizable AMF3 object Foo is not supported".into())
        );
        // A hostile class name is shortened and escaped in the message.
        let mut bytes = vec![0x0A, 0x07];
        bytes.extend(u29((200 << 1) | 1));
        bytes.extend([b'\n'; 200]);
        let ProtocolError::Other(message) = protocol_error(decode_one(&bytes)) else {
            panic!("wrong error");
        };
        assert!(!message.contains('\n'));
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn unknown_markers_are_refused() {
        for marker in [0x12, 0x80, 0xFF] {
            assert_eq!(
                protocol_error(decode_one(&[marker])),
                ProtocolError::InvalidAmfMarker { version: 3, marker }
            );
        }
    }

    #[test]
    fn every_variant_round_trips() {
        for value in every_amf3_variant() {
            let bytes = encoded(&value);
            let mut input = &bytes[..];
            assert_eq!(decode(&mut input).unwrap(), value);
            assert!(input.is_empty(), "{value:?} left {} bytes", input.len());
        }
        // All in one value: exercises string and traits references across members.
        let all = dense(every_amf3_variant());
        assert_eq!(decode_one(&encoded(&all)).unwrap(), all);
        let with_assoc = Amf3Value::Array {
            assoc: vec![("every".into(), all.clone())],
            dense: vec![all],
        };
        assert_eq!(decode_one(&encoded(&with_assoc)).unwrap(), with_assoc);
    }

    #[test]
    fn encoder_and_decoder_contexts_span_several_values() {
        let mut encoder = Amf3Encoder::new();
        let mut bytes = Vec::new();
        for value in every_amf3_variant() {
            encoder.encode(&value, &mut bytes);
        }
        let mut decoder = Amf3Decoder::new();
        let mut input = &bytes[..];
        for value in every_amf3_variant() {
            assert_eq!(decoder.decode(&mut input).unwrap(), value);
        }
        assert!(input.is_empty());

        // A second "shared" becomes a reference, meaningless to a fresh context.
        let mut encoder = Amf3Encoder::new();
        let mut bytes = Vec::new();
        encoder.encode(&Amf3Value::String("shared".into()), &mut bytes);
        let second = bytes.len();
        encoder.encode(&Amf3Value::String("shared".into()), &mut bytes);
        assert_eq!(bytes[second..], [0x06, 0x00]);
        assert!(decode_one(&bytes[second..]).is_err());
    }

    #[test]
    fn a_failed_decode_leaves_the_context_unchanged() {
        let mut decoder = Amf3Decoder::new();
        let mut input: &[u8] = &[0x06, 0x05, b'a', b'b'];
        assert_eq!(
            decoder.decode(&mut input).unwrap(),
            Amf3Value::String("ab".into())
        );
        // Defines "xy" (string 1) and an array (object 0), then ends early.
        let mut input: &[u8] = &[0x09, 0x05, 0x01, 0x06, 0x05, b'x', b'y'];
        assert!(decoder.decode(&mut input).is_err());
        assert_eq!(input.len(), 7, "input consumed by a failed decode");
        let mut input: &[u8] = &[0x06, 0x02];
        assert!(decoder.decode(&mut input).is_err(), "string 1 survived");
        let mut input: &[u8] = &[0x09, 0x00];
        assert!(decoder.decode(&mut input).is_err(), "object 0 survived");
        let mut input: &[u8] = &[0x06, 0x00];
        assert_eq!(
            decoder.decode(&mut input).unwrap(),
            Amf3Value::String("ab".into())
        );
    }

    #[test]
    fn unrepresentable_parts_are_adapted_by_the_encoder() {
        let value = Amf3Value::Array {
            assoc: vec![("".into(), Amf3Value::Null), ("a".into(), Amf3Value::Null)],
            dense: Vec::new(),
        };
        assert_eq!(
            decode_one(&encoded(&value)).unwrap(),
            Amf3Value::Array {
                assoc: vec![("a".into(), Amf3Value::Null)],
                dense: Vec::new(),
            }
        );
        let value = Amf3Value::Object {
            class_name: String::new(),
            sealed: Vec::new(),
            dynamic: Some(vec![("".into(), Amf3Value::Null)]),
        };
        assert_eq!(
            decode_one(&encoded(&value)).unwrap(),
            Amf3Value::Object {
                class_name: String::new(),
                sealed: Vec::new(),
                dynamic: Some(Vec::new()),
            }
        );
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let value = decode_one(&[0x06, 0x05, 0xFF, b'a']).unwrap();
        assert_eq!(value, Amf3Value::String("\u{FFFD}a".into()));
    }

    #[test]
    fn every_truncation_of_a_valid_encoding_is_an_error() {
        for value in every_amf3_variant()
            .into_iter()
            .chain([dense(every_amf3_variant())])
        {
            let bytes = encoded(&value);
            for end in 0..bytes.len() {
                let err = protocol_error(decode_one(&bytes[..end]));
                assert!(
                    matches!(err, ProtocolError::Truncated { .. }),
                    "{value:?} cut at {end}: {err:?}"
                );
            }
        }
    }

    /// `levels` arrays, each holding the next as its only item, around a null.
    fn nested_arrays(levels: usize) -> Vec<u8> {
        let mut bytes = [0x09, 0x03, 0x01].repeat(levels);
        bytes.push(0x01);
        bytes
    }

    #[test]
    fn nesting_is_limited_to_max_depth() {
        assert!(decode_one(&nested_arrays(MAX_DEPTH)).is_ok());
        let too_deep = ProtocolError::AmfTooDeep { max: MAX_DEPTH };
        assert_eq!(
            protocol_error(decode_one(&nested_arrays(MAX_DEPTH + 1))),
            too_deep
        );
        assert_eq!(
            protocol_error(decode_one(&nested_arrays(300_000))),
            too_deep
        );
        // Dynamic objects, vectors and dictionaries nest too.
        for level in [
            &[0x0A, 0x0B, 0x01, 0x03, b'a'][..],
            &[0x10, 0x03, 0x00, 0x01],
            &[0x11, 0x03, 0x00, 0x01],
        ] {
            let mut bytes = level.repeat(MAX_DEPTH + 1);
            bytes.push(0x01);
            assert_eq!(protocol_error(decode_one(&bytes)), too_deep, "{level:02x?}");
        }
    }

    #[test]
    fn a_reference_cannot_copy_a_value_deeper_than_max_depth() {
        // Array [B, C] where B is MAX_DEPTH - 1 nested arrays (object 1) and C = [ref B]:
        // B fits at depth 1, but its copy inside C would be one level too deep.
        let chain = nested_arrays(MAX_DEPTH - 1);
        let bytes = [
            &[0x09, 0x05, 0x01][..],
            &chain,
            &[0x09, 0x03, 0x01, 0x09, 0x02],
        ]
        .concat();
        assert_eq!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::AmfTooDeep { max: MAX_DEPTH }
        );
        // The same reference directly in the outer array is fine.
        let bytes = [&[0x09, 0x05, 0x01][..], &chain, &[0x09, 0x02]].concat();
        let Amf3Value::Array { dense, .. } = decode_one(&bytes).unwrap() else {
            panic!("not an array");
        };
        assert_eq!(dense[0], dense[1]);
    }

    #[test]
    fn huge_announced_counts_fail_fast() {
        let too_large = |len| ProtocolError::AmfTooLarge {
            what: "collection length",
            len,
            max: MAX_COLLECTION_LEN,
        };
        let huge = u29(U29_MAX); // inline, count 2^28 - 1
        let huge_count = (U29_MAX >> 1) as usize;
        for marker in [0x09, 0x0D, 0x0E, 0x0F, 0x10, 0x11] {
            let bytes = [&[marker][..], &huge, &[0x00, 0x01, 0x01]].concat();
            assert_eq!(
                protocol_error(decode_one(&bytes)),
                too_large(huge_count),
                "marker 0x{marker:02x}"
            );
        }
        // Sealed member count in the traits.
        let bytes = [&[0x0A][..], &u29((1 << 24 << 4) | 0b011), &[0x01]].concat();
        assert_eq!(protocol_error(decode_one(&bytes)), too_large(1 << 24));
        // Within the limit but more than the input holds: truncated, nothing allocated.
        for marker in [0x09, 0x0D, 0x10, 0x11] {
            let bytes = [&[marker][..], &u29((60_000 << 1) | 1), &[0x01, 0x01, 0x01]].concat();
            assert!(
                matches!(
                    protocol_error(decode_one(&bytes)),
                    ProtocolError::Truncated { .. }
                ),
                "marker 0x{marker:02x}"
            );
        }
        // Lengths of strings, XML and byte arrays are checked against the input.
        for marker in [0x06, 0x07, 0x0B, 0x0C] {
            let bytes = [&[marker][..], &huge, b"abc"].concat();
            assert!(matches!(
                protocol_error(decode_one(&bytes)),
                ProtocolError::Truncated { .. }
            ));
        }
    }

    #[test]
    fn collections_with_too_many_members_are_refused() {
        // MAX_COLLECTION_LEN + 1 associative members all named "k" (a string reference).
        let mut bytes = vec![0x09, 0x01, 0x03, b'k', 0x01];
        for _ in 0..MAX_COLLECTION_LEN {
            bytes.extend_from_slice(&[0x00, 0x01]);
        }
        bytes.push(0x01);
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
    fn reference_copies_hit_the_value_budget() {
        // Billion laughs: item 0 is [null, null], item i is [ref item i-1, ref item i-1],
        // so item i holds about 2^(i+1) values for 7 bytes of input.
        let levels = 40u32;
        let mut bytes = vec![0x09];
        bytes.extend(u29((levels << 1) | 1));
        bytes.extend_from_slice(&[0x01, 0x09, 0x05, 0x01, 0x01, 0x01]);
        for i in 1..levels {
            // Item i-1 is object i (the outer array is object 0).
            let reference = [&[0x09][..], &u29(i << 1)].concat();
            bytes.extend_from_slice(&[0x09, 0x05, 0x01]);
            bytes.extend_from_slice(&reference);
            bytes.extend_from_slice(&reference);
        }
        assert!(bytes.len() < 300);
        let err = protocol_error(decode_one(&bytes));
        assert!(
            matches!(
                err,
                ProtocolError::AmfTooLarge {
                    what: "value count",
                    max: MAX_VALUES,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn string_reference_copies_hit_the_byte_budget() {
        // One 60 kB string, then 1000 references to it.
        let mut bytes = vec![0x09];
        bytes.extend(u29((1001 << 1) | 1));
        bytes.extend_from_slice(&[0x01, 0x06]);
        bytes.extend(u29((60_000 << 1) | 1));
        bytes.extend(std::iter::repeat_n(b's', 60_000));
        for _ in 0..1000 {
            bytes.extend_from_slice(&[0x06, 0x00]);
        }
        assert!(matches!(
            protocol_error(decode_one(&bytes)),
            ProtocolError::AmfTooLarge {
                what: "decoded byte count",
                max: MAX_DECODED_BYTES,
                ..
            }
        ));
    }

    /// Decodes values in one context until the input ends or a value fails (which must leave
    /// the input alone).
    fn decode_sequence(mut input: &[u8]) -> Vec<Amf3Value> {
        let mut decoder = Amf3Decoder::new();
        let mut values = Vec::new();
        while !input.is_empty() {
            let before = input.len();
            match decoder.decode(&mut input) {
                Ok(value) => values.push(value),
                Err(_) => {
                    assert_eq!(input.len(), before, "failed decode consumed input");
                    break;
                }
            }
        }
        values
    }

    fn encode_sequence(values: &[Amf3Value]) -> Vec<u8> {
        let mut encoder = Amf3Encoder::new();
        let mut out = Vec::new();
        for value in values {
            encoder.encode(value, &mut out);
        }
        out
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let corpus: Vec<Vec<u8>> = every_amf3_variant()
            .iter()
            .map(encoded)
            .chain([encoded(&dense(every_amf3_variant()))])
            .collect();
        let mut rng = Rng::new(0x0A3F_3333_8765_4321);
        let mut decoded = 0;
        for _ in 0..10_000 {
            let input = mutate(&mut rng, &corpus, 0x12);
            let _ = decode_one(&input);
            // Like the fuzz target: one context for as many values as decode.
            let values = decode_sequence(&input);
            if values.is_empty() {
                continue;
            }
            decoded += 1;
            // Whatever decodes re-encodes to something that decodes to the same values.
            let bytes = encode_sequence(&values);
            let again = decode_sequence(&bytes);
            assert_eq!(encode_sequence(&again), bytes);
            #[allow(clippy::eq_op)] // false exactly when a NaN is somewhere inside
            if values == values {
                assert_eq!(again, values);
            }
        }
        assert!(decoded > 100, "only {decoded} inputs decoded");
    }
}
