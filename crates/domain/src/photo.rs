//! A client's photo for the dispensing window: which bytes are accepted and what is kept of them.
//!
//! Only JPEG, PNG and WebP are accepted, recognised by their first bytes (never by the name or
//! the content type a browser claims), at most [`MAX_PHOTO_BYTES`]. Metadata is dropped where it
//! is cheap to do so: a JPEG loses its APP1 (Exif, XMP: a phone's Exif may hold the GPS position
//! of the client's home), APP13 (IPTC) and comment segments; a PNG its text, Exif and time
//! chunks. A WebP is kept as sent. A file whose structure does not parse is not an image.

use crate::{Code, Problem};

/// The largest photo accepted, in bytes (2 MiB).
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

/// The kinds of image accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Jpeg,
    Png,
    Webp,
}

impl MediaType {
    /// The IANA media type.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
        }
    }

    /// Reads back a stored media type.
    pub fn parse(s: &str) -> Option<MediaType> {
        [MediaType::Jpeg, MediaType::Png, MediaType::Webp]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What the first bytes say the file is, if it is one of the accepted kinds.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(MediaType::Jpeg)
    } else if bytes.starts_with(PNG_MAGIC) {
        Some(MediaType::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(MediaType::Webp)
    } else {
        None
    }
}

/// Kilobytes (1,024 bytes), rounded up, as the refusal says a size.
fn kb(n: usize) -> usize {
    n.div_ceil(1024)
}

/// Checks a photo and strips its metadata: the image to store and its kind, or the refusal
/// (`photo.too_large` with `size` and `max` in KB, `photo.not_an_image`) at field `photo`.
pub fn accept(bytes: &[u8]) -> Result<(MediaType, Vec<u8>), Problem> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(Problem::new(Code::PhotoTooLarge)
            .field("photo")
            .arg("size", kb(bytes.len()))
            .arg("max", kb(MAX_PHOTO_BYTES)));
    }
    let not_an_image = || Problem::new(Code::PhotoNotAnImage).field("photo");
    let kind = sniff(bytes).ok_or_else(not_an_image)?;
    let kept = match kind {
        MediaType::Jpeg => strip_jpeg(bytes),
        MediaType::Png => strip_png(bytes),
        MediaType::Webp => check_webp(bytes),
    }
    .ok_or_else(not_an_image)?;
    Ok((kind, kept))
}

/// A JPEG without its APP1 (Exif, XMP), APP13 (IPTC) and COM segments; `None` when the
/// segments before the image data do not parse.
pub fn strip_jpeg(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        // Fill bytes before a marker.
        while bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            // End of image: done.
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Some(out);
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                at += 2;
            }
            _ => {
                let len = usize::from(u16::from_be_bytes([
                    *bytes.get(at + 2)?,
                    *bytes.get(at + 3)?,
                ]));
                if len < 2 {
                    return None;
                }
                let end = at + 2 + len;
                if end > bytes.len() {
                    return None;
                }
                // Start of scan: the entropy-coded data and the rest are kept as they are.
                if marker == 0xDA {
                    out.extend_from_slice(&bytes[at..]);
                    return Some(out);
                }
                if !matches!(marker, 0xE1 | 0xED | 0xFE) {
                    out.extend_from_slice(&bytes[at..end]);
                }
                at = end;
            }
        }
    }
}

/// A PNG without its text, Exif and time chunks; `None` when its chunks do not parse.
pub fn strip_png(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(bytes.get(..8).filter(|m| *m == PNG_MAGIC)?);
    let mut at = 8;
    let mut ended = false;
    while at < bytes.len() && !ended {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind = bytes.get(at + 4..at + 8)?;
        let end = at.checked_add(12)?.checked_add(len)?;
        let chunk = bytes.get(at..end)?;
        ended = kind == b"IEND";
        if !matches!(kind, b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME") {
            out.extend_from_slice(chunk);
        }
        at = end;
    }
    ended.then_some(out)
}

/// A WebP whose RIFF length fits the file, kept as it is.
fn check_webp(bytes: &[u8]) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
    (len >= 4 && len + 8 <= bytes.len()).then(|| bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(body);
        s
    }

    /// A JPEG's structure: SOI, APP0, an APP1 with Exif and a GPS tag, a COM, a quantisation
    /// table, a scan with its data, EOI.
    fn jpeg_with_exif() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        j.extend(segment(0xE1, b"Exif\0\0MM\0*GPSLatitude 31.23N"));
        j.extend(segment(0xFE, b"home"));
        j.extend(segment(0xDB, &[0; 65]));
        j.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn a_jpeg_loses_its_exif_and_comment_and_keeps_its_image() {
        let j = jpeg_with_exif();
        let (kind, kept) = accept(&j).unwrap();
        assert_eq!(kind, MediaType::Jpeg);
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(has(&j, b"Exif") && has(&j, b"GPS"));
        assert!(!has(&kept, b"Exif") && !has(&kept, b"GPS") && !has(&kept, b"home"));
        assert!(has(&kept, b"JFIF"));
        // Everything from the scan on is untouched.
        assert!(kept.ends_with(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9]));
        assert_eq!(
            j.len() - kept.len(),
            segment(0xE1, b"Exif\0\0MM\0*GPSLatitude 31.23N").len() + segment(0xFE, b"home").len()
        );
        // Stripping again changes nothing.
        assert_eq!(strip_jpeg(&kept).unwrap(), kept);
    }

    #[test]
    fn a_truncated_jpeg_is_not_an_image() {
        let j = jpeg_with_exif();
        assert_eq!(accept(&j[..20]).unwrap_err().code, Code::PhotoNotAnImage);
        assert!(strip_jpeg(&[0xFF, 0xD8, 0x00]).is_none());
    }

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0; 4]);
        c
    }

    #[test]
    fn a_png_loses_its_text_chunks() {
        let mut p = PNG_MAGIC.to_vec();
        p.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
        p.extend(chunk(b"tEXt", b"Comment\0taken at home"));
        p.extend(chunk(b"IDAT", &[1, 2, 3]));
        p.extend(chunk(b"IEND", &[]));
        let (kind, kept) = accept(&p).unwrap();
        assert_eq!(kind, MediaType::Png);
        assert_eq!(kept.len(), p.len() - (12 + 21));
        assert!(!kept.windows(4).any(|w| w == b"home"));
        // Without its end chunk it does not parse.
        assert!(accept(&p[..p.len() - 12]).is_err());
    }

    #[test]
    fn webp_is_recognised_and_kept() {
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&12u32.to_le_bytes());
        w.extend_from_slice(b"WEBPVP8 \0\0\0\0");
        assert_eq!(accept(&w).unwrap(), (MediaType::Webp, w.clone()));
    }

    #[test]
    fn text_and_large_files_are_refused_by_code() {
        let e = accept(b"GIF89a not accepted").unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::PhotoNotAnImage, Some("photo"))
        );
        assert_eq!(accept(b"").unwrap_err().code, Code::PhotoNotAnImage);
        let big = vec![0xFF; MAX_PHOTO_BYTES + 1];
        let e = accept(&big).unwrap_err();
        assert_eq!(e.code, Code::PhotoTooLarge);
        let args: Vec<(&str, &str)> = e.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(args, [("size", "2049"), ("max", "2048")]);
        assert_eq!(MediaType::parse("image/png"), Some(MediaType::Png));
        assert_eq!(MediaType::parse("image/gif"), None);
    }
}
