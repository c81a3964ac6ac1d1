//! Normalisation of an answer (lower case, straight punctuation, no markdown emphasis) and
//! the mask of what lies inside quotes or code.

/// Lower-cases the answer and straightens its punctuation, one output character per kept
/// input character; returns the text and each output character's original index.
pub(super) fn normalize(original: &str) -> (String, Vec<usize>) {
    let mut norm = String::with_capacity(original.len());
    let mut to_original = Vec::with_capacity(original.len());
    let mut at_line_start = true;
    let mut chars = original.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        let mapped = match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{02BC}' | '\u{2032}' => {
                Some('\'')
            }
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => Some('"'),
            '\u{FF0C}' | '\u{3001}' => Some(','),
            '\u{3002}' | '\u{FF0E}' | '\u{2026}' => Some('.'),
            '\u{FF01}' => Some('!'),
            '\u{FF1F}' => Some('?'),
            '\u{FF1A}' => Some(':'),
            '\u{FF1B}' => Some(';'),
            '\n' => Some('\n'),
            '*' if at_line_start && chars.peek().is_some_and(|&(_, n)| n == ' ') => Some('-'),
            '*' | '_' => None,
            c if c.is_whitespace() => Some(' '),
            c if c.is_ascii() => Some(c.to_ascii_lowercase()),
            c => Some(c.to_lowercase().next().unwrap_or(c)),
        };
        let Some(m) = mapped else { continue };
        if m == ' ' && norm.ends_with(' ') {
            continue;
        }
        if m == '\n' {
            at_line_start = true;
        } else if m != ' ' {
            at_line_start = false;
        }
        norm.push(m);
        to_original.push(i);
    }
    (norm, to_original)
}

/// Marks characters inside quotes, inline code or fenced code blocks. Quote state resets
/// at each line break (a stray quote cannot hide the rest of the answer); a single pair of
/// double quotes around the whole answer does not count.
pub(super) fn quote_mask(chars: &[char]) -> Vec<bool> {
    let n = chars.len();
    let mut mask = vec![false; n];
    let first = chars.iter().position(|c| !c.is_whitespace());
    let last = chars.iter().rposition(|c| !c.is_whitespace());
    let mut enclosing = (usize::MAX, usize::MAX);
    if let (Some(f), Some(l)) = (first, last) {
        let pair = matches!((chars[f], chars[l]), ('"', '"') | ('«', '»'));
        if f < l
            && pair
            && chars
                .iter()
                .filter(|&&c| c == chars[f] || c == chars[l])
                .count()
                == 2
        {
            enclosing = (f, l);
        }
    }
    let (mut fence, mut tick, mut double, mut single) = (false, false, false, false);
    let (mut angle, mut corner) = (0usize, 0usize);
    let mut line_start = true;
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c == '\n' {
            (tick, double, single, angle, corner) = (false, false, false, 0, 0);
            mask[i] = fence;
            line_start = true;
            i += 1;
            continue;
        }
        if line_start && c == '`' && chars[i..].starts_with(&['`', '`', '`']) {
            fence = !fence;
            while i < n && chars[i] != '\n' {
                mask[i] = true;
                i += 1;
            }
            continue;
        }
        if !c.is_whitespace() {
            line_start = false;
        }
        if fence {
            mask[i] = true;
            i += 1;
            continue;
        }
        let was_quoted = tick || double || single || angle > 0 || corner > 0;
        match c {
            '`' => tick = !tick,
            '"' if i != enclosing.0 && i != enclosing.1 => double = !double,
            '«' if i != enclosing.0 => angle += 1,
            '»' if i != enclosing.1 => angle = angle.saturating_sub(1),
            '「' | '『' => corner += 1,
            '」' | '』' => corner = corner.saturating_sub(1),
            '\'' => {
                let prev = if i > 0 {
                    chars.get(i - 1).copied()
                } else {
                    None
                };
                let next = chars.get(i + 1).copied();
                let prev_word = prev.is_some_and(char::is_alphanumeric);
                let next_word = next.is_some_and(char::is_alphanumeric);
                if !single && !prev_word && next_word {
                    single = true;
                } else if single && !next_word && prev.is_some_and(|p| !p.is_whitespace()) {
                    single = false;
                }
            }
            _ => {}
        }
        mask[i] = was_quoted || tick || double || single || angle > 0 || corner > 0;
        i += 1;
    }
    mask
}
