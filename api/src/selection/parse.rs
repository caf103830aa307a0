//! A parser for the GraphQL documents dashboards send, written for speed: the general parser (pest) cost a dashboard
//! request as much as its whole answer. It reads executable documents only, and only what the fast read path can
//! answer: any other construct (a directive, a block string, a float, a variable's default value, a `mutation`) or
//! any syntax error gives `None`, and the request then takes the general path, which answers or reports exactly as
//! before. So this parser may refuse more than the grammar does, never accept what it refuses.

use std::borrow::Cow;

/// An executable document, as written.
#[derive(Debug, Default)]
pub struct Document<'a> {
    pub operations: Vec<Operation<'a>>,
    pub fragments: Vec<Fragment<'a>>,
}

/// A query (the only operation type read here).
#[derive(Debug)]
pub struct Operation<'a> {
    pub name: Option<&'a str>,
    pub variables: Vec<VariableDefinition<'a>>,
    pub selection: Vec<Selection<'a>>,
}

/// `$name: Type`, the type as written without spaces ("String!", "[ID!]").
#[derive(Debug)]
pub struct VariableDefinition<'a> {
    pub name: &'a str,
    pub ty: String,
}

#[derive(Debug)]
pub struct Fragment<'a> {
    pub name: &'a str,
    pub on: &'a str,
    pub selection: Vec<Selection<'a>>,
}

