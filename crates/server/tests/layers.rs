//! The layering rule of ARCHITECTURE.md, checked: the server translates HTTP and pages into
//! use cases of the application core and never reaches the store itself. It depends on
//! `anxin-storage` only for its test fixtures (the `testing` feature), so outside
//! `src/testing.rs` no line may name the storage crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_server_names_the_storage_crate_only_in_its_test_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 10, "the server's sources were not found");
    let mut offending = vec![];
    for f in &files {
        if f.ends_with("testing.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("anxin_storage") {
                offending.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "the server reaches the storage crate outside its test fixtures (call a use case of \
         anxin_app instead):\n{}",
        offending.join("\n")
    );
}

#[test]
fn the_storage_dependency_is_for_the_test_fixtures_only() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap();
    let line = deps
        .lines()
        .find(|l| l.trim_start().starts_with("anxin-storage"))
        .expect("anxin-storage is listed (optional, for the testing feature)");
    assert!(
        line.contains("optional = true"),
        "anxin-storage must stay an optional dependency of the server: {line}"
    );
    assert!(manifest.contains("\"dep:anxin-storage\""));
}
