//! Bounds on a GraphQL document, checked before any work that grows faster than the document itself.
//!
//! Why: the parser descends recursively into nested values and selections, and fragments that spread each other
//! twice expand exponentially in the library's own depth and complexity checks. So, in this order, and each in
//! linear time:
//! 1. [`scan`] reads the raw text once, like a lexer (strings, block strings and comments skipped), counting tokens
//!    and the nesting of values (`[`/`{` inside arguments) and of selections (`{` outside them); it stops at the
//!    first limit passed, so a hostile document costs at most `max_tokens` steps and is never parsed.
//! 2. [`check_document`] walks the parsed document once, computes the number of fields each fragment expands to
//!    and the length of its chains of spreads (memoised, in topological order, cycles refused), and refuses a
//!    document whose expansion passes the limits, before validation expands it.
//! 3. [`check_variables`] bounds the nesting of the variables' values (iteratively: no recursion on input).
//!
//! Every refusal carries `extensions.code` = `QUERY_TOO_COMPLEX` and `extensions.limit` naming the limit passed.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Value as ConstValue, Variables};

/// The limits, each configurable (see `config::Limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Lexical tokens in the document.
    pub max_tokens: usize,
    /// Nesting of lists and input objects, in arguments, default values and variables.
    pub max_value_depth: usize,
    /// Nesting of selection sets (`{`) as written, inline fragments included.
    pub max_selection_nesting: usize,
    /// Fragment definitions in one document.
    pub max_fragments: usize,
    /// Longest chain of fragment spreads (a fragment spreading a fragment spreading…).
    pub max_fragment_depth: usize,
    /// Fields (aliases included) once every fragment is expanded, over all operations of the document.
    pub max_expanded_fields: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits {
            max_tokens: 20_000,
            max_value_depth: 12,
            max_selection_nesting: 32,
            max_fragments: 100,
            max_fragment_depth: 10,
            max_expanded_fields: 5_000,
        }
    }
}

/// Which limit a document passed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("document trop long : plus de {0} éléments lexicaux")]
    Tokens(usize),
    #[error("valeur trop imbriquée : plus de {0} niveaux de listes ou d'objets")]
    ValueDepth(usize),
    #[error("sélection trop imbriquée : plus de {0} niveaux d'accolades")]
    SelectionNesting(usize),
    #[error("trop de fragments : plus de {0}")]
    Fragments(usize),
    #[error("chaîne de fragments trop longue : plus de {0} fragments imbriqués")]
    FragmentDepth(usize),
    #[error("requête trop vaste : plus de {0} champs une fois les fragments développés")]
    ExpandedFields(usize),
    #[error("le fragment « {0} » s'inclut lui-même")]
    FragmentCycle(String),
}

impl LimitExceeded {
    /// The name of the limit, in `extensions.limit`.
    pub fn limit(&self) -> &'static str {
        match self {
            LimitExceeded::Tokens(_) => "tokens",
            LimitExceeded::ValueDepth(_) => "valueDepth",
            LimitExceeded::SelectionNesting(_) => "selectionNesting",
            LimitExceeded::Fragments(_) => "fragments",
            LimitExceeded::FragmentDepth(_) => "fragmentDepth",
            LimitExceeded::ExpandedFields(_) => "expandedFields",
            LimitExceeded::FragmentCycle(_) => "fragmentCycle",
        }
    }

    /// The configured maximum passed (none for a cycle).
    pub fn max(&self) -> Option<usize> {
        match self {
            LimitExceeded::Tokens(n)
            | LimitExceeded::ValueDepth(n)
            | LimitExceeded::SelectionNesting(n)
            | LimitExceeded::Fragments(n)
            | LimitExceeded::FragmentDepth(n)
            | LimitExceeded::ExpandedFields(n) => Some(*n),
            LimitExceeded::FragmentCycle(_) => None,
        }
    }
}

