//! How a GraphQL request is executed: on one of two builds of the same schema.
//!
//! async-graphql runs every field of every object through the schema's extensions as soon as there is one (a
//! registry lookup, a boxed future per extension and, in lists, a type name formatted per item). The hub's
//! extensions only act on the root fields (the policy), the parse and the validation (error codes): for the
//! dashboard's 50 measures with their commitments and findings, that machinery cost more than the answer itself.
//!
//! So the schema is built twice over the same data: **guarded** (with the policy guard, the error codes and the
//! document guard) and **plain** (no extension). A query whose every root field the policy table admits for the
//! caller (`access::policy::admit_root_field`, the same function the guard calls) runs on the plain build; if its
//! answer carries an error without a code (a validation or coercion error, which only the guarded build codes), it is
//! run again on the guarded build: a query reads, so running it twice changes nothing, and it is the rare path.
//! Everything else (mutations, subscriptions, introspection, a root field the policy refuses, a document that does
//! not parse or names an unknown operation) runs on the guarded build, which answers exactly as before.

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Request, Response};

use super::HubSchema;
use crate::access::policy::{self, admit_root_field};
use crate::access::principal::{Authentication, Role};

/// The two builds of the schema.
#[derive(Clone)]
pub struct HubExecutor {
    guarded: HubSchema,
    plain: HubSchema,
}

impl HubExecutor {
    pub fn new(guarded: HubSchema, plain: HubSchema) -> Self {
        HubExecutor { guarded, plain }
    }

    /// The guarded build: for WebSocket subscriptions and anything that is not a plain query.
    pub fn guarded(&self) -> &HubSchema {
        &self.guarded
    }

    /// Executes `request` on behalf of `authentication`.
    pub async fn execute(&self, mut request: Request, authentication: Authentication) -> Response {
        let operation_name = request.operation_name.take();
        let role = authentication.principal().map(|p| p.role);
        let plain =
            request.parsed_query().ok().is_some_and(|document| runs_plain(document, operation_name.as_deref(), role));
        request.operation_name = operation_name;
        if !plain {
            return self.guarded.execute(request.data(authentication)).await;
        }
        let mut again = Request::new(request.query.clone()).variables(request.variables.clone());
        again.introspection_mode = request.introspection_mode;
        let again = match &request.operation_name {
            Some(name) => again.operation_name(name.clone()),
            None => again,
        };
        let response = self.plain.execute(request.data(authentication.clone())).await;
        if response.errors.iter().all(|error| error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some())) {
            return response;
        }
        self.guarded.execute(again.data(authentication)).await
    }
}

/// The type of the operation `operation_name` of `document` and the names of its root fields (fragments followed);
/// None when there is no such operation or a fragment is unknown.
pub fn selected_operation<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<(OperationType, Vec<&'d str>)> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().expect("one operation")
        }
        _ => return None,
    };
    let mut fields = Vec::new();
    root_fields(document, &operation.node.selection_set.node, &mut fields, 0).then_some((operation.node.ty, fields))
}

/// Whether the operation `operation_name` of `document` is a query whose every root field the policy admits for
/// a principal of `role` (fragments followed, `@skip`/`@include` ignored: a field that might run must be admitted).
fn runs_plain(document: &ExecutableDocument, operation_name: Option<&str>, role: Option<Role>) -> bool {
    let Some((OperationType::Query, fields)) = selected_operation(document, operation_name) else { return false };
    fields.iter().all(|name| {
        (*name == "__typename" || !name.starts_with("__"))
            && admit_root_field(role, policy::OperationType::Query, name, true).is_ok()
    })
}

/// Collects the names of the root fields under `selection_set`; false when a fragment is unknown or nested deeper
/// than any valid document would nest it.
fn root_fields<'d>(
    document: &'d ExecutableDocument,
    selection_set: &'d SelectionSet,
    fields: &mut Vec<&'d str>,
    depth: usize,
) -> bool {
    if depth > document.fragments.len() + 1 {
        return false;
    }
    selection_set.items.iter().all(|selection| match &selection.node {
        Selection::Field(field) => {
            fields.push(field.node.name.node.as_str());
            true
        }
        Selection::InlineFragment(fragment) => {
            root_fields(document, &fragment.node.selection_set.node, fields, depth + 1)
        }
        Selection::FragmentSpread(spread) => match document.fragments.get(&spread.node.fragment_name.node) {
            Some(fragment) => root_fields(document, &fragment.node.selection_set.node, fields, depth + 1),
            None => false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(query: &str, operation_name: Option<&str>, role: Option<Role>) -> bool {
        let document = async_graphql::parser::parse_query(query).unwrap();
        runs_plain(&document, operation_name, role)
    }

    #[test]
    fn admitted_queries_run_plain_and_the_rest_guarded() {
        let dashboard = Some(Role::Dashboard);
        assert!(plain("{ me { role } }", None, dashboard));
        assert!(plain("query Q { a: me { role } ...F } fragment F on Query { regions { code } }", None, dashboard));
        assert!(plain("query A { me { role } } query B { regions { code } }", Some("B"), dashboard));
        // No token, a refused field (even skipped), a mutation, introspection, an unknown operation or fragment.
        assert!(!plain("{ me { role } }", None, None));
        assert!(!plain("{ me { role } verifyAuditChain @skip(if: true) { ok } }", None, dashboard));
        assert!(!plain("mutation { revokeToken(tokenId: \"t\", reason: \"r\") { tokenId } }", None, Some(Role::Admin)));
        assert!(!plain("{ __schema { queryType { name } } }", None, dashboard));
        assert!(!plain("query A { me { role } } query B { me { role } }", None, dashboard));
        assert!(!plain("{ me { role } }", Some("Other"), dashboard));
        assert!(!plain("{ ...Missing }", None, dashboard));
        assert!(!plain("{ ...A } fragment A on Query { ...A }", None, dashboard));
        assert!(!plain("{ noSuchField }", None, dashboard));
    }
}
