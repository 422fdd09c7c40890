//! Image names as docker qualifies them: `alpine` is `docker.io/library/alpine:latest`,
//! `me/app` is `docker.io/me/app:latest`, a first component with `.` or `:` or `localhost` is a
//! registry host.

use husk_runtime::Error;

/// The fully qualified `host/path:tag` (or `host/path@sha256:…`) of `s`.
pub fn normalize(s: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Msg(format!("invalid reference format \"{s}\": {why}"));
    let (name, digest) = match s.split_once('@') {
        Some((n, d)) => {
            if crate::digest::parse(d).is_none() {
                return Err(bad("the digest is not sha256:<64 hex>"));
            }
            (n, Some(d))
        }
        None => (s, None),
    };
    let (host, rest) = match name.split_once('/') {
        Some((h, r)) if h.contains(['.', ':']) || h == "localhost" => (h.to_string(), r),
        _ => ("docker.io".to_string(), name),
    };
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (rest, None),
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    let ok_path = !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        });
    if !ok_path {
        return Err(bad(
            "repository names are lowercase letters, digits and . _ - between slashes",
        ));
    }
    if let Some(t) = tag
        && (t.is_empty()
            || t.len() > 128
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(bad("a tag is up to 128 letters, digits, . _ -"));
    }
    Ok(match (digest, tag) {
        (Some(d), _) => format!("{host}/{path}@{d}"),
        (None, t) => format!("{host}/{path}:{}", t.unwrap_or("latest")),
    })
}

/// `(repository, tag)` of a normalized name, for `husk images`.
pub fn split(name: &str) -> (&str, &str) {
    if let Some((repo, _)) = name.split_once('@') {
        return (repo, "<none>");
    }
    match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, "<none>"),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn short_names_are_qualified_as_docker_does() {
        let n = |s| normalize(s).unwrap();
        assert_eq!(n("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(n("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(n("me/app"), "docker.io/me/app:latest");
        assert_eq!(n("localhost/x"), "localhost/x:latest");
        assert_eq!(n("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b:v1");
        assert_eq!(n("quay.io/x/y"), "quay.io/x/y:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            n(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        let by_digest = normalize(&format!("busybox@{d}")).unwrap();
        assert_eq!(
            super::split(&by_digest),
            ("docker.io/library/busybox", "<none>")
        );
        assert_eq!(
            super::split("localhost:5000/a:v1"),
            ("localhost:5000/a", "v1")
        );
        assert!(normalize("Alpine").is_err());
        assert!(normalize("a/../b").is_err());
        assert!(normalize("busybox@sha256:12").is_err());
    }
}
