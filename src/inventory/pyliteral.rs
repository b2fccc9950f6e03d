//! Python's `ast.literal_eval`, as Ansible's INI plugin uses it for variable values.
//!
//! `True` → bool, `1` → int, `1.5` → float, `'x'` → str, `[..]`/`(..)` → list,
//! `{k: v}` → dict, `{a, b}`/`set()` → list, `b'x'` → unsafe string, `1+2j` →
//! the string `(1+2j)`, `...` → the string `...`. Anything that is not a Python
//! literal (`true`, `0644`, `foo bar`) stays the original string.

use super::pyvalue::{dict_insert, py_float_repr_short, PyVal};

/// What `literal_eval` made of a value.
#[derive(Debug)]
pub(crate) enum Literal {
    Value(PyVal),
    /// Python raised SyntaxError or ValueError: Ansible keeps the raw string.
    Raw,
    /// Python raised TypeError (an unhashable dict key or set member): Ansible fails.
    TypeError(String),
}

/// Ansible's `_parse_value`: the literal, or the raw string when it is not one.
pub(crate) fn parse_value(raw: &str) -> Result<PyVal, String> {
    match literal_eval(raw) {
        Literal::Value(v) => Ok(v),
        Literal::Raw => Ok(PyVal::Str(raw.to_string())),
        Literal::TypeError(e) => Err(e),
    }
}

pub(crate) fn literal_eval(src: &str) -> Literal {
    let src = src.trim_start_matches([' ', '\t']);
    let tokens = match tokenize(src) {
        Some(t) => t,
        None => return Literal::Raw,
    };
    let mut p = Parser {
        toks: tokens,
        pos: 0,
    };
    let expr = match p.parse_top() {
        Some(e) => e,
        None => return Literal::Raw,
    };
    if p.pos != p.toks.len() {
        return Literal::Raw;
    }
    match convert(&expr) {
        Ok(v) => Literal::Value(v),
        Err(ConvErr::Malformed) => Literal::Raw,
        Err(ConvErr::Unhashable(t)) => Literal::TypeError(format!("unhashable type: '{t}'")),
    }
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Imag(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// f-strings are not literals.
    FStr,
    Name(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "**=", "//=", ">>=", "<<=", "...", "->", ":=", "**", "//", "<<", ">>", "<=", ">=", "==", "!=",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", "(", ")", "[", "]", "{", "}", ",", ":",
    ";", ".", "+", "-", "*", "/", "%", "&", "|", "^", "~", "<", ">", "=", "@",
];

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' || c == '\x0c' {
            i += 1;
            continue;
        }
        if c == '\n' || c == '\r' {
            if depth == 0 {
                // A second logical line: only blank lines and comments may follow.
                let rest: String = chars[i..].iter().collect();
                if rest
                    .lines()
                    .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                {
                    break;
                }
                return None;
            }
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            continue;
        }
        if c == '\\' {
            // Line continuation needs a newline right after it.
            if i + 1 < chars.len() && (chars[i + 1] == '\n' || chars[i + 1] == '\r') {
                i += 2;
                continue;
            }
            return None;
        }
        if c.is_ascii_digit() || (c == '.' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit())
        {
            let (tok, next) = scan_number(&chars, i)?;
            out.push(tok);
            i = next;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
                let lower = word.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf"
                ) {
                    let (tok, next) = scan_string(&chars, i, &lower)?;
                    out.push(tok);
                    i = next;
                    continue;
                }
            }
            out.push(Tok::Name(word));
            continue;
        }
        if c == '\'' || c == '"' {
            let (tok, next) = scan_string(&chars, i, "")?;
            out.push(tok);
            i = next;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
        let op = OPS.iter().find(|op| rest.starts_with(**op))?;
        match *op {
            "(" | "[" | "{" => {
                depth += 1;
                // Python's tokenizer: "too many nested parentheses" (a SyntaxError).
                if depth >= 200 {
                    return None;
                }
            }
            ")" | "]" | "}" => depth = depth.checked_sub(1)?,
            _ => {}
        }
        out.push(Tok::Op(op));
        i += op.chars().count();
    }
    if depth != 0 {
        return None;
    }
    Some(out)
}

