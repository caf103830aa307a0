//! Writing an answer's JSON straight from the data, field by field of the plan, with the same bytes async-graphql's
//! response would serialise to (serde_json's escaping, the selection's order).

use async_graphql::Value as ConstValue;
use async_graphql::resolver_utils::EnumType;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};

use super::Fallback;
use super::plan::Planned;

/// An answer being written.
pub type Out = Vec<u8>;

/// What writing one field gives: Err(Fallback) when the fast path does not answer it.
pub type Written = Result<(), Fallback>;

pub fn string(out: &mut Out, text: &str) {
    // serde_json writes into a Vec without failing.
    let _ = serde_json::to_writer(&mut *out, text);
}

pub fn optional_string(out: &mut Out, text: Option<&str>) {
    match text {
        Some(text) => string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

pub fn strings<S: AsRef<str>>(out: &mut Out, items: &[S]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item.as_ref());
    }
    out.push(b']');
}

pub fn int(out: &mut Out, n: i64) {
    let mut buffer = [0; 20];
    out.extend_from_slice(format_int(&mut buffer, n));
}

pub fn boolean(out: &mut Out, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// An enum's GraphQL name.
pub fn enum_item<T: EnumType>(out: &mut Out, value: T) {
    match T::items().iter().find(|item| item.value == value) {
        Some(item) => {
            out.push(b'"');
            out.extend_from_slice(item.name.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

pub fn enum_items<T: EnumType>(out: &mut Out, values: &[T]) {
    out.push(b'[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        enum_item(out, *value);
    }
    out.push(b']');
}

/// A `NaiveDate` as async-graphql shows it ("2026-09-01").
pub fn date(out: &mut Out, date: NaiveDate) {
    let year = date.year();
    if (0..=9999).contains(&year) {
        let text = [
            b'"',
            b'0' + (year / 1000) as u8,
            b'0' + (year / 100 % 10) as u8,
            b'0' + (year / 10 % 10) as u8,
            b'0' + (year % 10) as u8,
            b'-',
            b'0' + (date.month() / 10) as u8,
            b'0' + (date.month() % 10) as u8,
            b'-',
            b'0' + (date.day() / 10) as u8,
            b'0' + (date.day() % 10) as u8,
            b'"',
        ];
        out.extend_from_slice(&text);
    } else {
        value(out, &async_graphql::ScalarType::to_value(&date));
    }
}

/// A `DateTime` as async-graphql shows it (RFC 3339).
pub fn date_time(out: &mut Out, at: &DateTime<FixedOffset>) {
    value(out, &async_graphql::ScalarType::to_value(at));
}

/// Any value, through serde_json.
pub fn value(out: &mut Out, value: &ConstValue) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// An object of type `type_name`: `{"key":…,…}` in the selection's order, `__typename` answered here, every other
/// field by `field`.
pub fn object(
    out: &mut Out,
    type_name: &str,
    selection: &[Planned<'_>],
    mut field: impl FnMut(&mut Out, &Planned<'_>) -> Written,
) -> Written {
    out.push(b'{');
    for (i, planned) in selection.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(planned.key.as_bytes());
        out.extend_from_slice(b"\":");
        if planned.name == "__typename" {
            string(out, type_name);
        } else {
            field(out, planned)?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// A selection compiled once per request for the object type it selects: each field's key already quoted, and what
/// the field is as the type's own enum `F`. A list writes the same selection for each of its items (the dashboard's
/// page: 50 measures, about a thousand fields); compiled, writing an item neither compares field names nor copies
/// keys piecewise.
pub struct Fields<F> {
    /// The type's name as a JSON string, for `__typename`.
    type_name: Box<[u8]>,
    entries: Vec<Entry<F>>,
}

struct Entry<F> {
    /// `"key":`, after a comma for every field but the first.
    key: Box<[u8]>,
    /// None: `__typename`.
    field: Option<F>,
}

impl<F> Fields<F> {
    /// Compiles `selection` of the type `type_name`: `field` names each field as `F` (Err(Fallback) for a field the
    /// fast path does not answer).
    pub fn compile(
        type_name: &str,
        selection: &[Planned<'_>],
        mut field: impl FnMut(&Planned<'_>) -> Result<F, Fallback>,
    ) -> Result<Fields<F>, Fallback> {
        let mut name = Vec::with_capacity(type_name.len() + 2);
        string(&mut name, type_name);
        let mut entries = Vec::with_capacity(selection.len());
        for (i, planned) in selection.iter().enumerate() {
            let mut key = Vec::with_capacity(planned.key.len() + 4);
            if i > 0 {
                key.push(b',');
            }
            key.push(b'"');
            key.extend_from_slice(planned.key.as_bytes());
            key.extend_from_slice(b"\":");
            let field = if planned.name == "__typename" { None } else { Some(field(planned)?) };
            entries.push(Entry { key: key.into(), field });
        }
        Ok(Fields { type_name: name.into(), entries })
    }

    /// Writes one object: `{"key":…,…}` in the selection's order, each field by `write`.
    pub fn write(&self, out: &mut Out, mut write: impl FnMut(&mut Out, &F)) {
        out.push(b'{');
        for entry in &self.entries {
            out.extend_from_slice(&entry.key);
            match &entry.field {
                Some(field) => write(out, field),
                None => out.extend_from_slice(&self.type_name),
            }
        }
        out.push(b'}');
    }
}

/// A list whose items cannot fail to be written (their selection compiled beforehand).
pub fn array<T>(out: &mut Out, items: impl IntoIterator<Item = T>, mut item: impl FnMut(&mut Out, T)) {
    out.push(b'[');
    for (i, value) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, value);
    }
    out.push(b']');
}

/// An amount of euro cents as the API shows it, a JSON string of an exact decimal (`"-30000.05"`, as
/// `Euros::to_decimal_string`).
pub fn cents(out: &mut Out, cents: i64) {
    let mut buffer = [0; 20];
    out.push(b'"');
    if cents < 0 {
        out.push(b'-');
    }
    let abs = cents.unsigned_abs();
    out.extend_from_slice(format_int(&mut buffer, (abs / 100) as i64));
    let hundredths = (abs % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + hundredths / 10, b'0' + hundredths % 10, b'"']);
}

/// A list of objects.
pub fn list<T>(
    out: &mut Out,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Out, T) -> Written,
) -> Written {
    out.push(b'[');
    for (i, value) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, value)?;
    }
    out.push(b']');
    Ok(())
}

fn format_int(buffer: &mut [u8; 20], n: i64) -> &[u8] {
    let mut at = buffer.len();
    let negative = n < 0;
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_written_as_async_graphql_writes_them() {
        for n in [0, 7, -7, 1234567890, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            int(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
        for d in ["2026-09-01", "0999-01-31", "2030-12-31"] {
            let d: NaiveDate = d.parse().unwrap();
            let mut out = Vec::new();
            date(&mut out, d);
            let expected = serde_json::to_string(&async_graphql::ScalarType::to_value(&d)).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
        for c in [0, 5, -5, 100, -100, 3_000_005, -3_000_005, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            cents(&mut out, c);
            let expected = serde_json::to_string(&crate::money::Euros(c).to_decimal_string()).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\n\u{1}é/");
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string("a\"b\\c\n\u{1}é/").unwrap());
    }
    #[test]
    fn a_compiled_selection_writes_what_object_writes() {
        use crate::selection::plan::Planned;
        let planned =
            |key: &'static str, name: &'static str| Planned { key, name, arguments: Vec::new(), selection: Vec::new() };
        let selection = vec![planned("a", "code"), planned("t", "__typename"), planned("code", "code")];
        let by_object = {
            let mut out = Vec::new();
            object(&mut out, "Finding", &selection, |out, _| {
                string(out, "X");
                Ok(())
            })
            .unwrap();
            out
        };
        let fields =
            Fields::compile("Finding", &selection, |f| if f.name == "code" { Ok(1) } else { Err(Fallback) }).unwrap();
        let mut out = Vec::new();
        fields.write(&mut out, |out, n| string(out, if *n == 1 { "X" } else { "?" }));
        assert_eq!(out, by_object);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":"X","t":"Finding","code":"X"}"#);
        let unknown = [planned("x", "other")];
        assert!(Fields::<u8>::compile("Finding", &unknown, |_| Err(Fallback)).is_err());
    }
}
