//! Colour description code points shared by the video codec records: colour primaries,
//! transfer characteristics and matrix coefficients as ISO/IEC 23091-2 (ITU-T H.273) numbers,
//! the values H.265 VUI, the AV1 sequence header, vpcC and the E-RTMP `colorInfo` use.

/// `colour_primaries`, `transfer_characteristics` and `matrix_coefficients` of a video stream
/// (ISO/IEC 23091-2 code points, e.g. 1 = BT.709, 2 = unspecified, 9 = BT.2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColourDescription {
    /// `colour_primaries` (ISO/IEC 23091-2 §8.1).
    pub primaries: u8,
    /// `transfer_characteristics` (ISO/IEC 23091-2 §8.2), e.g. 16 = PQ, 18 = HLG.
    pub transfer_characteristics: u8,
    /// `matrix_coefficients` (ISO/IEC 23091-2 §8.3), e.g. 0 = identity (RGB).
    pub matrix_coefficients: u8,
}

impl ColourDescription {
    /// The code point for "unspecified" in all three fields.
    pub const UNSPECIFIED_CODE: u8 = 2;

    /// All three fields unspecified (2), what a stream without colour description means.
    pub const UNSPECIFIED: ColourDescription = ColourDescription {
        primaries: Self::UNSPECIFIED_CODE,
        transfer_characteristics: Self::UNSPECIFIED_CODE,
        matrix_coefficients: Self::UNSPECIFIED_CODE,
    };
}

impl Default for ColourDescription {
    fn default() -> Self {
        Self::UNSPECIFIED
    }
}
