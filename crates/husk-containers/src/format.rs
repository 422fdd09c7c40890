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
