//! Authorization: one declarative table (role × resource × action → reach), deny by default, consulted for every
//! root field of every query, mutation and subscription by [`PolicyGuard`]. Territory restrictions are then applied
//! by the services as predicates of their SQL queries, from the principal's [`Scope`](super::principal::Scope).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{ErrorExtensions, ServerResult, Value};

use super::principal::{Authentication, Principal, Role};
use crate::error::code;

/// What an operation touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Territories, institutions' identity, the annex, categories, financing rules, orientation codes.
    ReferenceData,
    /// The caller's own identity (`me`).
    OwnIdentity,
    /// The token deny-list and institutions' suspension.
    AccessControl,
    /// Programming measures of the ARS.
    Measure,
    /// Funders' commitments on measures.
    Commitment,
    /// MDPH needs indicators (counts of people: masked outside the producer and the CNSA).
    Needs,
    /// Rectorats' school-support plans.
    SchoolPlan,
    /// CNSA campaigns and who submitted what for them.
    Campaign,
    /// Audit records.
    AuditTrail,
    /// Verification of the whole audit chain.
    AuditIntegrity,
    /// Submitting a spreadsheet; the kind of data it holds is then checked against its own resource.
    FileImport,
    /// Per-measure co-financing status and its findings.
    CoFinancing,
    /// Envelopes' use and every finding of a territory.
    Reconciliation,
    /// Webhook subscriptions and their deliveries (an institution's own; the operator's all).
    Webhook,
    /// Sending dead webhook deliveries again (the operator).
    WebhookReplay,
    /// Sources the hub pulls data from, and their runs (an institution's own; the operator's all, registered on
    /// an institution's behalf).
    PullSource,
    /// Escalations to the national level and their threads: read, and answered, within one's territory.
    Escalation,
    /// Opening an escalation, asking for a national intervention, withdrawing it (the ARS).
    EscalationRaise,
    /// Settling an escalation (the CNSA).
    EscalationDecision,
    /// The steering figures: trajectory, drawing rights, installation forecasts (read).
    SteeringFigures,
    /// The CNSA's projected trajectory and drawing rights (write).
    NationalCredits,
    /// An ARS's forecast of installations and CP (write).
    InstallationForecast,
    /// The national steering committee's pack.
    SteeringReport,
}

impl Resource {
    pub const ALL: &'static [Resource] = &[
        Resource::ReferenceData,
        Resource::OwnIdentity,
        Resource::AccessControl,
        Resource::Measure,
        Resource::Commitment,
        Resource::Needs,
        Resource::SchoolPlan,
        Resource::Campaign,
        Resource::AuditTrail,
        Resource::AuditIntegrity,
        Resource::FileImport,
        Resource::CoFinancing,
        Resource::Reconciliation,
        Resource::Webhook,
        Resource::WebhookReplay,
        Resource::PullSource,
        Resource::Escalation,
        Resource::EscalationRaise,
        Resource::EscalationDecision,
        Resource::SteeringFigures,
        Resource::NationalCredits,
        Resource::InstallationForecast,
        Resource::SteeringReport,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Write,
}

impl Action {
    pub const ALL: &'static [Action] = &[Action::Read, Action::Write];
}

/// How far an allowed role reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// Every object, nationally.
    Everything,
    /// Objects of the principal's own territory (region, collectivité's départements, département, académie).
    OwnTerritory,
    /// Aggregates of the principal's territory only, small counts masked.
    AggregatesOnly,
}

use Action::*;
use Reach::*;
use Resource::*;
use Role::*;

