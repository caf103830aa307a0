//! What resolvers find in the schema's data: the database (the reference catalog is `territory::service::catalog`).

use async_graphql::Context;
use sea_orm::DatabaseConnection;

use crate::error::ApiError;

fn missing(what: &str) -> ApiError {
    ApiError::Internal(format!("{what} missing from the schema data").into())
}

pub fn db<'a>(ctx: &Context<'a>) -> Result<&'a DatabaseConnection, ApiError> {
    ctx.data::<DatabaseConnection>().map_err(|_| missing("database"))
}
