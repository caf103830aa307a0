//! The pages' HTML (maud: escaped by default, checked at compile time) and their charts, drawn as SVG with the
//! table they summarise beside them. French labels of the API's codes live here.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::FindingFilter;
use crate::money::{Euros, basis_points_to_french_percent, ratio_basis_points};

/// What a GraphQL operation answered, or its errors' messages.
pub type Answer<T> = Result<T, Vec<String>>;

/// The signed-in person, as the header shows them.
pub struct Who {
    pub role: String,
    pub institution: String,
    pub code: String,
}

fn text(value: &Value) -> String {
    super::text(value)
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Cents of an API amount ("1250.50").
fn cents(value: &Value) -> i64 {
    value.as_str().and_then(|t| Euros::parse(t).ok()).map_or(0, |e| e.0)
}

/// A moment as a person in France reads it: "04/12/2026 à 11:25" (Paris time).
fn when(value: &Value) -> String {
    let Some(text) = value.as_str() else { return "—".to_owned() };
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(at) => {
            let utc = at.with_timezone(&chrono::Utc);
            let day = crate::calendar::paris_day(utc);
            let local = utc.with_timezone(&crate::calendar::paris_offset_at_end_of(day));
            local.format("%d/%m/%Y à %H:%M").to_string()
        }
        Err(_) => text.to_owned(),
    }
}

/// A day as a person in France reads it: "01/09/2026".
fn day(value: &Value) -> String {
    let Some(text) = value.as_str() else { return "—".to_owned() };
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| text.to_owned())
}

fn euros(value: &Value) -> String {
    Euros(cents(value)).to_french()
}

/// An amount that may be absent (no drawing rights set, no forecast): a dash then, never "0,00 €".
fn maybe_euros(value: &Value) -> String {
    if value.is_null() { "—".to_owned() } else { euros(value) }
}

pub fn status_label(code: &str) -> &'static str {
    match code {
        "BALANCED" => "Équilibrée",
        "AWAITING_COFINANCER" => "En attente du cofinanceur",
        "AMOUNT_MISMATCH" => "Montants discordants",
        "SHARE_MISMATCH" => "Parts discordantes",
        "CAPACITY_MISMATCH" => "Capacités discordantes",
        "SCHEDULE_MISMATCH" => "Calendriers discordants",
        "ABANDONED" => "Abandonnée",
        "UNEXPECTED_COFINANCER" => "Cofinanceur inattendu",
        "SINGLE_FUNDER" => "Financeur unique",
        "" => "—",
        _ => "Autre",
    }
}

fn severity_label(code: &str) -> &'static str {
    match code {
        "ERROR" => "Erreur",
        "WARNING" => "Alerte",
        "INFO" => "Information",
        _ => "—",
    }
}

fn compartment_label(code: &str) -> &'static str {
    match code {
        "SOCLE" => "Socle",
        "PRECOCE" => "Précoce",
        "ECOLE" => "École",
        _ => "Autre",
    }
}

fn role_label(code: &str) -> &'static str {
    match code {
        "CNSA" => "CNSA",
        "ARS" => "Agence régionale de santé",
        "COLLECTIVITE" => "Conseil départemental",
        "MDPH" => "MDPH",
        "RECTORAT" => "Rectorat",
        "DASHBOARD" => "Tableau de bord (agrégats)",
        "ADMIN" => "Opérateur du hub",
        _ => "",
    }
}

fn standing_label(code: &str) -> &'static str {
    match code {
        "ON_TIME" => "Transmis à temps",
        "LATE" => "Transmis en retard",
        "MISSING" => "Manquant",
        "PENDING" => "Attendu",
        _ => "—",
    }
}

