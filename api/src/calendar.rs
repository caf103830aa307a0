//! French calendar time: campaign deadlines are Paris calendar days (CET, CEST in summer), whatever the server's
//! clock zone.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};

/// The last Sunday of a month (EU summer time starts on March's and ends on October's).
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    use chrono::Datelike;
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last = first_of_next.pred_opt()?;
    last.checked_sub_days(chrono::Days::new(u64::from(last.weekday().num_days_from_sunday())))
}

/// Paris's offset from UTC at the end of a day (metropolitan France: CET, CEST in summer).
pub fn paris_offset_at_end_of(day: NaiveDate) -> FixedOffset {
    use chrono::Datelike;
    let summer = match (last_sunday(day.year(), 3), last_sunday(day.year(), 10)) {
        (Some(start), Some(end)) => day >= start && day < end,
        _ => false,
    };
    FixedOffset::east_opt(if summer { 7200 } else { 3600 }).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap())
}

/// End of a campaign's deadline day, in Paris time (the CNSA's deadlines are French calendar days): submissions
/// received by then are on time.
pub fn deadline_end(deadline: NaiveDate) -> DateTime<FixedOffset> {
    let local = deadline.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    let offset = paris_offset_at_end_of(deadline);
    (local - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc().fixed_offset()
}

/// The Paris calendar day of an instant.
pub fn paris_day(now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    now.with_timezone(&paris_offset_at_end_of(now.date_naive())).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_end_at_midnight_in_paris() {
        // 31 May 2024 (summer time): 23:59:59+02:00 = 21:59:59 UTC.
        let may = deadline_end(NaiveDate::from_ymd_opt(2024, 5, 31).unwrap());
        assert_eq!(may.to_rfc3339(), "2024-05-31T21:59:59+00:00");
        // 31 January (winter time): 22:59:59 UTC.
        let january = deadline_end(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap());
        assert_eq!(january.to_rfc3339(), "2025-01-31T22:59:59+00:00");
        // The switch days themselves: 31 March 2024 was summer by its end, 27 October 2024 winter.
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()).local_minus_utc(), 7200);
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 3, 30).unwrap()).local_minus_utc(), 3600);
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 10, 27).unwrap()).local_minus_utc(), 3600);
        assert_eq!(paris_offset_at_end_of(NaiveDate::from_ymd_opt(2024, 10, 26).unwrap()).local_minus_utc(), 7200);
    }
}
