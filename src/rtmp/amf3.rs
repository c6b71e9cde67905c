//! AMF3 encoder and decoder with the three reference tables, bounded against hostile input.
//! CONTRACT STUB: to be implemented.

/// An AMF3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// 0x00 undefined.
    Undefined,
}
