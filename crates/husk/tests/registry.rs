//! `husk pull`, `husk login/logout` and `husk run --pull` against a local registry (Debian's
//! docker-registry) run inside a network namespace each test makes (`unshare -n`, lo up):
//! nothing reaches the host's network. Images are built with umoci from busybox-static and
//! pushed with skopeo; tests/registry/proxy.py stands in front of the registry as a token-auth
//! registry, one that drops connections mid-blob, one that corrupts blobs, and one that
//! redirects blobs to another host.

mod common;
#[path = "registry/net.rs"]
mod net;
use common::*;
use net::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[test]
fn pull_and_run_from_a_local_registry() {
    let Some(n) = Net::new("run") else { return };
    n.push("bb", "bb");
    let img = format!("{REG}/bb");
    let o = n.husk(&["pull", &img]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // Not a terminal: plain lines, one per layer event.
    let err = stderr(&o);
    assert!(
        err.contains(&format!("Trying to pull {img}:latest")),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(n.entries("layers").len(), 1);
    assert_eq!(
        n.ok(&[
            "run",
            "--network",
            "none",
            "--rm",
            &img,
            "cat",
            "/etc/passwd"
        ]),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    // Present: a second pull finds the layer in place; -q prints the id only.
    let o = n.husk(&["pull", "-q", &img]);
    assert_eq!((stdout(&o).trim(), stderr(&o).as_str()), (id.as_str(), ""));
    // Two pulls at once into an empty store: both succeed, one image, the layer unpacked once.
    n.ok(&["rmi", &img]);
    n.assert_store_empty();
    let pulls: Vec<Child> = (0..2)
        .map(|_| {
            n.cmd(HUSK)
                .args(["pull", "-q", &img])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "concurrent pull: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), id);
    }
    assert_eq!(n.ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(n.entries("layers").len(), 1);
    assert!(n.entries("partial").is_empty() && n.entries("tmp").is_empty());
    // run --pull: never refuses what is missing, missing (the default) pulls it, always pulls.
    n.ok(&["rmi", &img]);
    let e = n.fails(&[
        "run",
        "--network",
        "none",
        "--rm",
        "--pull=never",
        &img,
        "true",
    ]);
    assert!(
        e.contains("no such image") && e.contains("--pull never"),
        "{e}"
    );
    let o = n.husk(&["run", "--network", "none", "--rm", &img, "echo", "pulled"]);
    assert_eq!(stdout(&o), "pulled\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("Pull complete"), "{}", stderr(&o));
    let o = n.husk(&[
        "run",
        "--network",
        "none",
        "--rm",
        "-q",
        "--pull=always",
        &img,
        "echo",
        "again",
    ]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("again\n", ""));
    let inspect = n.ok(&["image", "inspect", &img]);
    assert!(inspect.contains("MARK=amd64"), "{inspect}");
    // The namespace's holder goes whole with the fixture: its sleep too, not left for 300 s.
    let sleep = n.sleep_pid();
    drop(n);
    wait_until(
        std::time::Duration::from_secs(10),
        "the holder's sleep gone",
        || !alive(&sleep),
    );
}

#[test]
fn an_index_is_resolved_to_the_platform() {
    let Some(n) = Net::new("platform") else {
        return;
    };
    n.push("multi", "multi");
    let img = format!("{REG}/multi");
    n.ok(&["pull", "-q", &img]);
    assert!(n.ok(&["image", "inspect", &img]).contains("MARK=amd64"));
    n.ok(&["pull", "-q", "--platform", "linux/arm64", &img]);
    let inspect = n.ok(&["image", "inspect", &img]);
    assert!(
        inspect.contains("MARK=arm64") && inspect.contains("\"arm64\""),
        "{inspect}"
    );
    // Both configs share the one layer: still unpacked once.
    assert_eq!(n.entries("layers").len(), 1);
    let e = n.fails(&["pull", "--platform", "linux/s390x", &img]);
    assert!(
        e.contains("no image for linux/s390x") && e.contains("linux/arm64, linux/amd64"),
        "{e}"
    );
    let e = n.fails(&["pull", "--platform", "linux", &img]);
    assert!(e.contains("os/arch[/variant]"), "{e}");
}

#[test]
fn token_auth_login_and_logout() {
    let Some(mut n) = Net::new("token") else {
        return;
    };
    n.push("bb", "bb");
    // Blobs redirected to another host: the registry's token must not follow them there.
    n.proxy("token redirect");
    let img = format!("{PROXY}/bb");
    let e = n.fails(&["pull", &img]);
    assert!(e.contains(&format!("husk login {PROXY}")), "{e}");
    let login = |pw: &str| {
        let mut c = n.cmd(HUSK);
        c.args(["login", "-u", "user", "--password-stdin", PROXY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        writeln!(ch.stdin.take().unwrap(), "{pw}").unwrap();
        ch.wait_with_output().unwrap()
    };
    let o = login("wrong");
    assert!(!o.status.success(), "a wrong password logged in");
    assert!(
        !n.dir.join("auth.json").exists(),
        "a refused login wrote the auth file"
    );
    let o = login("secret");
    assert!(o.status.success(), "login: {}", stderr(&o));
    assert_eq!(stdout(&o), "Login Succeeded!\n");
    let auth = std::fs::read_to_string(n.dir.join("auth.json")).unwrap();
    assert!(
        auth.contains(PROXY) && auth.contains("dXNlcjpzZWNyZXQ="),
        "{auth}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(n.dir.join("auth.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    n.set_mode("token redirect");
    n.ok(&["pull", "-q", &img]);
    let log = n.requests();
    assert!(log.contains("GET /token"), "{log}");
    assert!(log.contains("GET /storage/v2/bb/blobs/sha256:"), "{log}");
    assert!(
        log.contains("/v2/bb/manifests/latest range=- auth=Bearer"),
        "{log}"
    );
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", &img, "echo", "ok"]),
        "ok\n"
    );
    n.ok(&["logout", PROXY]);
    assert!(
        !std::fs::read_to_string(n.dir.join("auth.json"))
            .unwrap()
            .contains(PROXY)
    );
    let e = n.fails(&["logout", PROXY]);
    assert!(e.contains("not logged in"), "{e}");
    // Basic credentials on the command line work without the file.
    n.ok(&["rmi", &img]);
    n.ok(&["pull", "-q", "--creds", "user:secret", &img]);
    n.ok(&["rmi", &img]);
    cred_helpers(&n, &img);
}

/// docker's credential helpers: `credHelpers` names one for the registry, `credsStore` one for
/// every registry; husk runs `docker-credential-NAME get` with the registry on stdin.
fn cred_helpers(n: &Net, img: &str) {
    use std::os::unix::fs::PermissionsExt;
    let bin = n.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-fake");
    let log = n.dir.join("helper.log");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\necho \"$1 $server\" >> {}\ncase \"$server\" in\n{PROXY}) printf '{{\"ServerURL\":\"%s\",\"Username\":\"user\",\"Secret\":\"secret\"}}' \"$server\";;\n*) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pull = |auth: serde_json::Value| {
        std::fs::write(n.dir.join("auth.json"), auth.to_string()).unwrap();
        let o = n
            .cmd(HUSK)
            .env("PATH", &path)
            .args([
                "--root",
                n.dir.join("run").to_str().unwrap(),
                "pull",
                "-q",
                img,
            ])
            .output()
            .unwrap();
        let _ = n.husk(&["rmi", img]);
        o
    };
    let o = pull(serde_json::json!({"credHelpers": {PROXY: "fake"}}));
    assert!(o.status.success(), "credHelpers: {}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("get {PROXY}\n")
    );
    let o = pull(serde_json::json!({"auths": {PROXY: {}}, "credsStore": "fake"}));
    assert!(o.status.success(), "credsStore: {}", stderr(&o));
    let o = pull(serde_json::json!({"credHelpers": {PROXY: "gone"}}));
    assert!(
        !o.status.success()
            && stderr(&o).contains("docker-credential-gone (credHelpers.\"127.0.0.1:5001\" in ")
            && stderr(&o).contains("not found in $PATH"),
        "{}",
        stderr(&o)
    );
    // The registry's helper has nothing for it ("credentials not found"): the file's next
    // source answers, an auths entry or the credsStore.
    let empty = bin.join("docker-credential-empty");
    std::fs::write(
        &empty,
        format!(
            "#!/bin/sh\nread -r server\necho \"empty $1 $server\" >> {}\necho 'credentials not found in native keychain'; exit 1\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&log, "").unwrap();
    let o = pull(serde_json::json!({"credHelpers": {PROXY: "empty"}, "credsStore": "fake"}));
    assert!(
        o.status.success(),
        "credHelpers -> credsStore: {}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("empty get {PROXY}\nget {PROXY}\n")
    );
    let basic = "dXNlcjpzZWNyZXQ="; // user:secret
    let o = pull(serde_json::json!({
        "credHelpers": {PROXY: "empty"},
        "auths": {PROXY: {"auth": basic}},
        "credsStore": "fake"
    }));
    assert!(o.status.success(), "credHelpers -> auths: {}", stderr(&o));
    // The auths entry answered: the credsStore was not asked.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("empty get {PROXY}\nget {PROXY}\nempty get {PROXY}\n")
    );
    // No source has credentials: the registry's challenge is answered as without any
    // ("husk login").
    std::fs::write(
        &helper,
        "#!/bin/sh\necho 'credentials not found in native keychain'; exit 1\n",
    )
    .unwrap();
    let o = pull(serde_json::json!({"credsStore": "fake"}));
    assert!(
        !o.status.success() && stderr(&o).contains(&format!("husk login {PROXY}")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_dropped_connection_is_resumed_and_a_wrong_digest_refused() {
    let Some(mut n) = Net::new("drop") else {
        return;
    };
    n.push("bb", "bb");
    n.proxy("drop-once");
    let img = format!("{PROXY}/bb");
    // Each blob's first GET ends halfway: husk resumes it with a Range request.
    n.ok(&["pull", "-q", &img]);
    let log = n.requests();
    assert!(
        log.lines().any(|l| l.contains("/blobs/")
            && l.contains("range=bytes=")
            && !l.contains("range=bytes=0-")),
        "no resumed request: {log}"
    );
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", &img, "echo", "whole"]),
        "whole\n"
    );
    n.ok(&["rmi", &img]);
    n.assert_store_empty();

    // Every attempt ends halfway: the pull fails, the partial blob is kept, nothing is visible.
    n.set_mode("drop");
    let e = n.fails(&["pull", "-q", &img]);
    assert!(
        e.contains("the connection failed at byte") && e.contains("resumes"),
        "{e}"
    );
    let partial = n.entries("partial");
    assert_eq!(partial.len(), 1);
    assert!(n.entries("layers").is_empty() && n.ok(&["images", "-q"]).is_empty());
    // The next pull asks for the layer from where the kept bytes end, once.
    n.set_mode("pass");
    n.ok(&["pull", "-q", &img]);
    let log = n.requests();
    let gets: Vec<&str> = log.lines().filter(|l| l.contains(&partial[0])).collect();
    assert_eq!(gets.len(), 1, "{log}");
    assert!(
        gets[0].contains("range=bytes=") && !gets[0].contains("range=bytes=0-"),
        "{log}"
    );
    assert!(n.entries("partial").is_empty());
    n.ok(&["rmi", &img]);
    n.assert_store_empty();

    // Bytes that are not the blob the manifest names: refused, and nothing of them kept.
    n.set_mode("corrupt");
    let e = n.fails(&["pull", "-q", &img]);
    assert!(e.contains("digest mismatch"), "{e}");
    n.assert_store_empty();
}

/// registries.conf (CONTAINERS_REGISTRIES_CONF, a file of the test's own): an alias to a
/// logical name whose `location` is the registry on a second, non-loopback address of the
/// namespace's lo (so only the table's `insecure` lets husk speak plain HTTP to it), search
/// registries tried in order, and a `blocked` prefix.
#[test]
fn registries_conf_aliases_locations_insecure_and_blocked() {
    let Some(n) = Net::new("conf") else { return };
    n.push("bb", "bb");
    let o = n
        .cmd("ip")
        .args(["addr", "add", "10.254.0.1/32", "dev", "lo"])
        .output()
        .unwrap();
    assert!(o.status.success(), "ip addr: {}", stderr(&o));
    let far = "10.254.0.1:5000";
    // Without a table saying so, a registry off this machine is HTTPS with checked certificates.
    let e = n.fails(&["pull", "-q", &format!("{far}/bb")]);
    assert!(e.contains(far), "{e}");
    let conf = n.dir.join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            r#"unqualified-search-registries = ["10.254.0.9:5000", "{far}"]

[aliases]
"husk-test-bb" = "registry.husk.example/team/bb"

[[registry]]
prefix = "registry.husk.example/team"
location = "{far}"
insecure = true

[[registry]]
location = "{far}"
insecure = true

[[registry]]
prefix = "{REG}/bb"
blocked = true
"#
        ),
    )
    .unwrap();
    let husk = |args: &[&str]| {
        n.cmd(HUSK)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--root")
            .arg(n.dir.join("run"))
            .args(args)
            .output()
            .unwrap()
    };
    // The alias: fetched from the location over plain HTTP, recorded under the logical name,
    // and found by the alias again when run.
    let o = husk(&["pull", "husk-test-bb"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Trying to pull registry.husk.example/team/bb:latest from {far}/bb (registries.conf)"
        )),
        "{}",
        stderr(&o)
    );
    let o = husk(&[
        "run",
        "--network",
        "none",
        "--rm",
        "husk-test-bb",
        "echo",
        "aliased",
    ]);
    assert_eq!(stdout(&o), "aliased\n", "{}", stderr(&o));
    let names = n.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(names.trim(), "registry.husk.example/team/bb:latest");
    // A short name without an alias: the search registries in order (the first has no route).
    let o = husk(&["pull", "-q", "bb"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = husk(&[
        "run",
        "--network",
        "none",
        "--rm",
        "--pull=never",
        "bb",
        "true",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(n.ok(&["images"]).contains(&format!("{far}/bb")));
    // Blocked: refused before any request, naming the table and the file.
    let o = husk(&["pull", &format!("{REG}/bb")]);
    let e = stderr(&o);
    assert!(
        !o.status.success()
            && e.contains("blocked by registries.conf")
            && e.contains(conf.to_str().unwrap()),
        "{e}"
    );
    // A file husk cannot read fails the pull naming it.
    std::fs::write(&conf, "[aliases\n").unwrap();
    let o = husk(&["pull", "bb"]);
    assert!(
        !o.status.success() && stderr(&o).contains(conf.to_str().unwrap()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_zstd_layer_of_two_frames_is_pulled() {
    let Some(n) = Net::new("zstd") else { return };
    require!(have("zstd"), "zstd not installed");
    // The uncompressed layer (skopeo's dir: copy), recompressed as two zstd frames end to end.
    let d = n.dir.join("raw");
    let src = format!("oci:{}:bb", layout().join("oci").display());
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--dest-decompress", &src])
        .arg(format!("dir:{}", d.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
    let hex = |v: &serde_json::Value| v.as_str().unwrap()[7..].to_string();
    let (cfg, layer) = (hex(&m["config"]["digest"]), hex(&m["layers"][0]["digest"]));
    fixture_script(
        &d,
        &format!(
            "head -c 100000 {layer} | zstd -q -c > l.zst; tail -c +100001 {layer} | zstd -q -c >> l.zst"
        ),
    );
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/push.py");
    let o = n
        .cmd("python3")
        .arg(py)
        .args([REG, "zst", "latest"])
        .arg(d.join(&cfg))
        .arg(d.join("l.zst"))
        .output()
        .unwrap();
    assert!(o.status.success(), "push.py: {}", stderr(&o));
    let img = format!("{REG}/zst");
    n.ok(&["pull", "-q", &img]);
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", &img, "echo", "zstd"]),
        "zstd\n"
    );
}

/// docker-registry on 127.0.0.1:`port` over TLS with `tls`'s srv.crt and srv.key, serving the
/// images `push` stored; `more` adds to its `http.tls` settings.
fn tls_registry(n: &mut Net, tls: &Path, port: u16, more: &str) {
    let cfg = n.dir.join(format!("registry-{port}.yml"));
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}, tls: {{certificate: {}, key: {}{more}}}}}\n",
            n.dir.join("reg").display(),
            tls.join("srv.crt").display(),
            tls.join("srv.key").display()
        ),
    )
    .unwrap();
    n.spawn("docker-registry", &["serve", cfg.to_str().unwrap()]);
    n.wait_port(port);
}

#[test]
fn a_tls_registry_is_trusted_through_certs_d() {
    let Some(mut n) = Net::new("tls") else {
        return;
    };
    if !have("openssl") {
        skip(Skip::Prerequisite, "openssl not installed");
        return;
    }
    n.push("bb", "bb");
    // A CA, a certificate for 127.0.0.1 it signs, and a CA that signs nothing here.
    let tls = n.dir.join("tls");
    for d in ["good", "other"] {
        std::fs::create_dir_all(tls.join(d)).unwrap();
    }
    let script = r#"set -e
ec() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "$@" 2>/dev/null; }
ec -subj /CN=husk-test-ca -keyout ca.key -out good/ca.crt
ec -subj /CN=husk-other-ca -keyout other.key -out other/ca.crt
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext
openssl x509 -req -in srv.csr -CA good/ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out srv.crt 2>/dev/null
"#;
    fixture_script(&tls, script);
    tls_registry(&mut n, &tls, 5443, "");
    let img = "127.0.0.1:5443/bb";
    let e = n.fails(&["pull", "-q", "--tls-verify=true", img]);
    assert!(
        e.contains("127.0.0.1:5443's TLS certificate: no CA husk trusts signed it")
            && e.contains("/etc/containers/certs.d/127.0.0.1:5443/ca.crt"),
        "{e}"
    );
    let other = tls.join("other");
    let e = n.fails(&["pull", "-q", "--cert-dir", other.to_str().unwrap(), img]);
    assert!(
        e.contains(&format!(
            "the CAs in {} do not vouch for it",
            other.display()
        )),
        "{e}"
    );
    n.ok(&[
        "pull",
        "-q",
        "--cert-dir",
        tls.join("good").to_str().unwrap(),
        img,
    ]);
    n.ok(&["rmi", img]);
    // docker's and podman's place: a local registry given a CA is verified with it. The host's
    // /etc is not written: the CA goes into a tmpfs over /etc/containers in a mount namespace
    // of the pull's own (the suite checks /etc is unchanged afterwards).
    let pull_with_etc_ca = |ca: &Path| {
        let script = r#"mount -t tmpfs husk-test-etc /etc/containers
d=/etc/containers/certs.d/127.0.0.1:5443; mkdir -p "$d" && cp "$1" "$d/ca.crt"; shift
exec "$@""#;
        let mut c = n.cmd("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-ec", script, "sh"])
            .arg(ca)
            .arg(HUSK)
            .args(["pull", "-q", img]);
        c.output().unwrap()
    };
    assert!(
        Path::new("/etc/containers").is_dir(),
        "/etc/containers (podman's package) is missing"
    );
    let o = pull_with_etc_ca(&other.join("ca.crt"));
    assert!(!o.status.success(), "pulled with the wrong CA in certs.d");
    assert!(stderr(&o).contains("do not vouch for it"), "{}", stderr(&o));
    let o = pull_with_etc_ca(&tls.join("good/ca.crt"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        n.ok(&["run", "--network", "none", "--rm", img, "echo", "ok"]),
        "ok\n"
    );

    // A registry that asks for a client certificate (docker-registry's http.tls.clientcas):
    // refused without one; a certs.d directory's client.cert with its client.key answers it.
    std::fs::create_dir_all(tls.join("mtls")).unwrap();
    let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=husk-client-ca -keyout clientca.key -out clientca.crt 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=husk-client -keyout mtls/client.key -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' > cext
openssl x509 -req -in client.csr -CA clientca.crt -CAkey clientca.key -CAcreateserial -days 2 -extfile cext -out mtls/client.cert 2>/dev/null
cp good/ca.crt mtls/ca.crt
"#;
    fixture_script(&tls, script);
    let cas = format!(", clientcas: [{}]", tls.join("clientca.crt").display());
    tls_registry(&mut n, &tls, 5444, &cas);
    n.ok(&["rmi", img]);
    let img = "127.0.0.1:5444/bb";
    let good = tls.join("good");
    let e = n.fails(&["pull", "-q", "--cert-dir", good.to_str().unwrap(), img]);
    // The registry's refusal of a client without a certificate (Go's TLS sends bad_certificate),
    // not some other failure to reach it.
    assert!(
        e.contains("127.0.0.1:5444") && e.contains("BadCertificate"),
        "{e}"
    );
    n.assert_store_empty();
    let mtls = tls.join("mtls");
    n.ok(&["pull", "-q", "--cert-dir", mtls.to_str().unwrap(), img]);
}
