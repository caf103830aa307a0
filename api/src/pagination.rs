//! Relay connections: page sizes and the `totalCount` every list carries.

use async_graphql::SimpleObject;

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Fields added to every connection.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// How many nodes match the filter, over all pages.
    pub total_count: u64,
}

/// The page size asked for with `first`, within bounds.
pub fn page_size(first: Option<i32>) -> Result<u64, ApiError> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n >= 0 && (n as u64) <= MAX_PAGE_SIZE => Ok(n as u64),
        Some(n) => {
            Err(ApiError::BadUserInput(format!("first = {n} : une page compte de 0 à {MAX_PAGE_SIZE} éléments")))
        }
    }
}

/// The rows after `(at, id)` in a list ordered by a time, then an id, both descending: a keyset cursor (`before:` the
/// last id of the previous page), which neither skips nor repeats rows when new ones arrive meanwhile.
pub fn older_than<T, I>(
    time: impl sea_orm::ColumnTrait,
    id_column: impl sea_orm::ColumnTrait,
    at: T,
    id: I,
) -> sea_orm::Condition
where
    T: Into<sea_orm::Value> + Clone,
    I: Into<sea_orm::Value>,
{
    sea_orm::Condition::any()
        .add(time.lt(at.clone()))
        .add(sea_orm::Condition::all().add(time.eq(at)).add(id_column.lt(id)))
}
