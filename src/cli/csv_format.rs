//! The observer CSV file shared by `import-observers` and `export-observers`: its columns,
//! reading (header by name, BOM, UTF-8 checked with line numbers), the conversions
//! row ↔ `CreateObserverRequest` / `Observer`, and the way back from a request field to the
//! file's line and column. Kept in one place so that what export writes, import reads back.

use crate::api::observers::convert::role_to_proto;
use crate::domain::observer::ObserverRole;
use crate::pb::v1 as pb;

/// Declares the columns once: the enum, their order and their header names.
macro_rules! columns {
    ($($column:ident = $name:literal,)*) => {
        /// The columns, in the order export writes them. Each header name is also the
        /// `Observer` field (or `observer_id`) the column holds.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Column { $($column,)* }

        impl Column {
            pub const ALL: [Column; 12] = [$(Column::$column,)*];

            pub fn name(self) -> &'static str {
                match self { $(Column::$column => $name,)* }
            }
        }
    };
}

columns! {
    ObserverId = "observer_id",
    GivenName = "given_name",
    FamilyName = "family_name",
    Citizenship = "citizenship",
    Organization = "organization",
    Delegation = "delegation",
    Role = "role",
    TravelDocumentNumber = "travel_document_number",
    DateOfBirth = "date_of_birth",
    Email = "email",
    Phone = "phone",
    DeploymentRegion = "deployment_region",
}

impl Column {
    /// What every import file must have; the others may be left out.
    pub const REQUIRED: [Column; 5] = [
        Column::GivenName,
        Column::FamilyName,
        Column::Citizenship,
        Column::Organization,
        Column::TravelDocumentNumber,
    ];

    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The entry and column a `BadRequest` field path of a batch is about:
    /// `requests[3].observer.citizenship` → (3, citizenship), `requests[3].observer_id` →
    /// (3, observer_id), `requests[3].observer` → (3, none).
    pub fn of_entry_field(path: &str) -> Option<(usize, Option<Column>)> {
        let (index, field) = path.strip_prefix("requests[")?.split_once(']')?;
        let column = match field {
            ".observer_id" => Some(Column::ObserverId),
            _ => field.strip_prefix(".observer.").and_then(Column::from_name),
        };
        Some((index.parse().ok()?, column))
    }
}

/// One data row, its values in [`Column::ALL`] order (absent columns are empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Physical line of the file where the record starts; the header is line 1.
    pub line: u64,
    pub values: [String; 12],
    /// What makes the record unreadable as a row (a count of fields other than the
    /// header's): reported as this line's error, like a refused value.
    pub malformed: Option<String>,
}

/// A file that cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty: the first line must be the header row ({})", header().join(","))]
    Empty,
    #[error("the header row lacks the required column(s) {}: the first line must name the columns ({})", .0.join(", "), header().join(","))]
    MissingColumns(Vec<&'static str>),
    #[error("line 1: column `{0}` appears more than once in the header row")]
    DuplicateColumn(String),
    #[error("line {0}: {1}")]
    Malformed(u64, String),
    #[error("the file is not UTF-8 (save it as \"CSV UTF-8\"): invalid bytes on line(s) {}", first_lines(.0))]
    InvalidUtf8(Vec<u64>),
}

