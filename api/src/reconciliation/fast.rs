//! `coFinancingStatus` on the fast read path (`selection`): the same page as the resolver (`co_financing_page`),
//! written straight to JSON. `openEscalations` (read from the database) is not among the fields: a query asking for
//! it takes the general executor.

use async_graphql::InputType;

use super::{CoFinancingFilter, co_financing_page, figure};
use crate::access::principal::Principal;
use crate::reconciled::engine;
use crate::reconciled::live::Reconciled;
use crate::records;
use crate::selection::Fallback;
use crate::selection::json::{self, Out, Written};
use crate::selection::plan::{ArgDef, FieldDef, InputTy, Planned, TypeDef};

static FILTER: &[ArgDef] = &[
    ArgDef { name: "awaitingCofinancerCode", ty: InputTy::Scalar("String"), non_null: false },
    ArgDef { name: "categoryCode", ty: InputTy::Scalar("String"), non_null: false },
    ArgDef { name: "departementCode", ty: InputTy::Scalar("String"), non_null: false },
    ArgDef { name: "regionCode", ty: InputTy::Scalar("String"), non_null: false },
    ArgDef { name: "status", ty: InputTy::Enum("CoFinancingStatus"), non_null: false },
    ArgDef { name: "year", ty: InputTy::Scalar("Int"), non_null: false },
];

/// The root field, as the `Query` type of the fast subset lists it.
pub const CO_FINANCING_STATUS: FieldDef = FieldDef {
    name: "coFinancingStatus",
    object: Some("CoFinancingConnection"),
    args: &[
        ArgDef { name: "filter", ty: InputTy::Object("CoFinancingFilter", FILTER), non_null: false },
        ArgDef { name: "first", ty: InputTy::Scalar("Int"), non_null: false },
        ArgDef { name: "after", ty: InputTy::Scalar("String"), non_null: false },
    ],
};

static CONNECTION: TypeDef = TypeDef {
    name: "CoFinancingConnection",
    fields: &[
        FieldDef::object("edges", "CoFinancingEdge"),
        FieldDef::object("nodes", "CoFinancing"),
        FieldDef::object("pageInfo", "PageInfo"),
        FieldDef::leaf("totalCount"),
    ],
};

static EDGE: TypeDef =
    TypeDef { name: "CoFinancingEdge", fields: &[FieldDef::leaf("cursor"), FieldDef::object("node", "CoFinancing")] };

static PAGE_INFO: TypeDef = TypeDef {
    name: "PageInfo",
    fields: &[
        FieldDef::leaf("endCursor"),
        FieldDef::leaf("hasNextPage"),
        FieldDef::leaf("hasPreviousPage"),
        FieldDef::leaf("startCursor"),
    ],
};

static CO_FINANCING: TypeDef = TypeDef {
    name: "CoFinancing",
    fields: &[
        FieldDef::leaf("awaitedCofinancerCode"),
        FieldDef::object("findings", "Finding"),
        FieldDef::object("measure", "Measure"),
        FieldDef::leaf("status"),
    ],
};

static FINDING: TypeDef = TypeDef {
    name: "Finding",
    fields: &[
        FieldDef::leaf("code"),
        FieldDef::leaf("departementCodes"),
        FieldDef::object("figures", "Figure"),
        FieldDef::leaf("message"),
        FieldDef::leaf("regionCode"),
        FieldDef::leaf("severity"),
        FieldDef::leaf("subject"),
        FieldDef::leaf("subjectKind"),
    ],
};

static FIGURE: TypeDef =
    TypeDef { name: "Figure", fields: &[FieldDef::leaf("name"), FieldDef::leaf("unit"), FieldDef::leaf("value")] };

/// The types written here (the measure's are `records::fast`'s).
pub static TYPES: [&TypeDef; 6] = [&CONNECTION, &EDGE, &PAGE_INFO, &CO_FINANCING, &FINDING, &FIGURE];

/// An argument as the resolver would receive it; a value it would refuse takes the general path, which says why.
fn argument<T: InputType>(field: &Planned<'_>, name: &str) -> Result<Option<T>, Fallback> {
    match field.argument(name) {
        None => Ok(None),
        Some(value) => Option::<T>::parse(Some(value.clone())).map_err(|_| Fallback),
    }
}

