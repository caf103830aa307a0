//! Spreadsheets as programming officers keep them (pure): CSV with `;`, decimal commas, UTF-8 with or without BOM
//! or Windows-1252, or an XLSX workbook; French column headers matched loosely; values parsed the French way.
//! And back: lists written as CSV (UTF-8 with BOM, so that spreadsheet software reads the accents) and XLSX.

use calamine::{Data, Reader};
use chrono::NaiveDate;

/// A sheet: its header row and its data rows, every cell as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, serde::Serialize, serde::Deserialize)]
pub enum FileFormat {
    Csv,
    Xlsx,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("le fichier est vide")]
    Empty,
    #[error("fichier CSV illisible : {0}")]
    Csv(String),
    #[error("classeur XLSX illisible : {0}")]
    Xlsx(String),
    #[error("le fichier dépasse {0} lignes")]
    TooManyRows(usize),
    #[error("ligne {line}, colonne {column} : le caractère U+0000 (NUL) n'est accepté dans aucun texte")]
    RefusedCharacter { line: usize, column: String },
}

pub const MAX_ROWS: usize = 100_000;

/// XLSX files are ZIP archives; anything else is read as CSV.
pub fn detect_format(bytes: &[u8]) -> FileFormat {
    if bytes.starts_with(b"PK\x03\x04") { FileFormat::Xlsx } else { FileFormat::Csv }
}

/// Text of a CSV file: UTF-16 when it starts with its byte-order mark (Excel's "Unicode text"), UTF-8 (a BOM is
/// dropped), otherwise Windows-1252, the encoding of French Excel's "CSV (;)".
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some((encoding, _)) = encoding_rs::Encoding::for_bom(bytes)
        && encoding != encoding_rs::UTF_8
    {
        return encoding.decode_with_bom_removal(bytes).0.into_owned();
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

/// The separator of a CSV text, read on its header line: `;` (French Excel) unless the line has none and holds tabs
/// (Excel's "Unicode text") or commas.
fn delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    if header.contains(';') {
        b';'
    } else if header.contains('\t') {
        b'\t'
    } else if header.contains(',') {
        b','
    } else {
        b';'
    }
}

pub fn read_csv(bytes: &[u8]) -> Result<Table, FileError> {
    let text = decode_text(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(&text))
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let headers: Vec<String> = match records.next() {
        None => return Err(FileError::Empty),
        Some(row) => row.map_err(|e| FileError::Csv(e.to_string()))?.iter().map(str::to_owned).collect(),
    };
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| FileError::Csv(e.to_string()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(FileError::TooManyRows(MAX_ROWS));
        }
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok(Table { headers, rows })
}

/// Excel's serial day number: 1 is 1900-01-01, with its fictitious 29 February 1900 (so day 0 is 1899-12-30).
fn excel_date(serial: f64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(serial.floor().max(0.0) as u64))
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        // Spreadsheets store numbers as doubles: print the shortest text that reads back as the same double, so
        // 1250.5 stays "1250.5" and is then parsed exactly to cents.
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                format!("{f}")
            }
        }
        Data::Bool(b) => if *b { "oui" } else { "non" }.to_owned(),
        Data::DateTime(dt) => excel_date(dt.as_f64()).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// The first sheet of an XLSX workbook.
pub fn read_xlsx(bytes: &[u8]) -> Result<Table, FileError> {
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec()))
        .map_err(|e: calamine::XlsxError| FileError::Xlsx(e.to_string()))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or(FileError::Empty)?
        .map_err(|e: calamine::XlsxError| FileError::Xlsx(e.to_string()))?;
    let mut rows = range.rows().map(|row| row.iter().map(cell_text).collect::<Vec<_>>());
    let headers = rows.next().ok_or(FileError::Empty)?;
    let mut data = Vec::new();
    for row in rows {
        if row.iter().all(String::is_empty) {
            continue;
        }
        if data.len() == MAX_ROWS {
            return Err(FileError::TooManyRows(MAX_ROWS));
        }
        data.push(row);
    }
    Ok(Table { headers, rows: data })
}

pub fn read_table(bytes: &[u8]) -> Result<(FileFormat, Table), FileError> {
    if bytes.is_empty() {
        return Err(FileError::Empty);
    }
    let format = detect_format(bytes);
    let table = match format {
        FileFormat::Csv => read_csv(bytes)?,
        FileFormat::Xlsx => read_xlsx(bytes)?,
    };
    table.refuse_nul()?;
    Ok((format, table))
}

/// A column's letter as spreadsheets show it (0 → A, 26 → AA).
pub fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

impl Table {
    /// PostgreSQL cannot store a NUL in a text: refused on both stores, with its cell.
    fn refuse_nul(&self) -> Result<(), FileError> {
        let rows = std::iter::once(&self.headers).chain(&self.rows);
        for (line, row) in rows.enumerate() {
            if let Some(column) = row.iter().position(|cell| cell.contains('\0')) {
                return Err(FileError::RefusedCharacter { line: line + 1, column: column_letter(column) });
            }
        }
        Ok(())
    }

