//! Pure parsing and cross-checking of the reference CSV files: no database here, so every rule is unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::prelude::Date;
use serde::Deserialize;

use super::ReferenceError;

/// The raw text of every reference file, by name (as embedded in the binary, or altered by a test).
#[derive(Clone, Debug)]
pub struct Sources<'a> {
    pub regions: &'a str,
    pub academies: &'a str,
    pub departements: &'a str,
    pub collectivites: &'a str,
    pub institutions: &'a str,
    pub annex: &'a str,
    pub national_targets: &'a str,
    pub categories: &'a str,
    pub financing_rules: &'a str,
    pub orientations: &'a str,
}

impl Sources<'static> {
    /// The files shipped in `migration/data`.
    pub fn embedded() -> Self {
        Sources {
            regions: include_str!("../../data/regions.csv"),
            academies: include_str!("../../data/academies.csv"),
            departements: include_str!("../../data/departements.csv"),
            collectivites: include_str!("../../data/collectivites.csv"),
            institutions: include_str!("../../data/institutions.csv"),
            annex: include_str!("../../data/annexe-circulaire-2023-176.csv"),
            national_targets: include_str!("../../data/objectifs-nationaux.csv"),
            categories: include_str!("../../data/categories.csv"),
            financing_rules: include_str!("../../data/regles-financement.csv"),
            orientations: include_str!("../../data/orientations-mdph.csv"),
        }
    }
}

pub const ANNEX_SOURCE: &str = "Circulaire DGCS/3B/DSS/1A/CNSA/DFO/2023/176 du 7 décembre 2023, annexe";
pub const CIRCULAR_TEXT_SOURCE: &str = "Circulaire DGCS/3B/DSS/1A/CNSA/DFO/2023/176 du 7 décembre 2023, §4";
pub const RULES_SOURCE: &str = "cnh-hub reference data (regles-financement.csv), after DOMAIN.md §5";

/// The three compartments of the plan's commitment authority, as notified per region in the annex.
pub const COMPARTMENTS: [&str; 3] = ["SOCLE", "PRECOCE", "ECOLE"];

#[derive(Debug, Deserialize)]
pub struct RegionRow {
    pub code: String,
    pub nom: String,
    pub outre_mer: String,
}

#[derive(Debug, Deserialize)]
pub struct AcademieRow {
    pub code: String,
    pub nom: String,
    pub region: String,
}

#[derive(Debug, Deserialize)]
pub struct DepartementRow {
    pub code: String,
    pub nom: String,
    pub region: String,
    pub academie: String,
    pub article: String,
}

#[derive(Debug, Deserialize)]
pub struct CollectiviteRow {
    pub code: String,
    pub nom: String,
    pub nature: String,
    pub departements: String,
}

#[derive(Debug, Deserialize)]
pub struct InstitutionRow {
    pub code: String,
    pub nature: String,
    pub nom: String,
    pub siret: String,
    pub territoire: String,
}

#[derive(Debug, Deserialize)]
struct AnnexRow {
    portee: String,
    libelle: String,
    socle: String,
    precoce: String,
    ecole: String,
    total: String,
    poids: String,
}

#[derive(Debug, Deserialize)]
struct TargetRow {
    objectif: String,
    montant: String,
    texte: String,
}

#[derive(Debug, Deserialize)]
pub struct CategoryRow {
    pub code: String,
    pub nature: String,
    pub libelle: String,
    pub public: String,
    pub ancienne: String,
    pub successeur: String,
    pub fermee_le: String,
}

#[derive(Debug, Deserialize)]
struct RuleRow {
    categorie: String,
    composante: String,
    financeur: String,
    part: String,
    departement: String,
    valable_du: String,
    valable_au: String,
    note: String,
}

#[derive(Debug, Deserialize)]
pub struct OrientationRow {
    pub code: String,
    pub libelle: String,
    pub public: String,
    pub categorie: String,
}