/// Answers `coFinancingStatus` for `principal`; an error the resolver would report (a territory outside the
/// reader's, a page too large) takes the general path.
pub async fn co_financing_status(
    out: &mut Out,
    reconciled: &Reconciled,
    principal: &Principal,
    field: &Planned<'_>,
) -> Written {
    let filter = argument::<CoFinancingFilter>(field, "filter")?.unwrap_or_default();
    let first = argument::<i32>(field, "first")?;
    let after = argument::<String>(field, "after")?;
    let page = co_financing_page(reconciled, principal, filter, first, after).await.map_err(|_| Fallback)?;
    let cursor = |state: &crate::reconciled::live::RegionState, i: usize| state.report.statuses[i].measure_id.clone();
    json::object(out, "CoFinancingConnection", &field.selection, |out, f| {
        match f.name {
            "totalCount" => json::int(out, page.total as i64),
            "edges" => {
                return json::list(out, page.items(), |out, (state, i)| {
                    json::object(out, "CoFinancingEdge", &f.selection, |out, e| {
                        match e.name {
                            "cursor" => json::string(out, &cursor(state, i)),
                            "node" => return node(out, state, i, &e.selection),
                            _ => return Err(Fallback),
                        }
                        Ok(())
                    })
                });
            }
            "nodes" => return json::list(out, page.items(), |out, (state, i)| node(out, state, i, &f.selection)),
            "pageInfo" => {
                let first = page.items().next().map(|(state, i)| cursor(state, i));
                let last = page.items().last().map(|(state, i)| cursor(state, i));
                return json::object(out, "PageInfo", &f.selection, |out, p| {
                    match p.name {
                        "hasPreviousPage" => json::boolean(out, page.has_previous),
                        "hasNextPage" => json::boolean(out, page.has_next),
                        "startCursor" => json::optional_string(out, first.as_deref()),
                        "endCursor" => json::optional_string(out, last.as_deref()),
                        _ => return Err(Fallback),
                    }
                    Ok(())
                });
            }
            _ => return Err(Fallback),
        }
        Ok(())
    })
}

fn node(out: &mut Out, state: &crate::reconciled::live::RegionState, i: usize, selection: &[Planned<'_>]) -> Written {
    let status = &state.report.statuses[i];
    json::object(out, "CoFinancing", selection, |out, f| {
        match f.name {
            "status" => json::enum_item(out, status.status),
            "awaitedCofinancerCode" => json::optional_string(out, status.awaited_cofinancer.as_deref()),
            "measure" => {
                let m = state.record(i);
                let commitments = state.commitments_of(&m.id).unwrap_or_default();
                return records::fast::measure(out, m, commitments, &f.selection);
            }
            "findings" => {
                return json::list(out, &status.findings, |out, at| {
                    finding(out, &state.report.findings[*at], &f.selection)
                });
            }
            _ => return Err(Fallback),
        }
        Ok(())
    })
}

fn finding(out: &mut Out, finding: &engine::Finding, selection: &[Planned<'_>]) -> Written {
    json::object(out, "Finding", selection, |out, f| {
        match f.name {
            "code" => json::string(out, finding.code),
            "severity" => json::enum_item(out, finding.severity),
            "subjectKind" => json::enum_item(out, finding.subject_kind),
            "subject" => json::string(out, &finding.subject),
            "regionCode" => json::string(out, &finding.region),
            "departementCodes" => json::strings(out, &finding.departements),
            "message" => json::string(out, &finding.message),
            "figures" => {
                return json::list(out, &finding.figures, |out, (name, value)| {
                    let shown = figure(name, value);
                    json::object(out, "Figure", &f.selection, |out, g| {
                        match g.name {
                            "name" => json::string(out, &shown.name),
                            "value" => json::string(out, &shown.value),
                            "unit" => json::string(out, &shown.unit),
                            _ => return Err(Fallback),
                        }
                        Ok(())
                    })
                });
            }
            _ => return Err(Fallback),
        }
        Ok(())
    })
}
