//! README's copy-paste blocks run as pasted: every fenced `sh` block after a
//! `<!-- readme-test -->` line runs with bash in an empty temporary directory, with the built
//! `mqtt-lwa` first on PATH and PORT set to a free port (PORT + 1 free too, for the TLS
//! block's second listener), and must exit 0.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

const MARK: &str = "<!-- readme-test -->";

/// The marked blocks' bodies, in README order.
fn marked_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() != MARK {
            continue;
        }
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sh"),
            "{MARK} must be followed by a ```sh fence"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        blocks.push(body.join("\n") + "\n");
    }
    blocks
}

/// A port that is free with the one after it.
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = a.local_addr().expect("addr").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

#[test]
fn marked_readme_blocks_run_as_pasted() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let blocks = marked_blocks(&readme);
    // Plaintext, password, TLS and LWA.
    assert!(blocks.len() >= 4, "only {} marked blocks", blocks.len());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .parent()
        .expect("binary directory")
        .to_owned();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    for (i, block) in blocks.iter().enumerate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("block.sh");
        std::fs::write(&script, block).expect("write block");
        // `timeout` so a block whose broker never listens fails instead of hanging; it runs
        // in its own process group, which is killed afterwards, so a broker a failed block
        // left running does not outlive the test. Output goes to files, not pipes a leftover
        // broker would hold open.
        let stdout = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut child = Command::new("timeout")
            .args(["120", "bash", "-e"])
            .arg(&script)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("PORT", free_port_pair().to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("run bash");
        let status = child.wait().expect("wait for bash");
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        assert!(
            status.success(),
            "README block {} failed ({status}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            i + 1,
            read("stdout"),
            read("stderr")
        );
    }
}
