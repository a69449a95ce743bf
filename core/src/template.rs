//! The reviewable SQL under `schemas/<backend>/` is plain text with
//! `{{placeholder}}` markers; adapters fill them with quoted identifiers and
//! generated lists. Keeping the substitution this dumb means a DBA reading the
//! file sees exactly the statements that will run, less the names.

use crate::error::{Error, Result};

/// Replace every `{{name}}` in `template` with its value from `vars`.
/// A placeholder without a value is an internal error, never silently kept.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| Error::internal("unterminated {{ in SQL template"))?;
        let name = after[..end].trim();
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                Error::internal(format!(
                    "SQL template placeholder {{{{{name}}}}} has no value"
                ))
            })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Split a rendered script into statements at lines that hold only `;;`.
/// (A plain `;` cannot be the separator: trigger bodies contain them.)
pub fn statements(script: &str) -> Vec<String> {
    script
        .split("\n;;")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_splits() {
        let sql = render(
            "-- a comment\nCREATE TABLE {{t}} (x int);\n;;\nDROP TABLE {{ t }};\n;;\n",
            &[("t", "foo")],
        )
        .expect("render");
        assert_eq!(
            statements(&sql),
            vec!["CREATE TABLE foo (x int);", "DROP TABLE foo;"]
        );
    }

    #[test]
    fn missing_placeholder_is_an_error() {
        let err = render("SELECT {{nope}}", &[]).expect_err("must fail");
        assert!(err.message().contains("nope"));
    }
}