/// What the scan measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanFigures {
    pub tokens: usize,
    pub value_depth: usize,
    pub selection_nesting: usize,
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_continue(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// Reads the raw document once, stopping at the first limit passed. Malformed text is not refused here (the parser
/// does that, on a document now known to be small and shallow): unknown bytes count as tokens, unbalanced brackets
/// are tolerated.
pub fn scan(query: &str, limits: &DocumentLimits) -> Result<ScanFigures, LimitExceeded> {
    let bytes = query.as_bytes();
    let mut figures = ScanFigures::default();
    // Open brackets, innermost last. Values cannot contain parentheses, so the value depth is the number of
    // brackets above the innermost open parenthesis.
    let mut stack: Vec<u8> = Vec::new();
    let mut last_paren: Option<usize> = None;
    let mut selection_nesting = 0usize;
    // Any nesting beyond both limits together is malformed anyway; this bounds the stack itself.
    let max_stack = limits.max_selection_nesting + limits.max_value_depth + 2;
    let mut i = 0;
    let n = bytes.len();
    while i < n {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < n && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        figures.tokens += 1;
        if figures.tokens > limits.max_tokens {
            return Err(LimitExceeded::Tokens(limits.max_tokens));
        }
        match b {
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                loop {
                    if i >= n {
                        break;
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < n && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'(' | b'[' | b'{' => {
                if stack.len() >= max_stack {
                    return Err(match last_paren {
                        Some(_) => LimitExceeded::ValueDepth(limits.max_value_depth),
                        None => LimitExceeded::SelectionNesting(limits.max_selection_nesting),
                    });
                }
                if b == b'(' {
                    last_paren = Some(stack.len());
                } else if let Some(p) = last_paren {
                    let depth = stack.len() - p;
                    figures.value_depth = figures.value_depth.max(depth);
                    if depth > limits.max_value_depth {
                        return Err(LimitExceeded::ValueDepth(limits.max_value_depth));
                    }
                } else if b == b'{' {
                    selection_nesting += 1;
                    figures.selection_nesting = figures.selection_nesting.max(selection_nesting);
                    if selection_nesting > limits.max_selection_nesting {
                        return Err(LimitExceeded::SelectionNesting(limits.max_selection_nesting));
                    }
                } else {
                    // A list outside arguments (a variable's type, `[Int!]`): no value, count it as one.
                    figures.value_depth = figures.value_depth.max(1);
                }
                stack.push(b);
                i += 1;
            }
            b')' | b']' | b'}' => {
                if let Some(open) = stack.pop() {
                    if open == b'(' {
                        last_paren = stack.iter().rposition(|c| *c == b'(');
                    } else if open == b'{' && last_paren.is_none() {
                        selection_nesting = selection_nesting.saturating_sub(1);
                    }
                }
                i += 1;
            }
            _ if is_name_start(b) => {
                while i < n && is_name_continue(bytes[i]) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < n && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-' | b'_')) {
                    i += 1;
                }
            }
            _ => {
                // A punctuator, or a byte the parser will refuse; skip a whole UTF-8 character.
                i += 1;
                while i < n && (bytes[i] & 0b1100_0000) == 0b1000_0000 {
                    i += 1;
                }
            }
        }
    }
    Ok(figures)
}

/// What a selection set holds before fragments are expanded.
#[derive(Default)]
struct Own<'a> {
    fields: u64,
    /// Fragment spreads, by name, with how many times each is spread.
    spreads: HashMap<&'a str, u64>,
}

/// Counts the fields of a selection set and the spreads it makes. Recursion follows the selection nesting, which
/// [`scan`] has bounded.
fn own<'a>(set: &'a SelectionSet, into: &mut Own<'a>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                into.fields = into.fields.saturating_add(1);
                own(&field.node.selection_set.node, into);
            }
            Selection::InlineFragment(inline) => own(&inline.node.selection_set.node, into),
            Selection::FragmentSpread(spread) => {
                *into.spreads.entry(spread.node.fragment_name.node.as_str()).or_default() += 1;
            }
        }
    }
}

/// Expanded fields and spread-chain length of every fragment, computed once each (no recursion over fragments).
fn fragment_costs<'a>(
    fragments: &HashMap<&'a str, Own<'a>>,
    limits: &DocumentLimits,
) -> Result<HashMap<&'a str, (u64, usize)>, LimitExceeded> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Visiting,
        Done,
    }
    let mut state: HashMap<&str, State> = HashMap::new();
    let mut cost: HashMap<&'a str, (u64, usize)> = HashMap::new();
    for start in fragments.keys() {
        if state.contains_key(start) {
            continue;
        }
        // Iterative depth-first search: (fragment, whether its spreads were pushed).
        let mut stack: Vec<(&'a str, bool)> = vec![(start, false)];
        while let Some((name, expanded)) = stack.pop() {
            let Some(fragment) = fragments.get(name) else { continue };
            if expanded {
                let mut fields = fragment.fields;
                let mut depth = 0usize;
                for (spread, times) in &fragment.spreads {
                    if let Some((f, d)) = cost.get(spread) {
                        fields = fields.saturating_add(f.saturating_mul(*times));
                        depth = depth.max(d + 1);
                    }
                }
                if depth > limits.max_fragment_depth {
                    return Err(LimitExceeded::FragmentDepth(limits.max_fragment_depth));
                }
                if fields > limits.max_expanded_fields as u64 {
                    return Err(LimitExceeded::ExpandedFields(limits.max_expanded_fields));
                }
                cost.insert(name, (fields, depth));
                state.insert(name, State::Done);
                continue;
            }
            match state.get(name) {
                Some(State::Done) => continue,
                Some(State::Visiting) => return Err(LimitExceeded::FragmentCycle(name.to_owned())),
                None => {}
            }
            state.insert(name, State::Visiting);
            stack.push((name, true));
            for spread in fragment.spreads.keys() {
                match state.get(spread) {
                    Some(State::Visiting) => return Err(LimitExceeded::FragmentCycle((*spread).to_owned())),
                    Some(State::Done) => {}
                    None if fragments.contains_key(spread) => stack.push((spread, false)),
                    // An unknown fragment: validation reports it.
                    None => {}
                }
            }
        }
    }
    Ok(cost)
}