    /// Columns holding a value but no header (beyond the header row, or under an empty header): their cells are
    /// left aside, and the import says so.
    pub fn unnamed_columns(&self) -> Vec<String> {
        let width = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        (0..width)
            .filter(|&i| self.headers.get(i).is_none_or(|h| h.trim().is_empty()))
            .filter(|&i| self.rows.iter().any(|row| row.get(i).is_some_and(|c| !c.trim().is_empty())))
            .map(|i| format!("colonne {} (sans en-tête)", column_letter(i)))
            .collect()
    }
}

/// A header or a label reduced to what matters: lower case, no accents, words joined by single spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        let base = match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            'œ' => 'o',
            c if c.is_alphanumeric() || c == '+' || c == '.' => c,
            _ => ' ',
        };
        if base == ' ' {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(base);
        }
    }
    out
}

/// Where each expected column is, found among the headers by any of its names.
pub struct Columns {
    positions: Vec<Option<usize>>,
}

impl Columns {
    /// `spec`: for each column, the names it may carry (already normalised). Returns the unknown headers too, so
    /// that a typo in a header is reported rather than silently ignored.
    pub fn locate(headers: &[String], spec: &[&[&str]]) -> (Columns, Vec<String>) {
        let normalized: Vec<String> = headers.iter().map(|h| normalize(h)).collect();
        let positions = spec.iter().map(|names| normalized.iter().position(|h| names.contains(&h.as_str()))).collect();
        let unknown = headers
            .iter()
            .zip(&normalized)
            .filter(|(_, n)| !n.is_empty() && !spec.iter().any(|names| names.contains(&n.as_str())))
            .map(|(h, _)| h.clone())
            .collect();
        (Columns { positions }, unknown)
    }

    pub fn has(&self, column: usize) -> bool {
        self.positions[column].is_some()
    }

    /// The cell of a row for a column, trimmed; empty when absent.
    pub fn get<'a>(&self, row: &'a [String], column: usize) -> &'a str {
        self.positions[column].and_then(|i| row.get(i)).map_or("", |s| s.trim())
    }
}

/// A French decimal ("1 250,50", "1250.5", "12 €") as hundredths (cents of euros, hundredths of FTE).
pub fn parse_french_decimal(text: &str) -> Option<i64> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{202f}' && *c != '\u{a0}' && *c != '€')
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    crate::money::Euros::parse(&cleaned).ok().map(|e| e.0)
}

/// "31/05/2024" or "2024-05-31".
pub fn parse_french_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d"))
        .ok()
}

/// Cents as a French decimal for a CSV cell: "1250,50".
pub fn french_amount(cents: i64) -> String {
    crate::money::Euros(cents).to_decimal_string().replace('.', ",")
}

/// A list as CSV: `;` separated, UTF-8 with a BOM.
pub fn write_csv(headers: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().delimiter(b';').from_writer(b"\xEF\xBB\xBF".to_vec());
    // Writing into memory cannot fail.
    let _ = writer.write_record(headers);
    for row in rows {
        let _ = writer.write_record(row);
    }
    writer.into_inner().unwrap_or_default()
}

/// How a column is written in XLSX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    Text,
    /// An integer count.
    Integer,
    /// Hundredths written as a number with two decimals: spreadsheets keep numbers as doubles, exact to the cent
    /// below 90 000 billion euros, and the import reads them back to the cent.
    Hundredths,
}

/// A list as an XLSX workbook of one sheet. Cells arrive as the same text the CSV carries.
pub fn write_xlsx(sheet: &str, headers: &[&str], kinds: &[CellKind], rows: &[Vec<String>]) -> Result<Vec<u8>, String> {
    write_workbook(&[SheetData { name: sheet, headers, kinds, rows }])
}

/// One sheet of a workbook: its name, headers, how each column is written, its rows as text.
pub struct SheetData<'a> {
    pub name: &'a str,
    pub headers: &'a [&'a str],
    pub kinds: &'a [CellKind],
    pub rows: &'a [Vec<String>],
}