/// digitpart: digit (["_"] digit)*
fn scan_digits(chars: &[char], mut i: usize, ok: impl Fn(char) -> bool) -> Option<(String, usize)> {
    let mut s = String::new();
    if i >= chars.len() || !ok(chars[i]) {
        return None;
    }
    while i < chars.len() {
        if ok(chars[i]) {
            s.push(chars[i]);
            i += 1;
        } else if chars[i] == '_' && i + 1 < chars.len() && ok(chars[i + 1]) {
            i += 1;
        } else {
            break;
        }
    }
    Some((s, i))
}

fn scan_number(chars: &[char], start: usize) -> Option<(Tok, usize)> {
    let at = |i: usize| chars.get(i).copied();
    // 0x / 0o / 0b
    if at(start) == Some('0') {
        if let Some(p) = at(start + 1).map(|c| c.to_ascii_lowercase()) {
            let radix = match p {
                'x' => 16,
                'o' => 8,
                'b' => 2,
                _ => 0,
            };
            if radix != 0 {
                let mut i = start + 2;
                if at(i) == Some('_') {
                    i += 1;
                }
                let (digits, next) = scan_digits(chars, i, |c| c.is_digit(radix))?;
                if at(next).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    return None;
                }
                let v = i128::from_str_radix(&digits, radix).ok()?;
                return Some((Tok::Int(v), next));
            }
        }
    }
    let mut i = start;
    let mut text = String::new();
    let mut is_float = false;
    let mut int_part = String::new();
    if at(i) != Some('.') {
        let (d, next) = scan_digits(chars, i, |c| c.is_ascii_digit())?;
        int_part = d.clone();
        text.push_str(&d);
        i = next;
    }
    if at(i) == Some('.') {
        is_float = true;
        text.push('.');
        i += 1;
        if at(i).is_some_and(|c| c.is_ascii_digit()) {
            let (d, next) = scan_digits(chars, i, |c| c.is_ascii_digit())?;
            text.push_str(&d);
            i = next;
        }
    }
    if at(i).is_some_and(|c| c == 'e' || c == 'E') {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if let Some(s @ ('+' | '-')) = at(j) {
            exp.push(s);
            j += 1;
        }
        if let Some((d, next)) = scan_digits(chars, j, |c| c.is_ascii_digit()) {
            exp.push_str(&d);
            text.push_str(&exp);
            is_float = true;
            i = next;
        } else {
            return None;
        }
    }
    let imag = at(i).is_some_and(|c| c == 'j' || c == 'J');
    if imag {
        i += 1;
    }
    if at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let mut ftext = text.clone();
    if ftext.starts_with('.') {
        ftext.insert(0, '0');
    }
    if ftext.ends_with('.') {
        ftext.push('0');
    }
    let ftext = ftext.replace(".e", ".0e");
    if imag {
        return Some((Tok::Imag(ftext.parse().ok()?), i));
    }
    if is_float {
        return Some((Tok::Float(ftext.parse().ok()?), i));
    }
    // "leading zeros in decimal integer literals are not permitted"
    if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
        return None;
    }
    match int_part.parse::<i128>() {
        Ok(v) => Some((Tok::Int(v), i)),
        Err(_) => Some((Tok::Float(int_part.parse().ok()?), i)),
    }
}

fn scan_string(chars: &[char], start: usize, prefix: &str) -> Option<(Tok, usize)> {
    let raw = prefix.contains('r');
    let bytes = prefix.contains('b');
    let fstr = prefix.contains('f');
    let q = chars[start];
    let triple = chars.get(start + 1) == Some(&q) && chars.get(start + 2) == Some(&q);
    let mut i = if triple { start + 3 } else { start + 1 };
    let mut body: Vec<char> = Vec::new();
    loop {
        let c = *chars.get(i)?;
        if triple {
            if c == q && chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q) {
                i += 3;
                break;
            }
        } else if c == q {
            i += 1;
            break;
        } else if c == '\n' || c == '\r' {
            return None;
        }
        if c == '\\' {
            let n = *chars.get(i + 1)?;
            body.push(c);
            body.push(n);
            i += 2;
            continue;
        }
        body.push(c);
        i += 1;
    }
    if fstr {
        return Some((Tok::FStr, i));
    }
    if bytes {
        if body.iter().any(|c| !c.is_ascii()) {
            return None;
        }
        let v = if raw {
            body.iter().map(|c| *c as u8).collect()
        } else {
            unescape_bytes(&body)?
        };
        return Some((Tok::Bytes(v), i));
    }
    let s = if raw {
        body.iter().collect()
    } else {
        unescape_str(&body)?
    };
    Some((Tok::Str(s), i))
}

