//! The streaming matcher behind `sub_filter`: several search strings at
//! once, ASCII case-insensitive, across buffer boundaries.
//!
//! [`Patterns`] is compiled once per `sub_filter` level (or per response
//! when a search string has variables). [`Scan`] is one response's state:
//! the bytes of a possible partial match carried over from the previous
//! buffer (at most the longest search string minus one byte) and, with
//! `sub_filter_once on`, which strings were already replaced. [`Output`]
//! collects what goes on: runs of unchanged input as slices of the input
//! `Bytes` (no copy), small pieces and replacements coalesced into one
//! buffer so that dense replacements do not make long chains.
//!
//! Semantics (nginx's): the leftmost match wins; when several strings match
//! at the same place, the one written first in the configuration wins (not
//! the longest); after a match the search goes on after it (matches do not
//! overlap); with `once`, each string is replaced at most once.
//!
//! The search is Horspool's, over the window of the shortest string: the
//! byte at the window's end decides how far the window may jump, and only
//! strings with that byte at that place are compared.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Pieces shorter than this are copied into one buffer instead of being
/// sent as slices of their own: an iovec per tiny piece costs more than
/// the copy.
const COALESCE: usize = 512;

/// The most search strings one level may have (nginx's limit).
pub const MAX_PATTERNS: usize = 255;

/// Compiled search strings.
#[derive(Debug)]
pub struct Patterns {
    /// Lower-case, in configuration order.
    pats: Vec<Box<[u8]>>,
    min: usize,
    max: usize,
    /// How far the window may move when its last byte is this one.
    shift: [u8; 256],
    /// Pattern numbers sorted (stably) by their lower-case byte at `min - 1`.
    order: Vec<u8>,
    /// `order[index[c]..index[c + 1]]`: the strings with byte `c` there.
    index: [u16; 257],
}

/// What a search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// String `pat` matches at `start`.
    Match {
        start: usize,
        pat: usize,
    },
    /// A string may match at this start, but the data ends first.
    Partial(usize),
    None,
}

impl Patterns {
    /// Compiles search strings; `None` when there is none, one is empty, or
    /// there are more than [`MAX_PATTERNS`].
    pub fn new<P: AsRef<[u8]>>(list: &[P]) -> Option<Patterns> {
        if list.is_empty() || list.len() > MAX_PATTERNS || list.iter().any(|p| p.as_ref().is_empty()) {
            return None;
        }
        let pats: Vec<Box<[u8]>> = list.iter().map(|p| p.as_ref().to_ascii_lowercase().into()).collect();
        let min = pats.iter().map(|p| p.len()).min().unwrap_or(1);
        let max = pats.iter().map(|p| p.len()).max().unwrap_or(1);
        let reach = min.min(255);
        let mut shift = [reach as u8; 256];
        for p in &pats {
            for j in 0..reach {
                let c = p[min - 1 - j];
                for c in [c, c.to_ascii_uppercase()] {
                    shift[c as usize] = shift[c as usize].min(j as u8);
                }
            }
        }
        let mut order: Vec<u8> = (0..pats.len() as u8).collect();
        order.sort_by_key(|&i| pats[i as usize][min - 1]);
        let mut index = [0u16; 257];
        for (c, slot) in index.iter_mut().enumerate() {
            *slot = order.iter().take_while(|&&i| (pats[i as usize][min - 1] as usize) < c).count() as u16;
        }
        Some(Patterns { pats, min, max, shift, order, index })
    }

    /// Number of search strings.
    pub fn len(&self) -> usize {
        self.pats.len()
    }

    /// Always false: a `Patterns` has at least one string.
    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    /// The longest search string's length.
    pub fn max_len(&self) -> usize {
        self.max
    }

    fn candidates(&self, c: u8) -> &[u8] {
        let c = c.to_ascii_lowercase() as usize;
        &self.order[self.index[c] as usize..self.index[c + 1] as usize]
    }

    /// Compares string `p` at `start`: `Some(true)` full match, `Some(false)`
    /// a prefix that the end of `hay` cuts, `None` no match.
    fn compare(&self, p: usize, hay: &[u8], start: usize) -> Option<bool> {
        let pat = &self.pats[p];
        let n = (hay.len() - start).min(pat.len());
        hay[start..start + n].eq_ignore_ascii_case(&pat[..n]).then_some(n == pat.len())
    }