/// The policy. A (role, resource, action) absent from this table is denied.
pub const POLICY: &[(Role, Resource, Action, Reach)] = &[
    // Reference data is public knowledge of the plan: every authenticated principal reads all of it.
    (Cnsa, ReferenceData, Read, Everything),
    (Ars, ReferenceData, Read, Everything),
    (Collectivite, ReferenceData, Read, Everything),
    (Mdph, ReferenceData, Read, Everything),
    (Rectorat, ReferenceData, Read, Everything),
    (Dashboard, ReferenceData, Read, Everything),
    (Admin, ReferenceData, Read, Everything),
    (Cnsa, OwnIdentity, Read, OwnTerritory),
    (Ars, OwnIdentity, Read, OwnTerritory),
    (Collectivite, OwnIdentity, Read, OwnTerritory),
    (Mdph, OwnIdentity, Read, OwnTerritory),
    (Rectorat, OwnIdentity, Read, OwnTerritory),
    (Dashboard, OwnIdentity, Read, OwnTerritory),
    (Admin, OwnIdentity, Read, OwnTerritory),
    // Only the hub's operator revokes tokens and suspends institutions.
    (Admin, AccessControl, Write, Everything),
    // Measures: the ARS programmes its region; the CNSA reads all; each other institution reads its territory's.
    (Cnsa, Measure, Read, Everything),
    (Ars, Measure, Read, OwnTerritory),
    (Collectivite, Measure, Read, OwnTerritory),
    (Mdph, Measure, Read, OwnTerritory),
    (Rectorat, Measure, Read, OwnTerritory),
    (Ars, Measure, Write, OwnTerritory),
    // Commitments: each funder enters its own view, the ARS for assurance maladie, the collectivité for itself.
    (Ars, Commitment, Write, OwnTerritory),
    (Collectivite, Commitment, Write, OwnTerritory),
    // Needs are counts of people: written by the MDPH, read in detail only by it and the CNSA. Others will see
    // them aggregated and masked (cells of 1 to 10) through reconciliation's needs coverage.
    (Mdph, Needs, Write, OwnTerritory),
    (Cnsa, Needs, Read, Everything),
    (Mdph, Needs, Read, OwnTerritory),
    // School-support plans: written by the rectorat, read by it, its region's ARS and the CNSA.
    (Rectorat, SchoolPlan, Write, OwnTerritory),
    (Cnsa, SchoolPlan, Read, Everything),
    (Ars, SchoolPlan, Read, OwnTerritory),
    (Rectorat, SchoolPlan, Read, OwnTerritory),
    // Campaigns: declared by the CNSA; everyone sees them and where its own territory stands.
    (Cnsa, Campaign, Write, Everything),
    (Cnsa, Campaign, Read, Everything),
    (Admin, Campaign, Read, Everything),
    (Ars, Campaign, Read, OwnTerritory),
    (Collectivite, Campaign, Read, OwnTerritory),
    (Mdph, Campaign, Read, OwnTerritory),
    (Rectorat, Campaign, Read, OwnTerritory),
    // Audit: the CNSA and the operator see everything; an institution sees its own records.
    (Cnsa, AuditTrail, Read, Everything),
    (Admin, AuditTrail, Read, Everything),
    (Ars, AuditTrail, Read, OwnTerritory),
    (Collectivite, AuditTrail, Read, OwnTerritory),
    (Mdph, AuditTrail, Read, OwnTerritory),
    (Rectorat, AuditTrail, Read, OwnTerritory),
    (Cnsa, AuditIntegrity, Read, Everything),
    (Admin, AuditIntegrity, Read, Everything),
    // Spreadsheets: every institution that submits data may send it as a file.
    (Ars, FileImport, Write, OwnTerritory),
    (Collectivite, FileImport, Write, OwnTerritory),
    (Mdph, FileImport, Write, OwnTerritory),
    (Rectorat, FileImport, Write, OwnTerritory),
    // The CNSA's trajectory and drawing rights come as spreadsheets too.
    (Cnsa, FileImport, Write, Everything),
    // Reconciliation: the CNSA sees the country, the ARS its region, the collectivité its départements' measures,
    // the MDPH its département's needs coverage, the rectorat its académie's school matching; a dashboard gets the
    // aggregates only. Counts of people are masked for all but the CNSA and the producing MDPH.
    (Cnsa, CoFinancing, Read, Everything),
    (Ars, CoFinancing, Read, OwnTerritory),
    (Collectivite, CoFinancing, Read, OwnTerritory),
    (Cnsa, Reconciliation, Read, Everything),
    (Ars, Reconciliation, Read, OwnTerritory),
    (Collectivite, Reconciliation, Read, OwnTerritory),
    (Mdph, Reconciliation, Read, OwnTerritory),
    (Rectorat, Reconciliation, Read, OwnTerritory),
    (Dashboard, Reconciliation, Read, AggregatesOnly),
    // Webhooks are an institution's own settings: each sees and changes its own; the operator sees all, replays.
    (Cnsa, Webhook, Read, OwnTerritory),
    (Ars, Webhook, Read, OwnTerritory),
    (Collectivite, Webhook, Read, OwnTerritory),
    (Mdph, Webhook, Read, OwnTerritory),
    (Rectorat, Webhook, Read, OwnTerritory),
    (Admin, Webhook, Read, Everything),
    (Cnsa, Webhook, Write, OwnTerritory),
    (Ars, Webhook, Write, OwnTerritory),
    (Collectivite, Webhook, Write, OwnTerritory),
    (Mdph, Webhook, Write, OwnTerritory),
    (Rectorat, Webhook, Write, OwnTerritory),
    (Admin, WebhookReplay, Write, Everything),
    // Pull sources: the institutions that submit data register their systems' endpoints; the operator any.
    (Ars, PullSource, Read, OwnTerritory),
    (Collectivite, PullSource, Read, OwnTerritory),
    (Mdph, PullSource, Read, OwnTerritory),
    (Rectorat, PullSource, Read, OwnTerritory),
    (Admin, PullSource, Read, Everything),
    (Ars, PullSource, Write, OwnTerritory),
    (Collectivite, PullSource, Write, OwnTerritory),
    (Mdph, PullSource, Write, OwnTerritory),
    (Rectorat, PullSource, Write, OwnTerritory),
    (Admin, PullSource, Write, Everything),
    // Escalations: "ARS report to the national level every difficulty in the cooperation with the collectivités";
    // the collectivité concerned and the CNSA answer; the CNSA settles; the operator reads.
    (Ars, Escalation, Read, OwnTerritory),
    (Collectivite, Escalation, Read, OwnTerritory),
    (Cnsa, Escalation, Read, Everything),
    (Admin, Escalation, Read, Everything),
    (Ars, Escalation, Write, OwnTerritory),
    (Collectivite, Escalation, Write, OwnTerritory),
    (Cnsa, Escalation, Write, Everything),
    (Ars, EscalationRaise, Write, OwnTerritory),
    (Cnsa, EscalationDecision, Write, Everything),
    // Steering figures (circular §5): the CNSA projects the trajectory and sets drawing rights; each ARS forecasts
    // its installations and reads its region's figures; the committee's pack is the CNSA's (an ARS gets its region).
    (Cnsa, SteeringFigures, Read, Everything),
    (Admin, SteeringFigures, Read, Everything),
    (Ars, SteeringFigures, Read, OwnTerritory),
    (Cnsa, NationalCredits, Write, Everything),
    (Ars, InstallationForecast, Write, OwnTerritory),
    (Cnsa, SteeringReport, Read, Everything),
    (Ars, SteeringReport, Read, OwnTerritory),
];