fn unescape_str(body: &[char]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let n = *body.get(i + 1)?;
        i += 2;
        match n {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut v = n.to_digit(8)?;
                let mut k = 0;
                while k < 2 && i < body.len() && body[i].is_digit(8) {
                    v = v * 8 + body[i].to_digit(8)?;
                    i += 1;
                    k += 1;
                }
                out.push(char::from_u32(v)?);
            }
            'x' | 'u' | 'U' => {
                let len = match n {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = body.get(i..i + len)?.iter().collect();
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                i += len;
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            // \N{NAME} needs the Unicode name table; not a literal we can evaluate.
            'N' => return None,
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

fn unescape_bytes(body: &[char]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != '\\' {
            out.push(c as u8);
            i += 1;
            continue;
        }
        let n = *body.get(i + 1)?;
        i += 2;
        match n {
            '\n' => {}
            '\\' => out.push(b'\\'),
            '\'' => out.push(b'\''),
            '"' => out.push(b'"'),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '0'..='7' => {
                let mut v = n.to_digit(8)?;
                let mut k = 0;
                while k < 2 && i < body.len() && body[i].is_digit(8) {
                    v = v * 8 + body[i].to_digit(8)?;
                    i += 1;
                    k += 1;
                }
                out.push(u8::try_from(v & 0xff).ok()?);
            }
            'x' => {
                let hex: String = body.get(i..i + 2)?.iter().collect();
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                i += 2;
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other as u8);
            }
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- syntax

#[derive(Debug)]
enum Expr {
    Const(Konst),
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
    Set(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    EmptySetCall,
    Unary(char, Box<Expr>),
    Bin(Box<Expr>, char, Box<Expr>),
    /// Valid Python, but not something `literal_eval` accepts.
    Other,
}

#[derive(Debug, Clone)]
enum Konst {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Imag(f64),
    Str(String),
    Bytes(Vec<u8>),
    Ellipsis,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Expression list at the top: `1, 2` is a tuple.
    fn parse_top(&mut self) -> Option<Expr> {
        self.peek()?;
        let first = self.parse_expr()?;
        if !self.is_op(",") {
            return Some(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if self.peek().is_none() {
                break;
            }
            items.push(self.parse_expr()?);
        }
        Some(Expr::Tuple(items))
    }

    /// Only `+`/`-` between terms and unary `+`/`-` matter to literal_eval; any
    /// other operator makes the input "not a literal" (a ValueError or a
    /// SyntaxError in Python, which Ansible treats the same way).
    fn parse_expr(&mut self) -> Option<Expr> {
        let mut left = self.parse_unary()?;
        loop {
            let op = if self.is_op("+") {
                '+'
            } else if self.is_op("-") {
                '-'
            } else {
                break;
            };
            self.pos += 1;
            let right = self.parse_unary()?;
            left = Expr::Bin(Box::new(left), op, Box::new(right));
        }
        Some(left)
    }

    /// Signs are collected without recursion: `--1` is valid Python but never a
    /// literal (literal_eval takes one sign on a number), and a long run of signs
    /// must not exhaust the stack.
    fn parse_unary(&mut self) -> Option<Expr> {
        let mut signs = Vec::new();
        loop {
            if self.eat("-") {
                signs.push('-');
            } else if self.eat("+") {
                signs.push('+');
            } else {
                break;
            }
        }
        let atom = self.parse_atom()?;
        Some(match signs.as_slice() {
            [] => atom,
            [one] => Expr::Unary(*one, Box::new(atom)),
            _ => Expr::Other,
        })
    }

    fn parse_atom(&mut self) -> Option<Expr> {
        let tok = self.peek()?.clone();
        self.pos += 1;
        let atom = match tok {
            Tok::Int(i) => Expr::Const(Konst::Int(i)),
            Tok::Float(f) => Expr::Const(Konst::Float(f)),
            Tok::Imag(f) => Expr::Const(Konst::Imag(f)),
            Tok::Str(_) | Tok::Bytes(_) | Tok::FStr => {
                // Adjacent string literals concatenate; bytes and str do not mix.
                let mut parts = vec![tok];
                while let Some(t @ (Tok::Str(_) | Tok::Bytes(_) | Tok::FStr)) = self.peek() {
                    parts.push(t.clone());
                    self.pos += 1;
                }
                let any_bytes = parts.iter().any(|t| matches!(t, Tok::Bytes(_)));
                let all_bytes = parts.iter().all(|t| matches!(t, Tok::Bytes(_)));
                if any_bytes && !all_bytes {
                    return None;
                }
                if parts.iter().any(|t| matches!(t, Tok::FStr)) {
                    Expr::Other
                } else if all_bytes {
                    let mut b = Vec::new();
                    for p in parts {
                        if let Tok::Bytes(x) = p {
                            b.extend(x);
                        }
                    }
                    Expr::Const(Konst::Bytes(b))
                } else {
                    let mut s = String::new();
                    for p in parts {
                        if let Tok::Str(x) = p {
                            s.push_str(&x);
                        }
                    }
                    Expr::Const(Konst::Str(s))
                }
            }
            Tok::Name(n) => match n.as_str() {
                "True" => Expr::Const(Konst::Bool(true)),
                "False" => Expr::Const(Konst::Bool(false)),
                "None" => Expr::Const(Konst::None),
                _ => {
                    if is_keyword(&n) {
                        return None;
                    }
                    if n == "set"
                        && self.is_op("(")
                        && matches!(self.toks.get(self.pos + 1), Some(Tok::Op(")")))
                    {
                        self.pos += 2;
                        Expr::EmptySetCall
                    } else {
                        Expr::Other
                    }
                }
            },
            Tok::Op("...") => Expr::Const(Konst::Ellipsis),
            Tok::Op("(") => {
                if self.eat(")") {
                    Expr::Tuple(vec![])
                } else {
                    let first = self.parse_expr()?;
                    if self.eat(")") {
                        first
                    } else {
                        let mut items = vec![first];
                        while self.eat(",") {
                            if self.is_op(")") {
                                break;
                            }
                            items.push(self.parse_expr()?);
                        }
                        if !self.eat(")") {
                            return None;
                        }
                        Expr::Tuple(items)
                    }
                }
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.is_op("]") {
                    items.push(self.parse_expr()?);
                    if !self.eat(",") {
                        break;
                    }
                }
                if !self.eat("]") {
                    return None;
                }
                Expr::List(items)
            }
            Tok::Op("{") => {
                if self.eat("}") {
                    Expr::Dict(vec![])
                } else {
                    let first = self.parse_expr()?;
                    if self.eat(":") {
                        let v = self.parse_expr()?;
                        let mut pairs = vec![(first, v)];
                        while self.eat(",") {
                            if self.is_op("}") {
                                break;
                            }
                            let k = self.parse_expr()?;
                            if !self.eat(":") {
                                return None;
                            }
                            pairs.push((k, self.parse_expr()?));
                        }
                        if !self.eat("}") {
                            return None;
                        }
                        Expr::Dict(pairs)
                    } else {
                        let mut items = vec![first];
                        while self.eat(",") {
                            if self.is_op("}") {
                                break;
                            }
                            items.push(self.parse_expr()?);
                        }
                        if !self.eat("}") {
                            return None;
                        }
                        Expr::Set(items)
                    }
                }
            }
            _ => return None,
        };
        // Calls, subscripts and attributes are valid Python but never literals.
        if self.is_op("(") || self.is_op("[") || self.is_op(".") {
            return None;
        }
        Some(atom)
    }
}

fn is_keyword(n: &str) -> bool {
    matches!(
        n,
        "and"
            | "as"
            | "assert"
            | "async"
            | "await"
            | "break"
            | "class"
            | "continue"
            | "def"
            | "del"
            | "elif"
            | "else"
            | "except"
            | "finally"
            | "for"
            | "from"
            | "global"
            | "if"
            | "import"
            | "in"
            | "is"
            | "lambda"
            | "nonlocal"
            | "not"
            | "or"
            | "pass"
            | "raise"
            | "return"
            | "try"
            | "while"
            | "with"
            | "yield"
    )
}

// ---------------------------------------------------------------- evaluation

enum ConvErr {
    Malformed,
    Unhashable(&'static str),
}

/// A number as `_convert_num` sees it.
enum Num {
    Int(i128),
    Float(f64),
    Complex(f64, f64),
}

fn convert_num(e: &Expr) -> Result<Num, ConvErr> {
    match e {
        Expr::Const(Konst::Int(i)) => Ok(Num::Int(*i)),
        Expr::Const(Konst::Float(f)) => Ok(Num::Float(*f)),
        Expr::Const(Konst::Imag(f)) => Ok(Num::Complex(0.0, *f)),
        _ => Err(ConvErr::Malformed),
    }
}

fn convert_signed_num(e: &Expr) -> Result<Num, ConvErr> {
    if let Expr::Unary(op, inner) = e {
        let n = convert_num(inner)?;
        return Ok(match (op, n) {
            ('-', Num::Int(i)) => Num::Int(-i),
            ('-', Num::Float(f)) => Num::Float(-f),
            ('-', Num::Complex(r, i)) => Num::Complex(-r, -i),
            (_, n) => n,
        });
    }
    convert_num(e)
}

fn num_to_val(n: Num) -> PyVal {
    match n {
        Num::Int(i) => PyVal::Int(i),
        Num::Float(f) => PyVal::Float(f),
        Num::Complex(r, i) => PyVal::Str(complex_repr(r, i)),
    }
}

/// Python's `str(complex)`: `2j`, `(1+2j)`, `(-0-1j)`.
fn complex_repr(re: f64, im: f64) -> String {
    let imag = py_float_repr_short(im);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let sign = if im.is_sign_negative() && !im.is_nan() {
        ""
    } else {
        "+"
    };
    format!("({}{}{}j)", py_float_repr_short(re), sign, imag)
}

fn convert(e: &Expr) -> Result<PyVal, ConvErr> {
    match e {
        Expr::Const(k) => Ok(match k {
            Konst::None => PyVal::None,
            Konst::Bool(b) => PyVal::Bool(*b),
            Konst::Int(i) => PyVal::Int(*i),
            Konst::Float(f) => PyVal::Float(*f),
            Konst::Imag(f) => PyVal::Str(complex_repr(0.0, *f)),
            Konst::Str(s) => PyVal::Str(s.clone()),
            // Ansible turns bytes into text that is not trusted for templating.
            Konst::Bytes(b) => PyVal::Unsafe(String::from_utf8_lossy(b).into_owned()),
            Konst::Ellipsis => PyVal::Str("...".into()),
        }),
        Expr::Tuple(items) => Ok(PyVal::Tuple(
            items.iter().map(convert).collect::<Result<_, _>>()?,
        )),
        Expr::List(items) => Ok(PyVal::List(
            items.iter().map(convert).collect::<Result<_, _>>()?,
        )),
        Expr::Set(items) => {
            let mut out: Vec<PyVal> = Vec::new();
            for it in items {
                let v = convert(it)?;
                if !v.is_hashable() {
                    return Err(ConvErr::Unhashable(v.type_name_py()));
                }
                if !out.iter().any(|o| o.key_eq(&v)) {
                    out.push(v);
                }
            }
            Ok(PyVal::List(out))
        }
        Expr::EmptySetCall => Ok(PyVal::List(vec![])),
        Expr::Dict(pairs) => {
            // Python converts every key first, then every value.
            let keys = pairs
                .iter()
                .map(|(k, _)| convert(k))
                .collect::<Result<Vec<_>, _>>()?;
            let values = pairs
                .iter()
                .map(|(_, v)| convert(v))
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::new();
            for (k, v) in keys.into_iter().zip(values) {
                if !k.is_hashable() {
                    return Err(ConvErr::Unhashable(k.type_name_py()));
                }
                dict_insert(&mut out, k, v);
            }
            Ok(PyVal::Dict(out))
        }
        Expr::Bin(l, op, r) => {
            let left = convert_signed_num(l)?;
            let right = convert_num(r)?;
            let lf = match left {
                Num::Int(i) => i as f64,
                Num::Float(f) => f,
                Num::Complex(..) => return Err(ConvErr::Malformed),
            };
            let (ri, ii) = match right {
                Num::Complex(a, b) => (a, b),
                _ => return Err(ConvErr::Malformed),
            };
            Ok(if *op == '+' {
                PyVal::Str(complex_repr(lf + ri, ii))
            } else {
                PyVal::Str(complex_repr(lf - ri, 0.0 - ii))
            })
        }
        Expr::Unary(..) => convert_signed_num(e).map(num_to_val),
        Expr::Other => Err(ConvErr::Malformed),
    }
}

impl PyVal {
    fn type_name_py(&self) -> &'static str {
        match self {
            PyVal::List(_) => "list",
            PyVal::Dict(_) => "dict",
            PyVal::Tuple(_) => "tuple",
            _ => "object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(s: &str) -> serde_json::Value {
        match parse_value(s) {
            Ok(v) => v.to_json(),
            Err(e) => panic!("TypeError for {s:?}: {e}"),
        }
    }

    #[test]
    fn python_literals_are_typed() {
        assert_eq!(ev("True"), json!(true));
        assert_eq!(ev("False"), json!(false));
        assert_eq!(ev("None"), json!(null));
        assert_eq!(ev("1"), json!(1));
        assert_eq!(ev("-1"), json!(-1));
        assert_eq!(ev("+12"), json!(12));
        assert_eq!(ev("1.5"), json!(1.5));
        assert_eq!(ev("5."), json!(5.0));
        assert_eq!(ev(".5"), json!(0.5));
        assert_eq!(ev("1e5"), json!(100000.0));
        assert_eq!(ev("1_000"), json!(1000));
        assert_eq!(ev("0x10"), json!(16));
        assert_eq!(ev("0o17"), json!(15));
        assert_eq!(ev("0b11"), json!(3));
        assert_eq!(ev("00"), json!(0));
        assert_eq!(ev("'x'"), json!("x"));
        assert_eq!(ev("\"x\""), json!("x"));
        assert_eq!(ev("'a' 'b'"), json!("ab"));
        assert_eq!(ev("u'x'"), json!("x"));
        assert_eq!(ev("r'\\n'"), json!("\\n"));
        assert_eq!(ev("'\\n\\t\\x41\\u00e9'"), json!("\n\tAé"));
        assert_eq!(ev("'''tri'''"), json!("tri"));
        assert_eq!(ev("['a', 1]"), json!(["a", 1]));
        assert_eq!(ev("[1,]"), json!([1]));
        assert_eq!(ev("(1,2)"), json!([1, 2]));
        assert_eq!(ev("1, 2"), json!([1, 2]));
        assert_eq!(ev("()"), json!([]));
        assert_eq!(ev("{1,2}"), json!([1, 2]));
        assert_eq!(ev("set()"), json!([]));
        assert_eq!(ev("{'k': 'v'}"), json!({"k": "v"}));
        assert_eq!(
            ev("{1:2, True: 3, None: 4, 1.5: 5}"),
            json!({"1": 3, "null": 4, "1.5": 5})
        );
        assert_eq!(ev("'x' # comment"), json!("x"));
        assert_eq!(ev("  True"), json!(true));
        assert_eq!(ev("b'bytes'"), json!({"__ansible_unsafe": "bytes"}));
        assert_eq!(ev("..."), json!("..."));
        assert_eq!(ev("1+2j"), json!("(1+2j)"));
        assert_eq!(ev("-1-2j"), json!("(-1-2j)"));
        assert_eq!(ev("1j"), json!("1j"));
        assert_eq!(ev("-1j"), json!("(-0-1j)"));
    }

    #[test]
    fn non_literals_stay_strings() {
        for s in [
            "true",
            "false",
            "yes",
            "0644",
            "08",
            "--1",
            "-True",
            "1 + 1",
            "foo",
            "foo bar",
            "[1,",
            "\"unterminated",
            "f'x'",
            "value # c",
            "a\\b",
            "1abc",
            "1_",
            "x.y",
            "len('a')",
            "",
            "{**a}",
            "'\\N{DASH}'",
            "1 2",
        ] {
            assert_eq!(ev(s), json!(s), "{s:?} should stay a string");
        }
    }

    #[test]
    fn unhashable_keys_fail_like_python() {
        assert!(parse_value("{[1]: 2}").is_err());
        assert!(parse_value("{[1], 2}").is_err());
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn deep_or_long_input_stays_a_string() {
        let deep = "[".repeat(100_000);
        assert!(matches!(literal_eval(&deep), Literal::Raw));
        let signs = format!("{}1", "-".repeat(100_000));
        assert!(matches!(literal_eval(&signs), Literal::Raw));
        assert!(matches!(
            literal_eval(&format!("{}1{}", "[".repeat(150), "]".repeat(150))),
            Literal::Value(_)
        ));
    }
}
