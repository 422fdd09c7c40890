//! docker's `--format` for listings (`ps`, `images`): a table whose columns are as wide as
//! their widest cell, 3 spaces apart (Go's tabwriter as docker sets it), and the subset of Go
//! templates people write (`{{.Names}}\t{{.Status}}`, a leading `table ` adds a header).

use husk_runtime::Error;

pub enum Part {
    Text(String),
    Field(String),
}

/// `t` split into text and `{{.Field}}`s, each field one of `known`.
pub fn template(t: &str, known: &[&str]) -> Result<Vec<Part>, Error> {
    let t = t.replace("\\t", "\t").replace("\\n", "\n");
    let mut parts = vec![];
    let mut rest = t.as_str();
    while let Some(open) = rest.find("{{") {
        parts.push(Part::Text(rest[..open].to_string()));
        let close = rest[open..]
            .find("}}")
            .ok_or_else(|| Error::Msg(format!("--format {t}: a {{{{ without }}}}")))?;
        let inner = rest[open + 2..open + close].trim();
        let field = inner
            .strip_prefix('.')
            .filter(|f| known.contains(f))
            .ok_or_else(|| {
                Error::Msg(format!(
                    "--format: unknown field {inner}; known: {}",
                    known
                        .iter()
                        .map(|f| format!(".{f}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ))
            })?;
        parts.push(Part::Field(field.to_string()));
        rest = &rest[open + close + 2..];
    }
    parts.push(Part::Text(rest.to_string()));
    Ok(parts)
}

/// One line of a template: its text, each field's value from `field`.
pub fn render(parts: &[Part], field: impl Fn(&str) -> String) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(s) => s.clone(),
            Part::Field(f) => field(f),
        })
        .collect()
}

/// A listing's lines as `--format` asks: `json` (an object a row, of every `known` field),
/// "" or `table` (docker's `columns`, headed), or a template (`table ` before it adds a header).
/// `header` names a field as docker heads its column; `field` is a row's value of a field.
pub fn listing<R>(
    format: &str,
    known: &[&str],
    columns: &[&str],
    header: impl Fn(&str) -> String,
    rows: &[R],
    field: impl Fn(&R, &str) -> String,
) -> Result<Vec<String>, Error> {
    Ok(match format {
        "json" => rows
            .iter()
            .map(|r| {
                let m: serde_json::Map<_, _> = known
                    .iter()
                    .map(|f| (f.to_string(), field(r, f).into()))
                    .collect();
                serde_json::Value::Object(m).to_string()
            })
            .collect(),
        "" | "table" => {
            let head: Vec<String> = columns.iter().map(|c| header(c)).collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| columns.iter().map(|c| field(r, c)).collect())
                .collect();
            table(&head, &cells)
        }
        t => {
            let (with_header, t) = match t.strip_prefix("table ") {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            let parts = template(t, known)?;
            let head = with_header.then(|| render(&parts, &header));
            head.into_iter()
                .chain(rows.iter().map(|r| render(&parts, |f| field(r, f))))
                .collect()
        }
    })
}

/// The lines of a table: the header, then each row.
pub fn table(head: &[String], cells: &[Vec<String>]) -> Vec<String> {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for c in cells {
        for (i, s) in c.iter().enumerate() {
            width[i] = width[i].max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut l = String::new();
        for (i, s) in c.iter().enumerate() {
            l.push_str(s);
            if i + 1 < c.len() {
                l.extend(std::iter::repeat_n(' ', width[i] - s.chars().count() + 3));
            }
        }
        l
    };
    std::iter::once(line(head))
        .chain(cells.iter().map(|c| line(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_in_each_format() {
        let rows = [("a", "1"), ("bb", "22")];
        let field = |r: &(&str, &str), f: &str| if f == "X" { r.0 } else { r.1 }.to_string();
        let head = |f: &str| format!("{f} HEAD");
        let l = |format| listing(format, &["X", "Y"], &["Y", "X"], head, &rows, field).unwrap();
        assert_eq!(
            l("json"),
            [r#"{"X":"a","Y":"1"}"#, r#"{"X":"bb","Y":"22"}"#]
        );
        assert_eq!(l(""), ["Y HEAD   X HEAD", "1        a", "22       bb"]);
        assert_eq!(l("table"), l(""));
        assert_eq!(l("{{.X}}={{.Y}}"), ["a=1", "bb=22"]);
        assert_eq!(
            l("table {{.X}}\\t{{.Y}}"),
            ["X HEAD\tY HEAD", "a\t1", "bb\t22"]
        );
        assert!(listing("{{.Z}}", &["X"], &["X"], head, &rows, field).is_err());
    }

    #[test]
    fn templates_and_tables() {
        let p = template("{{ .A }}\\t{{.B}}!", &["A", "B"]).unwrap();
        assert_eq!(render(&p, |f| f.to_lowercase()), "a\tb!");
        assert!(template("{{.C}}", &["A"]).is_err() && template("{{.A", &["A"]).is_err());
        let t = table(
            &["X".into(), "LONG".into()],
            &[vec!["wide".into(), "1".into()]],
        );
        assert_eq!(t, ["X      LONG", "wide   1"]);
    }
}