fn first_lines(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(10).map(u64::to_string).collect();
    match lines.len() - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// A file read whole, before anything is sent.
#[derive(Debug)]
pub struct Parsed {
    pub rows: Vec<Row>,
    /// Header names that are not columns of the format: ignored.
    pub ignored_columns: Vec<String>,
}

/// Reads a whole file. Every encoding and structure problem is found before anything is
/// sent, so a file in the wrong encoding never half-imports. (One pass over the records,
/// with the checks in reading order: a little over 60 lines.)
pub fn parse(bytes: &[u8]) -> Result<Parsed, FileError> {
    // Spreadsheet programs write a BOM when saving "CSV UTF-8".
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Lines before the header that start with `#` are comments (an export of an election
    // whose personal data was erased says so there); lines are still numbered in the file.
    let (comments, bytes) = leading_comments(bytes);
    // Flexible: a record with another number of fields than the header is a line error of
    // its own (`Row::malformed`), so that every such line is named, not just the first.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut lines = Lines {
        bytes,
        offset: 0,
        line: comments + 1,
        first: comments + 1,
    };
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err(FileError::Empty),
        Some(record) => record.map_err(|e| malformed(e, &mut lines))?,
    };
    let header =
        utf8_fields(&header, comments + 1).map_err(|line| FileError::InvalidUtf8(vec![line]))?;

    // Where each column of the format sits in this file's records.
    let mut positions: [Option<usize>; 12] = [None; 12];
    let mut ignored_columns = Vec::new();
    for (index, name) in header.iter().map(|name| name.trim()).enumerate() {
        match Column::from_name(&name.to_ascii_lowercase()) {
            Some(column) if positions[column as usize].is_some() => {
                return Err(FileError::DuplicateColumn(name.to_owned()));
            }
            Some(column) => positions[column as usize] = Some(index),
            None => ignored_columns.push(name.to_owned()),
        }
    }
    let missing = Column::REQUIRED
        .into_iter()
        .filter(|c| positions[*c as usize].is_none());
    let missing: Vec<&'static str> = missing.map(Column::name).collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns(missing));
    }

    let (mut rows, mut bad_lines) = (Vec::new(), Vec::new());
    for record in records {
        let record = record.map_err(|e| malformed(e, &mut lines))?;
        let line = lines.of(record.position());
        match utf8_fields(&record, line) {
            Err(bad_line) => bad_lines.push(bad_line),
            // A row of empty cells is what spreadsheets leave below the data: not an observer.
            Ok(fields) if fields.iter().all(|f| f.trim().is_empty()) => {}
            Ok(fields) => {
                let value = |p: Option<usize>| p.and_then(|i| fields.get(i)).map(|v| v.to_string());
                let values = positions.map(|p| value(p).unwrap_or_default());
                let malformed = (fields.len() != header.len()).then(|| {
                    format!(
                        "has {} fields where the header row has {}: the row was not read",
                        fields.len(),
                        header.len()
                    )
                });
                rows.push(Row {
                    line,
                    values,
                    malformed,
                });
            }
        }
    }
    if !bad_lines.is_empty() {
        return Err(FileError::InvalidUtf8(bad_lines));
    }
    Ok(Parsed {
        rows,
        ignored_columns,
    })
}

/// Physical line numbers (the header is line 1) of records, from their byte offsets: the
/// csv crate's own line count lags by one after CRLF line ends, as Windows programs write.
struct Lines<'a> {
    bytes: &'a [u8],
    /// Where `line` was counted to.
    offset: usize,
    line: u64,
    /// The number of the first line of `bytes` in the file (after leading comments).
    first: u64,
}

impl Lines<'_> {
    fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        let start = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        // A record's offset may be the end of the line before it.
        let skip = self
            .bytes
            .iter()
            .skip(start)
            .take_while(|b| matches!(b, b'\r' | b'\n'));
        let start = (start + skip.count()).min(self.bytes.len());
        if start < self.offset {
            (self.offset, self.line) = (0, self.first);
        }
        self.line += count_newlines(&self.bytes[self.offset..start]);
        self.offset = start;
        self.line
    }
}

/// How many lines at the start of `bytes` begin with `#`, and what follows them.
pub fn leading_comments(mut bytes: &[u8]) -> (u64, &[u8]) {
    let mut count = 0;
    while bytes.first() == Some(&b'#') {
        count += 1;
        bytes = match bytes.iter().position(|b| *b == b'\n') {
            Some(end) => &bytes[end + 1..],
            None => &[],
        };
    }
    (count, bytes)
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn malformed(error: csv::Error, lines: &mut Lines) -> FileError {
    let line = lines.of(error.position());
    FileError::Malformed(
        line,
        match error.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("has {len} fields where the header row has {expected_len}")
            }
            _ => error.to_string(),
        },
    )
}

