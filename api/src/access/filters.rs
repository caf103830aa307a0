//! A read's territory filter checked against the caller's reach, the same way on every channel (GraphQL reads,
//! subscriptions, exports): a code the hub does not know is `BAD_USER_INPUT`, a territory outside the caller's is
//! `FORBIDDEN`, each naming the code. Never an empty answer, which would read as "nothing there" instead of "not
//! yours".

use entities::measure;
use sea_orm::{ColumnTrait, Condition};

use super::policy::Reach;
use super::principal::{Principal, ScopeLevel};
use crate::error::ApiError;
use crate::territory::service::Catalog;

/// The territory codes a read's filter names.
#[derive(Clone, Copy, Debug, Default)]
pub struct TerritoryFilter<'a> {
    pub region: Option<&'a str>,
    pub departement: Option<&'a str>,
    pub academie: Option<&'a str>,
}

/// Whether a principal reading with `reach` sees the whole country.
pub fn whole_country(principal: &Principal, reach: Reach) -> bool {
    reach == Reach::Everything || principal.scope.level == ScopeLevel::National
}

/// Refuses a filter naming an unknown territory or one outside the principal's reach.
pub fn check_territory_filter(
    principal: &Principal,
    reach: Reach,
    catalog: &Catalog,
    filter: TerritoryFilter<'_>,
) -> Result<(), ApiError> {
    let scope = &principal.scope;
    let whole = whole_country(principal, reach);
    if let Some(code) = filter.departement {
        let d = catalog
            .departement(code)
            .ok_or_else(|| ApiError::BadUserInput(format!("département inconnu : « {code} »")))?;
        if !whole && !scope.covers_departement(&d.code, &d.region_code) {
            return Err(ApiError::Forbidden(format!("le département « {code} » n'est pas dans votre territoire")));
        }
    }
    if let Some(code) = filter.region {
        catalog.region(code).ok_or_else(|| ApiError::BadUserInput(format!("région inconnue : « {code} »")))?;
        if !whole && !scope.region_codes.iter().any(|r| r == code) {
            return Err(ApiError::Forbidden(format!("la région « {code} » ne touche pas votre territoire")));
        }
    }
    if let Some(code) = filter.academie {
        let academie =
            catalog.academie(code).ok_or_else(|| ApiError::BadUserInput(format!("académie « {code} » inconnue")))?;
        let within = whole
            || match scope.level {
                ScopeLevel::Region => scope.region_codes.contains(&academie.region_code),
                _ => {
                    catalog.departements_of_academie(&academie.code).any(|d| scope.departement_codes.contains(&d.code))
                }
            };
        if !within {
            return Err(ApiError::Forbidden(format!("l'académie « {code} » n'est pas dans votre territoire")));
        }
    }
    Ok(())
}

/// Refuses a filter naming another institution than the caller's own, unless the caller reads everything.
pub fn check_institution_filter(principal: &Principal, reach: Reach, code: Option<&str>) -> Result<(), ApiError> {
    match code {
        Some(code) if reach != Reach::Everything && code != principal.institution.code => Err(ApiError::Forbidden(
            format!("l'institution « {code} » n'est pas la vôtre : vous ne lisez que ce qui concerne la vôtre"),
        )),
        _ => Ok(()),
    }
}

/// The SQL predicate restricting measures to what a principal may reach.
pub fn measure_scope(principal: &Principal, reach: Reach) -> Condition {
    match (reach, principal.scope.level) {
        (Reach::Everything, _) | (_, ScopeLevel::National) => Condition::all(),
        (_, ScopeLevel::Region) => {
            Condition::all().add(measure::Column::RegionCode.is_in(principal.scope.region_codes.clone()))
        }
        _ => Condition::all().add(measure::Column::DepartementCode.is_in(principal.scope.departement_codes.clone())),
    }
}
