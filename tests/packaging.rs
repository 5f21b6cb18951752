//! The artifact's packaging: licence files for the licence Cargo.toml
//! declares, and a citation file that names the version being built.

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn licence_files_match_the_declared_licence() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let licence = manifest["package"]["license"].as_str().unwrap();
    assert_eq!(licence, "MIT OR Apache-2.0");
    assert!(read("LICENSE-MIT").starts_with("MIT License"));
    assert!(
        read("LICENSE-APACHE").contains("Apache License\n                           Version 2.0")
    );
}

#[test]
fn citation_names_this_version_and_licence() {
    let cff = read("CITATION.cff");
    let field = |key: &str| {
        cff.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("CITATION.cff has no {key}"))
    };
    assert_eq!(field("cff-version"), "1.2.0");
    assert_eq!(field("version"), env!("CARGO_PKG_VERSION"));
    let licences: Vec<&str> = cff
        .lines()
        .skip_while(|l| *l != "license:")
        .skip(1)
        .map_while(|l| l.strip_prefix("  - "))
        .collect();
    assert_eq!(licences, ["MIT", "Apache-2.0"]);
    for key in ["title", "message", "date-released", "abstract"] {
        assert!(
            cff.lines().any(|l| l.starts_with(&format!("{key}:"))),
            "{key}"
        );
    }
}