/// The reach of the principal, or `FORBIDDEN`: services call it to build their territory predicates.
pub fn require(principal: &Principal, resource: Resource, action: Action) -> Result<Reach, crate::error::ApiError> {
    reach(principal.role, resource, action).ok_or_else(|| {
        crate::error::ApiError::Forbidden(format!("le rôle {} ne permet pas cette opération", principal.role.as_str()))
    })
}

pub fn reach(role: Role, resource: Resource, action: Action) -> Option<Reach> {
    POLICY
        .iter()
        .find(|(r, res, act, _)| *r == role && *res == resource && *act == action)
        .map(|(_, _, _, reach)| *reach)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationType {
    Query,
    Mutation,
    Subscription,
}

/// A root field of the schema and what it touches.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    pub operation_type: OperationType,
    pub field: &'static str,
    pub resource: Resource,
    pub action: Action,
}

const fn query(field: &'static str, resource: Resource) -> Operation {
    Operation { operation_type: OperationType::Query, field, resource, action: Read }
}

const fn mutation(field: &'static str, resource: Resource) -> Operation {
    Operation { operation_type: OperationType::Mutation, field, resource, action: Write }
}

const fn subscription(field: &'static str, resource: Resource) -> Operation {
    Operation { operation_type: OperationType::Subscription, field, resource, action: Read }
}

/// Every root field. A field missing here is refused at run time, and the authorization test fails.
pub const OPERATIONS: &[Operation] = &[
    query("regions", ReferenceData),
    query("region", ReferenceData),
    query("departement", ReferenceData),
    query("departements", ReferenceData),
    query("academies", ReferenceData),
    query("academie", ReferenceData),
    query("collectivites", ReferenceData),
    query("envelopes", ReferenceData),
    query("annexIntegrity", ReferenceData),
    query("annexWeightIntegrity", ReferenceData),
    query("categories", ReferenceData),
    query("financingRules", ReferenceData),
    query("orientationCodes", ReferenceData),
    query("me", OwnIdentity),
    query("measures", Measure),
    query("measure", Measure),
    query("needs", Needs),
    query("schoolPlans", SchoolPlan),
    query("campaigns", Campaign),
    query("campaignStatus", Campaign),
    query("auditTrail", AuditTrail),
    query("verifyAuditChain", AuditIntegrity),
    query("coFinancingStatus", CoFinancing),
    query("reconciliation", Reconciliation),
    // Federation: each entity's resolver applies its own resource's policy (a Measure needs Measure/Read).
    query("_entities", ReferenceData),
    query("webhookSubscriptions", Webhook),
    query("webhookDeliveries", Webhook),
    query("pullSources", PullSource),
    query("pullRuns", PullSource),
    query("escalations", Escalation),
    query("escalation", Escalation),
    subscription("coFinancingStatusChanged", CoFinancing),
    subscription("escalationChanged", Escalation),
    mutation("upsertMeasure", Measure),
    mutation("commit", Commitment),
    mutation("withdrawCommitment", Commitment),
    mutation("submitNeeds", Needs),
    mutation("submitSchoolPlans", SchoolPlan),
    mutation("declareCampaign", Campaign),
    mutation("importFile", FileImport),
    mutation("revokeToken", AccessControl),
    mutation("suspendInstitution", AccessControl),
    mutation("reinstateInstitution", AccessControl),
    mutation("setInstitutionSiret", AccessControl),
    mutation("subscribeWebhook", Webhook),
    mutation("cancelWebhookSubscription", Webhook),
    mutation("replayWebhookDeliveries", WebhookReplay),
    mutation("registerPullSource", PullSource),
    mutation("pullSourceNow", PullSource),
    mutation("pausePullSource", PullSource),
    mutation("resumePullSource", PullSource),
    mutation("escalate", EscalationRaise),
    mutation("postEscalationMessage", Escalation),
    mutation("requestNationalIntervention", EscalationRaise),
    mutation("withdrawEscalation", EscalationRaise),
    mutation("resolveEscalation", EscalationDecision),
    query("steeringFigures", SteeringFigures),
    query("steeringReport", SteeringReport),
    mutation("submitTrajectory", NationalCredits),
    mutation("setDrawingRights", NationalCredits),
    mutation("submitInstallationForecast", InstallationForecast),
];