#[derive(Debug)]
pub enum Selection<'a> {
    Field(Field<'a>),
    Spread(&'a str),
    Inline { on: Option<&'a str>, selection: Vec<Selection<'a>> },
}

#[derive(Debug)]
pub struct Field<'a> {
    pub alias: Option<&'a str>,
    pub name: &'a str,
    pub arguments: Vec<(&'a str, Value<'a>)>,
    pub selection: Option<Vec<Selection<'a>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Variable(&'a str),
    Int(i64),
    String(Cow<'a, str>),
    Boolean(bool),
    Null,
    Enum(&'a str),
    List(Vec<Value<'a>>),
    Object(Vec<(&'a str, Value<'a>)>),
}

/// Nesting of selections and values beyond which the parser gives up (the document limits refuse far less deep
/// documents before this parser runs; this only bounds its recursion on its own).
const MAX_NESTING: usize = 64;

/// The document, or None when it is not one this parser reads (see the module's documentation).
pub fn parse(text: &str) -> Option<Document<'_>> {
    let mut parser = Parser { text, bytes: text.as_bytes(), at: 0, nesting: 0 };
    let mut document = Document::default();
    parser.skip_ignored();
    if parser.at == parser.bytes.len() {
        return None;
    }
    while parser.at < parser.bytes.len() {
        match parser.peek()? {
            b'{' => {
                let selection = parser.selection_set()?;
                document.operations.push(Operation { name: None, variables: Vec::new(), selection });
            }
            _ => match parser.name()? {
                "query" => document.operations.push(parser.operation()?),
                "fragment" => document.fragments.push(parser.fragment()?),
                _ => return None,
            },
        }
    }
    Some(document)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    nesting: usize,
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_continue(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

impl<'a> Parser<'a> {
    /// Whitespace, commas, comments and the byte order mark.
    fn skip_ignored(&mut self) {
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.at += 1,
                b'#' => {
                    while self.at < self.bytes.len() && !matches!(self.bytes[self.at], b'\n' | b'\r') {
                        self.at += 1;
                    }
                }
                0xEF if self.bytes[self.at..].starts_with("\u{feff}".as_bytes()) => self.at += 3,
                _ => return,
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Consumes `punctuator` if it comes next.
    fn eat(&mut self, punctuator: u8) -> bool {
        if self.peek() == Some(punctuator) {
            self.at += 1;
            self.skip_ignored();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punctuator: u8) -> Option<()> {
        self.eat(punctuator).then_some(())
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        self.at += 1;
        while self.peek().is_some_and(is_name_continue) {
            self.at += 1;
        }
        let name = &self.text[start..self.at];
        self.skip_ignored();
        Some(name)
    }

    fn deeper(&mut self) -> Option<()> {
        self.nesting += 1;
        (self.nesting <= MAX_NESTING).then_some(())
    }

    /// After the `query` keyword.
    fn operation(&mut self) -> Option<Operation<'a>> {
        let name = if self.peek().is_some_and(is_name_start) { Some(self.name()?) } else { None };
        let mut variables = Vec::new();
        if self.eat(b'(') {
            loop {
                self.expect(b'$')?;
                let name = self.name()?;
                self.expect(b':')?;
                let mut ty = String::new();
                self.ty(&mut ty, 0)?;
                // A default value or a directive: the general path.
                if matches!(self.peek(), Some(b'=' | b'@')) {
                    return None;
                }
                variables.push(VariableDefinition { name, ty });
                if self.eat(b')') {
                    break;
                }
            }
        }
        let selection = self.selection_set()?;
        Some(Operation { name, variables, selection })
    }

    fn ty(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > 8 {
            return None;
        }
        if self.eat(b'[') {
            out.push('[');
            self.ty(out, depth + 1)?;
            self.expect(b']')?;
            out.push(']');
        } else {
            out.push_str(self.name()?);
        }
        if self.eat(b'!') {
            out.push('!');
        }
        Some(())
    }

    /// After the `fragment` keyword.
    fn fragment(&mut self) -> Option<Fragment<'a>> {
        let name = self.name()?;
        if name == "on" || self.name()? != "on" {
            return None;
        }
        let on = self.name()?;
        let selection = self.selection_set()?;
        Some(Fragment { name, on, selection })
    }

    fn selection_set(&mut self) -> Option<Vec<Selection<'a>>> {
        self.expect(b'{')?;
        self.deeper()?;
        let mut selection = Vec::new();
        while !self.eat(b'}') {
            selection.push(self.selection()?);
        }
        self.nesting -= 1;
        (!selection.is_empty()).then_some(selection)
    }

    fn selection(&mut self) -> Option<Selection<'a>> {
        if self.bytes[self.at..].starts_with(b"...") {
            self.at += 3;
            self.skip_ignored();
            if self.peek() == Some(b'{') {
                return Some(Selection::Inline { on: None, selection: self.selection_set()? });
            }
            let name = self.name()?;
            if name == "on" {
                let on = self.name()?;
                return Some(Selection::Inline { on: Some(on), selection: self.selection_set()? });
            }
            if self.peek() == Some(b'@') {
                return None;
            }
            return Some(Selection::Spread(name));
        }
        let first = self.name()?;
        let (alias, name) = if self.eat(b':') { (Some(first), self.name()?) } else { (None, first) };
        let mut arguments = Vec::new();
        if self.eat(b'(') {
            loop {
                let argument = self.name()?;
                self.expect(b':')?;
                arguments.push((argument, self.value()?));
                if self.eat(b')') {
                    break;
                }
            }
        }
        let selection = match self.peek() {
            Some(b'{') => Some(self.selection_set()?),
            Some(b'@') => return None,
            _ => None,
        };
        Some(Selection::Field(Field { alias, name, arguments, selection }))
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'$' => {
                self.at += 1;
                Some(Value::Variable(self.name()?))
            }
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.int(),
            b'[' => {
                self.at += 1;
                self.skip_ignored();
                self.deeper()?;
                let mut items = Vec::new();
                while !self.eat(b']') {
                    items.push(self.value()?);
                }
                self.nesting -= 1;
                Some(Value::List(items))
            }
            b'{' => {
                self.at += 1;
                self.skip_ignored();
                self.deeper()?;
                let mut fields = Vec::new();
                while !self.eat(b'}') {
                    let name = self.name()?;
                    self.expect(b':')?;
                    fields.push((name, self.value()?));
                }
                self.nesting -= 1;
                Some(Value::Object(fields))
            }
            _ => Some(match self.name()? {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                "null" => Value::Null,
                other => Value::Enum(other),
            }),
        }
    }

    /// An integer; a float (or a number run into a name) gives None.
    fn int(&mut self) -> Option<Value<'a>> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let length = self.at - digits;
        if length == 0 || (length > 1 && self.bytes[digits] == b'0') {
            return None;
        }
        if self.peek().is_some_and(|b| b == b'.' || is_name_start(b)) {
            return None;
        }
        let value = self.text[start..self.at].parse().ok()?;
        self.skip_ignored();
        Some(Value::Int(value))
    }

    /// A string on one line; a block string gives None.
    fn string(&mut self) -> Option<Value<'a>> {
        if self.bytes[self.at..].starts_with(b"\"\"\"") {
            return None;
        }
        self.at += 1;
        let start = self.at;
        // Plain until the first escape: then copied.
        let mut owned: Option<String> = None;
        let mut plain_from = start;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => break,
                b'\n' | b'\r' => return None,
                0x00..=0x1f if b != b'\t' => return None,
                b'\\' => {
                    let copy = owned.get_or_insert_with(String::new);
                    copy.push_str(&self.text[plain_from..self.at]);
                    self.at += 1;
                    match self.peek()? {
                        b'"' => copy.push('"'),
                        b'\\' => copy.push('\\'),
                        b'/' => copy.push('/'),
                        b'b' => copy.push('\u{8}'),
                        b'f' => copy.push('\u{c}'),
                        b'n' => copy.push('\n'),
                        b'r' => copy.push('\r'),
                        b't' => copy.push('\t'),
                        b'u' => {
                            let unit = self.hex4(self.at + 1)?;
                            self.at += 4;
                            let c = if (0xD800..0xDC00).contains(&unit) {
                                // A surrogate pair, written as two escapes.
                                if !self.bytes[self.at + 1..].starts_with(b"\\u") {
                                    return None;
                                }
                                let low = self.hex4(self.at + 3)?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                self.at += 6;
                                char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?
                            } else {
                                char::from_u32(unit)?
                            };
                            copy.push(c);
                        }
                        _ => return None,
                    }
                    self.at += 1;
                    plain_from = self.at;
                }
                _ => self.at += 1,
            }
        }
        let value = match owned {
            Some(mut copy) => {
                copy.push_str(&self.text[plain_from..self.at]);
                Cow::Owned(copy)
            }
            None => Cow::Borrowed(&self.text[start..self.at]),
        };
        self.at += 1;
        self.skip_ignored();
        Some(Value::String(value))
    }

    fn hex4(&self, from: usize) -> Option<u32> {
        let digits = self.bytes.get(from..from + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_dashboards_send() {
        let document = parse(
            r#"# a comment
            query Dashboard($region: String!, $first: Int) {
              q1_2_3: coFinancingStatus(filter: { regionCode: $region, status: AWAITING_COFINANCER }, first: $first) {
                totalCount, edges { node { ...Node measure { id } } }
              }
              me { role ... on PrincipalView { issuer } }
            }
            fragment Node on CoFinancing { status findings { code message } }"#,
        )
        .unwrap();
        assert_eq!(document.operations.len(), 1);
        assert_eq!(document.fragments.len(), 1);
        let operation = &document.operations[0];
        assert_eq!(operation.name, Some("Dashboard"));
        assert_eq!(operation.variables[0].ty, "String!");
        let Selection::Field(field) = &operation.selection[0] else { panic!() };
        assert_eq!((field.alias, field.name), (Some("q1_2_3"), "coFinancingStatus"));
        assert_eq!(
            field.arguments[0].1,
            Value::Object(vec![
                ("regionCode", Value::Variable("region")),
                ("status", Value::Enum("AWAITING_COFINANCER"))
            ])
        );
        assert!(matches!(&operation.selection[1], Selection::Field(f) if f.selection.as_ref().unwrap().len() == 2));
    }

    #[test]
    fn strings_are_unescaped_as_the_grammar_says() {
        let document = parse(r#"{ measure(id: "a\"b\\c\u00e9\ud83d\ude00 é") { id } }"#).unwrap();
        let Selection::Field(field) = &document.operations[0].selection[0] else { panic!() };
        assert_eq!(field.arguments[0].1, Value::String(Cow::Owned("a\"b\\cé😀 é".into())));
    }

    #[test]
    fn anything_else_is_left_to_the_general_parser() {
        for text in [
            "",
            "   ",
            "{ }",
            "{ me { role }",
            "{ me { role } } }",
            "mutation { revokeToken(tokenId: \"t\") { tokenId } }",
            "subscription { x }",
            "{ me @skip(if: true) { role } }",
            "query Q($a: Int = 3) { me { role } }",
            "{ measures(first: 1.5) { totalCount } }",
            "{ measures(first: 01) { totalCount } }",
            "{ measures(first: 1e3) { totalCount } }",
            "{ measure(id: \"\"\"block\"\"\") { id } }",
            "{ measure(id: \"line\nbreak\") { id } }",
            "{ measure(id: \"\\ud800\") { id } }",
            "{ measure(id: \"\\q\") { id } }",
            "fragment on on X { a }",
            "{ a(b: ) }",
            "{ 1a }",
            "{ é }",
        ] {
            assert!(parse(text).is_none(), "{text:?} should be left to the general parser");
        }
    }

    #[test]
    fn nesting_is_bounded_on_its_own() {
        let deep = format!("{{ a(b: {}1{}) }}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep).is_none());
        let deep = format!("{}{}", "{ a ".repeat(100), "}".repeat(100));
        assert!(parse(&deep).is_none());
    }
}
