//! Who is calling: an institution, the role it acts in, the territory it answers for, and the agent or service
//! account behind the token. Roles and territories are the hub's, derived from the institutions table, never taken
//! from the identity provider.

use async_graphql::Enum;
use entities::institution;

use crate::territory::service::Catalog;
use crate::vocabulary::InstitutionKind;

/// The role a principal acts in (DOMAIN.md §2).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// National: writes envelopes, rules and campaigns; reads everything.
    Cnsa,
    /// A regional health agency: its region's measures and commitments.
    Ars,
    /// A collectivité with departmental powers: its co-financing commitments on its départements.
    Collectivite,
    /// A maison départementale des personnes handicapées: needs indicators of its département.
    Mdph,
    /// A rectorat: school-support plans of its académie.
    Rectorat,
    /// A read-only dashboard: aggregates of its scope only, small counts masked.
    Dashboard,
    /// The hub's operator: institutions, tokens' trust, reference data, audit.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] =
        [Role::Cnsa, Role::Ars, Role::Collectivite, Role::Mdph, Role::Rectorat, Role::Dashboard, Role::Admin];

    /// The role an institution acts in by default.
    pub fn of_institution(kind: InstitutionKind) -> Role {
        match kind {
            InstitutionKind::Cnsa => Role::Cnsa,
            InstitutionKind::Ars => Role::Ars,
            InstitutionKind::Collectivite => Role::Collectivite,
            InstitutionKind::Mdph => Role::Mdph,
            InstitutionKind::Rectorat => Role::Rectorat,
            InstitutionKind::Operateur => Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cnsa => "cnsa",
            Role::Ars => "ars",
            Role::Collectivite => "collectivite",
            Role::Mdph => "mdph",
            Role::Rectorat => "rectorat",
            Role::Dashboard => "dashboard",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// The level of a territorial scope.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeLevel {
    National,
    Region,
    /// The départements of a collectivité (two for Corsica and Alsace).
    Collectivite,
    Departement,
    /// The départements of an académie.
    Academie,
}

/// The territory a principal answers for. Territory filters are built from it as SQL predicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub level: ScopeLevel,
    /// Region, collectivité, département or académie code; None for national.
    pub code: Option<String>,
    /// Regions the scope touches (empty for national: no restriction).
    pub region_codes: Vec<String>,
    /// Départements the scope covers (empty for national and regional scopes, where the region is the filter).
    pub departement_codes: Vec<String>,
}

impl Scope {
    pub fn national() -> Scope {
        Scope { level: ScopeLevel::National, code: None, region_codes: vec![], departement_codes: vec![] }
    }

    pub fn is_national(&self) -> bool {
        self.level == ScopeLevel::National
    }

    /// Derives the scope of an institution from its kind and territory, using the territorial catalog.
    pub fn of_institution(kind: InstitutionKind, territory: Option<&str>, catalog: &Catalog) -> Option<Scope> {
        let code = territory.map(str::to_owned);
        match kind {
            InstitutionKind::Cnsa | InstitutionKind::Operateur => Some(Scope::national()),
            InstitutionKind::Ars => {
                let region = catalog.region(territory?)?;
                Some(Scope {
                    level: ScopeLevel::Region,
                    code,
                    region_codes: vec![region.code.clone()],
                    departement_codes: vec![],
                })
            }
            InstitutionKind::Collectivite => {
                let collectivite = catalog.collectivite(territory?)?;
                let departements: Vec<_> = catalog.departements_of_collectivite(&collectivite.code).collect();
                let mut regions: Vec<String> = departements.iter().map(|d| d.region_code.clone()).collect();
                regions.sort();
                regions.dedup();
                Some(Scope {
                    level: ScopeLevel::Collectivite,
                    code,
                    region_codes: regions,
                    departement_codes: departements.iter().map(|d| d.code.clone()).collect(),
                })
            }
            InstitutionKind::Mdph => {
                let departement = catalog.departement(territory?)?;
                Some(Scope {
                    level: ScopeLevel::Departement,
                    code,
                    region_codes: vec![departement.region_code.clone()],
                    departement_codes: vec![departement.code.clone()],
                })
            }
            InstitutionKind::Rectorat => {
                let academie = catalog.academie(territory?)?;
                Some(Scope {
                    level: ScopeLevel::Academie,
                    code,
                    region_codes: vec![academie.region_code.clone()],
                    departement_codes: catalog
                        .departements_of_academie(&academie.code)
                        .map(|d| d.code.clone())
                        .collect(),
                })
            }
        }
    }

    /// Whether the scope covers a region as a whole (national, or that region's ARS).
    pub fn covers_region(&self, region: &str) -> bool {
        match self.level {
            ScopeLevel::National => true,
            ScopeLevel::Region => self.region_codes.iter().any(|r| r == region),
            _ => false,
        }
    }

    /// Whether the scope covers a département.
    pub fn covers_departement(&self, departement: &str, region_of_departement: &str) -> bool {
        match self.level {
            ScopeLevel::National => true,
            ScopeLevel::Region => self.region_codes.iter().any(|r| r == region_of_departement),
            _ => self.departement_codes.iter().any(|d| d == departement),
        }
    }
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub institution: institution::Model,
    pub institution_kind: InstitutionKind,
    pub role: Role,
    pub scope: Scope,
    /// The person (ProConnect `uid` or e-mail) or the client id of a service account.
    pub agent_id: Option<String>,
    pub service_account: bool,
    /// The token's `jti`, by which it can be revoked.
    pub token_id: Option<String>,
    /// Name of the trusted issuer that signed the token.
    pub issuer: String,
    /// When the token expires (`exp`): a WebSocket connection opened with it is closed then.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the HTTP layer learnt about the caller, handed to the schema with each request.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// No `Authorization` header.
    Anonymous,
    Authenticated(Box<Principal>),
}

impl Authentication {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Authentication::Authenticated(p) => Some(p),
            Authentication::Anonymous => None,
        }
    }
}
