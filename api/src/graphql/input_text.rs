//! Characters no text of the hub may hold, refused at the door whatever the argument.
//!
//! PostgreSQL's text types cannot store U+0000 (NUL): a label, a reference or an idempotency key holding one would
//! reach the store and come back as a database failure, and SQLite would store what PostgreSQL refuses. So every
//! string of a request (the document's literal arguments, directives and default values, and the variables) is read
//! once before execution, and a NUL is `BAD_USER_INPUT` naming where it was found, on both stores.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::{Positioned, types::Directive};
use async_graphql::{ErrorExtensions, ServerError, Value as ConstValue, Variables};

use crate::error::code;

/// Where a refused character was found.
#[derive(Debug, PartialEq, Eq)]
pub struct RefusedCharacter {
    pub place: String,
}

impl RefusedCharacter {
    pub fn server_error(&self) -> ServerError {
        async_graphql::Error::new(format!("le caractère U+0000 (NUL) n'est accepté dans aucun texte ({})", self.place))
            .extend_with(|_, ext| ext.set("code", code::BAD_USER_INPUT))
            .into_server_error(async_graphql::Pos::default())
    }
}

fn has_nul(text: &str) -> bool {
    text.as_bytes().contains(&0)
}

/// Whether a constant value (a variable's, a default) holds a NUL, in a string or an object key.
fn const_value_has_nul(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(text) => has_nul(text),
        ConstValue::List(items) => items.iter().any(const_value_has_nul),
        ConstValue::Object(fields) => fields.iter().any(|(k, v)| has_nul(k) || const_value_has_nul(v)),
        _ => false,
    }
}

/// Whether a literal argument holds a NUL (variables are read with the variables). The parser's value type is not
/// exported by async-graphql, so the literal is read through its constant form, its variables as null.
macro_rules! literal_has_nul {
    ($value:expr) => {
        $value
            .clone()
            .into_const_with(|_| Ok::<_, std::convert::Infallible>(ConstValue::Null))
            .is_ok_and(|constant| const_value_has_nul(&constant))
    };
}

fn directives_refuse(directives: &[Positioned<Directive>]) -> Option<RefusedCharacter> {
    directives.iter().find_map(|d| {
        d.node.arguments.iter().find(|(_, v)| literal_has_nul!(v.node)).map(|(name, _)| RefusedCharacter {
            place: format!("argument « {} » de la directive « @{} »", name.node, d.node.name.node),
        })
    })
}

/// The selection sets' literal arguments. Nesting is bounded by the document limits checked before.
fn selections_refuse(set: &SelectionSet) -> Option<RefusedCharacter> {
    set.items.iter().find_map(|selection| match &selection.node {
        Selection::Field(field) => {
            let field = &field.node;
            field
                .arguments
                .iter()
                .find(|(_, v)| literal_has_nul!(v.node))
                .map(|(name, _)| RefusedCharacter {
                    place: format!("argument « {} » du champ « {} »", name.node, field.name.node),
                })
                .or_else(|| directives_refuse(&field.directives))
                .or_else(|| selections_refuse(&field.selection_set.node))
        }
        Selection::InlineFragment(fragment) => directives_refuse(&fragment.node.directives)
            .or_else(|| selections_refuse(&fragment.node.selection_set.node)),
        Selection::FragmentSpread(spread) => directives_refuse(&spread.node.directives),
    })
}

/// The first NUL in the document's literals or in the variables.
pub fn check(document: &ExecutableDocument, variables: &Variables) -> Result<(), RefusedCharacter> {
    check_variables(variables)?;
    check_document(document)
}

/// The first NUL in the variables (names or values).
pub fn check_variables(variables: &Variables) -> Result<(), RefusedCharacter> {
    match variables.iter().find(|(name, value)| has_nul(name) || const_value_has_nul(value)) {
        Some((name, _)) => {
            Err(RefusedCharacter { place: format!("variable « {} »", name.as_str().replace('\0', "\\0")) })
        }
        None => Ok(()),
    }
}

/// The first NUL in the document's literal arguments, directives and default values.
pub fn check_document(document: &ExecutableDocument) -> Result<(), RefusedCharacter> {
    for (_, operation) in document.operations.iter() {
        let operation = &operation.node;
        for definition in &operation.variable_definitions {
            if definition.node.default_value.as_ref().is_some_and(|v| const_value_has_nul(&v.node)) {
                return Err(RefusedCharacter {
                    place: format!("valeur par défaut de la variable « {} »", definition.node.name.node),
                });
            }
        }
        if let Some(refused) =
            directives_refuse(&operation.directives).or_else(|| selections_refuse(&operation.selection_set.node))
        {
            return Err(refused);
        }
    }
    for fragment in document.fragments.values() {
        if let Some(refused) = directives_refuse(&fragment.node.directives)
            .or_else(|| selections_refuse(&fragment.node.selection_set.node))
        {
            return Err(refused);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str, variables: serde_json::Value) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        check(&document, &Variables::from_json(variables)).err().map(|r| r.place)
    }

    #[test]
    fn a_nul_anywhere_in_a_text_is_refused_and_located() {
        assert_eq!(
            refused(r#"{ measure(id: "a\u0000b") { id } }"#, serde_json::json!({})).unwrap(),
            "argument « id » du champ « measure »"
        );
        assert_eq!(
            refused(
                "query($i: MeasureInput!) { m: upsertMeasure(input: $i) { id } }",
                serde_json::json!({ "i": { "label": "x\u{0}" } })
            )
            .unwrap(),
            "variable « i »"
        );
        assert!(
            refused(
                r#"{ a { ...F } } fragment F on A { b(filter: { codes: ["x", "\u0000"] }) }"#,
                serde_json::json!({})
            )
            .unwrap()
            .contains("« filter »")
        );
        assert!(
            refused(r#"query($k: String = "\u0000") { a(k: $k) }"#, serde_json::json!({}))
                .unwrap()
                .contains("par défaut")
        );
        assert!(
            refused(r#"{ a @include(if: true) { b @deprecated(reason: "\u0000") } }"#, serde_json::json!({})).is_some()
        );
        assert_eq!(refused(r#"{ a(label: "é\u0001 ok") { b } }"#, serde_json::json!({ "v": "fine" })), None);
    }
}
