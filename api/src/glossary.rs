//! Glossary of the French administrative terms kept as they are in the code, because they have no English twin.
//!
//! - **AE** (autorisation d'engagement): commitment authority, the full-year recurring cost a region may commit.
//! - **CP** (crédit de paiement): payment credits called each year as solutions are installed.
//! - **droits de tirage**: the CP a region may call in a year, set by the CNSA after the annual exchange on forecasts.
//! - **projection prévisionnelle** (trajectory): the CNSA's projection of each region's AE and CP year by year.
//! - **comité de pilotage national**: the six-monthly national steering committee, whose pack `steeringReport` is.
//! - **ARS** (agence régionale de santé): one per region; programmes the plan's measures within its envelopes.
//! - **CNSA** (Caisse nationale de solidarité pour l'autonomie): finances the plan, notifies the envelopes.
//! - **CD** (conseil départemental) and other **collectivités** with departmental powers (Métropole de Lyon, Ville de
//!   Paris, Collectivité de Corse, Collectivité européenne d'Alsace, Martinique, Guyane): co-financers of measures.
//! - **département**: the territorial unit below the region; codes are strings ("01", "2A", "971").
//! - **académie** / **rectorat**: the Éducation nationale's territory and its administration.
//! - **MDPH** (maison départementale des personnes handicapées): decides orientations, feeds needs data.
//! - **CDAPH**: the MDPH's decision board; its orientation codes (7.1 IME, 13.3 MAS…) key the needs indicators.
//! - **FINESS**: national register of social and médico-social establishments; 9-character numbers, 3-digit
//!   categories (183 IME, 448 EAM…).
//! - **ESMS / ESSMS**: social and médico-social establishments and services.
//! - **ASE** (aide sociale à l'enfance): child welfare; the socle compartment reserves 50 M€ for children it protects.
//! - **Creton** (amendement Creton): young adults kept in children's services past 20, paid for by the funder of the
//!   adult structure the MDPH designated (CASF L242-4).
//! - **socle / précoce / école**: the three compartments of the plan's AE (985, 110 and 400 M€).
//! - **SEPPIA**: the CNSA's programming tool, whose lines are the hub's measures.
//! - **CPOM**: multi-year objectives and means contract; **AAP**: call for projects.
//! - **UAI**: identifier of a school (7 digits and a check letter).
