use super::*;

fn load(text: &str) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_toml(text, Path::new("broker.toml"))
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for f in ["c.crt", "c.key", "ca.crt", "passwd", "acl", "lwa.psk"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        Files(dir)
    }
    fn p(&self, f: &str) -> String {
        self.0.path().join(f).display().to_string()
    }
}

#[test]
fn default_ports_per_mode() {
    let f = Files::new();
    let text = format!(
        r#"
[[listener]]
name = "a"
allow_anonymous = true

[[listener]]
name = "b"
bind = "0.0.0.0"
mode = "tls"
allow_anonymous = true
[listener.tls]
certfile = "{crt}"
keyfile = "{key}"

[[listener]]
name = "c"
mode = "tls"
bind = "::1"
allow_anonymous = true
tls = {{ certfile = "{crt}", keyfile = "{key}" }}

[[listener]]
name = "d"
bind = "127.0.0.1:0"
allow_anonymous = true
"#,
        crt = f.p("c.crt"),
        key = f.p("c.key")
    );
    let c = load(&text).unwrap();
    let binds: Vec<String> = c.listeners.iter().map(|l| l.bind.to_string()).collect();
    assert_eq!(
        binds,
        [
            "127.0.0.1:1883",
            "0.0.0.0:8883",
            "[::1]:8883",
            "127.0.0.1:0"
        ]
    );
    c.validate().unwrap();
}

#[test]
fn tls_without_table_names_the_line() {
    assert_eq!(
        err("[[listener]]\nname = \"x\"\nmode = \"tls\"\n"),
        "broker.toml:3: mode = \"tls\" needs a [listener.tls] table with certfile and keyfile"
    );
}

#[test]
fn missing_files_name_key_line_and_path() {
    let f = Files::new();
    let text = format!(
        "[[listener]]\nname = \"ok\"\npassword_file = \"{}\"\n\n[[listener]]\nname = \"bad\"\nmode = \"tls\"\n[listener.tls]\ncertfile = \"{}\"\nkeyfile = \"/nonexistent/k.pem\"\n",
        f.p("passwd"),
        f.p("c.crt")
    );
    let e = err(&text);
    assert!(
        e.starts_with("broker.toml:10: tls.keyfile /nonexistent/k.pem: "),
        "{e}"
    );
    let text = format!(
        "[[listener]]\nname = \"x\"\nacl_file = \"{}\"\nlwa_psk_file = \"/no/psk\"\n",
        f.p("acl")
    );
    assert!(err(&text).starts_with("broker.toml:4: lwa_psk_file /no/psk"));
}

#[test]
fn semantic_checks() {
    let f = Files::new();
    let tls = |extra: &str| {
        format!(
            "[[listener]]\nallow_anonymous = true\nmode = \"tls\"\n[listener.tls]\ncertfile = \"{}\"\nkeyfile = \"{}\"\n{extra}",
            f.p("c.crt"),
            f.p("c.key")
        )
    };
    assert!(err(&tls("tls_version = \"tlsv1.1\"\n"))
        .starts_with("broker.toml:7: unknown TLS version \"tlsv1.1\""));
    let e = err(&tls(
        "ciphers = [\"TLS_AES_128_GCM_SHA256\", \"TLS_RC4_128_MD5\"]\n",
    ));
    assert!(
        e.starts_with("broker.toml:7: unknown cipher suite \"TLS_RC4_128_MD5\"; available: "),
        "{e}"
    );
    load(&tls("ciphers = [\"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\"]\n")).unwrap();
    assert!(err(&tls("require_certificate = true\n"))
        .starts_with("broker.toml:7: require_certificate needs tls.cafile"));
    let ok = format!(
        "require_certificate = true\ncafile = \"{}\"\nuse_identity_as_username = true\n",
        f.p("ca.crt")
    );
    load(&tls(&ok)).unwrap();
    assert!(err(&tls("use_identity_as_username = true\n")).contains("needs require_certificate"));
    assert_eq!(
        err("[[listener]]\nname = \"a\"\nallow_anonymous = true\n[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\nallow_anonymous = true\n"),
        "broker.toml:5: listener name \"a\" already used by listener 1"
    );
    // Anonymous access is off unless stated (issue 13).
    assert!(err("[[listener]]\nname = \"quiet\"\n").starts_with("broker.toml:1: no way in"));
    assert!(err("[[listener]]\nallow_anonymous = false\n")
        .starts_with("broker.toml:2: no way in: allow_anonymous is false"));
    assert!(
        err("[[listener]]\n[listener.tls]\ncertfile = \"a\"\nkeyfile = \"b\"\n")
            .contains("plain listener")
    );
    assert_eq!(
        err("listener = []\n"),
        "broker.toml: at least one [[listener]] is required"
    );
}

#[test]
fn syntax_and_type_errors_have_lines() {
    let e = err("[[listener]]\nname = \"a\"\nbind = 5\n");
    assert!(e.starts_with("broker.toml:3: "), "{e}");
    let e = err("[[listener]]\nname = \"a\"\ncolour = \"red\"\n");
    assert!(
        e.starts_with("broker.toml:3: unknown field `colour`"),
        "{e}"
    );
    let e = err("[[listener]\n");
    assert!(e.starts_with("broker.toml:1: "), "{e}");
    let e = err("[[listener]]\nmode = \"quic\"\n");
    assert!(e.starts_with("broker.toml:2: "), "{e}");
}

#[test]
fn load_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.toml");
    std::fs::write(&p, "sys_interval_secs = 3\n").unwrap();
    let c = BrokerConfig::load(&p).unwrap();
    assert_eq!(c.sys_interval_secs, 3);
    assert_eq!(c.listeners.len(), 1);
    let missing = dir.path().join("none.toml");
    assert!(BrokerConfig::load(&missing)
        .unwrap_err()
        .to_string()
        .contains("cannot read"));
}