    /// The first match or partial match starting in `starts`, skipping the
    /// strings `used` marks.
    fn find(&self, hay: &[u8], starts: Range<usize>, used: &[bool]) -> Found {
        let min = self.min;
        let mut s = starts.start;
        while s < starts.end && s + min <= hay.len() {
            let c = hay[s + min - 1];
            let jump = self.shift[c as usize];
            if jump > 0 {
                s += jump as usize;
                continue;
            }
            for &p in self.candidates(c) {
                let p = p as usize;
                if used[p] {
                    continue;
                }
                match self.compare(p, hay, s) {
                    Some(true) => return Found::Match { start: s, pat: p },
                    // An earlier string might still match here: wait.
                    Some(false) => return Found::Partial(s),
                    None => {}
                }
            }
            s += 1;
        }
        // Starts too close to the end for even the shortest string: only
        // partial matches are possible there.
        while s < starts.end && s < hay.len() {
            if (0..self.pats.len()).any(|p| !used[p] && self.compare(p, hay, s).is_some()) {
                return Found::Partial(s);
            }
            s += 1;
        }
        Found::None
    }
}

/// What goes on downstream: bufs of output, small pieces coalesced.
#[derive(Debug, Default)]
pub struct Output {
    done: Vec<Bytes>,
    small: BytesMut,
}

impl Output {
    /// An empty output.
    pub fn new() -> Output {
        Output::default()
    }

    /// Appends shared bytes: large ones as they are (no copy).
    pub fn push(&mut self, b: Bytes) {
        if b.len() < COALESCE {
            self.copy(&b);
            return;
        }
        self.seal();
        self.done.push(b);
    }

    /// Appends bytes by copying them.
    pub fn copy(&mut self, b: &[u8]) {
        if !b.is_empty() {
            if self.small.capacity() - self.small.len() < b.len() {
                self.small.reserve(b.len().max(4 * COALESCE));
            }
            self.small.extend_from_slice(b);
        }
    }

    fn seal(&mut self) {
        if !self.small.is_empty() {
            self.done.push(self.small.split().freeze());
        }
    }

    /// Takes what was collected, in order.
    pub fn take(&mut self) -> Vec<Bytes> {
        self.seal();
        std::mem::take(&mut self.done)
    }

    /// Bytes collected and not yet taken.
    pub fn len(&self) -> usize {
        self.done.iter().map(Bytes::len).sum::<usize>() + self.small.len()
    }

    /// True when nothing is collected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One response's matching state.
#[derive(Debug)]
pub struct Scan {
    /// The start of a possible match cut by the end of the last buffer.
    held: Vec<u8>,
    /// With `once`: the strings already replaced.
    used: Vec<bool>,
    once: bool,
    left: usize,
}

impl Scan {
    /// A fresh state for `pats`; `once` replaces each string at most once.
    pub fn new(pats: &Patterns, once: bool) -> Scan {
        Scan { held: Vec::new(), used: vec![false; pats.len()], once, left: pats.len() }
    }

    /// True when, with `once`, every string was replaced: the rest of the
    /// body passes unchanged.
    pub fn exhausted(&self) -> bool {
        self.left == 0
    }

    /// Bytes held back as a possible partial match.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn replaced(&mut self, pat: usize) {
        if self.once && !self.used[pat] {
            self.used[pat] = true;
            self.left -= 1;
        }
    }

    /// Scans the next piece of the body. `replace(i)` gives string `i`'s
    /// replacement.
    pub fn feed(&mut self, pats: &Patterns, data: Bytes, replace: &mut dyn FnMut(usize) -> Bytes, out: &mut Output) {
        let mut pos = self.resolve_held(pats, &data, replace, out);
        loop {
            if self.exhausted() {
                out.push(data.slice(pos..));
                return;
            }
            match pats.find(&data, pos..data.len(), &self.used) {
                Found::None => {
                    out.push(data.slice(pos..));
                    return;
                }
                Found::Partial(s) => {
                    out.push(data.slice(pos..s));
                    self.held.extend_from_slice(&data[s..]);
                    return;
                }
                Found::Match { start, pat } => {
                    out.push(data.slice(pos..start));
                    out.push(replace(pat));
                    self.replaced(pat);
                    pos = start + pats.pats[pat].len();
                }
            }
        }
    }