/// Refuses a parsed document whose fragments are too many, chained too deep, cyclic, or expand to too many fields;
/// else gives the number of fields it expands to (over all its operations).
pub fn check_document(document: &ExecutableDocument, limits: &DocumentLimits) -> Result<u64, LimitExceeded> {
    if document.fragments.len() > limits.max_fragments {
        return Err(LimitExceeded::Fragments(limits.max_fragments));
    }
    let fragments: HashMap<&str, Own<'_>> = document
        .fragments
        .iter()
        .map(|(name, fragment)| {
            let mut counted = Own::default();
            own(&fragment.node.selection_set.node, &mut counted);
            (name.as_str(), counted)
        })
        .collect();
    let cost = fragment_costs(&fragments, limits)?;
    let mut total = 0u64;
    for (_, operation) in document.operations.iter() {
        let mut counted = Own::default();
        own(&operation.node.selection_set.node, &mut counted);
        total = total.saturating_add(counted.fields);
        for (spread, times) in &counted.spreads {
            if let Some((fields, depth)) = cost.get(spread) {
                if depth + 1 > limits.max_fragment_depth {
                    return Err(LimitExceeded::FragmentDepth(limits.max_fragment_depth));
                }
                total = total.saturating_add(fields.saturating_mul(*times));
            }
        }
        if total > limits.max_expanded_fields as u64 {
            return Err(LimitExceeded::ExpandedFields(limits.max_expanded_fields));
        }
    }
    Ok(total)
}

