//! The closed vocabularies of the domain, shared by storage (as text) and the GraphQL schema (as enums).

use async_graphql::Enum;

/// Declares an enum exposed to GraphQL whose variants are stored as their SCREAMING_SNAKE_CASE name.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

stored_enum! {
    /// A kind of data institutions submit, and that campaigns expect.
    DataKind {
        /// ARS programming measures.
        Measures => "MEASURES",
        /// Funders' commitments (expected from the collectivités).
        Commitments => "COMMITMENTS",
        /// MDPH needs indicators.
        Needs => "NEEDS",
        /// Rectorats' school-support plans.
        SchoolPlans => "SCHOOL_PLANS",
        /// The CNSA's projected trajectory (AE and CP per region × compartment × year).
        Trajectory => "TRAJECTORY",
        /// The year's drawing rights in CP per region, set by the CNSA.
        DrawingRights => "DRAWING_RIGHTS",
        /// An ARS's forecast of installations and CP for a coming year (the campaign that ends 30 June).
        InstallationForecast => "INSTALLATION_FORECAST",
    }
}

impl DataKind {
    /// The institutions a campaign of this kind expects data from.
    pub fn expected_from(self) -> InstitutionKind {
        match self {
            DataKind::Measures => InstitutionKind::Ars,
            DataKind::Commitments => InstitutionKind::Collectivite,
            DataKind::Needs => InstitutionKind::Mdph,
            DataKind::SchoolPlans => InstitutionKind::Rectorat,
            DataKind::Trajectory | DataKind::DrawingRights => InstitutionKind::Cnsa,
            DataKind::InstallationForecast => InstitutionKind::Ars,
        }
    }
}

stored_enum! {
    /// The compartment a measure draws on: the annex's socle split as the circular does (children, of which ASE;
    /// adults), précoce and école.
    MeasureCompartment {
        SocleEnfants => "SOCLE_ENFANTS",
        /// Children protected by the ASE (part of the children's socle, 50 M€ nationally).
        SocleAse => "SOCLE_ASE",
        SocleAdultes => "SOCLE_ADULTES",
        Precoce => "PRECOCE",
        Ecole => "ECOLE",
    }
}

impl MeasureCompartment {
    /// The annex envelope it consumes.
    pub fn envelope(self) -> Compartment {
        match self {
            MeasureCompartment::SocleEnfants | MeasureCompartment::SocleAse | MeasureCompartment::SocleAdultes => {
                Compartment::Socle
            }
            MeasureCompartment::Precoce => Compartment::Precoce,
            MeasureCompartment::Ecole => Compartment::Ecole,
        }
    }
}

stored_enum! {
    /// A public a measure serves (DOMAIN.md §1 priority publics).
    MeasurePublic {
        Enfants => "ENFANTS",
        Adultes => "ADULTES",
        /// People without a solution, complex situations.
        SansSolution => "SANS_SOLUTION",
        /// Disabled children protected by the ASE.
        Ase => "ASE",
        /// Young adults kept in children's services (amendement Creton).
        Creton => "CRETON",
        /// Ageing disabled people.
        Phv => "PHV",
        /// Neurodevelopmental disorders, incl. autism.
        Tnd => "TND",
        Polyhandicap => "POLYHANDICAP",
        HandicapPsychique => "HANDICAP_PSYCHIQUE",
        Aidants => "AIDANTS",
        /// Prevention of departures to Belgium.
        DepartsBelgique => "DEPARTS_BELGIQUE",
        Scolarisation => "SCOLARISATION",
    }
}

stored_enum! {
    /// The unit in which a measure counts its solutions.
    SolutionUnit {
        PlacesInstallees => "PLACES_INSTALLEES",
        /// Active caseload of a service or platform.
        FileActive => "FILE_ACTIVE",
        /// Full-time-equivalent staff.
        Etp => "ETP",
        Forfait => "FORFAIT",
    }
}

stored_enum! {
    MeasureNature {
        /// New solutions (no FINESS number yet).
        Creation => "CREATION",
        /// Transformation of an existing establishment or service (its FINESS number is required).
        Transformation => "TRANSFORMATION",
    }
}

stored_enum! {
    /// How the solution is authorised.
    Procedure {
        AppelAProjets => "APPEL_A_PROJETS",
        Extension => "EXTENSION",
        Cpom => "CPOM",
        Autre => "AUTRE",
    }
}

stored_enum! {
    /// Where a measure stands: programmed → authorised → installed, or abandoned.
    MeasureStatus {
        Programmee => "PROGRAMMEE",
        Autorisee => "AUTORISEE",
        Installee => "INSTALLEE",
        Abandonnee => "ABANDONNEE",
    }
}

impl MeasureStatus {
    /// The statuses a measure may move to from this one.
    pub fn may_become(self, next: MeasureStatus) -> bool {
        use MeasureStatus::*;
        self == next
            || matches!(
                (self, next),
                (Programmee, Autorisee) | (Programmee, Abandonnee) | (Autorisee, Installee) | (Autorisee, Abandonnee)
            )
    }
}

stored_enum! {
    CommitmentStatus {
        Active => "ACTIVE",
        /// Withdrawn by its funder; kept, with the reason.
        Withdrawn => "WITHDRAWN",
    }
}

stored_enum! {
    /// An aggregated needs indicator of an MDPH (DOMAIN.md §6).
    NeedsIndicatorKind {
        /// Valid orientation decisions.
        OrientationsValides => "ORIENTATIONS_VALIDES",
        /// People waiting for admission.
        EnAttenteAdmission => "EN_ATTENTE_ADMISSION",
        /// Admitted but not entered.
        AdmisNonEntres => "ADMIS_NON_ENTRES",
        /// No step taken.
        AucuneDemarche => "AUCUNE_DEMARCHE",
        /// Admission impossible.
        AdmissionImpossible => "ADMISSION_IMPOSSIBLE",
        /// Young adults under the amendement Creton, by designated adult category.
        AdultesCreton => "ADULTES_CRETON",
        /// Departures to Belgium.
        DepartsBelgique => "DEPARTS_BELGIQUE",
        /// Global support plans (PAG).
        Pag => "PAG",
    }
}

stored_enum! {
    /// A kind of médico-social support to schools.
    SchoolSupportKind {
        /// Pôle d'appui à la scolarité.
        Pas => "PAS",
        /// Externalised teaching unit.
        Uee => "UEE",
        /// Mobile support team.
        EquipeMobile => "EQUIPE_MOBILE",
        SessadRenforce => "SESSAD_RENFORCE",
        /// Self-regulation unit.
        UniteAutoregulation => "UNITE_AUTOREGULATION",
        Autre => "AUTRE",
    }
}

/// Stored states of an escalation still open (`steering::EscalationState::OPEN`): read by the reconciliation to
/// count a measure's open escalations without depending on the steering capability.
pub const OPEN_ESCALATION_STATES: [&str; 3] = ["OPEN", "ANSWERED", "NATIONAL_INTERVENTION_REQUESTED"];

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
