//! The fast read path: the usual dashboard queries (`me`, `coFinancingStatus` with its measures, commitments and
//! findings) answered straight from memory to JSON, without the general executor.
//!
//! Why: answering the regional dashboard (50 measures, ~1 000 fields) through async-graphql cost a boxed future, a
//! `Value` and an `IndexMap` entry per field, then the serialisation of that tree: about 95 % of the request. Here a
//! request is parsed by a small parser (`selection::parse`), checked against the part of the schema answered here as
//! validation would (`selection::plan`), and each capability writes its fields (`auth::fast`, `reconciliation::fast`,
//! `records::fast`). Anything else — another field, a directive, an argument the resolver would refuse, a document
//! validation would refuse — gives `NotFast` and takes the general executor, which answers or reports exactly as
//! before; tests/it/fast_reads.rs checks that both paths give the same bytes.

use axum::body::Bytes;

use super::limits::{self, DocumentLimits};
use crate::access::policy::{self, admit_root_field};
use crate::access::principal::Principal;
use crate::reconciled::live::Reconciled;
use crate::selection::json::Out;
use crate::selection::plan::{self, Bounds, Plan, TypeDef, Types};
use crate::selection::{Fallback, parse};

/// The root fields answered here.
static QUERY: TypeDef =
    TypeDef { name: "Query", fields: &[crate::auth::fast::ME, crate::reconciliation::fast::CO_FINANCING_STATUS] };

/// The fast path's schema and bounds.
pub struct FastReads {
    types: Types,
    bounds: Bounds,
    limits: DocumentLimits,
}

/// What became of a request on the fast path.
pub enum Outcome {
    /// The general executor answers it.
    NotFast,
    /// Refused before execution by `charge` (its rate limit).
    Refused(axum::response::Response),
    /// The answer's bytes, and the operation's name for the metrics.
    Answered { body: Bytes, operation_name: Option<String> },
}

impl FastReads {
    pub fn new(bounds: Bounds, limits: DocumentLimits) -> FastReads {
        let mut types: Vec<&'static TypeDef> = vec![&QUERY];
        types.extend(crate::auth::fast::TYPES);
        types.extend(crate::reconciliation::fast::TYPES);
        types.extend(crate::records::fast::TYPES);
        FastReads { types: Types::new(&types), bounds, limits }
    }

    /// The root fields and types answered here (for the tests that compare them with the schema).
    pub fn types(&self) -> &Types {
        &self.types
    }

    /// Answers `request` for `principal` when it is a query of the fast subset; `charge` is given the number of
    /// fields the query expands to before anything is computed, and may refuse it.
    pub async fn answer(
        &self,
        request: &async_graphql::Request,
        principal: &Principal,
        reconciled: &Reconciled,
        charge: impl FnOnce(u64) -> Option<axum::response::Response>,
    ) -> Outcome {
        // The document limits and the text checks first, as the general path applies them; a refusal is its to say.
        if limits::scan(&request.query, &self.limits).is_err()
            || limits::check_variables(&request.variables, &self.limits).is_err()
            || super::input_text::check_variables(&request.variables).is_err()
            // A NUL written as an escape in a string: refused by the general path's text check.
            || request.query.contains("\\u0000")
        {
            return Outcome::NotFast;
        }
        let Some(document) = parse::parse(&request.query) else { return Outcome::NotFast };
        let Some(plan) = plan::plan(
            &document,
            request.operation_name.as_deref(),
            &request.variables,
            &self.types,
            &QUERY,
            self.bounds,
        ) else {
            return Outcome::NotFast;
        };
        if plan.field_count > self.limits.max_expanded_fields {
            return Outcome::NotFast;
        }
        let role = Some(principal.role);
        if !plan.fields.iter().all(|f| {
            f.name == "__typename" || admit_root_field(role, policy::OperationType::Query, f.name, true).is_ok()
        }) {
            return Outcome::NotFast;
        }
        if let Some(refused) = charge(plan.field_count as u64) {
            return Outcome::Refused(refused);
        }
        match write(&plan, principal, reconciled).await {
            Ok(body) => {
                Outcome::Answered { body: Bytes::from(body), operation_name: plan.operation_name.map(str::to_owned) }
            }
            Err(Fallback) => Outcome::NotFast,
        }
    }
}

async fn write(plan: &Plan<'_>, principal: &Principal, reconciled: &Reconciled) -> Result<Out, Fallback> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"data\":{");
    for (i, field) in plan.fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(field.key.as_bytes());
        out.extend_from_slice(b"\":");
        match field.name {
            "__typename" => out.extend_from_slice(b"\"Query\""),
            "me" => crate::auth::fast::me(&mut out, principal, field)?,
            "coFinancingStatus" => {
                crate::reconciliation::fast::co_financing_status(&mut out, reconciled, principal, field).await?
            }
            _ => return Err(Fallback),
        }
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of the fast subset is a field of the schema, returning the same object type; every argument is
    /// one of the field's, of the same type.
    #[test]
    fn the_fast_subset_is_a_part_of_the_schema() {
        let schema = crate::graphql::schema_builder().finish();
        let fast = FastReads::new(Bounds { max_depth: 15, max_complexity: 10_000 }, DocumentLimits::default());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let named = |ty: &serde_json::Value| -> String {
            let mut ty = ty;
            while ty["name"].is_null() {
                ty = &ty["ofType"];
            }
            ty["name"].as_str().unwrap().to_owned()
        };
        let mut checked = 0;
        for def in fast.types().all() {
            let query = format!(
                r#"{{ __type(name: "{}") {{ fields {{ name args {{ name type {{ name kind ofType {{ name kind ofType {{ name }} }} }} }} type {{ name kind ofType {{ name kind ofType {{ name kind ofType {{ name kind }} }} }} }} }} }} }}"#,
                def.name
            );
            let answer = runtime.block_on(schema.execute(query)).data.into_json().unwrap();
            let fields = answer["__type"]["fields"].as_array().unwrap_or_else(|| panic!("{} is not a type", def.name));
            for field in def.fields {
                let found = fields
                    .iter()
                    .find(|f| f["name"] == field.name)
                    .unwrap_or_else(|| panic!("{}.{} is not in the schema", def.name, field.name));
                let kind = {
                    let mut ty = &found["type"];
                    while ty["name"].is_null() {
                        ty = &ty["ofType"];
                    }
                    ty["kind"].as_str().unwrap().to_owned()
                };
                match field.object {
                    Some(object) => assert_eq!(named(&found["type"]), object, "{}.{}", def.name, field.name),
                    None => assert!(kind == "SCALAR" || kind == "ENUM", "{}.{} is a leaf", def.name, field.name),
                }
                for arg in field.args {
                    let schema_arg = found["args"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["name"] == arg.name)
                        .unwrap_or_else(|| panic!("{}.{}({})", def.name, field.name, arg.name));
                    let expected = match arg.ty {
                        plan::InputTy::Scalar(n) | plan::InputTy::Enum(n) | plan::InputTy::Object(n, _) => n,
                    };
                    assert_eq!(named(&schema_arg["type"]), expected, "{}.{}({})", def.name, field.name, arg.name);
                    assert_eq!(
                        schema_arg["type"]["kind"] == "NON_NULL",
                        arg.non_null,
                        "{}.{}({})",
                        def.name,
                        field.name,
                        arg.name
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 60, "{checked} fields checked");
    }
}