pub fn operation(operation_type: OperationType, field: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.operation_type == operation_type && op.field == field)
}

fn coded(message: &str, value: &'static str) -> async_graphql::ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, ext| ext.set("code", value))
        .into_server_error(Default::default())
}

/// The principal of the request, or `UNAUTHENTICATED`.
pub fn principal<'a>(ctx: &async_graphql::Context<'a>) -> Result<&'a Principal, async_graphql::Error> {
    ctx.data_opt::<Authentication>().and_then(Authentication::principal).ok_or_else(|| {
        async_graphql::Error::new("authentification requise")
            .extend_with(|_, ext| ext.set("code", code::UNAUTHENTICATED))
    })
}

/// Checks every root field against the policy before it runs.
pub struct PolicyGuard {
    /// In production, introspection needs a token too.
    pub introspection_needs_token: bool,
}

impl ExtensionFactory for PolicyGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PolicyGuard { introspection_needs_token: self.introspection_needs_token })
    }
}

/// What the policy table says of a root field asked by a principal of `role` (`None`: no token): `Ok` to run it, or the refusal (without its
/// path). `__typename` and introspection are not operations; introspection needs a token when
/// `introspection_needs_token`. Consulted by [`PolicyGuard`] while a document executes and by the executor before it
/// chooses how to run one (`graphql::executor`).
pub fn admit_root_field(
    role: Option<Role>,
    operation_type: OperationType,
    name: &str,
    introspection_needs_token: bool,
) -> Result<(), async_graphql::ServerError> {
    if name == "__typename" {
        return Ok(());
    }
    // `_service { sdl }` is the federation router's introspection, admitted as introspection is.
    if name.starts_with("__") || name == "_service" {
        if introspection_needs_token && role.is_none() {
            return Err(coded("l'introspection du schéma demande un jeton", code::UNAUTHENTICATED));
        }
        return Ok(());
    }
    let Some(op) = operation(operation_type, name) else {
        tracing::error!(field = name, "root field without a policy entry: denied");
        return Err(coded("opération non autorisée", code::FORBIDDEN));
    };
    let Some(role) = role else {
        return Err(coded(
            "authentification requise : envoyez « Authorization: Bearer <jeton> »",
            code::UNAUTHENTICATED,
        ));
    };
    if reach(role, op.resource, op.action).is_none() {
        return Err(coded(
            &format!("le rôle {} ne permet pas l'opération {}", role.as_str(), op.field),
            code::FORBIDDEN,
        ));
    }
    Ok(())
}

#[async_graphql::async_trait::async_trait]
impl Extension for PolicyGuard {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        // Subscription root fields come through here too, under the name of the capability's subscription type.
        let operation_type = match info.parent_type {
            "Mutation" => OperationType::Mutation,
            name if name.ends_with("Subscription") => OperationType::Subscription,
            _ => OperationType::Query,
        };
        let role = ctx.data_opt::<Authentication>().and_then(Authentication::principal).map(|p| p.role);
        if let Err(mut err) = admit_root_field(role, operation_type, info.name, self.introspection_needs_token) {
            err.path = vec![async_graphql::PathSegment::Field(info.alias.unwrap_or(info.name).to_owned())];
            err.locations = vec![info.field.name.pos];
            return Err(err);
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_by_default() {
        assert_eq!(reach(Dashboard, AccessControl, Write), None);
        assert_eq!(reach(Ars, AccessControl, Write), None);
        assert_eq!(reach(Admin, AccessControl, Write), Some(Everything));
    }
}
