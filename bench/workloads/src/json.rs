//! A JSON workload: generate a document of records, then parse it with a validating
//! recursive-descent parser that folds every value into a checksum (branchy byte processing,
//! as a policy engine parsing its input would do).

/// A cursor that writes into a fixed buffer.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

/// Writes a JSON array of up to `records` records into `buf` (fewer if it is full) and
/// returns its length.
pub fn json_generate(buf: &mut [u8], records: u32) -> usize {
    const RECORD_MAX: usize = 256;
    let mut out = Out { buf, len: 0 };
    let mut x: u32 = 42;
    let mut next = || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        u64::from(x >> 8)
    };
    out.put(b"[");
    for i in 0..records {
        if out.buf.len() - out.len < RECORD_MAX {
            break;
        }
        if i > 0 {
            out.put(b",\n");
        }
        out.put(b"{\"id\": ");
        out.num(u64::from(i));
        out.put(b", \"name\": \"user");
        out.num(next() % 100_000);
        out.put(b"\", \"score\": ");
        out.num(next() % 1000);
        out.put(b".");
        out.num(next() % 100);
        out.put(b", \"active\": ");
        out.put(if next() % 2 == 0 { b"true" } else { b"false" });
        out.put(b", \"tags\": [\"a\", \"bb\\n\", \"ccc\"], \"pos\": {\"x\": -");
        out.num(next() % 500);
        out.put(b", \"y\": ");
        out.num(next() % 50);
        out.put(b".5e2}, \"note\": null}");
    }
    out.put(b"]");
    out.len
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    sum: i64,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.s.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string; adds its length in bytes (escapes count one) to the sum.
    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let mut len = 0;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.s.get(self.i + 1..self.i + 5)?;
                            hex.iter().all(u8::is_ascii_hexdigit).then_some(())?;
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
            len += 1;
        }
        self.i += 1;
        self.sum += len;
        Some(())
    }

    fn digits(&mut self) -> Option<(i64, i64)> {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
            self.i += 1;
        }
        let n = (self.i - start) as i64;
        (n > 0).then_some((v, n))
    }

    /// A number; adds its value, truncated towards zero, to the sum (integer arithmetic only).
    fn number(&mut self) -> Option<()> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let (mut mantissa, _) = self.digits()?;
        let mut exponent: i64 = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let (frac, n) = self.digits()?;
            for _ in 0..n {
                mantissa = mantissa.saturating_mul(10);
            }
            mantissa = mantissa.saturating_add(frac);
            exponent -= n;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let sign = match self.peek() {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            if sign != 0 {
                self.i += 1;
            }
            let (e, _) = self.digits()?;
            exponent += if sign < 0 { -e } else { e };
        }
        let mut v = mantissa;
        for _ in 0..exponent.clamp(-19, 19).abs() {
            v = if exponent > 0 {
                v.saturating_mul(10)
            } else {
                v / 10
            };
        }
        self.sum = self.sum.wrapping_add(if negative { -v } else { v });
        Some(())
    }

    fn value(&mut self, depth: u32) -> Option<()> {
        if depth > 64 {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.eat(b':')?;
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => break,
                        _ => return None,
                    }
                }
                self.i += 1;
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => break,
                        _ => return None,
                    }
                }
                self.i += 1;
            }
            b'"' => self.string()?,
            b't' => {
                self.literal(b"true")?;
                self.sum += 1;
            }
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        Some(())
    }
}

/// Parses `text` as one JSON value and returns its checksum: numbers truncated to integers,
/// 1 for each `true`, and the length of every string (keys too). `None` if it is not JSON.
pub fn json_sum(text: &[u8]) -> Option<i64> {
    let mut p = Parser {
        s: text,
        i: 0,
        sum: 0,
    };
    p.value(0)?;
    p.ws();
    (p.i == text.len()).then_some(p.sum)
}