/// Several lists as one XLSX workbook, a sheet each.
pub fn write_workbook(sheets: &[SheetData<'_>]) -> Result<Vec<u8>, String> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let decimals = rust_xlsxwriter::Format::new().set_num_format("#,##0.00");
    for sheet in sheets {
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(sheet.name).map_err(|e| e.to_string())?;
        for (c, header) in sheet.headers.iter().enumerate() {
            worksheet.write_string_with_format(0, c as u16, *header, &bold).map_err(|e| e.to_string())?;
        }
        for (r, row) in sheet.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, value) in row.iter().enumerate() {
                let c = c as u16;
                let kind = sheet.kinds.get(c as usize).copied().unwrap_or(CellKind::Text);
                if value.is_empty() {
                    continue;
                }
                let written = match kind {
                    CellKind::Integer => match value.parse::<i64>() {
                        Ok(n) => worksheet.write_number(r, c, n as f64).map(|_| ()),
                        Err(_) => worksheet.write_string(r, c, value).map(|_| ()),
                    },
                    CellKind::Hundredths => match parse_french_decimal(value) {
                        Some(h) => worksheet.write_number_with_format(r, c, h as f64 / 100.0, &decimals).map(|_| ()),
                        None => worksheet.write_string(r, c, value).map(|_| ()),
                    },
                    CellKind::Text => worksheet.write_string(r, c, value).map(|_| ()),
                };
                written.map_err(|e| e.to_string())?;
            }
        }
    }
    workbook.save_to_buffer().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_tabs_nul_and_cells_without_header() {
        let text = "Référence\tLibellé\nR1\tÉcole\n";
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let (_, table) = read_table(&utf16).unwrap();
        assert_eq!(table.headers, ["Référence", "Libellé"]);
        assert_eq!(table.rows, [["R1", "École"]]);
        let (_, table) = read_table("a;b\n1;2;3\n4;5\n".as_bytes()).unwrap();
        assert_eq!(table.unnamed_columns(), ["colonne C (sans en-tête)"]);
        let (_, table) = read_table("a;;b\n1;;2\n".as_bytes()).unwrap();
        assert!(table.unnamed_columns().is_empty(), "an empty column without header is nothing left aside");
        assert_eq!(
            read_table("a;b\n1;x\0y\n".as_bytes()).unwrap_err(),
            FileError::RefusedCharacter { line: 2, column: "B".into() }
        );
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(read_csv("a,b\n1,2\n".as_bytes()).unwrap().rows, [["1", "2"]]);
    }

    #[test]
    fn windows_1252_and_bom_are_read_as_text() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFD\xC3\xA9partement"), "Département");
        assert_eq!(decode_text(b"D\xE9partement;Ann\xE9e"), "Département;Année");
        assert_eq!(decode_text(b"\x80 \x9c"), "€ œ");
    }

    #[test]
    fn csv_with_semicolons_and_blank_lines() {
        let table = read_csv(b"R\xE9f\xE9rence;Montant\n\nA;1 250,50\n;;\nB;12\n").unwrap();
        assert_eq!(table.headers, ["Référence", "Montant"]);
        assert_eq!(table.rows, [vec!["A", "1 250,50"], vec!["B", "12"]]);
        assert_eq!(read_csv(b""), Err(FileError::Empty));
    }

    #[test]
    fn headers_match_whatever_their_accents_and_case() {
        assert_eq!(normalize("  Date d'installation prévue "), "date d installation prevue");
        assert_eq!(normalize("N° FINESS"), "n finess");
        let (columns, unknown) = Columns::locate(
            &["Référence".into(), "FINESS".into(), "Commentaire".into()],
            &[&["reference"], &["finess", "n finess"], &["label"]],
        );
        assert!(columns.has(0) && columns.has(1) && !columns.has(2));
        assert_eq!(unknown, ["Commentaire"]);
    }

    #[test]
    fn french_numbers_and_dates() {
        assert_eq!(parse_french_decimal("1 250,50"), Some(125_050));
        assert_eq!(parse_french_decimal("1\u{202f}250,5 €"), Some(125_050));
        assert_eq!(parse_french_decimal("1250.5"), Some(125_050));
        assert_eq!(parse_french_decimal("12,345"), None);
        assert_eq!(parse_french_decimal("douze"), None);
        assert_eq!(parse_french_date("31/05/2024"), NaiveDate::from_ymd_opt(2024, 5, 31));
        assert_eq!(parse_french_date("2024-05-31"), NaiveDate::from_ymd_opt(2024, 5, 31));
        assert_eq!(parse_french_date("31/02/2024"), None);
        assert_eq!(french_amount(125_050), "1250,50");
    }

    #[test]
    fn an_xlsx_written_here_reads_back_the_same() {
        let rows = vec![vec!["A-1".to_owned(), "1250,50".to_owned(), "30".to_owned()]];
        let bytes = write_xlsx(
            "Test",
            &["Référence", "Montant", "Capacité"],
            &[CellKind::Text, CellKind::Hundredths, CellKind::Integer],
            &rows,
        )
        .unwrap();
        assert_eq!(detect_format(&bytes), FileFormat::Xlsx);
        let (_, table) = read_table(&bytes).unwrap();
        assert_eq!(table.headers, ["Référence", "Montant", "Capacité"]);
        assert_eq!(table.rows, [vec!["A-1", "1250.5", "30"]]);
        assert_eq!(parse_french_decimal(&table.rows[0][1]), Some(125_050));
    }

    #[test]
    fn excel_serial_dates() {
        assert_eq!(excel_date(45443.0), NaiveDate::from_ymd_opt(2024, 5, 31));
    }
}