    /// Settles the held bytes with the start of `data`: emits what cannot
    /// begin a match, and returns how much of `data` a match that began in
    /// the held bytes consumed (`data.len()` when all of it is held now).
    fn resolve_held(
        &mut self,
        pats: &Patterns,
        data: &Bytes,
        replace: &mut dyn FnMut(usize) -> Bytes,
        out: &mut Output,
    ) -> usize {
        while !self.held.is_empty() {
            if self.exhausted() {
                out.copy(&std::mem::take(&mut self.held));
                return 0;
            }
            // A match starting in the held bytes ends within max - 1 bytes
            // of data: that much of it decides.
            let k = self.held.len();
            let mut tmp = std::mem::take(&mut self.held);
            tmp.extend_from_slice(&data[..data.len().min(pats.max - 1)]);
            match pats.find(&tmp, 0..k, &self.used) {
                Found::None => out.copy(&tmp[..k]),
                Found::Partial(s) => {
                    // Only when data ran out inside the window: all of it is in tmp.
                    out.copy(&tmp[..s]);
                    tmp.drain(..s);
                    self.held = tmp;
                    return data.len();
                }
                Found::Match { start, pat } => {
                    out.copy(&tmp[..start]);
                    out.push(replace(pat));
                    self.replaced(pat);
                    let end = start + pats.pats[pat].len();
                    if end > k {
                        return end - k;
                    }
                    tmp.truncate(k);
                    tmp.drain(..end);
                    self.held = tmp;
                }
            }
        }
        0
    }

    /// The body ended: the held bytes were no match after all.
    pub fn finish(&mut self, out: &mut Output) {
        out.copy(&std::mem::take(&mut self.held));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replaces with `[N]`, N the string's number.
    fn tag(i: usize) -> Bytes {
        Bytes::from(format!("[{i}]"))
    }

    /// Runs `input` split at `cuts` through a scan; the output as text and
    /// the most bytes held at any time.
    fn run(pats: &[&str], once: bool, input: &str, cuts: &[usize]) -> (String, usize) {
        let p = Patterns::new(pats).unwrap();
        let mut scan = Scan::new(&p, once);
        let mut out = Output::new();
        let data = Bytes::copy_from_slice(input.as_bytes());
        let mut at = 0;
        let mut most = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            scan.feed(&p, data.slice(at..cut), &mut tag, &mut out);
            most = most.max(scan.held());
            at = cut;
        }
        scan.finish(&mut out);
        let text: Vec<u8> = out.take().concat();
        (String::from_utf8(text).unwrap(), most)
    }

    /// The same output for every way of cutting `input` into 1, 2 and 3
    /// pieces; the held bytes never exceed the longest string minus one.
    fn all_splits(pats: &[&str], once: bool, input: &str) -> String {
        let (whole, _) = run(pats, once, input, &[]);
        let limit = pats.iter().map(|p| p.len()).max().unwrap() - 1;
        let n = input.len();
        for i in 0..=n {
            for j in i..=n {
                let (got, most) = run(pats, once, input, &[i, j]);
                assert_eq!(got, whole, "cuts at {i} and {j} of {input:?}");
                assert!(most <= limit, "held {most} > {limit}");
            }
        }
        let ones: Vec<usize> = (1..n).collect();
        assert_eq!(run(pats, once, input, &ones).0, whole, "one byte at a time");
        whole
    }

    #[test]
    fn single_string_case_insensitive() {
        assert_eq!(all_splits(&["foo"], false, "foo FOO fOo fo"), "[0] [0] [0] fo");
        assert_eq!(all_splits(&["FOO"], false, "xfoox"), "x[0]x");
        assert_eq!(all_splits(&["foo"], true, "foofoo"), "[0]foo");
    }