/// Refuses variables nested deeper than `max_value_depth` (measured without recursion).
pub fn check_variables(variables: &Variables, limits: &DocumentLimits) -> Result<(), LimitExceeded> {
    let mut stack: Vec<(&ConstValue, usize)> = variables.values().map(|v| (v, 0)).collect();
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &ConstValue>> = match value {
            ConstValue::List(items) => Box::new(items.iter()),
            ConstValue::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        if depth + 1 > limits.max_value_depth {
            return Err(LimitExceeded::ValueDepth(limits.max_value_depth));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DocumentLimits {
        DocumentLimits::default()
    }

    fn nested_list(levels: usize) -> String {
        format!("{{ regions(a: {}1{}) {{ code }} }}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn a_deeply_nested_list_argument_is_refused_before_parsing() {
        assert_eq!(scan(&nested_list(2000), &limits()), Err(LimitExceeded::ValueDepth(12)));
        assert_eq!(scan(&nested_list(12), &limits()).unwrap().value_depth, 12);
        assert_eq!(scan(&nested_list(13), &limits()), Err(LimitExceeded::ValueDepth(12)));
    }

    #[test]
    fn a_deeply_nested_input_object_is_refused() {
        let q = format!("{{ f(a: {}1{}) }}", "{b: ".repeat(2000), "}".repeat(2000));
        assert_eq!(scan(&q, &limits()), Err(LimitExceeded::ValueDepth(12)));
        // The same depth in a variable's default value.
        let q = format!("query($v: In = {}1{}) {{ f }}", "[".repeat(50), "]".repeat(50));
        assert_eq!(scan(&q, &limits()), Err(LimitExceeded::ValueDepth(12)));
    }

    #[test]
    fn deep_selections_are_refused() {
        let q = format!("{}{}", "{ a ".repeat(33), "}".repeat(33));
        assert_eq!(scan(&q, &limits()), Err(LimitExceeded::SelectionNesting(32)));
        let q = format!("{}{}", "{ a ".repeat(32), "}".repeat(32));
        assert_eq!(scan(&q, &limits()).unwrap().selection_nesting, 32);
    }

    #[test]
    fn unbalanced_brackets_cannot_grow_the_stack() {
        assert!(scan(&"(".repeat(100_000), &limits()).is_err());
        assert!(scan(&"{".repeat(100_000), &limits()).is_err());
        assert!(scan(&"]".repeat(100_000), &limits()).is_err(), "every byte is a token");
    }

    #[test]
    fn strings_and_comments_are_not_counted_as_structure() {
        let q =
            r#"{ f(a: "[[[[[[[[[[[[[[[[[[{{{{{{{{{", b: """ [[[[[[[[[[[[[[[[[[[ \""" [[[ """) } # [[[[[[[[[[[[[[[[[["#;
        let figures = scan(q, &limits()).unwrap();
        assert_eq!(figures.value_depth, 0);
        assert_eq!(figures.selection_nesting, 1);
        // { f ( a : "…" b : """…""" ) }
        assert_eq!(figures.tokens, 11);
    }

    #[test]
    fn the_token_count_stops_the_scan() {
        let q = format!("{{ {} }}", "a ".repeat(30_000));
        assert_eq!(scan(&q, &limits()), Err(LimitExceeded::Tokens(20_000)));
    }

    fn doubling_fragments(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }\nfragment F0 on Query { __typename }\n");
        for i in 1..=levels {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i - 1, i - 1));
        }
        q = q.replacen("...F0 }", &format!("...F{levels} }}"), 1);
        q
    }

    #[test]
    fn fragments_doubling_each_other_are_refused_in_linear_time() {
        let generous = DocumentLimits { max_fragment_depth: 100, ..limits() };
        let document = async_graphql::parser::parse_query(doubling_fragments(26)).unwrap();
        // 2^26 fields once expanded.
        assert_eq!(check_document(&document, &generous), Err(LimitExceeded::ExpandedFields(5_000)));
        assert_eq!(check_document(&document, &limits()), Err(LimitExceeded::FragmentDepth(10)));
        // 2^9 = 512 fields, chain of 10 fragments: accepted.
        let document = async_graphql::parser::parse_query(doubling_fragments(9)).unwrap();
        assert!(check_document(&document, &limits()).is_ok_and(|fields| fields >= 512));
        let document = async_graphql::parser::parse_query(doubling_fragments(12)).unwrap();
        assert!(check_document(&document, &generous).is_ok_and(|fields| fields >= 4_096), "4 096 fields");
        let document = async_graphql::parser::parse_query(doubling_fragments(13)).unwrap();
        assert_eq!(check_document(&document, &generous), Err(LimitExceeded::ExpandedFields(5_000)), "8 192 fields");
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let q = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A ...A }";
        let document = async_graphql::parser::parse_query(q).unwrap();
        assert!(matches!(check_document(&document, &limits()), Err(LimitExceeded::FragmentCycle(_))));
        let q = "{ ...A } fragment A on Query { a { ...A } }";
        let document = async_graphql::parser::parse_query(q).unwrap();
        assert!(matches!(check_document(&document, &limits()), Err(LimitExceeded::FragmentCycle(_))));
    }

    #[test]
    fn too_many_fragments_or_aliases_are_refused() {
        let mut q = String::from("{ a }");
        for i in 0..101 {
            q.push_str(&format!(" fragment F{i} on Query {{ a }}"));
        }
        let document = async_graphql::parser::parse_query(&q).unwrap();
        assert_eq!(check_document(&document, &limits()), Err(LimitExceeded::Fragments(100)));
        let aliases: String = (0..5_001).map(|i| format!("a{i}: __typename ")).collect();
        let document = async_graphql::parser::parse_query(format!("{{ {aliases} }}")).unwrap();
        assert_eq!(check_document(&document, &limits()), Err(LimitExceeded::ExpandedFields(5_000)));
    }

    #[test]
    fn variables_are_measured_without_recursion() {
        let mut value = ConstValue::Number(1.into());
        for _ in 0..100_000 {
            value = ConstValue::List(vec![value]);
        }
        let mut variables = Variables::default();
        variables.insert(async_graphql::Name::new("v"), value);
        assert_eq!(check_variables(&variables, &limits()), Err(LimitExceeded::ValueDepth(12)));
        // Drop the deep value without recursing either.
        let mut value = variables.remove("v").unwrap();
        while let ConstValue::List(mut items) = value {
            value = items.pop().unwrap_or(ConstValue::Null);
        }
        let shallow: Variables =
            Variables::from_json(serde_json::json!({ "input": { "indicators": [{ "value": 3 }] } }));
        assert_eq!(check_variables(&shallow, &limits()), Ok(()));
    }

    /// GraphiQL's introspection query (graphql-js `getIntrospectionQuery`), which must stay well within the limits.
    pub const INTROSPECTION: &str = r#"query IntrospectionQuery { __schema { queryType { name } mutationType { name }
      subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
    fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description
      args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue }
      interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef } }
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }"#;

    #[test]
    fn the_introspection_query_fits() {
        let figures = scan(INTROSPECTION, &limits()).unwrap();
        assert!(figures.tokens < 400 && figures.selection_nesting < 12, "{figures:?}");
        let document = async_graphql::parser::parse_query(INTROSPECTION).unwrap();
        assert!(check_document(&document, &limits()).is_ok());
    }
}