/// A notified allocation: region × compartment, in cents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub region_code: String,
    pub compartment: &'static str,
    pub notified_cents: i64,
}

/// A printed figure of the annex: a total in cents or a weight in basis points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintedFigure {
    pub scope: String,
    pub figure: &'static str,
    pub value: i64,
    pub unit: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NationalTarget {
    pub code: String,
    pub amount_cents: i64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub code: String,
    pub nature: String,
    pub label: String,
    pub public: String,
    pub legacy: bool,
    pub successor_code: Option<String>,
    pub closed_on: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub category_code: String,
    pub cost_component: String,
    pub payer: String,
    pub share_bp: Option<i32>,
    pub departement_code: Option<String>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub note: Option<String>,
}

/// Every reference record, parsed and cross-checked.
#[derive(Debug)]
pub struct ReferenceSet {
    pub regions: Vec<RegionRow>,
    pub academies: Vec<AcademieRow>,
    pub departements: Vec<DepartementRow>,
    pub collectivites: Vec<CollectiviteRow>,
    pub institutions: Vec<InstitutionRow>,
    pub allocations: Vec<Allocation>,
    pub printed_figures: Vec<PrintedFigure>,
    pub national_targets: Vec<NationalTarget>,
    pub categories: Vec<Category>,
    pub rules: Vec<Rule>,
    pub orientations: Vec<OrientationRow>,
}

fn read<T: for<'de> Deserialize<'de>>(file: &'static str, text: &str) -> Result<Vec<T>, ReferenceError> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(b';').comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
    reader
        .deserialize()
        .map(|row| {
            row.map_err(|e| ReferenceError::Parse {
                file,
                line: e.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX)),
                message: e.to_string(),
            })
        })
        .collect()
}

fn bad(file: &'static str, line: usize, message: impl Into<String>) -> ReferenceError {
    ReferenceError::Parse { file, line, message: message.into() }
}

/// Parses a French decimal ("1 495,0", "70,52") scaled by 10^`scale` into an exact integer, refusing any digit
/// that the scale cannot hold: reference amounts are never rounded.
pub fn parse_scaled_decimal(text: &str, scale: u32) -> Result<i64, String> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace() && *c != '\u{202f}').collect();
    let (int_part, frac_part) = match cleaned.split_once([',', '.']) {
        Some((i, f)) => (i, f),
        None => (cleaned.as_str(), ""),
    };
    let digits_only = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits_only(int_part) || !(frac_part.is_empty() || digits_only(frac_part)) {
        return Err(format!("« {text} » n'est pas un nombre décimal"));
    }
    if frac_part.len() > scale as usize {
        return Err(format!("« {text} » a plus de {scale} décimales"));
    }
    let factor = 10i64.pow(scale);
    let int: i64 = int_part.parse().map_err(|_| format!("« {text} » est trop grand"))?;
    let frac: i64 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse::<i64>().map_err(|_| format!("« {text} » est illisible"))?
            * 10i64.pow(scale - frac_part.len() as u32)
    };
    int.checked_mul(factor).and_then(|v| v.checked_add(frac)).ok_or_else(|| format!("« {text} » est trop grand"))
}

/// Millions of euros as printed ("70,52") into euro cents (1 M€ = 10^8 cents).
pub fn millions_to_cents(text: &str) -> Result<i64, String> {
    parse_scaled_decimal(text, 8)
}

/// A percentage ("8,90%", "80") into basis points.
pub fn percent_to_basis_points(text: &str) -> Result<i64, String> {
    parse_scaled_decimal(text.trim().trim_end_matches('%'), 2)
}

fn parse_date(file: &'static str, line: usize, text: &str) -> Result<Option<Date>, ReferenceError> {
    if text.is_empty() {
        return Ok(None);
    }
    Date::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| bad(file, line, format!("date « {text} » illisible (attendu AAAA-MM-JJ)")))
}

fn yes_no(file: &'static str, line: usize, text: &str) -> Result<bool, ReferenceError> {
    match text {
        "oui" => Ok(true),
        "non" => Ok(false),
        other => Err(bad(file, line, format!("« {other} » : attendu oui ou non"))),
    }
}

