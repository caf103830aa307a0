//! What resolvers find in the schema's data: the database and the reference catalog.

use std::sync::Arc;

use async_graphql::Context;
use sea_orm::DatabaseConnection;

use crate::error::ApiError;
use crate::territory::service::Catalog;

fn missing(what: &str) -> ApiError {
    ApiError::Internal(format!("{what} missing from the schema data").into())
}

pub fn db<'a>(ctx: &Context<'a>) -> Result<&'a DatabaseConnection, ApiError> {
    ctx.data::<DatabaseConnection>().map_err(|_| missing("database"))
}

pub fn catalog<'a>(ctx: &Context<'a>) -> Result<&'a Catalog, ApiError> {
    ctx.data::<Arc<Catalog>>().map(|c| c.as_ref()).map_err(|_| missing("reference catalog"))
}
