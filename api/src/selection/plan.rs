//! Checks a parsed document against the part of the schema the fast read path answers, the way GraphQL validation
//! would, and plans it: every fragment inlined, every argument's value known (variables substituted), every field
//! known to its type. What validation would refuse, and what the fast path does not answer (an unknown field, a
//! fragment on an interface, two fields under one response key, a document past the depth or complexity limits…),
//! gives `None`: the general path then answers, or reports the error, exactly as before.

use std::collections::HashMap;

use async_graphql::{Name, Value as ConstValue, Variables};

use super::parse::{Document, Operation, Selection, Value};

/// An object type of the fast subset of the schema, as its GraphQL name and fields.
#[derive(Debug)]
pub struct TypeDef {
    pub name: &'static str,
    pub fields: &'static [FieldDef],
}

#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub name: &'static str,
    /// The object type it returns (lists and non-null aside), or None for a scalar or an enum.
    pub object: Option<&'static str>,
    pub args: &'static [ArgDef],
}

impl FieldDef {
    pub const fn leaf(name: &'static str) -> FieldDef {
        FieldDef { name, object: None, args: &[] }
    }

    pub const fn object(name: &'static str, object: &'static str) -> FieldDef {
        FieldDef { name, object: Some(object), args: &[] }
    }
}

