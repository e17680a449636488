//! The Debian package's parts, checked without building it (that is
//! `packaging/build-deb.sh`, a release build): the packaged configuration
//! is the example with the store under /var/lib/rapidbox and passes
//! check-config; every asset cargo-deb is told to install exists; the
//! systemd unit carries its hardening and passes `systemd-analyze verify`.

mod support;

use std::path::Path;
use std::process::Command;

const EXAMPLE: &str = include_str!("../rapidbox.example.toml");
const PACKAGED: &str = include_str!("../debian/rapidbox.toml");
const UNIT: &str = include_str!("../debian/rapidbox.service");
const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

#[test]
fn the_packaged_configuration_is_the_example_with_the_store_in_var_lib() {
    let expected = EXAMPLE.replace(
        "path = \"./data/rapidbox.redb\"",
        "path = \"/var/lib/rapidbox/rapidbox.redb\"",
    );
    assert!(
        PACKAGED.ends_with(&expected),
        "debian/rapidbox.toml is not rapidbox.example.toml with the store path changed \
         (after its header); regenerate it"
    );
    let report = rapidbox::config::check(PACKAGED);
    assert!(
        report.errors.is_empty() && report.warnings.is_empty(),
        "{report:#?}"
    );
    let config = rapidbox::config::Config::from_toml_str(PACKAGED).unwrap();
    assert_eq!(
        config.store.path,
        Path::new("/var/lib/rapidbox/rapidbox.redb")
    );
}

#[test]
fn every_asset_cargo_deb_installs_exists_or_is_the_release_binary() {
    let manifest: toml::Table =
        toml::from_str(include_str!("../Cargo.toml")).expect("Cargo.toml parses");
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().expect("assets is a list");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for asset in assets {
        let source = asset[0].as_str().expect("an asset's source is a string");
        if source == "target/release/rapidbox" {
            continue;
        }
        assert!(root.join(source).is_file(), "asset {source} is missing");
    }
    for script in ["postinst", "postrm"] {
        let text = std::fs::read_to_string(root.join("debian").join(script)).unwrap();
        assert!(
            text.contains("#DEBHELPER#"),
            "{script}: cargo-deb's snippets go at #DEBHELPER#"
        );
        assert!(
            text.starts_with("#!/bin/sh\n"),
            "{script}: not a shell script"
        );
    }
    assert!(root.join("debian/rapidbox.service").is_file());
    let conffiles = deb["conf-files"].as_array().unwrap();
    assert_eq!(conffiles[0].as_str(), Some("/etc/rapidbox/rapidbox.toml"));
}

#[test]
fn the_unit_is_hardened_and_runs_rapidbox_as_its_own_user() {
    let keys: Vec<&str> = UNIT
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for wanted in [
        "Type=notify",
        "WatchdogSec=30s",
        "ExecStart=/usr/bin/rapidbox run --config /etc/rapidbox/rapidbox.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=rapidbox",
        "StateDirectory=rapidbox",
        "Restart=on-failure",
        "After=network.target kannel.service",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(keys.contains(&wanted), "the unit lacks {wanted}");
    }
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if !Path::new(SYSTEMD_ANALYZE).is_file() {
        assert!(
            !support::in_ci(),
            "systemd-analyze is required under CI (Debian package systemd)"
        );
        eprintln!("packaging: systemd-analyze not installed; unit not verified");
        return;
    }
    // The package's binary is not installed here: point ExecStart at the
    // one cargo built for the tests.
    let binary = env!("CARGO_BIN_EXE_rapidbox");
    let unit = UNIT.replace(
        "ExecStart=/usr/bin/rapidbox",
        &format!("ExecStart={binary}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rapidbox.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(SYSTEMD_ANALYZE)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
