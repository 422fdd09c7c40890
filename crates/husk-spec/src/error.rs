//! The one error every lowering step returns: the config field and what is wrong with it. A
//! module of its own so `plan` and `seccomp` both use it without depending on each other.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {msg}")]
pub struct ConfigError {
    pub field: String,
    pub msg: String,
}

pub(crate) fn err(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        msg: msg.into(),
    }
}
