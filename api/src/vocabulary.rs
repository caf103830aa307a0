//! The closed vocabularies of the domain, shared by storage (as text) and the GraphQL schema (as enums).

use async_graphql::Enum;

/// Declares an enum exposed to GraphQL whose variants are stored as their SCREAMING_SNAKE_CASE name.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and GraphQL) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The variant stored as `text`, if any.
            pub fn from_stored(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

stored_enum! {
    /// A compartment of the plan's commitment authority, as notified per region in the annex of the circular.
    Compartment {
        /// Solutions for children (incl. children protected by the ASE) and adults: 985 M€ nationally.
        Socle => "SOCLE",
        /// Early detection, diagnosis and intervention for children aged 0-6: 110 M€.
        Precoce => "PRECOCE",
        /// Médico-social support to schools, programmed with the rectorats: 400 M€.
        Ecole => "ECOLE",
    }
}

stored_enum! {
    /// A column of the annex of the circular.
    AnnexColumn {
        Socle => "SOCLE",
        Precoce => "PRECOCE",
        Ecole => "ECOLE",
        /// The sum of the three compartments.
        Total => "TOTAL",
    }
}

stored_enum! {
    /// Whether a kind of structure is a FINESS establishment category or a dispositif without one.
    CategoryNature {
        Finess => "FINESS",
        Dispositif => "DISPOSITIF",
    }
}

stored_enum! {
    /// The public a structure or orientation serves.
    Public {
        Enfants => "ENFANTS",
        Adultes => "ADULTES",
        /// Professional orientation (ESAT, supported employment).
        Travail => "TRAVAIL",
        Tous => "TOUS",
    }
}

stored_enum! {
    /// A cost component of a structure, the unit on which financing is split between payers.
    CostComponent {
        /// The whole cost.
        Global => "GLOBAL",
        /// The care lump sum (forfait soins).
        Soins => "SOINS",
        /// Accommodation.
        Hebergement => "HEBERGEMENT",
        /// Social support.
        Accompagnement => "ACCOMPAGNEMENT",
        /// The médico-social part of a school-support dispositif.
        MedicoSocial => "MEDICO_SOCIAL",
        /// Teachers' staff.
        Enseignants => "ENSEIGNANTS",
        /// The habitat inclusif lump sum paid by the ARS.
        ForfaitHabitatInclusif => "FORFAIT_HABITAT_INCLUSIF",
        /// The aide à la vie partagée paid by the collectivité.
        AideViePartagee => "AIDE_VIE_PARTAGEE",
    }
}

stored_enum! {
    /// Who pays a cost component.
    Payer {
        /// Assurance maladie through the ARS: the only payer consuming the plan's AE and CP.
        AssuranceMaladie => "ASSURANCE_MALADIE",
        /// The collectivité with departmental powers (co-financing outside the CNSA envelopes).
        Collectivite => "COLLECTIVITE",
        Etat => "ETAT",
        EducationNationale => "EDUCATION_NATIONALE",
        AgefiphFiphfp => "AGEFIPH_FIPHFP",
        /// Set by each authorisation (experimental and temporary-accommodation structures).
        SelonAutorisation => "SELON_AUTORISATION",
    }
}

stored_enum! {
    /// The legal nature of a collectivité with departmental powers.
    CollectiviteKind {
        Departement => "DEPARTEMENT",
        /// Métropole de Lyon.
        Metropole => "METROPOLE",
        /// Ville de Paris, Collectivité de Corse, Collectivité européenne d'Alsace.
        CollectiviteStatutParticulier => "COLLECTIVITE_STATUT_PARTICULIER",
        /// Martinique and Guyane: single collectivities with regional and departmental powers.
        CollectiviteUnique => "COLLECTIVITE_UNIQUE",
    }
}

stored_enum! {
    /// The kind of an institution exchanging data through the hub.
    InstitutionKind {
        Cnsa => "CNSA",
        Ars => "ARS",
        Collectivite => "COLLECTIVITE",
        Mdph => "MDPH",
        Rectorat => "RECTORAT",
        /// The hub's operator.
        Operateur => "OPERATEUR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_spelling_round_trips() {
        for c in CostComponent::ALL {
            assert_eq!(CostComponent::from_stored(c.as_str()), Some(*c));
        }
        for p in Payer::ALL {
            assert_eq!(Payer::from_stored(p.as_str()), Some(*p));
        }
        assert_eq!(Compartment::from_stored("socle"), None, "stored spellings are exact");
    }
}
