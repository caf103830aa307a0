//! Where two collectivités share a département, the commune decides which one co-finances: the Métropole de Lyon
//! exercises the département's powers on its 58 communes (loi MAPTAM 2014; 59 before Oullins and Pierre-Bénite merged
//! on 1 January 2024), the Département du Rhône on the rest of the Rhône. Everywhere else one collectivité covers the
//! département (Corse over 2A and 2B, Alsace over 67 and 68, Paris, the single collectivités of Guyane and
//! Martinique…). The list is shipped in `migration/data/communes-metropole-lyon.csv` with its sources. Pure.

use std::collections::BTreeMap;

/// The hub's code of the Métropole de Lyon.
pub const METROPOLE_LYON: &str = "METROPOLE-LYON";

const METROPOLE_LYON_COMMUNES: &str = include_str!("../../../migration/data/communes-metropole-lyon.csv");

/// The communes whose collectivité is not simply the one of their département.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommuneParts {
    /// INSEE commune code → the collectivité exercising the département's powers there.
    collectivite_of: BTreeMap<String, String>,
}

impl CommuneParts {
    /// The parts the hub ships (the Métropole de Lyon's communes).
    pub fn shipped() -> CommuneParts {
        let collectivite_of = METROPOLE_LYON_COMMUNES
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with("code_insee"))
            .filter_map(|line| line.split(';').next())
            .map(str::trim)
            .filter(|code| !code.is_empty())
            .map(|code| (code.to_owned(), METROPOLE_LYON.to_owned()))
            .collect();
        CommuneParts { collectivite_of }
    }

    /// Whether a collectivité covers only some communes of its départements.
    pub fn is_partial(&self, collectivite: &str) -> bool {
        self.collectivite_of.values().any(|c| c == collectivite)
    }

    /// Among the collectivités covering a département, those that cover this commune of it (all of them when the
    /// commune is not known: the territory cannot be told apart).
    pub fn covering<'a>(&self, covering_departement: &[&'a str], commune: Option<&str>) -> Vec<&'a str> {
        let Some(commune) = commune else { return covering_departement.to_vec() };
        match self.collectivite_of.get(commune) {
            Some(owner) => covering_departement.iter().copied().filter(|c| *c == owner).collect(),
            None => covering_departement.iter().copied().filter(|c| !self.is_partial(c)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.collectivite_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.collectivite_of.is_empty()
    }
}

/// Whether an INSEE commune code has the shape of a commune of this département: five characters, starting with
/// the département's code ("69123" in 69, "2A004" in 2A, "97209" in 972).
pub fn commune_code_fits(commune: &str, departement: &str) -> bool {
    commune.len() == 5
        && commune.is_ascii()
        && commune.starts_with(departement)
        && commune[departement.len()..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metropole_de_lyon_ships_its_58_communes_with_lyon_and_without_its_arrondissements() {
        let parts = CommuneParts::shipped();
        assert_eq!(parts.len(), 58);
        assert!(parts.is_partial(METROPOLE_LYON) && !parts.is_partial("CD-69"));
        let rhone = ["CD-69", METROPOLE_LYON];
        assert_eq!(parts.covering(&rhone, Some("69123")), [METROPOLE_LYON], "Lyon");
        assert_eq!(parts.covering(&rhone, Some("69266")), [METROPOLE_LYON], "Villeurbanne");
        assert_eq!(parts.covering(&rhone, Some("69149")), [METROPOLE_LYON], "Oullins-Pierre-Bénite");
        assert_eq!(parts.covering(&rhone, Some("69264")), ["CD-69"], "Villefranche-sur-Saône");
        assert_eq!(parts.covering(&rhone, Some("69027")), ["CD-69"], "Brignais, at the Métropole's border");
        assert_eq!(parts.covering(&rhone, Some("69381")), ["CD-69"], "an arrondissement is not a commune of the list");
        assert_eq!(parts.covering(&rhone, None), rhone, "without a commune both remain");
        assert_eq!(parts.covering(&["CORSE"], Some("2A004")), ["CORSE"]);
    }

    #[test]
    fn a_commune_code_starts_with_its_departement() {
        assert!(commune_code_fits("69123", "69"));
        assert!(commune_code_fits("2A004", "2A"));
        assert!(commune_code_fits("97209", "972"));
        assert!(!commune_code_fits("69123", "01"));
        assert!(!commune_code_fits("6912", "69"));
        assert!(!commune_code_fits("69A23", "69"));
        assert!(!commune_code_fits("691234", "69"));
    }
}