/// The fields of a record as text, or the physical line of its first invalid byte.
fn utf8_fields(record: &csv::ByteRecord, start: u64) -> Result<Vec<&str>, u64> {
    let mut line = start;
    let mut fields = Vec::with_capacity(record.len());
    for field in record {
        match std::str::from_utf8(field) {
            Ok(text) => fields.push(text),
            // A quoted field may span lines: count the ones before the bad byte.
            Err(error) => return Err(line + count_newlines(&field[..error.valid_up_to()])),
        }
        line += count_newlines(field);
    }
    Ok(fields)
}

/// `elections/kz-2023` as given, or the full name of a bare id (`kz-2023`).
pub fn election_name(election: &str) -> String {
    let election = election.trim().trim_end_matches('/');
    if election.starts_with("elections/") {
        election.to_owned()
    } else {
        format!("elections/{election}")
    }
}

impl Row {
    pub fn get(&self, column: Column) -> &str {
        &self.values[column as usize]
    }

    /// The create request of this row for `election` (`elections/{id}`), or what is wrong
    /// with the row (and in which column). Values are sent as written, names untouched; only
    /// the short forms are expanded: `sco` → `organizations/sco`, a bare delegation id → one
    /// of `election`.
    pub fn to_request(
        &self,
        election: &str,
    ) -> Result<pb::CreateObserverRequest, (Option<Column>, String)> {
        if let Some(problem) = &self.malformed {
            return Err((None, problem.clone()));
        }
        let role = match self.get(Column::Role).trim() {
            "" => pb::ObserverRole::Unspecified,
            name => ObserverRole::parse(&name.to_ascii_uppercase())
                .map(|role| role_to_proto(Some(role)))
                .ok_or_else(|| {
                    let problem = format!(
                        "`{name}` is not an observer role: use one of {}, or leave it empty",
                        ObserverRole::NAMES.join(", ")
                    );
                    (Some(Column::Role), problem)
                })?,
        };
        let observer_id = self.get(Column::ObserverId).trim();
        // An id the server generated (a UUID, see `names::resource_id_or_generated`) is not a
        // valid caller-chosen id: the observer gets a new one, so an export re-imports.
        let observer_id = match uuid::Uuid::try_parse(observer_id) {
            Ok(_) => "",
            Err(_) => observer_id,
        };
        let name = |column, full: &dyn Fn(&str) -> String| match self.get(column).trim() {
            "" => String::new(),
            name if name.contains('/') => name.to_owned(),
            id => full(id),
        };
        let text = |column| self.get(column).to_owned();
        Ok(pb::CreateObserverRequest {
            parent: String::new(),
            observer_id: observer_id.to_owned(),
            observer: Some(pb::Observer {
                given_name: text(Column::GivenName),
                family_name: text(Column::FamilyName),
                citizenship: text(Column::Citizenship),
                organization: name(Column::Organization, &|id| format!("organizations/{id}")),
                delegation: name(Column::Delegation, &|id| {
                    format!("{election}/delegations/{id}")
                }),
                role: role.into(),
                travel_document_number: text(Column::TravelDocumentNumber),
                date_of_birth: text(Column::DateOfBirth),
                email: text(Column::Email),
                phone: text(Column::Phone),
                deployment_region: text(Column::DeploymentRegion),
                ..Default::default()
            }),
            request_id: String::new(),
        })
    }
}