/// The frame of every page.
fn layout(title: &str, who: Option<&Who>, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — cnh-hub" }
                link rel="stylesheet" href="/tableau/style.css";
                script src="/tableau/app.js" defer {}
            }
            body {
                a class="skip" href="#contenu" { "Aller au contenu" }
                header class="bandeau" {
                    p class="marque" { "cnh-hub" span { " — 50 000 solutions" } }
                    @if let Some(who) = who {
                        nav aria-label="Navigation principale" {
                            ul {
                                li { a href="/tableau" { "Vue d'ensemble" } }
                                li { a href="/tableau/constats" { "Constats" } }
                                li { a href="/tableau/mesures" { "Mesures" } }
                                li { a href="/tableau/campagnes" { "Campagnes" } }
                                li { a href="/tableau/pilotage" { "Pilotage" } }
                            }
                        }
                        div class="qui" {
                            p { strong { (who.institution) } " (" (who.code) ") — " (role_label(&who.role)) }
                            form method="post" action="/tableau/deconnexion" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Se déconnecter" }
                            }
                        }
                    }
                }
                main id="contenu" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn errors(messages: &[String]) -> Markup {
    html! {
        div class="erreur" role="alert" {
            p { "Le hub n'a pas pu répondre :" }
            ul { @for m in messages { li { (m) } } }
        }
    }
}

/// One bar of a chart: its label, its value, the whole it is drawn against (the grey track; the value itself when
/// there is none) and the text shown beside it.
struct Bar {
    label: String,
    value: i64,
    whole: i64,
    shown: String,
}

fn scaled(value: i64, max: i64) -> i64 {
    if max > 0 { (i128::from(value.max(0)) * 360 / i128::from(max)) as i64 } else { 0 }
}

/// Horizontal bars on one scale: the track is the whole (an envelope's notified amount), the bar the value (what
/// is committed), so the headroom is the track left uncovered; the table beside it says the same in figures.
fn bars(id: &str, caption: &str, rows: &[Bar]) -> Markup {
    let max = rows.iter().map(|r| r.whole.max(r.value)).max().unwrap_or(0);
    let height = 28 * rows.len().max(1) + 8;
    html! {
        figure class="graphique" {
            svg role="img" aria-labelledby=(format!("{id}-titre")) viewBox=(format!("0 0 860 {height}")) width="100%" {
                title id=(format!("{id}-titre")) { (caption) }
                @for (i, bar) in rows.iter().enumerate() {
                    @let y = 8 + i * 28;
                    text x="0" y=(y + 15) class="etiquette" { (bar.label) }
                    rect x="220" y=(y) width=(scaled(bar.whole, max)) height="18" class="fond" {}
                    rect x="220" y=(y) width=(scaled(bar.value, max)) height="18" class="barre" {}
                    text x="592" y=(y + 14) class="valeur" { (bar.shown) }
                }
            }
            figcaption { (caption) " (les chiffres exacts sont dans le tableau ci-dessous)" }
        }
    }
}

