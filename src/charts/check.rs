//! Structural checks of rendered charts, for tests here and in the report: is an SVG well-formed
//! XML with the expected text, and what size is a PNG. Deliberately small (no XML crate): the
//! SVG backend writes a simple subset (elements, quoted attributes, text, entities).

/// What a well-formed SVG contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvgSummary {
    /// The root element's width and height attributes.
    pub size: (u32, u32),
    /// Every text node, unescaped and trimmed, in document order.
    pub texts: Vec<String>,
    /// The number of elements.
    pub elements: usize,
}

impl SvgSummary {
    /// Whether some text node equals `text` exactly.
    pub fn has_text(&self, text: &str) -> bool {
        self.texts.iter().any(|t| t == text)
    }

    /// Whether some text node contains `part`.
    pub fn has_text_containing(&self, part: &str) -> bool {
        self.texts.iter().any(|t| t.contains(part))
    }
}

/// Unescape the five XML entities and numeric character references.
fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| format!("bare '&' in text near {:?}", truncate(rest)))?;
        let entity = &after[..end];
        let ch = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad character reference &{e};"))?,
            e if e.starts_with('#') => e[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad character reference &{e};"))?,
            e => return Err(format!("unknown entity &{e};")),
        };
        out.push(ch);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Check that attributes are `name="value"` pairs with well-formed values; returns them.
fn attributes(tag: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = tag.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without value in <{}>", truncate(tag)))?;
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name {name:?}"));
        }
        let after = rest[eq + 1..].trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("unquoted attribute {name}"))?;
        let close = after[1..]
            .find(quote)
            .ok_or_else(|| format!("unterminated attribute {name}"))?;
        let value = &after[1..1 + close];
        if value.contains('<') {
            return Err(format!("'<' in attribute {name}"));
        }
        out.push((name.to_string(), unescape(value)?));
        rest = after[close + 2..].trim_start();
    }
    Ok(out)
}

/// Check that `svg` is a well-formed XML document with an `<svg>` root, and collect its text.
///
/// # Errors
/// A message naming the first problem (unbalanced tags, a bare `&` or `<`, a missing root).
///
/// # Examples
/// ```
/// use healthgap::charts::check::check_svg;
/// let s = check_svg(r#"<svg width="10" height="5"><text x="1">A &amp; B</text></svg>"#)?;
/// assert_eq!(s.size, (10, 5));
/// assert!(s.has_text("A & B"));
/// assert!(check_svg("<svg><g></svg>").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn check_svg(svg: &str) -> Result<SvgSummary, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut texts = Vec::new();
    let mut elements = 0;
    let mut size = None;
    let mut rest = svg;
    let mut closed_root = false;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            let tail = rest.trim();
            if !tail.is_empty() {
                return Err(format!("text after the root element: {:?}", truncate(tail)));
            }
            break;
        };
        let text = &rest[..open];
        if text.contains('>') {
            return Err(format!("stray '>' in text {:?}", truncate(text)));
        }
        let text = unescape(text)?;
        if !text.trim().is_empty() {
            if stack.is_empty() {
                return Err(format!(
                    "text outside the root element: {:?}",
                    truncate(&text)
                ));
            }
            texts.push(text.trim().to_string());
        }
        rest = &rest[open..];
        if let Some(body) = rest.strip_prefix("<?") {
            let end = body
                .find("?>")
                .ok_or("unterminated processing instruction")?;
            rest = &body[end + 2..];
            continue;
        }
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").ok_or("unterminated comment")?;
            rest = &body[end + 3..];
            continue;
        }
        let close = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => return Err(format!("</{name}> closes <{open}>")),
                None => return Err(format!("</{name}> without an open element")),
            }
            if stack.is_empty() {
                closed_root = true;
            }
            continue;
        }
        if closed_root {
            return Err("a second root element".into());
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attrs) = match tag.find(char::is_whitespace) {
            Some(i) => (&tag[..i], &tag[i..]),
            None => (tag, ""),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
        {
            return Err(format!("bad element name {name:?}"));
        }
        let attrs = attributes(attrs)?;
        elements += 1;
        if stack.is_empty() {
            if name != "svg" {
                return Err(format!("the root element is <{name}>, not <svg>"));
            }
            let dim = |key: &str| {
                attrs
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| v.trim_end_matches("px").parse::<u32>().ok())
            };
            size = dim("width").zip(dim("height"));
        }
        if self_closing {
            if stack.is_empty() {
                closed_root = true;
            }
        } else {
            stack.push(name.to_string());
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{open}> is never closed"));
    }
    let size = size.ok_or("no <svg> root with a width and height")?;
    Ok(SvgSummary {
        size,
        texts,
        elements,
    })
}

/// The width and height of a PNG from its header, or `None` if `bytes` is not a PNG.
///
/// # Examples
/// ```
/// use healthgap::charts::check::png_size;
/// assert_eq!(png_size(b"not a png"), None);
/// ```
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if bytes.get(..8)? != SIGNATURE || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    };
    Some((word(16)?, word(20)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_svg_rejects_bare_ampersand() {
        let error =
            check_svg(r#"<svg width="1" height="1"><text>A & B</text></svg>"#).expect_err("bare &");
        assert!(error.contains("bare '&'"));
    }

    #[test]
    fn check_svg_rejects_unclosed_and_crossed_tags() {
        assert!(check_svg(r#"<svg width="1" height="1"><g>"#).is_err());
        assert!(check_svg(r#"<svg width="1" height="1"><g><text></g></text></svg>"#).is_err());
        assert!(check_svg(r#"<svg width="1" height="1" x=1></svg>"#).is_err());
        assert!(check_svg(r#"<g></g>"#).is_err());
    }

    #[test]
    fn check_svg_reads_declaration_size_and_text() {
        let s = check_svg(
            "<?xml version=\"1.0\"?>\n<svg width=\"900\" height=\"560\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect x=\"0\" y=\"0\"/>\n<text>1 &lt; 2</text>\n</svg>\n",
        )
        .expect("well-formed");
        assert_eq!(s.size, (900, 560));
        assert_eq!(s.texts, vec!["1 < 2".to_string()]);
        assert_eq!(s.elements, 3);
    }

    #[test]
    fn png_size_reads_header() {
        let mut header = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        header.extend_from_slice(b"IHDR");
        header.extend_from_slice(&1800u32.to_be_bytes());
        header.extend_from_slice(&1120u32.to_be_bytes());
        assert_eq!(png_size(&header), Some((1800, 1120)));
        assert_eq!(png_size(&header[..20]), None);
    }
}
