//! `me` on the fast read path (`selection`): the caller as `PrincipalView` shows it, written straight to JSON.

use super::PrincipalView;
use crate::access::principal::Principal;
use crate::selection::Fallback;
use crate::selection::json::{self, Out, Written};
use crate::selection::plan::{FieldDef, Planned, TypeDef};

pub const ME: FieldDef = FieldDef::object("me", "PrincipalView");

static PRINCIPAL_VIEW: TypeDef = TypeDef {
    name: "PrincipalView",
    fields: &[
        FieldDef::leaf("agentId"),
        FieldDef::object("institution", "Institution"),
        FieldDef::leaf("issuer"),
        FieldDef::leaf("role"),
        FieldDef::object("scope", "TerritoryScope"),
        FieldDef::leaf("serviceAccount"),
        FieldDef::leaf("tokenId"),
    ],
};

static INSTITUTION: TypeDef = TypeDef {
    name: "Institution",
    fields: &[
        FieldDef::leaf("code"),
        FieldDef::leaf("kind"),
        FieldDef::leaf("name"),
        FieldDef::leaf("siret"),
        FieldDef::leaf("suspended"),
        FieldDef::leaf("suspensionReason"),
        FieldDef::leaf("territoryCode"),
    ],
};

static TERRITORY_SCOPE: TypeDef = TypeDef {
    name: "TerritoryScope",
    fields: &[
        FieldDef::leaf("code"),
        FieldDef::leaf("departementCodes"),
        FieldDef::leaf("level"),
        FieldDef::leaf("regionCodes"),
    ],
};

pub static TYPES: [&TypeDef; 3] = [&PRINCIPAL_VIEW, &INSTITUTION, &TERRITORY_SCOPE];

/// Answers `me` for `principal`.
pub fn me(out: &mut Out, principal: &Principal, field: &Planned<'_>) -> Written {
    let view = PrincipalView::try_from(principal).map_err(|_| Fallback)?;
    json::object(out, "PrincipalView", &field.selection, |out, f| {
        match f.name {
            "agentId" => json::optional_string(out, view.agent_id.as_deref()),
            "issuer" => json::string(out, &view.issuer),
            "role" => json::enum_item(out, view.role),
            "serviceAccount" => json::boolean(out, view.service_account),
            "tokenId" => json::optional_string(out, view.token_id.as_deref()),
            "institution" => {
                let institution = &view.institution;
                return json::object(out, "Institution", &f.selection, |out, i| {
                    match i.name {
                        "code" => json::string(out, &institution.code),
                        "kind" => json::enum_item(out, institution.kind),
                        "name" => json::string(out, &institution.name),
                        "siret" => json::optional_string(out, institution.siret.as_deref()),
                        "suspended" => json::boolean(out, institution.suspended),
                        "suspensionReason" => json::optional_string(out, institution.suspension_reason.as_deref()),
                        "territoryCode" => json::optional_string(out, institution.territory_code.as_deref()),
                        _ => return Err(Fallback),
                    }
                    Ok(())
                });
            }
            "scope" => {
                let scope = &view.scope;
                return json::object(out, "TerritoryScope", &f.selection, |out, s| {
                    match s.name {
                        "code" => json::optional_string(out, scope.code.as_deref()),
                        "departementCodes" => json::strings(out, &scope.departement_codes),
                        "level" => json::enum_item(out, scope.level),
                        "regionCodes" => json::strings(out, &scope.region_codes),
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
