//! Password files move both ways between Debian's mosquitto 2.0.11 tools and ours:
//! files from `mosquitto_passwd` verify with our code, and files from
//! `mqtt-lwa passwd` are accepted by the real `mosquitto` broker.
//!
//! Needs `mosquitto`, `mosquitto_passwd` and `mosquitto_pub` (scripts/install-deps.sh).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mqtt_lwa::auth::password::{PasswordFile, PasswordHash, DEFAULT_ITERATIONS};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name} || test -x {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{name} not installed: run scripts/install-deps.sh");
    Command::new(name)
}

fn ours() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A private temp dir the broker (which drops to user `mosquitto` when started as root) can read.
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn make_world_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

#[test]
fn mosquitto_passwd_files_verify_with_our_code() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    ok(tool("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&file)
        .args(["alice", "s3cret"])
        .output()
        .unwrap());
    ok(tool("mosquitto_passwd")
        .arg("-b")
        .arg(&file)
        .args(["bob", "with space:and colon"])
        .output()
        .unwrap());
    ok(tool("mosquitto_passwd")
        .args(["-H", "sha512", "-b"])
        .arg(&file)
        .args(["legacy", "old-style"])
        .output()
        .unwrap());
    // Interactive mode reading the password twice from a pipe.
    let mut child = tool("mosquitto_passwd")
        .arg(&file)
        .arg("piped")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"fr0m-stdin\nfr0m-stdin\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let pw = PasswordFile::load(&file).unwrap();
    assert_eq!(pw.len(), 4);
    assert!(pw.verify("alice", b"s3cret"));
    assert!(!pw.verify("alice", b"s3cret "));
    assert!(pw.verify("bob", b"with space:and colon"));
    assert!(pw.verify("legacy", b"old-style"));
    assert!(matches!(
        pw.get("legacy"),
        Some(PasswordHash::Sha512 { .. })
    ));
    assert!(pw.verify("piped", b"fr0m-stdin"));
    assert!(!pw.verify("piped", b"fr0m-stdin\n"));

    // Deleting with our tool keeps the other mosquitto entries byte-for-byte.
    let before = std::fs::read_to_string(&file).unwrap();
    ok(ours()
        .args(["passwd", "-D"])
        .arg(&file)
        .arg("bob")
        .output()
        .unwrap());
    let after = std::fs::read_to_string(&file).unwrap();
    let expected: String = before
        .lines()
        .filter(|l| !l.starts_with("bob:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(after, expected);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mosquitto(dir: &Path, password_file: &Path) -> Broker {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    let log = dir.join("mosquitto.log");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n",
            password_file.display()
        ),
    )
    .unwrap();
    make_world_readable(&conf);
    let log_file = std::fs::File::create(&log).unwrap();
    let child = tool(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let mut broker = Broker { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return broker;
        }
        if let Ok(Some(status)) = broker.child.try_wait() {
            panic!(
                "mosquitto exited with {status}: {}",
                std::fs::read_to_string(&broker.log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mosquitto_pub(broker: &Broker, user: &str, password: &str, version: &str) -> Output {
    tool("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-V", version, "-u", user, "-P", password])
        .args(["-t", "compat/test", "-m", "hello", "-q", "1"])
        .output()
        .unwrap()
}

#[test]
fn mqtt_lwa_passwd_files_are_accepted_by_mosquitto() {
    let dir = shared_tempdir();
    let file = dir.path().join("pw");
    // Default iteration count once (what operators get), small counts for the rest.
    ok(ours()
        .args(["passwd", "-c", "-b"])
        .arg(&file)
        .args(["alice", "s3cret"])
        .output()
        .unwrap());
    ok(ours()
        .args(["passwd", "-b", "-I", "1000"])
        .arg(&file)
        .args(["bob", "with space:and colon"])
        .output()
        .unwrap());
    let mut child = ours()
        .args(["passwd", "-I", "500"])
        .arg(&file)
        .arg("piped")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"fr0m-stdin\nfr0m-stdin\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let pw = PasswordFile::load(&file).unwrap();
    assert_eq!(
        pw.get("alice").and_then(PasswordHash::iterations),
        Some(DEFAULT_ITERATIONS)
    );
    make_world_readable(&file);

    let broker = start_mosquitto(dir.path(), &file);
    for version in ["mqttv311", "mqttv5"] {
        ok(mosquitto_pub(&broker, "alice", "s3cret", version));
        ok(mosquitto_pub(
            &broker,
            "bob",
            "with space:and colon",
            version,
        ));
        ok(mosquitto_pub(&broker, "piped", "fr0m-stdin", version));
        let wrong = mosquitto_pub(&broker, "alice", "s3cret!", version);
        assert!(
            !wrong.status.success(),
            "wrong password accepted ({version})"
        );
        let said = String::from_utf8_lossy(&wrong.stderr).to_lowercase();
        assert!(said.contains("not authori"), "unexpected refusal: {said}");
        let unknown = mosquitto_pub(&broker, "mallory", "s3cret", version);
        assert!(
            !unknown.status.success(),
            "unknown user accepted ({version})"
        );
    }
    let log = std::fs::read_to_string(&broker.log).unwrap_or_default();
    assert!(
        !log.contains("removing entry"),
        "mosquitto dropped an entry:\n{log}"
    );
}

#[test]
fn mqtt_lwa_passwd_refuses_bad_input_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let missing = ours()
        .args(["passwd", "-b", "-I", "10"])
        .arg(&file)
        .args(["u", "p"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("-c"));
    assert!(!file.exists());

    ok(ours()
        .args(["passwd", "-c", "-b", "-I", "10"])
        .arg(&file)
        .args(["u", "p"])
        .output()
        .unwrap());
    let before = std::fs::read(&file).unwrap();
    let attempts: Vec<(Vec<&str>, Option<&[u8]>)> = vec![
        (vec!["-I", "10"], Some(b"one\ntwo\n")), // passwords differ
        (vec!["-I", "10"], Some(b"only-one\n")), // second line missing
        (vec!["-I", "10"], Some(b"\n\n")),       // empty password
        (vec!["-H", "sha512", "-b", "-I", "10"], None), // legacy hash refused
        (vec!["-b", "-I", "0"], None),           // bad iteration count
        (vec!["-D"], None),                      // unknown user to delete
    ];
    for (flags, stdin) in attempts {
        let mut cmd = ours();
        cmd.arg("passwd").args(&flags).arg(&file);
        cmd.arg(if flags.contains(&"-D") { "nobody" } else { "v" });
        if flags.contains(&"-b") {
            cmd.arg("pw");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or(b"")).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{flags:?} succeeded");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "{flags:?} changed the file"
        );
    }
    // The file still verifies with the original password.
    assert!(PasswordFile::load(&file).unwrap().verify("u", b"p"));
}
