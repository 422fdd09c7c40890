//! OCI config types, validation, and lowering of a config to the `Plan` the runtime executes.
//! Pure: no syscalls, no filesystem access beyond what callers hand in.
#![forbid(unsafe_code)]

pub mod config;
pub mod defaults;
pub mod error;
pub mod lsm;
pub mod mountopt;
pub mod names;
pub mod plan;
pub mod resources;
pub mod seccomp;

pub use config::Spec;
pub use error::ConfigError;
pub use plan::{Plan, lower};

/// The runtime-spec version husk implements and writes.
pub const OCI_VERSION: &str = "1.3.0";

/// Container ids as runc accepts them: `[A-Za-z0-9][A-Za-z0-9_.+-]*`, so an id is always one
/// safe path component (never `.`, `..` or containing `/`).
pub fn validate_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    match chars.next() {
        None => return Err("container id is empty".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(format!(
                "invalid container id \"{id}\": must start with a letter or digit"
            ));
        }
        _ => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || "_.+-".contains(*c))) {
        return Err(format!(
            "invalid container id \"{id}\": character {c:?} is not allowed"
        ));
    }
    if id.len() > 1024 {
        return Err("invalid container id: longer than 1024 bytes".into());
    }
    Ok(())
}

/// Parses config.json text, naming the JSON position of a syntax or type error.
pub fn parse_config(text: &str) -> Result<Spec, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError {
        field: "config.json".into(),
        msg: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1", "A.b_c+d", "0"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "-a", "a/b", "a b", "../x", "_x", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