/// An argument, or a field of an input object.
#[derive(Debug, Clone, Copy)]
pub struct ArgDef {
    pub name: &'static str,
    pub ty: InputTy,
    pub non_null: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum InputTy {
    /// "String", "Int", "ID" or "Boolean".
    Scalar(&'static str),
    Enum(&'static str),
    Object(&'static str, &'static [ArgDef]),
}

impl InputTy {
    fn name(&self) -> &'static str {
        match self {
            InputTy::Scalar(name) | InputTy::Enum(name) | InputTy::Object(name, _) => name,
        }
    }
}

/// The types of the fast subset, by name.
pub struct Types {
    by_name: HashMap<&'static str, &'static TypeDef>,
}

impl Types {
    pub fn new(types: &[&'static TypeDef]) -> Types {
        Types { by_name: types.iter().map(|t| (t.name, *t)).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&'static TypeDef> {
        self.by_name.get(name).copied()
    }

    pub fn all(&self) -> impl Iterator<Item = &'static TypeDef> + '_ {
        self.by_name.values().copied()
    }
}

/// A field to answer: its response key, its name, its arguments' values, and its own selection (empty for a leaf).
#[derive(Debug)]
pub struct Planned<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub arguments: Vec<(&'a str, ConstValue)>,
    pub selection: Vec<Planned<'a>>,
}

impl Planned<'_> {
    /// The value of an argument, if given.
    pub fn argument(&self, name: &str) -> Option<&ConstValue> {
        self.arguments.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// A planned query.
#[derive(Debug)]
pub struct Plan<'a> {
    pub operation_name: Option<&'a str>,
    pub fields: Vec<Planned<'a>>,
    /// Fields once fragments are inlined: the query's complexity as async-graphql counts it (one per field, no field
    /// of the subset has a weight of its own) and the document limits' expanded fields.
    pub field_count: usize,
    /// The deepest field's nesting, as async-graphql counts the depth.
    pub depth: usize,
}

/// The bounds the general path applies after validation.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_depth: usize,
    pub max_complexity: usize,
}

/// Plans the operation `operation_name` of `document` on the root type `root`, or None (see the module's
/// documentation).
pub fn plan<'a>(
    document: &'a Document<'a>,
    operation_name: Option<&str>,
    variables: &'a Variables,
    types: &Types,
    root: &'static TypeDef,
    bounds: Bounds,
) -> Option<Plan<'a>> {
    let [operation] = document.operations.as_slice() else { return None };
    if operation_name.is_some_and(|wanted| operation.name != Some(wanted)) {
        return None;
    }
    let mut fragments = HashMap::with_capacity(document.fragments.len());
    for fragment in &document.fragments {
        if fragments.insert(fragment.name, fragment).is_some() {
            return None;
        }
    }
    for (i, definition) in operation.variables.iter().enumerate() {
        if operation.variables[..i].iter().any(|d| d.name == definition.name) {
            return None;
        }
    }
    let mut planner = Planner {
        operation,
        variables,
        types,
        fragments,
        used_fragments: Vec::new(),
        used_variables: Vec::new(),
        spreading: Vec::new(),
        field_count: 0,
        depth: 0,
    };
    let fields = planner.selection(&operation.selection, root, 1)?;
    if planner.used_fragments.len() != document.fragments.len()
        || operation.variables.iter().any(|d| !planner.used_variables.contains(&d.name))
        || planner.depth > bounds.max_depth
        || planner.field_count > bounds.max_complexity
    {
        return None;
    }
    Some(Plan { operation_name: operation.name, fields, field_count: planner.field_count, depth: planner.depth })
}

struct Planner<'a, 't> {
    operation: &'a Operation<'a>,
    variables: &'a Variables,
    types: &'t Types,
    fragments: HashMap<&'a str, &'a super::parse::Fragment<'a>>,
    used_fragments: Vec<&'a str>,
    used_variables: Vec<&'a str>,
    /// The fragments being inlined, innermost last (a cycle is refused).
    spreading: Vec<&'a str>,
    field_count: usize,
    depth: usize,
}

impl<'a> Planner<'a, '_> {
    fn selection(
        &mut self,
        items: &'a [Selection<'a>],
        ty: &'static TypeDef,
        depth: usize,
    ) -> Option<Vec<Planned<'a>>> {
        let mut planned = Vec::with_capacity(items.len());
        self.collect(items, ty, depth, &mut planned)?;
        Some(planned)
    }

    fn collect(
        &mut self,
        items: &'a [Selection<'a>],
        ty: &'static TypeDef,
        depth: usize,
        planned: &mut Vec<Planned<'a>>,
    ) -> Option<()> {
        for item in items {
            match item {
                Selection::Field(field) => {
                    let key = field.alias.unwrap_or(field.name);
                    // Two fields under one key must be merged by the rules of validation: left to the general path.
                    if planned.iter().any(|p| p.key == key) {
                        return None;
                    }
                    self.field_count += 1;
                    self.depth = self.depth.max(depth);
                    if field.name == "__typename" {
                        if !field.arguments.is_empty() || field.selection.is_some() {
                            return None;
                        }
                        planned.push(Planned { key, name: field.name, arguments: Vec::new(), selection: Vec::new() });
                        continue;
                    }
                    let definition = ty.fields.iter().find(|f| f.name == field.name)?;
                    let mut arguments = Vec::with_capacity(field.arguments.len());
                    for (i, (name, value)) in field.arguments.iter().enumerate() {
                        if field.arguments[..i].iter().any(|(other, _)| other == name) {
                            return None;
                        }
                        let argument = definition.args.iter().find(|a| a.name == *name)?;
                        if let Some(value) = self.input(value, argument)? {
                            arguments.push((*name, value));
                        }
                    }
                    for argument in definition.args.iter().filter(|a| a.non_null) {
                        if !arguments.iter().any(|(name, _)| *name == argument.name) {
                            return None;
                        }
                    }
                    let selection = match (definition.object, &field.selection) {
                        (None, None) => Vec::new(),
                        (Some(object), Some(items)) => self.selection(items, self.types.get(object)?, depth + 1)?,
                        _ => return None,
                    };
                    planned.push(Planned { key, name: field.name, arguments, selection });
                }
                Selection::Spread(name) => {
                    let fragment = *self.fragments.get(name)?;
                    if fragment.on != ty.name || self.spreading.contains(name) {
                        return None;
                    }
                    if !self.used_fragments.contains(name) {
                        self.used_fragments.push(name);
                    }
                    self.spreading.push(name);
                    self.collect(&fragment.selection, ty, depth, planned)?;
                    self.spreading.pop();
                }
                Selection::Inline { on, selection } => {
                    if on.is_some_and(|on| on != ty.name) {
                        return None;
                    }
                    self.collect(selection, ty, depth, planned)?;
                }
            }
        }
        Some(())
    }

    /// The value of an argument or input field at a position of type `at`: Some(None) for a variable not given (the
    /// argument is then absent), None when validation would refuse it or the fast path does not read it.
    fn input(&mut self, value: &'a Value<'a>, at: &ArgDef) -> Option<Option<ConstValue>> {
        let value = match (value, &at.ty) {
            (Value::Variable(name), _) => {
                let definition = self.operation.variables.iter().find(|d| d.name == *name)?;
                let ty = definition.ty.as_str();
                let position = at.ty.name();
                // The variable's type must be the position's, or its non-null form.
                let fits = ty.strip_suffix('!').map_or(!at.non_null && ty == position, |named| named == position);
                if !fits {
                    return None;
                }
                if !self.used_variables.contains(name) {
                    self.used_variables.push(name);
                }
                return match self.variables.get(*name) {
                    None if ty.ends_with('!') => None,
                    None => Some(None),
                    Some(ConstValue::Null) if ty.ends_with('!') => None,
                    Some(given) => Some(Some(given.clone())),
                };
            }
            (Value::Null, _) if !at.non_null => ConstValue::Null,
            (Value::String(text), InputTy::Scalar("String" | "ID")) => ConstValue::String(text.to_string()),
            (Value::Int(n), InputTy::Scalar("Int")) if i32::try_from(*n).is_ok() => ConstValue::Number((*n).into()),
            (Value::Int(n), InputTy::Scalar("ID")) => ConstValue::String(n.to_string()),
            (Value::Boolean(b), InputTy::Scalar("Boolean")) => ConstValue::Boolean(*b),
            (Value::Enum(item), InputTy::Enum(_)) => ConstValue::Enum(Name::new(item)),
            (Value::Object(fields), InputTy::Object(_, definitions)) => {
                let mut object = async_graphql::indexmap::IndexMap::with_capacity(fields.len());
                for (i, (name, value)) in fields.iter().enumerate() {
                    if fields[..i].iter().any(|(other, _)| other == name) {
                        return None;
                    }
                    let definition = definitions.iter().find(|d| d.name == *name)?;
                    if let Some(value) = self.input(value, definition)? {
                        object.insert(Name::new(name), value);
                    }
                }
                for definition in definitions.iter().filter(|d| d.non_null) {
                    if !object.contains_key(definition.name) {
                        return None;
                    }
                }
                ConstValue::Object(object)
            }
            _ => return None,
        };
        Some(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::parse::parse;

    static FILTER: &[ArgDef] = &[
        ArgDef { name: "regionCode", ty: InputTy::Scalar("String"), non_null: false },
        ArgDef { name: "status", ty: InputTy::Enum("Status"), non_null: false },
    ];
    static QUERY: TypeDef = TypeDef {
        name: "Query",
        fields: &[
            FieldDef {
                name: "items",
                object: Some("Item"),
                args: &[
                    ArgDef { name: "filter", ty: InputTy::Object("Filter", FILTER), non_null: false },
                    ArgDef { name: "first", ty: InputTy::Scalar("Int"), non_null: false },
                ],
            },
            FieldDef {
                name: "item",
                object: Some("Item"),
                args: &[ArgDef { name: "id", ty: InputTy::Scalar("String"), non_null: true }],
            },
        ],
    };
    static ITEM: TypeDef = TypeDef {
        name: "Item",
        fields: &[FieldDef::leaf("id"), FieldDef::leaf("status"), FieldDef::object("parent", "Item")],
    };

    const BOUNDS: Bounds = Bounds { max_depth: 4, max_complexity: 20 };

    fn planned(text: &str, variables: serde_json::Value) -> Option<String> {
        let document = parse(text)?;
        let variables = Variables::from_json(variables);
        let types = Types::new(&[&QUERY, &ITEM]);
        let plan = plan(&document, None, &variables, &types, &QUERY, BOUNDS)?;
        fn show(fields: &[Planned<'_>]) -> String {
            fields
                .iter()
                .map(|f| {
                    let args: Vec<String> = f.arguments.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    let mut s = format!("{}:{}", f.key, f.name);
                    if !args.is_empty() {
                        s += &format!("({})", args.join(","));
                    }
                    if !f.selection.is_empty() {
                        s += &format!("{{{}}}", show(&f.selection));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        Some(format!("{} [{} fields, depth {}]", show(&plan.fields), plan.field_count, plan.depth))
    }

    #[test]
    fn fragments_are_inlined_and_variables_substituted() {
        assert_eq!(
            planned(
                "query($f: Filter, $n: Int!) { a: items(filter: $f, first: $n) { ...F ... on Item { parent { __typename } } } } fragment F on Item { id }",
                serde_json::json!({ "f": { "regionCode": "84" }, "n": 3 })
            )
            .unwrap(),
            "a:items(filter={regionCode: \"84\"},first=3){id:id parent:parent{__typename:__typename}} [4 fields, depth 3]"
        );
        assert_eq!(
            planned(r#"{ items(filter: { regionCode: "84", status: OPEN }) { id } }"#, serde_json::json!({})).unwrap(),
            "items:items(filter={regionCode: \"84\", status: OPEN}){id:id} [2 fields, depth 2]"
        );
        // A nullable variable not given leaves its argument out.
        assert_eq!(
            planned("query($n: Int) { items(first: $n) { id } }", serde_json::json!({})).unwrap(),
            "items:items{id:id} [2 fields, depth 2]"
        );
    }

    #[test]
    fn what_validation_would_refuse_is_left_to_the_general_path() {
        for (text, variables) in [
            ("{ nothing }", serde_json::json!({})),
            ("{ items { nothing } }", serde_json::json!({})),
            ("{ items }", serde_json::json!({})),
            ("{ items { id { x } } }", serde_json::json!({})),
            ("{ item { id } }", serde_json::json!({})),
            ("{ items(first: \"3\") { id } }", serde_json::json!({})),
            ("{ items(first: 3, first: 4) { id } }", serde_json::json!({})),
            ("{ items(first: 3000000000) { id } }", serde_json::json!({})),
            ("{ items(filter: { status: \"OPEN\" }) { id } }", serde_json::json!({})),
            ("{ items(filter: { regionCode: OPEN }) { id } }", serde_json::json!({})),
            ("{ items(filter: { other: 1 }) { id } }", serde_json::json!({})),
            ("{ items { id id: status } }", serde_json::json!({})),
            ("{ items { id } } fragment F on Item { id }", serde_json::json!({})),
            ("{ items { ...F } } fragment F on Query { items { id } }", serde_json::json!({})),
            ("{ items { ...F } } fragment F on Item { ...F }", serde_json::json!({})),
            ("{ items { ... on Query { id } } }", serde_json::json!({})),
            ("query($n: Int) { items { id } }", serde_json::json!({})),
            ("{ items(first: $n) { id } }", serde_json::json!({})),
            ("query($n: String) { items(first: $n) { id } }", serde_json::json!({})),
            ("query($id: String) { item(id: $id) { id } }", serde_json::json!({ "id": "x" })),
            ("query($id: String!) { item(id: $id) { id } }", serde_json::json!({})),
            ("query($n: Int, $n: Int) { items(first: $n) { id } }", serde_json::json!({})),
            ("{ items { parent { parent { parent { id } } } } }", serde_json::json!({})),
            (
                "{ a: items { id } b: items { id } c: items { id } d: items { id } e: items { id status parent { id } } f: items { id status parent { id status } } g: items { id } }",
                serde_json::json!({}),
            ),
            ("query A { items { id } } query B { items { id } }", serde_json::json!({})),
        ] {
            assert!(planned(text, variables).is_none(), "{text} should take the general path");
        }
    }
}