fn none_if_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// Header lines before the first data row (comments and the header itself), so errors name the file's line.
fn first_data_line(text: &str) -> usize {
    text.lines().take_while(|l| l.starts_with('#')).count() + 2
}

/// Parses every file and checks that they agree with each other (every code points to something that exists, every
/// département is in the région of its académie, the annex has all 18 regions…).
pub fn parse(sources: &Sources<'_>) -> Result<ReferenceSet, ReferenceError> {
    let regions: Vec<RegionRow> = read("regions.csv", sources.regions)?;
    let academies: Vec<AcademieRow> = read("academies.csv", sources.academies)?;
    let departements: Vec<DepartementRow> = read("departements.csv", sources.departements)?;
    let collectivites: Vec<CollectiviteRow> = read("collectivites.csv", sources.collectivites)?;
    let institutions: Vec<InstitutionRow> = read("institutions.csv", sources.institutions)?;

    let region_codes: BTreeSet<&str> = regions.iter().map(|r| r.code.as_str()).collect();
    for (i, r) in regions.iter().enumerate() {
        yes_no("regions.csv", first_data_line(sources.regions) + i, &r.outre_mer)?;
    }
    let academie_region: BTreeMap<&str, &str> =
        academies.iter().map(|a| (a.code.as_str(), a.region.as_str())).collect();
    for (i, a) in academies.iter().enumerate() {
        if !region_codes.contains(a.region.as_str()) {
            return Err(bad(
                "academies.csv",
                first_data_line(sources.academies) + i,
                format!("région « {} » inconnue", a.region),
            ));
        }
    }
    let departement_codes: BTreeSet<&str> = departements.iter().map(|d| d.code.as_str()).collect();
    for (i, d) in departements.iter().enumerate() {
        let line = first_data_line(sources.departements) + i;
        match academie_region.get(d.academie.as_str()) {
            None => {
                return Err(bad("departements.csv", line, format!("académie « {} » inconnue", d.academie)));
            }
            Some(region) if *region != d.region => {
                return Err(bad(
                    "departements.csv",
                    line,
                    format!(
                        "le département {} est en région {} mais son académie {} est en région {}",
                        d.code, d.region, d.academie, region
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in collectivites.iter().enumerate() {
        let line = first_data_line(sources.collectivites) + i;
        for code in c.departements.split_whitespace() {
            if !departement_codes.contains(code) {
                return Err(bad("collectivites.csv", line, format!("département « {code} » inconnu")));
            }
            covered.insert(code);
        }
    }
    if let Some(missing) = departement_codes.iter().find(|d| !covered.contains(**d)) {
        return Err(ReferenceError::Inconsistent(format!("aucune collectivité ne couvre le département {missing}")));
    }
    let collectivite_codes: BTreeSet<&str> = collectivites.iter().map(|c| c.code.as_str()).collect();
    for (i, inst) in institutions.iter().enumerate() {
        let line = first_data_line(sources.institutions) + i;
        let known = match inst.nature.as_str() {
            "CNSA" => inst.territoire == "FR",
            "OPERATEUR" => inst.territoire.is_empty(),
            "ARS" => region_codes.contains(inst.territoire.as_str()),
            "COLLECTIVITE" => collectivite_codes.contains(inst.territoire.as_str()),
            "MDPH" => departement_codes.contains(inst.territoire.as_str()),
            "RECTORAT" => academie_region.contains_key(inst.territoire.as_str()),
            other => {
                return Err(bad("institutions.csv", line, format!("nature « {other} » inconnue")));
            }
        };
        if !known {
            return Err(bad(
                "institutions.csv",
                line,
                format!("territoire « {} » invalide pour une institution {}", inst.territoire, inst.nature),
            ));
        }
        let siret_shape_ok = inst.siret.len() == 14 && inst.siret.chars().all(|c| c.is_ascii_digit());
        if !inst.siret.is_empty() && !siret_shape_ok {
            return Err(bad("institutions.csv", line, format!("SIRET « {} » invalide", inst.siret)));
        }
    }

    let (allocations, printed_figures) = parse_annex(sources.annex, &regions)?;
    let national_targets = parse_targets(sources.national_targets)?;
    let categories = parse_categories(sources.categories)?;
    let category_codes: BTreeSet<&str> = categories.iter().map(|c| c.code.as_str()).collect();
    let rules = parse_rules(sources.financing_rules, &category_codes, &departement_codes)?;
    let orientations: Vec<OrientationRow> = read("orientations-mdph.csv", sources.orientations)?;
    for (i, o) in orientations.iter().enumerate() {
        if !o.categorie.is_empty() && !category_codes.contains(o.categorie.as_str()) {
            return Err(bad(
                "orientations-mdph.csv",
                first_data_line(sources.orientations) + i,
                format!("catégorie « {} » inconnue", o.categorie),
            ));
        }
    }

    Ok(ReferenceSet {
        regions,
        academies,
        departements,
        collectivites,
        institutions,
        allocations,
        printed_figures,
        national_targets,
        categories,
        rules,
        orientations,
    })
}

fn parse_annex(text: &str, regions: &[RegionRow]) -> Result<(Vec<Allocation>, Vec<PrintedFigure>), ReferenceError> {
    const FILE: &str = "annexe-circulaire-2023-176.csv";
    let rows: Vec<AnnexRow> = read(FILE, text)?;
    let first = first_data_line(text);
    let mut allocations = Vec::new();
    let mut figures = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        let line = first + i;
        let amount = |s: &str| millions_to_cents(s).map_err(|m| bad(FILE, line, m));
        let columns = [("SOCLE", &row.socle), ("PRECOCE", &row.precoce), ("ECOLE", &row.ecole)];
        let is_region = !matches!(row.portee.as_str(), "FR" | "DOM");
        if is_region {
            let region = regions
                .iter()
                .find(|r| r.code == row.portee)
                .ok_or_else(|| bad(FILE, line, format!("région « {} » inconnue", row.portee)))?;
            if region.nom != row.libelle {
                return Err(bad(
                    FILE,
                    line,
                    format!("la région {} s'appelle « {} », pas « {} »", region.code, region.nom, row.libelle),
                ));
            }
            for (compartment, value) in columns {
                allocations.push(Allocation {
                    region_code: row.portee.clone(),
                    compartment,
                    notified_cents: amount(value)?,
                });
            }
        } else {
            for (figure, value) in columns {
                figures.push(PrintedFigure { scope: row.portee.clone(), figure, value: amount(value)?, unit: "CENTS" });
            }
        }
        if !seen.insert(row.portee.clone()) {
            return Err(bad(FILE, line, format!("ligne « {} » en double", row.portee)));
        }
        figures.push(PrintedFigure {
            scope: row.portee.clone(),
            figure: "TOTAL",
            value: amount(&row.total)?,
            unit: "CENTS",
        });
        if !row.poids.is_empty() {
            figures.push(PrintedFigure {
                scope: row.portee.clone(),
                figure: "WEIGHT",
                value: percent_to_basis_points(&row.poids).map_err(|m| bad(FILE, line, m))?,
                unit: "BASIS_POINTS",
            });
        }
    }
    for scope in regions.iter().map(|r| r.code.as_str()).chain(["FR", "DOM"]) {
        if !seen.contains(scope) {
            return Err(ReferenceError::Inconsistent(format!("l'annexe n'a pas de ligne pour « {scope} »")));
        }
    }
    Ok((allocations, figures))
}

fn parse_targets(text: &str) -> Result<Vec<NationalTarget>, ReferenceError> {
    const FILE: &str = "objectifs-nationaux.csv";
    let first = first_data_line(text);
    read::<TargetRow>(FILE, text)?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            Ok(NationalTarget {
                amount_cents: millions_to_cents(&row.montant).map_err(|m| bad(FILE, first + i, m))?,
                code: row.objectif,
                text: row.texte,
            })
        })
        .collect()
}

fn parse_categories(text: &str) -> Result<Vec<Category>, ReferenceError> {
    const FILE: &str = "categories.csv";
    let first = first_data_line(text);
    let rows: Vec<CategoryRow> = read(FILE, text)?;
    let codes: BTreeSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let mut categories = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let line = first + i;
        if !matches!(row.nature.as_str(), "FINESS" | "DISPOSITIF") {
            return Err(bad(FILE, line, format!("nature « {} » inconnue", row.nature)));
        }
        if row.nature == "FINESS" && !(row.code.len() == 3 && row.code.chars().all(|c| c.is_ascii_digit())) {
            return Err(bad(
                FILE,
                line,
                format!("« {} » n'est pas un code de catégorie FINESS (3 chiffres)", row.code),
            ));
        }
        let legacy = yes_no(FILE, line, &row.ancienne)?;
        let successor_code = none_if_empty(&row.successeur);
        if legacy != successor_code.is_some() {
            return Err(bad(FILE, line, "une catégorie ancienne, et elle seule, a un successeur"));
        }
        if let Some(successor) = &successor_code
            && !codes.contains(successor.as_str())
        {
            return Err(bad(FILE, line, format!("successeur « {successor} » inconnu")));
        }
        categories.push(Category {
            code: row.code.clone(),
            nature: row.nature.clone(),
            label: row.libelle.clone(),
            public: row.public.clone(),
            legacy,
            successor_code,
            closed_on: parse_date(FILE, line, &row.fermee_le)?,
        });
    }
    Ok(categories)
}

const COMPONENTS: [&str; 8] = [
    "GLOBAL",
    "SOINS",
    "HEBERGEMENT",
    "ACCOMPAGNEMENT",
    "MEDICO_SOCIAL",
    "ENSEIGNANTS",
    "FORFAIT_HABITAT_INCLUSIF",
    "AIDE_VIE_PARTAGEE",
];
const PAYERS: [&str; 6] =
    ["ASSURANCE_MALADIE", "COLLECTIVITE", "ETAT", "EDUCATION_NATIONALE", "AGEFIPH_FIPHFP", "SELON_AUTORISATION"];

fn parse_rules(
    text: &str,
    categories: &BTreeSet<&str>,
    departements: &BTreeSet<&str>,
) -> Result<Vec<Rule>, ReferenceError> {
    const FILE: &str = "regles-financement.csv";
    let first = first_data_line(text);
    let mut rules = Vec::new();
    for (i, row) in read::<RuleRow>(FILE, text)?.into_iter().enumerate() {
        let line = first + i;
        if !categories.contains(row.categorie.as_str()) {
            return Err(bad(FILE, line, format!("catégorie « {} » inconnue", row.categorie)));
        }
        if !COMPONENTS.contains(&row.composante.as_str()) {
            return Err(bad(FILE, line, format!("composante « {} » inconnue", row.composante)));
        }
        if !PAYERS.contains(&row.financeur.as_str()) {
            return Err(bad(FILE, line, format!("financeur « {} » inconnu", row.financeur)));
        }
        let share_bp = if row.part.is_empty() {
            None
        } else {
            let bp = percent_to_basis_points(&row.part).map_err(|m| bad(FILE, line, m))?;
            if bp > 10_000 {
                return Err(bad(FILE, line, format!("part « {} » supérieure à 100 %", row.part)));
            }
            Some(bp as i32)
        };
        let departement_code = none_if_empty(&row.departement);
        if let Some(d) = &departement_code
            && !departements.contains(d.as_str())
        {
            return Err(bad(FILE, line, format!("département « {d} » inconnu")));
        }
        let valid_from = parse_date(FILE, line, &row.valable_du)?
            .ok_or_else(|| bad(FILE, line, "date de début de validité manquante"))?;
        let valid_to = parse_date(FILE, line, &row.valable_au)?;
        if valid_to.is_some_and(|to| to < valid_from) {
            return Err(bad(FILE, line, "la fin de validité précède son début"));
        }
        rules.push(Rule {
            category_code: row.categorie,
            cost_component: row.composante,
            payer: row.financeur,
            share_bp,
            departement_code,
            valid_from,
            valid_to,
            note: none_if_empty(&row.note),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millions_as_printed_become_exact_cents() {
        assert_eq!(millions_to_cents("70,52"), Ok(7_052_000_000));
        assert_eq!(millions_to_cents("1 495,0"), Ok(149_500_000_000));
        assert_eq!(millions_to_cents("0,40"), Ok(40_000_000));
        assert_eq!(millions_to_cents("400"), Ok(40_000_000_000));
        assert!(millions_to_cents("12,345678901").is_err(), "a fraction of a cent is refused");
        assert!(millions_to_cents("-3").is_err());
        assert!(millions_to_cents("abc").is_err());
    }

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(percent_to_basis_points("8,90%"), Ok(890));
        assert_eq!(percent_to_basis_points("80"), Ok(8000));
        assert!(percent_to_basis_points("8,905%").is_err());
    }

    #[test]
    fn shipped_reference_files_parse_and_agree() {
        let set = parse(&Sources::embedded()).expect("shipped reference data is consistent");
        assert_eq!(set.regions.len(), 18);
        assert_eq!(set.departements.len(), 101);
        assert_eq!(set.academies.len(), 30);
        assert_eq!(set.collectivites.len(), 100);
        // one ARS per region, one MDPH per département, one per collectivité and académie, the CNSA, the operator
        assert_eq!(set.institutions.len(), 18 + 101 + 100 + 30 + 2);
        assert_eq!(set.allocations.len(), 18 * 3);
        let ara_socle = set.allocations.iter().find(|a| a.region_code == "84" && a.compartment == "SOCLE");
        assert_eq!(ara_socle.map(|a| a.notified_cents), Some(7_052_000_000));
        let socle_sum: i64 =
            set.allocations.iter().filter(|a| a.compartment == "SOCLE").map(|a| a.notified_cents).sum();
        assert_eq!(socle_sum, 98_497_000_000, "the annex's socle column really sums to 984.97 M€");
    }

    #[test]
    fn a_departement_outside_its_academies_region_is_refused() {
        let altered = Sources::embedded().departements.replace("69;Rhône;84;lyon", "69;Rhône;84;paris");
        let sources = Sources { departements: &altered, ..Sources::embedded() };
        let err = parse(&sources).unwrap_err().to_string();
        assert!(err.contains("departements.csv") && err.contains("paris"), "{err}");
    }

    #[test]
    fn an_annex_missing_a_region_is_refused() {
        let altered: String =
            Sources::embedded().annex.lines().filter(|l| !l.starts_with("84;")).map(|l| format!("{l}\n")).collect();
        let sources = Sources { annex: &altered, ..Sources::embedded() };
        assert!(parse(&sources).unwrap_err().to_string().contains("« 84 »"));
    }

    #[test]
    fn an_amount_with_a_fraction_of_a_cent_names_its_file_and_line() {
        let altered = Sources::embedded().annex.replace("70,52;", "70,5200000001;");
        let sources = Sources { annex: &altered, ..Sources::embedded() };
        let err = parse(&sources).unwrap_err().to_string();
        assert!(err.contains("annexe-circulaire-2023-176.csv") && err.contains("line 7"), "{err}");
    }

    #[test]
    fn a_rule_on_an_unknown_category_is_refused() {
        let altered =
            format!("{}999;GLOBAL;ASSURANCE_MALADIE;100;;2024-01-01;;\n", Sources::embedded().financing_rules);
        let sources = Sources { financing_rules: &altered, ..Sources::embedded() };
        assert!(parse(&sources).unwrap_err().to_string().contains("« 999 »"));
    }
}