    #[test]
    fn nginx_complex_cases() {
        // From nginx's own tests of overlapping prefixes.
        assert_eq!(all_splits(&["abac"], true, "abaabac"), "aba[0]");
        assert_eq!(all_splits(&["abac"], true, "ababac"), "ab[0]");
        assert_eq!(all_splits(&["ababX"], true, "abababX"), "ab[0]");
        assert_eq!(all_splits(&["aab"], true, "aaaab"), "aa[0]");
        assert_eq!(all_splits(&["a"], false, "CAAC"), "C[0][0]C");
        assert_eq!(all_splits(&["a"], true, "CAAC"), "C[0]AC");
    }

    #[test]
    fn several_strings_leftmost_then_first_written() {
        assert_eq!(all_splits(&["aab", "yyz"], false, "xaabyyzaab"), "x[0][1][0]");
        assert_eq!(all_splits(&["aabb", "aaabb"], false, "aaabb aabb"), "[1] [0]");
        // Same start: the first written wins, even when a later one is longer.
        assert_eq!(all_splits(&["ab", "abcd"], false, "abcd"), "[0]cd");
        assert_eq!(all_splits(&["abcd", "ab"], false, "abcd abcx"), "[0] [1]cx");
        // As nginx: a partial match cut by the end of the body goes out as
        // it is, without trying the shorter strings inside it.
        assert_eq!(all_splits(&["abcd", "ab"], false, "abcd abc"), "[0] abc");
        // Leftmost wins over first written.
        assert_eq!(all_splits(&["cd", "bc"], false, "abcd"), "a[1]d");
        assert_eq!(all_splits(&["ab", "cd", "ef", "gh", "x"], false, "abcdefghx-x"), "[0][1][2][3][4]-[4]");
    }

    #[test]
    fn once_applies_per_string() {
        assert_eq!(all_splits(&["aab", "yyz"], true, "aabyyzaabyyz"), "[0][1]aabyyz");
        assert_eq!(all_splits(&["ab", "b"], true, "ab b b"), "[0] [1] b");
    }

    #[test]
    fn long_strings_across_three_pieces() {
        let long = "0123456789abcdef".repeat(17);
        let input = format!("--{long}--{}-", &long[..100]);
        let want = format!("--[0]--{}-", &long[..100]);
        let (got, _) = run(&[&long], false, &input, &[]);
        assert_eq!(got, want);
        for (i, j) in [(3, 100), (50, 200), (2, 274), (1, 2), (150, 151)] {
            let (got, most) = run(&[&long, "yz"], false, &input, &[i, j]);
            assert_eq!(got, want, "cuts {i} {j}");
            assert!(most < long.len());
        }
        assert_eq!(all_splits(&["abpattternyz", "abyz"], false, "xabpatabyzabpattternyzab"), "xabpat[1][0]ab");
    }

    #[test]
    fn non_ascii_bytes_match_exactly() {
        assert_eq!(all_splits(&["паттерн"], false, "x паттерн ПАТТЕРН"), "x [0] ПАТТЕРН");
    }

    #[test]
    fn untouched_runs_are_slices_of_the_input() {
        let p = Patterns::new(&["needle"]).unwrap();
        let mut scan = Scan::new(&p, false);
        let mut out = Output::new();
        let data = Bytes::from(format!("{}needle{}", "a".repeat(4000), "b".repeat(4000)));
        scan.feed(&p, data.clone(), &mut tag, &mut out);
        let bufs = out.take();
        assert_eq!(bufs.len(), 3);
        assert_eq!(bufs[0].as_ptr(), data.as_ptr(), "no copy of the run before the match");
        assert_eq!(bufs[2].as_ptr(), data[4006..].as_ptr());
        assert_eq!(&bufs[1][..], b"[0]");
    }

    #[test]
    fn rejects_what_nginx_rejects() {
        assert!(Patterns::new::<&str>(&[]).is_none());
        assert!(Patterns::new(&["a", ""]).is_none());
        let many: Vec<String> = (0..256).map(|i| format!("p{i}")).collect();
        assert!(Patterns::new(&many).is_none());
        assert_eq!(Patterns::new(&many[..255]).unwrap().len(), 255);
    }
}
