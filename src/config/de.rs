//! Deserializers for values written as strings in `sync.toml`.
//!
//! Enums go through a `String` first so that a typo gets serde's standard
//! "unknown variant `x`, expected one of ..." message instead of the `config`
//! crate's own wording.

use std::time::Duration;

use serde::de::{DeserializeOwned, Error, IntoDeserializer};
use serde::{Deserialize, Deserializer};

/// A duration written the humantime way: `"10s"`, `"1m 30s"`, `"250ms"`.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim())
        .map_err(|e| D::Error::custom(format_args!("invalid duration {s:?}: {e}")))
}

/// An optional duration written the humantime way.
pub(super) fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) => humantime::parse_duration(s.trim())
            .map(Some)
            .map_err(|e| D::Error::custom(format_args!("invalid duration {s:?}: {e}"))),
        None => Ok(None),
    }
}

/// An enum written as its (kebab/lower-case) name.
pub(super) fn via_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let s = String::deserialize(d)?;
    T::deserialize(s.as_str().into_deserializer())
}

/// An optional enum written as its name.
pub(super) fn via_str_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<String>::deserialize(d)? {
        Some(s) => T::deserialize(s.as_str().into_deserializer()).map(Some),
        None => Ok(None),
    }
}
