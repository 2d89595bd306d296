//! Code 128, subset B (ISO/IEC 15417): a UIC as bars a scanner reads and types, drawn as an
//! inline SVG for the client's printed card. Printable ASCII only (a UIC is capitals, digits and
//! `-`); start B, the data, the modulo-103 check symbol, the stop pattern, and quiet zones of
//! ten modules.

use std::fmt::Write;

/// Each symbol's six element widths in modules (bar, space, bar, space, bar, space), by value;
/// the stop pattern (106) has seven. From the standard's table.
pub const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];

/// The value of the start symbol of subset B.
pub const START_B: usize = 104;
/// The value of the stop symbol.
pub const STOP: usize = 106;
/// Modules of white on each side.
pub const QUIET: usize = 10;

/// The symbol values of `text` in subset B, with start, check and stop; `None` when a
/// character is outside printable ASCII.
pub fn symbols(text: &str) -> Option<Vec<usize>> {
    let mut out = vec![START_B];
    for c in text.chars() {
        let code = u32::from(c);
        if !(32..=126).contains(&code) {
            return None;
        }
        out.push(code as usize - 32);
    }
    let check = out
        .iter()
        .enumerate()
        .map(|(i, v)| i.max(1) * v)
        .sum::<usize>()
        % 103;
    out.push(check);
    out.push(STOP);
    Some(out)
}

/// The widths in modules of the elements, bar first, alternating bar and space.
pub fn widths(text: &str) -> Option<Vec<u8>> {
    Some(
        symbols(text)?
            .into_iter()
            .flat_map(|s| PATTERNS[s].bytes().map(|b| b - b'0'))
            .collect(),
    )
}

/// The barcode as an SVG element, `module` pixels per module and `height` pixels tall, each
/// bar a `rect` (with the quiet zones); `None` for text outside printable ASCII.
pub fn svg(text: &str, module: u32, height: u32) -> Option<String> {
    let widths = widths(text)?;
    let total: u32 = widths.iter().map(|w| u32::from(*w)).sum::<u32>() + 2 * QUIET as u32;
    let width = total * module;
    // The label is the text itself, escaped.
    let label = maud::html! { (text) }.into_string();
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="barcode" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{label}" data-modules="{total}" data-module="{module}"><rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>"##
    );
    let mut x = QUIET as u32 * module;
    for (i, w) in widths.iter().enumerate() {
        let w = u32::from(*w) * module;
        if i % 2 == 0 {
            let _ = write!(
                out,
                r##"<rect class="bar" x="{x}" y="0" width="{w}" height="{height}" fill="#000"/>"##
            );
        }
        x += w;
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_standards_shape() {
        let mut seen = std::collections::HashSet::new();
        for (v, p) in PATTERNS.iter().enumerate() {
            let w: Vec<u32> = p.bytes().map(|b| u32::from(b - b'0')).collect();
            let modules: u32 = w.iter().sum();
            assert_eq!(modules, if v == STOP { 13 } else { 11 }, "symbol {v}");
            // Bars take an even number of modules, spaces an odd one (the parity check).
            let bars: u32 = w.iter().step_by(2).sum();
            assert_eq!(bars % 2, 0, "symbol {v}");
            assert!(w.iter().all(|x| (1..=4).contains(x)));
            assert!(seen.insert(*p), "symbol {v} repeated");
        }
    }

    #[test]
    fn a_uic_encodes_with_its_check_symbol() {
        // "YX-0001-AB": Y=57 X=56 -=13 0=16 1=17 A=33 B=34.
        let s = symbols("YX-0001-AB").unwrap();
        assert_eq!(s[0], START_B);
        assert_eq!(&s[1..11], &[57, 56, 13, 16, 16, 16, 17, 13, 33, 34]);
        let sum = 104
            + 57
            + 2 * 56
            + 3 * 13
            + 4 * 16
            + 5 * 16
            + 6 * 16
            + 7 * 17
            + 8 * 13
            + 9 * 33
            + 10 * 34;
        assert_eq!(s[11], sum % 103);
        assert_eq!(s[12], STOP);
        // The standard's own example: "Wikipedia" has the check symbol 88 (3281 mod 103).
        assert_eq!(symbols("Wikipedia").unwrap()[10], 88);
        assert!(symbols("李").is_none());
        let svg = svg("A<B", 2, 60).unwrap();
        assert!(svg.contains(r#"aria-label="A&lt;B""#) && !svg.contains("A<B"));
    }
}