/// The row export writes for an observer: bare ids for the observer, its organization and
/// its delegation, the role by name.
pub fn record(observer: &pb::Observer) -> [String; 12] {
    let last_segment = |name: &str| name.rsplit('/').next().unwrap_or_default().to_owned();
    Column::ALL.map(|column| match column {
        Column::ObserverId => last_segment(&observer.name),
        Column::GivenName => observer.given_name.clone(),
        Column::FamilyName => observer.family_name.clone(),
        Column::Citizenship => observer.citizenship.clone(),
        Column::Organization => last_segment(&observer.organization),
        Column::Delegation => last_segment(&observer.delegation),
        Column::Role => match observer.role() {
            pb::ObserverRole::Unspecified => String::new(),
            role => role.as_str_name().to_owned(),
        },
        Column::TravelDocumentNumber => observer.travel_document_number.clone(),
        Column::DateOfBirth => observer.date_of_birth.clone(),
        Column::Email => observer.email.clone(),
        Column::Phone => observer.phone.clone(),
        Column::DeploymentRegion => observer.deployment_region.clone(),
    })
}

/// The header row, in [`Column::ALL`] order.
pub fn header() -> [&'static str; 12] {
    Column::ALL.map(Column::name)
}

/// The warning for header names that are not columns of the format.
pub fn describe_ignored(columns: &[String]) -> Option<String> {
    let names: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
    let expected = header().join(",");
    (!names.is_empty()).then(|| {
        format!(
            "warning: ignoring column(s) {} (the format's columns: {expected})",
            names.join(", ")
        )
    })
}

/// A report line about a line of the file (`line 19, column citizenship: …`), and that
/// line, to sort by.
pub fn report(line: u64, column: Option<Column>, text: String) -> (u64, String) {
    match column {
        Some(column) => (
            line,
            format!("line {line}, column {}: {text}", column.name()),
        ),
        None => (line, format!("line {line}: {text}")),
    }
}

/// `2-501`: the lines of some rows.
pub fn line_range(rows: &[Row]) -> String {
    let first = rows.first().map_or(0, |r| r.line);
    match rows.last().map_or(0, |r| r.line) {
        last if last == first => first.to_string(),
        last => format!("{first}-{last}"),
    }
}

/// Replaces the entry references of a server message (`requests[3]`,
/// `requests[3].observer`) with the file line they stand for: entry `i` came from
/// `lines[i]`.
pub fn entries_as_lines(message: &str, lines: &[u64]) -> String {
    let mut text = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("requests[") {
        text.push_str(&rest[..start]);
        let after = &rest[start + "requests[".len()..];
        let entry = after
            .split_once(']')
            .and_then(|(i, tail)| Some((i.parse::<usize>().ok()?, tail)));
        let Some((index, tail)) = entry else {
            text.push_str("requests[");
            rest = after;
            continue;
        };
        text.push_str(&format!(
            "line {}",
            lines.get(index).copied().unwrap_or_default()
        ));
        // The field path after the entry (`.observer`) means nothing to a reader of the file.
        rest = tail;
        while let Some(path) = rest.strip_prefix('.')
            && path.starts_with(|c: char| c.is_ascii_lowercase())
        {
            let end = path.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            rest = &path[end.unwrap_or(path.len())..];
        }
    }
    text.push_str(rest);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_comment_lines_are_skipped_and_lines_keep_their_numbers() {
        let file = format!(
            "# personal data erased at 2023-06-17T00:00:00Z\n# second comment\n{}\n\
             obs-1,Anna,Ivanova,RU,sco,,,,,,,\nobs-2,Li\n",
            header().join(",")
        );
        let parsed = parse(file.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].line, 4);
        assert_eq!(parsed.rows[0].values[Column::GivenName as usize], "Anna");
        assert_eq!(parsed.rows[1].line, 5);
        assert!(parsed.rows[1].malformed.is_some());
        assert!(parsed.ignored_columns.is_empty());
    }

    #[test]
    fn a_file_of_comments_only_is_empty() {
        assert!(matches!(parse(b"# nothing\n"), Err(FileError::Empty)));
        assert_eq!(leading_comments(b"#a\n#b\nx"), (2, &b"x"[..]));
    }
}
