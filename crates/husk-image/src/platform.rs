//! `--platform os/arch[/variant]` and the choice of an index's (manifest list's) entry for it.

use husk_runtime::Error;
use serde_json::Value;

/// This machine's architecture under the Go name images use.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        a => a,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine: linux and its architecture under the Go names images use.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            arch: host_arch().into(),
            variant: None,
        }
    }

    pub fn parse(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(Error::Msg(format!(
                "--platform \"{s}\": expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
            ))),
        }
    }

    /// Whether an index entry's `platform` object is this one. arm64's variant is v8 when
    /// absent, as docker reads it; without a variant asked for, any variant matches.
    pub fn matches(&self, p: &Value) -> bool {
        let variant = |v: Option<&str>| match (self.arch.as_str(), v) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(String::from),
        };
        p["os"].as_str() == Some(&self.os)
            && p["architecture"].as_str() == Some(&self.arch)
            && (self.variant.is_none()
                || variant(p["variant"].as_str()) == variant(self.variant.as_deref()))
    }

    /// The digest of the first entry of an index's `manifests` for this platform.
    pub fn pick<'a>(&self, index: &'a Value, what: &str) -> Result<&'a Value, Error> {
        let all = index["manifests"]
            .as_array()
            .map_or(&[][..], |v| v.as_slice());
        all.iter()
            .find(|m| self.matches(&m["platform"]))
            .ok_or_else(|| {
                let have: Vec<String> = all
                    .iter()
                    .filter_map(|m| {
                        let p = &m["platform"];
                        let mut s =
                            format!("{}/{}", p["os"].as_str()?, p["architecture"].as_str()?);
                        if let Some(v) = p["variant"].as_str() {
                            s = format!("{s}/{v}");
                        }
                        Some(s)
                    })
                    .collect();
                Error::Msg(format!(
                    "{what}: no image for {self} in the index (it has: {})",
                    if have.is_empty() {
                        "none".into()
                    } else {
                        have.join(", ")
                    }
                ))
            })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Platform;
    use serde_json::json;

    #[test]
    fn platforms_match_as_docker_reads_them() {
        let idx = json!({"manifests": [
            {"digest": "a", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
            {"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": "c", "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "d", "platform": {"os": "unknown", "architecture": "unknown"}},
            {"digest": "e", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let pick = |s: &str| Platform::parse(s).unwrap().pick(&idx, "x").unwrap()["digest"].clone();
        assert_eq!(pick("linux/arm/v7"), "b");
        assert_eq!(pick("linux/arm"), "a");
        assert_eq!(pick("linux/arm64/v8"), "c");
        assert_eq!(pick("linux/amd64"), "e");
        let e = Platform::parse("linux/s390x")
            .unwrap()
            .pick(&idx, "x")
            .unwrap_err();
        assert!(e.to_string().contains("linux/arm/v6, linux/arm/v7"), "{e}");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v2/x").is_err());
    }
}
