//! `coFinancingStatus` on the fast read path (`selection`): the same page as the resolver (`co_financing_page`),
//! written straight to JSON. `openEscalations` (read from the database) is not among the fields: a query asking for
//! it takes the general executor.

use async_graphql::InputType;

use super::{CoFinancingFilter, co_financing_page, figure};
use crate::access::principal::Principal;
use crate::reconciled::engine;
use crate::reconciled::live::{Reconciled, RegionState};
use crate::records;
use crate::records::fast::MeasureField;
use crate::selection::Fallback;
use crate::selection::json::{self, Fields, Out, Written};
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
    json::object(out, "CoFinancingConnection", &field.selection, |out, f| {
        match f.name {
            "totalCount" => json::int(out, page.total as i64),
            "edges" => {
                let edge = Fields::compile("CoFinancingEdge", &f.selection, |e| {
                    Ok(match e.name {
                        "cursor" => EdgeField::Cursor,
                        "node" => EdgeField::Node(node_fields(&e.selection)?),
                        _ => return Err(Fallback),
                    })
                })?;
                json::array(out, page.items(), |out, (state, i)| {
                    edge.write(out, |out, e| match e {
                        EdgeField::Cursor => json::string(out, cursor(state, i)),
                        EdgeField::Node(fields) => node(out, state, i, fields),
                    })
                });
            }
            "nodes" => {
                let fields = node_fields(&f.selection)?;
                json::array(out, page.items(), |out, (state, i)| node(out, state, i, &fields));
            }
            "pageInfo" => {
                let first = page.items().next().map(|(state, i)| cursor(state, i));
                let last = page.items().last().map(|(state, i)| cursor(state, i));
                return json::object(out, "PageInfo", &f.selection, |out, p| {
                    match p.name {
                        "hasPreviousPage" => json::boolean(out, page.has_previous),
                        "hasNextPage" => json::boolean(out, page.has_next),
                        "startCursor" => json::optional_string(out, first),
                        "endCursor" => json::optional_string(out, last),
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

/// A page item's cursor: its measure's id.
fn cursor(state: &RegionState, i: usize) -> &str {
    &state.report.statuses[i].measure_id
}

enum EdgeField {
    Cursor,
    Node(Fields<NodeField>),
}

enum NodeField {
    AwaitedCofinancerCode,
    Findings(Fields<FindingField>),
    Measure(Fields<MeasureField>),
    Status,
}

enum FindingField {
    Code,
    DepartementCodes,
    Figures(Fields<FigureField>),
    Message,
    RegionCode,
    Severity,
    Subject,
    SubjectKind,
}

enum FigureField {
    Name,
    Unit,
    Value,
}

fn node_fields(selection: &[Planned<'_>]) -> Result<Fields<NodeField>, Fallback> {
    Fields::compile("CoFinancing", selection, |f| {
        Ok(match f.name {
            "awaitedCofinancerCode" => NodeField::AwaitedCofinancerCode,
            "findings" => NodeField::Findings(finding_fields(&f.selection)?),
            "measure" => NodeField::Measure(records::fast::measure_fields(&f.selection)?),
            "status" => NodeField::Status,
            _ => return Err(Fallback),
        })
    })
}

fn finding_fields(selection: &[Planned<'_>]) -> Result<Fields<FindingField>, Fallback> {
    use FindingField as F;
    Fields::compile("Finding", selection, |f| {
        Ok(match f.name {
            "code" => F::Code,
            "departementCodes" => F::DepartementCodes,
            "figures" => F::Figures(Fields::compile("Figure", &f.selection, |g| {
                Ok(match g.name {
                    "name" => FigureField::Name,
                    "unit" => FigureField::Unit,
                    "value" => FigureField::Value,
                    _ => return Err(Fallback),
                })
            })?),
            "message" => F::Message,
            "regionCode" => F::RegionCode,
            "severity" => F::Severity,
            "subject" => F::Subject,
            "subjectKind" => F::SubjectKind,
            _ => return Err(Fallback),
        })
    })
}

fn node(out: &mut Out, state: &RegionState, i: usize, fields: &Fields<NodeField>) {
    let status = &state.report.statuses[i];
    fields.write(out, |out, f| match f {
        NodeField::Status => json::enum_item(out, status.status),
        NodeField::AwaitedCofinancerCode => json::optional_string(out, status.awaited_cofinancer.as_deref()),
        NodeField::Measure(fields) => records::fast::measure(out, state.record(i), state.commitments_at(i), fields),
        NodeField::Findings(fields) => {
            json::array(out, &status.findings, |out, at| finding(out, &state.report.findings[*at], fields))
        }
    })
}

fn finding(out: &mut Out, finding: &engine::Finding, fields: &Fields<FindingField>) {
    use FindingField as F;
    fields.write(out, |out, f| match f {
        F::Code => json::string(out, finding.code),
        F::Severity => json::enum_item(out, finding.severity),
        F::SubjectKind => json::enum_item(out, finding.subject_kind),
        F::Subject => json::string(out, &finding.subject),
        F::RegionCode => json::string(out, &finding.region),
        F::DepartementCodes => json::strings(out, &finding.departements),
        F::Message => json::string(out, &finding.message),
        F::Figures(fields) => json::array(out, &finding.figures, |out, (name, value)| {
            let shown = figure(name, value);
            fields.write(out, |out, g| match g {
                FigureField::Name => json::string(out, &shown.name),
                FigureField::Value => json::string(out, &shown.value),
                FigureField::Unit => json::string(out, &shown.unit),
            })
        }),
    })
}