pub fn overview(
    who: &Who,
    csrf: &str,
    report: Result<Value, Vec<String>>,
    measures: Option<&Value>,
    live: bool,
) -> Markup {
    let body = match report {
        Err(messages) => errors(&messages),
        Ok(report) => {
            let r = &report["reconciliation"];
            // Envelopes summed per compartment for the chart; the table keeps each region.
            let mut per_compartment: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            for e in list(&r["envelopes"]) {
                let entry = per_compartment.entry(text(&e["compartment"])).or_default();
                entry.0 += cents(&e["notified"]);
                entry.1 += cents(&e["committed"]);
            }
            let envelope_rows: Vec<Bar> = per_compartment
                .iter()
                .map(|(c, (notified, committed))| {
                    let share = ratio_basis_points(*committed, *notified)
                        .map(|bp| format!("{} %", basis_points_to_french_percent(bp)))
                        .unwrap_or_else(|| "—".into());
                    Bar {
                        label: compartment_label(c).to_owned(),
                        value: *committed,
                        whole: *notified,
                        shown: format!(
                            "{} engagés sur {} ({share})",
                            Euros(*committed).to_french(),
                            Euros(*notified).to_french()
                        ),
                    }
                })
                .collect();
            let statuses: Vec<Bar> = list(&r["statusCounts"])
                .iter()
                .map(|s| {
                    let count = s["count"].as_i64().unwrap_or(0);
                    Bar {
                        label: status_label(&text(&s["status"])).to_owned(),
                        value: count,
                        whole: count,
                        shown: count.to_string(),
                    }
                })
                .collect();
            let coverage = &r["needsCoverage"];
            html! {
                section aria-labelledby="enveloppes" {
                    h2 id="enveloppes" { "Enveloppes : notifié, engagé, marge" }
                    @if envelope_rows.is_empty() {
                        p { "Les enveloppes se lisent à l'échelle d'une région entière." }
                    } @else {
                        (bars("graphique-enveloppes", "Autorisations d'engagement engagées sur notifiées, par compartiment", &envelope_rows))
                        table {
                            caption { "Enveloppes par région et compartiment" }
                            thead { tr { th scope="col" { "Région" } th scope="col" { "Compartiment" } th scope="col" { "Notifié" } th scope="col" { "Engagé" } th scope="col" { "Marge" } } }
                            tbody {
                                @for e in list(&r["envelopes"]) {
                                    tr {
                                        th scope="row" { (text(&e["regionCode"])) }
                                        td { (compartment_label(&text(&e["compartment"]))) }
                                        td class="nombre" { (euros(&e["notified"])) }
                                        td class="nombre" { (euros(&e["committed"])) }
                                        td class=(if cents(&e["headroom"]) < 0 { "nombre negatif" } else { "nombre" }) { (euros(&e["headroom"])) }
                                    }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="statuts" {
                    h2 id="statuts" { "Statuts de cofinancement" }
                    (bars("graphique-statuts", "Mesures par statut de cofinancement", &statuses))
                    table {
                        caption { "Mesures par statut" }
                        thead { tr { th scope="col" { "Statut" } th scope="col" { "Mesures" } } }
                        tbody id="comptes-statuts" {
                            @for s in list(&r["statusCounts"]) {
                                tr {
                                    th scope="row" { a href=(format!("/tableau/mesures?statut={}", text(&s["status"]))) { (status_label(&text(&s["status"]))) } }
                                    td class="nombre" data-status-count=(text(&s["status"])) { (text(&s["count"])) }
                                }
                            }
                        }
                    }
                }
                @if live {
                    section aria-labelledby="direct" {
                        h2 id="direct" { "En direct" }
                        p { "Les changements de statut de votre territoire s'affichent ici dès qu'ils sont enregistrés." }
                        ul id="evolutions" aria-live="polite" data-live="/tableau/direct" {}
                    }
                }
                @if let Some(measures) = measures {
                    (measure_table(measures, "Mesures de votre territoire (100 premières)"))
                }
                section aria-labelledby="constats-resume" {
                    h2 id="constats-resume" { "Constats" }
                    table {
                        caption { "Constats par code" }
                        thead { tr { th scope="col" { "Code" } th scope="col" { "Gravité" } th scope="col" { "Nombre" } } }
                        tbody {
                            @for f in list(&r["findingCounts"]) {
                                tr {
                                    th scope="row" { a href=(format!("/tableau/constats?code={}", text(&f["code"]))) { (text(&f["code"])) } }
                                    td { (severity_label(&text(&f["severity"]))) }
                                    td class="nombre" { (text(&f["count"])) }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="besoins" {
                    h2 id="besoins" { "Couverture des besoins" }
                    @if coverage["masked"].as_bool() == Some(true) {
                        p { "Les effectifs inférieurs à " (text(&coverage["threshold"])) " personnes sont masqués (« <" (text(&coverage["threshold"])) " »)." }
                    }
                    table {
                        caption { "Couverture des besoins par département et orientation" }
                        thead { tr { th scope="col" { "Département" } th scope="col" { "Orientations" } th scope="col" { "Personnes en attente" } th scope="col" { "Adultes Creton" } th scope="col" { "Solutions programmées" } th scope="col" { "Couverture (%)" } } }
                        tbody {
                            @for row in list(&coverage["rows"]) {
                                tr {
                                    th scope="row" { (text(&row["departementCode"])) }
                                    td { (list(&row["orientationCodes"]).iter().map(text).collect::<Vec<_>>().join(", ")) }
                                    td class="nombre" { (text(&row["peopleWaiting"])) }
                                    td class="nombre" { (text(&row["cretonAdults"])) }
                                    td class="nombre" { (text(&row["programmedSolutions"])) }
                                    td class="nombre" { (if row["coverageRatio"].is_null() { "—".to_owned() } else { text(&row["coverageRatio"]).replace('.', ",") }) }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="ecole" {
                    h2 id="ecole" { "Appariement école (rectorats)" }
                    table {
                        caption { "Plans d'accompagnement et engagements par académie et année" }
                        thead { tr { th scope="col" { "Académie" } th scope="col" { "Année" } th scope="col" { "Coût prévu" } th scope="col" { "Engagé" } th scope="col" { "Solde" } } }
                        tbody {
                            @for m in list(&r["schoolMatching"]) {
                                tr {
                                    th scope="row" { (text(&m["academieCode"])) }
                                    td { (text(&m["year"])) }
                                    td class="nombre" { (euros(&m["plannedCost"])) }
                                    td class="nombre" { (euros(&m["committed"])) }
                                    td class=(if cents(&m["balance"]) < 0 { "nombre negatif" } else { "nombre" }) { (euros(&m["balance"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Vue d'ensemble", Some(who), csrf, body)
}

fn measure_table(answer: &Value, caption: &str) -> Markup {
    let connection = &answer["coFinancingStatus"];
    html! {
        section aria-labelledby="mesures" {
            h2 id="mesures" { (caption) }
            p { (text(&connection["totalCount"])) " mesure(s) en tout." }
            table {
                caption { (caption) }
                thead { tr { th scope="col" { "Référence" } th scope="col" { "Libellé" } th scope="col" { "Département" } th scope="col" { "Catégorie" } th scope="col" { "Solutions" } th scope="col" { "Statut" } th scope="col" { "Constats" } } }
                tbody {
                    @for node in list(&connection["nodes"]) {
                        @let m = &node["measure"];
                        tr {
                            th scope="row" { a href=(format!("/tableau/mesures/{}", text(&m["id"]))) { (text(&m["reference"])) } }
                            td { (text(&m["label"])) }
                            td { (text(&m["departementCode"])) }
                            td { (text(&m["categoryCode"])) }
                            td class="nombre" { (text(&m["solutions"])) }
                            td data-measure-status=(text(&m["id"])) { (status_label(&text(&node["status"]))) }
                            td data-measure-findings=(text(&m["id"])) { (list(&node["findings"]).iter().map(|f| text(&f["code"])).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

pub fn measures(who: &Who, csrf: &str, status: Option<&str>, answer: Result<Value, Vec<String>>) -> Markup {
    let title = match status {
        Some(s) => format!("Mesures — {}", status_label(s)),
        None => "Mesures".to_owned(),
    };
    let body = match answer {
        Ok(answer) => measure_table(&answer, &title),
        Err(messages) => errors(&messages),
    };
    layout(&title, Some(who), csrf, body)
}

fn select(name: &str, label: &str, options: &[(String, String)], chosen: Option<&str>) -> Markup {
    html! {
        div class="champ" {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { "Tous" }
                @for (value, shown) in options {
                    option value=(value) selected[chosen == Some(value.as_str())] { (shown) }
                }
            }
        }
    }
}

pub fn findings(
    who: &Who,
    csrf: &str,
    filter: &FindingFilter,
    query: &str,
    found: Result<(Vec<Value>, Vec<Value>), Vec<String>>,
) -> Markup {
    let body = match found {
        Err(messages) => errors(&messages),
        Ok((all, kept)) => {
            let mut codes: Vec<String> = all.iter().map(|f| text(&f["code"])).collect();
            codes.sort();
            codes.dedup();
            let mut departements: Vec<String> =
                all.iter().flat_map(|f| list(&f["departementCodes"]).iter().map(text)).collect();
            departements.sort();
            departements.dedup();
            let suffix = if query.is_empty() { String::new() } else { format!("?{query}") };
            html! {
                form method="get" action="/tableau/constats" class="filtres" {
                    (select("code", "Code", &codes.iter().map(|c| (c.clone(), c.clone())).collect::<Vec<_>>(), FindingFilter::given(&filter.code)))
                    (select("severite", "Gravité", &[("ERROR".into(), "Erreur".into()), ("WARNING".into(), "Alerte".into()), ("INFO".into(), "Information".into())], FindingFilter::given(&filter.severite)))
                    (select("departement", "Département", &departements.iter().map(|d| (d.clone(), d.clone())).collect::<Vec<_>>(), FindingFilter::given(&filter.departement)))
                    div class="champ" {
                        label for="categorie" { "Catégorie (code FINESS)" }
                        input id="categorie" name="categorie" type="text" inputmode="numeric" value=(filter.categorie.clone().unwrap_or_default());
                    }
                    div class="champ" {
                        label for="annee" { "Année" }
                        input id="annee" name="annee" type="text" inputmode="numeric" value=(filter.annee.clone().unwrap_or_default());
                    }
                    button type="submit" { "Filtrer" }
                }
                p {
                    (kept.len()) " constat(s) sur " (all.len()) ". Télécharger cette liste : "
                    a href=(format!("/tableau/export/constats.csv{suffix}")) { "CSV" } " · "
                    a href=(format!("/tableau/export/constats.xlsx{suffix}")) { "XLSX" }
                }
                table id="liste-constats" {
                    caption { "Constats" }
                    thead { tr { th scope="col" { "Code" } th scope="col" { "Gravité" } th scope="col" { "Territoire" } th scope="col" { "Constat" } th scope="col" { "Chiffres" } } }
                    tbody {
                        @for f in &kept {
                            tr {
                                th scope="row" { (text(&f["code"])) }
                                td { (severity_label(&text(&f["severity"]))) }
                                td { (text(&f["regionCode"])) " " (list(&f["departementCodes"]).iter().map(text).collect::<Vec<_>>().join(", ")) }
                                td {
                                    (text(&f["message"]))
                                    @if f["subjectKind"] == "MEASURE" {
                                        " " a href=(format!("/tableau/mesures/{}", text(&f["subject"]))) { "(voir la mesure)" }
                                    }
                                }
                                td { ul class="chiffres" { @for g in list(&f["figures"]) { li { (text(&g["name"])) " : " (text(&g["value"])) " " (text(&g["unit"])) } } } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Constats", Some(who), csrf, body)
}

fn escalation_state_label(code: &str) -> &'static str {
    match code {
        "OPEN" => "Ouverte",
        "ANSWERED" => "Répondue",
        "NATIONAL_INTERVENTION_REQUESTED" => "Intervention nationale demandée",
        "RESOLVED" => "Résolue",
        "WITHDRAWN" => "Retirée",
        _ => "—",
    }
}

fn escalations(answer: &Value) -> Markup {
    html! {
        section aria-labelledby="escalades" {
            h2 id="escalades" { "Escalades au niveau national" }
            @if list(&answer["escalations"]).is_empty() { p { "Aucune." } }
            @for e in list(&answer["escalations"]) {
                article class="escalade" {
                    h3 { (escalation_state_label(&text(&e["state"]))) " — ouverte par " (text(&e["openedBy"])) " le " (when(&e["createdAt"]))
                        @if !e["findingCode"].is_null() { " (" (text(&e["findingCode"])) ")" } }
                    ol {
                        @for m in list(&e["messages"]) {
                            li { strong { (text(&m["institutionCode"])) } " (" (when(&m["createdAt"])) ") : " (text(&m["text"]))
                                @if !m["stateAfter"].is_null() { " → " em { (escalation_state_label(&text(&m["stateAfter"]))) } } }
                        }
                    }
                }
            }
        }
    }
}

pub fn measure(who: &Who, csrf: &str, answer: Result<Value, Vec<String>>, escalated: Option<&Value>) -> Markup {
    let (title, body) = match answer {
        Err(messages) => ("Mesure introuvable".to_owned(), errors(&messages)),
        Ok(answer) => {
            let m = &answer["measure"];
            let history = &m["history"];
            let title = format!("Mesure {} — {}", text(&m["reference"]), text(&m["label"]));
            let body = html! {
                dl class="fiche" {
                    dt { "Région / département" } dd { (text(&m["regionCode"])) " / " (text(&m["departementCode"])) }
                    dt { "Catégorie" } dd { (text(&m["categoryCode"])) }
                    dt { "Solutions" } dd { (text(&m["solutions"])) " (" (text(&m["unit"])) ")" }
                    dt { "Compartiment" } dd { (text(&m["compartment"])) }
                    dt { "Installation prévue" } dd { (day(&m["plannedInstallation"])) }
                    dt { "Version" } dd { (text(&m["version"])) ", modifiée le " (when(&m["updatedAt"])) " par " (text(&m["updatedBy"])) }
                }
                section aria-labelledby="engagements" {
                    h2 id="engagements" { "Engagements des financeurs" }
                    table {
                        caption { "Engagements" }
                        thead { tr { th scope="col" { "Financeur" } th scope="col" { "Composante" } th scope="col" { "Montant annuel" } th scope="col" { "Capacité" } th scope="col" { "Installation" } th scope="col" { "Décision" } th scope="col" { "État" } } }
                        tbody {
                            @for c in list(&m["commitments"]) {
                                tr {
                                    th scope="row" { (text(&c["funderCode"])) " (" (text(&c["funder"])) ")" }
                                    td { (text(&c["costComponent"])) }
                                    td class="nombre" { (euros(&c["fullYearAmount"])) }
                                    td class="nombre" { (text(&c["capacity"])) }
                                    td { (day(&c["installationDate"])) }
                                    td { (text(&c["decisionRef"])) }
                                    td { (text(&c["status"])) " v" (text(&c["version"])) }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="historique-statut" {
                    h2 id="historique-statut" { "Historique du statut de cofinancement" }
                    ol id="statuts-mesure" data-measure=(text(&m["id"])) {
                        @for e in list(&history["statusChanges"]) {
                            li { (when(&e["recordedAt"])) " : " (status_label(&text(&e["previousStatus"]))) " → " strong { (status_label(&text(&e["status"]))) }
                                @if !list(&e["findingCodes"]).is_empty() { " (" (list(&e["findingCodes"]).iter().map(text).collect::<Vec<_>>().join(", ")) ")" } }
                        }
                    }
                }
                @if let Some(escalated) = escalated { (escalations(escalated)) }
                section aria-labelledby="versions" {
                    h2 id="versions" { "Versions" }
                    table {
                        caption { "Versions de la mesure" }
                        thead { tr { th scope="col" { "Version" } th scope="col" { "Enregistrée le" } th scope="col" { "Par" } th scope="col" { "Libellé" } th scope="col" { "Solutions" } th scope="col" { "Installation prévue" } } }
                        tbody {
                            @for v in list(&history["versions"]) {
                                tr {
                                    th scope="row" { (text(&v["version"])) }
                                    td { (when(&v["recordedAt"])) }
                                    td { (text(&v["recordedBy"])) }
                                    td { (text(&v["measure"]["label"])) }
                                    td class="nombre" { (text(&v["measure"]["solutions"])) }
                                    td { (day(&v["measure"]["plannedInstallation"])) }
                                }
                            }
                        }
                    }
                }
            };
            (title, body)
        }
    };
    layout(&title, Some(who), csrf, body)
}

pub fn campaigns(who: &Who, csrf: &str, campaigns: Answer<Vec<(Value, Answer<Value>)>>) -> Markup {
    let body = match campaigns {
        Err(messages) => errors(&messages),
        Ok(campaigns) => html! {
            @if campaigns.is_empty() { p { "Aucune campagne déclarée." } }
            @for (i, (c, status)) in campaigns.iter().enumerate() {
                section aria-labelledby=(format!("campagne-{i}")) {
                    h2 id=(format!("campagne-{i}")) { (text(&c["name"])) " — " (text(&c["dataKind"])) ", échéance le " (day(&c["deadline"])) }
                    @match status {
                        Err(messages) => (errors(messages)),
                        Ok(status) => {
                            table {
                                caption { "Transmissions attendues" }
                                thead { tr { th scope="col" { "Institution" } th scope="col" { "Situation" } th scope="col" { "Transmissions" } th scope="col" { "Dernière" } } }
                                tbody {
                                    @for s in list(&status["campaignStatus"]) {
                                        tr {
                                            th scope="row" { (text(&s["institutionName"])) " (" (text(&s["institutionCode"])) ")" }
                                            td { (standing_label(&text(&s["standing"]))) }
                                            td class="nombre" { (text(&s["submissions"])) }
                                            td { (when(&s["lastSubmissionAt"])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    };
    layout("Campagnes", Some(who), csrf, body)
}

/// The national steering committee's pack (`steeringReport`) as of a date: envelopes drawn against the AE
/// notified, then the tables behind it: credits against the CNSA's trajectory, CP against drawing rights, solutions,
/// co-financing statuses, steering findings, open escalations.
pub fn steering(who: &Who, csrf: &str, date: Option<&str>, answer: Result<Value, Vec<String>>) -> Markup {
    let download = match date {
        Some(d) => format!("/tableau/export/dossier.xlsx?date={d}"),
        None => "/tableau/export/dossier.xlsx".to_owned(),
    };
    let form = html! {
        form method="get" action="/tableau/pilotage" class="filtres" {
            div class="champ" {
                label for="date" { "Situation au (vide : aujourd'hui)" }
                input type="date" id="date" name="date" value=(date.unwrap_or_default());
            }
            div class="champ" { button type="submit" { "Afficher" } }
        }
    };
    let body = match answer {
        Err(messages) => html! { (form) (errors(&messages)) },
        Ok(answer) => {
            let pack = &answer["steeringReport"];
            // The country's rows when the pack has them, else the region's.
            let national: Vec<&Value> = list(&pack["envelopes"]).iter().filter(|e| e["regionCode"] == "FR").collect();
            let summary: Vec<&Value> =
                if national.is_empty() { list(&pack["envelopes"]).iter().collect() } else { national };
            let envelope_rows: Vec<Bar> = summary
                .iter()
                .map(|e| Bar {
                    label: format!("{} {}", text(&e["regionCode"]), compartment_label(&text(&e["compartment"]))),
                    value: cents(&e["programmed"]),
                    whole: cents(&e["notified"]),
                    shown: format!("{} programmés sur {}", euros(&e["programmed"]), euros(&e["notified"])),
                })
                .collect();
            let projected: Vec<&Value> =
                list(&pack["credits"]).iter().filter(|c| !c["trajectoryAe"].is_null()).collect();
            let drawing: Vec<&Value> = list(&pack["drawing"])
                .iter()
                .filter(|d| !d["drawingRights"].is_null() || !d["forecastCp"].is_null())
                .collect();
            html! {
                (form)
                p { "Figures au " (when(&pack["asOf"])) ", calculées à partir des révisions enregistrées à cette date. "
                    a href=(download) { "Télécharger le dossier du comité (XLSX)" } }
                section aria-labelledby="pilotage-enveloppes" {
                    h2 id="pilotage-enveloppes" { "Autorisations d'engagement programmées sur notifiées" }
                    (bars("graphique-pilotage", "AE programmées sur AE notifiées, par enveloppe", &envelope_rows))
                    table {
                        caption { "Enveloppes par région" }
                        thead { tr { th scope="col" { "Région" } th scope="col" { "Enveloppe" } th scope="col" { "AE notifiées" }
                            th scope="col" { "AE programmées" } th scope="col" { "AE engagées" } th scope="col" { "AE installées" } th scope="col" { "CP appelés" } } }
                        tbody {
                            @for e in list(&pack["envelopes"]) {
                                tr {
                                    th scope="row" { (text(&e["regionCode"])) }
                                    td { (compartment_label(&text(&e["compartment"]))) }
                                    td class="nombre" { (euros(&e["notified"])) }
                                    td class="nombre" { (euros(&e["programmed"])) }
                                    td class="nombre" { (euros(&e["committed"])) }
                                    td class="nombre" { (euros(&e["installed"])) }
                                    td class="nombre" { (euros(&e["cpCalled"])) }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="pilotage-trajectoire" {
                    h2 id="pilotage-trajectoire" { "Trajectoire de la CNSA" }
                    @if projected.is_empty() { p { "Aucune projection enregistrée à cette date." } } @else {
                        table {
                            caption { "AE et CP par année, face à la trajectoire" }
                            thead { tr { th scope="col" { "Région" } th scope="col" { "Enveloppe" } th scope="col" { "Année" }
                                th scope="col" { "AE programmées" } th scope="col" { "AE trajectoire" } th scope="col" { "CP appelés" } th scope="col" { "CP trajectoire" } } }
                            tbody {
                                @for c in &projected {
                                    tr {
                                        th scope="row" { (text(&c["regionCode"])) }
                                        td { (compartment_label(&text(&c["compartment"]))) }
                                        td { (text(&c["year"])) }
                                        td class="nombre" { (euros(&c["aeProgrammed"])) }
                                        td class="nombre" { (maybe_euros(&c["trajectoryAe"])) }
                                        td class="nombre" { (euros(&c["cpCalled"])) }
                                        td class="nombre" { (maybe_euros(&c["trajectoryCp"])) }
                                    }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="pilotage-droits" {
                    h2 id="pilotage-droits" { "Droits de tirage et prévisions" }
                    @if drawing.is_empty() { p { "Ni droits de tirage ni prévision enregistrés à cette date." } } @else {
                        table {
                            caption { "CP appelés, droits de tirage et prévisions par année" }
                            thead { tr { th scope="col" { "Région" } th scope="col" { "Année" } th scope="col" { "CP appelés" }
                                th scope="col" { "Droits de tirage" } th scope="col" { "CP prévus" } th scope="col" { "Installations prévues" } } }
                            tbody {
                                @for d in &drawing {
                                    tr {
                                        th scope="row" { (text(&d["regionCode"])) }
                                        td { (text(&d["year"])) }
                                        td class="nombre" { (euros(&d["cpCalled"])) }
                                        td class="nombre" { (maybe_euros(&d["drawingRights"])) }
                                        td class="nombre" { (maybe_euros(&d["forecastCp"])) }
                                        td class="nombre" { (if d["forecastSolutions"].is_null() { "—".to_owned() } else { text(&d["forecastSolutions"]) }) }
                                    }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="pilotage-constats" {
                    h2 id="pilotage-constats" { "Constats de pilotage" }
                    @if list(&pack["findings"]).is_empty() { p { "Aucun écart à la trajectoire ni dépassement." } } @else {
                        ul class="constats" {
                            @for f in list(&pack["findings"]) {
                                li { strong { (text(&f["code"])) } " — " (text(&f["message"])) }
                            }
                        }
                    }
                }
                section aria-labelledby="pilotage-statuts" {
                    h2 id="pilotage-statuts" { "Cofinancements et escalades" }
                    table {
                        caption { "Mesures par statut de cofinancement" }
                        thead { tr { th scope="col" { "Région" } th scope="col" { "Statut" } th scope="col" { "Mesures" } } }
                        tbody {
                            @for st in list(&pack["statuses"]) {
                                tr { th scope="row" { (text(&st["regionCode"])) } td { (status_label(&text(&st["status"]))) } td class="nombre" { (text(&st["count"])) } }
                            }
                        }
                    }
                    table {
                        caption { "Escalades ouvertes à cette date" }
                        thead { tr { th scope="col" { "Région" } th scope="col" { "Escalades ouvertes" } } }
                        tbody {
                            @for e in list(&pack["openEscalations"]) {
                                tr { th scope="row" { (text(&e["regionCode"])) } td class="nombre" { (text(&e["open"])) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Pilotage national", Some(who), csrf, body)
}

/// A page refused by the rate limit: what ran out and when to come back.
pub fn throttled(message: &str, retry_after: u64) -> Markup {
    let body = html! {
        div class="erreur" role="alert" {
            p { (message) }
            p { "Patientez " (retry_after) " s avant de recharger la page." }
        }
        p { a href="/tableau" { "Retour au tableau de bord" } }
    };
    layout("Trop de demandes", None, "", body)
}

pub fn sign_in(csrf: &str, development: bool, provider: Option<&str>, problem: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(problem) = problem { div class="erreur" role="alert" { p { (problem) } } }
        @if let Some(provider) = provider {
            p { a class="bouton" href="/tableau/connexion/oidc" { "Se connecter avec " (provider) } }
        }
        @if development {
            p { "Connexion de développement : choisissez un rôle et, s'il en a un, son territoire (code de région, de département ou d'académie)." }
            form method="post" action="/tableau/connexion" class="connexion" {
                input type="hidden" name="csrf" value=(csrf);
                div class="champ" {
                    label for="role" { "Rôle" }
                    select id="role" name="role" required {
                        option value="ars" { "Agence régionale de santé (code de région)" }
                        option value="collectivite" { "Conseil départemental (code de département)" }
                        option value="mdph" { "MDPH (code de département)" }
                        option value="rectorat" { "Rectorat (académie)" }
                        option value="cnsa" { "CNSA" }
                        option value="dashboard" { "Tableau de bord (région, ou vide pour la France)" }
                    }
                }
                div class="champ" {
                    label for="territoire" { "Territoire" }
                    input id="territoire" name="territoire" type="text" autocomplete="off" placeholder="84, 69, lyon…";
                }
                button type="submit" { "Se connecter" }
            }
        } @else if provider.is_none() {
            p { "Aucun fournisseur d'identité n'est configuré sur ce hub : adressez-vous à son opérateur." }
        }
    };
    layout("Connexion", None, csrf, body)
}
