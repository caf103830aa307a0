//! The credits' year-by-year rows as the API shows them, in the reconciliation and in the committee's pack alike.

use async_graphql::SimpleObject;

use crate::money::Euros;
use crate::reconciled::engine::{CreditYear, DrawingYear};
use crate::vocabulary::Compartment;

/// One year of a regional envelope's credits beside the CNSA's projected trajectory.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct CreditYearRow {
    pub region_code: String,
    pub compartment: Compartment,
    pub year: i32,
    /// Assurance-maladie AE (full year) committed on measures installed this year.
    pub ae_programmed: Euros,
    /// CP called this year.
    pub cp_called: Euros,
    /// The CNSA's projection for this year, when it made one.
    pub trajectory_ae: Option<Euros>,
    pub trajectory_cp: Option<Euros>,
}

impl From<&CreditYear> for CreditYearRow {
    fn from(c: &CreditYear) -> Self {
        CreditYearRow {
            region_code: c.region.clone(),
            compartment: c.compartment,
            year: c.year,
            ae_programmed: Euros(c.ae_programmed),
            cp_called: Euros(c.cp_called),
            trajectory_ae: c.trajectory_ae.map(Euros),
            trajectory_cp: c.trajectory_cp.map(Euros),
        }
    }
}

/// One year of a region's payment credits: called, the drawing rights set by the CNSA, the ARS's forecast.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct DrawingYearRow {
    pub region_code: String,
    pub year: i32,
    pub cp_called: Euros,
    pub drawing_rights: Option<Euros>,
    pub forecast_cp: Option<Euros>,
    /// Installations forecast (solutions).
    pub forecast_solutions: Option<i64>,
}

impl From<&DrawingYear> for DrawingYearRow {
    fn from(d: &DrawingYear) -> Self {
        DrawingYearRow {
            region_code: d.region.clone(),
            year: d.year,
            cp_called: Euros(d.cp_called),
            drawing_rights: d.drawing_rights.map(Euros),
            forecast_cp: d.forecast_cp.map(Euros),
            forecast_solutions: d.forecast_solutions,
        }
    }
}
