//! The reader against files on disk: groups, includes, errors, bounds.

use std::path::Path;

use proptest::prelude::*;

use super::{read, KannelConf, Location, ReadError, ReadOptions, Var};

fn write(dir: &Path, name: &str, text: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn read_in(dir: &Path, name: &str) -> Result<KannelConf, ReadError> {
    read(&dir.join(name), &ReadOptions::new(dir))
}

fn value<'a>(conf: &'a KannelConf, group: &str, key: &str) -> Option<&'a str> {
    conf.single(group)?.get(key).map(|var| var.value.as_str())
}

#[test]
fn blank_lines_end_groups_and_the_last_single_group_and_value_win() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "k.conf",
        b"# kannel.conf\ngroup = core\nsmsbox-port = 13001\n\n\
          group = smsbox\nglobal-sender = one\nglobal-sender = \"two\"\n\n\
          group = sendsms-user\nusername = a\npassword = x\n\n\
          group = sendsms-user\nusername = b\npassword = y\n\n\
          group = smsbox\nglobal-sender = three\n",
    );
    let conf = read_in(dir.path(), "k.conf").unwrap();
    let names: Vec<_> = conf.groups.iter().map(|group| group.name).collect();
    assert_eq!(
        names,
        ["core", "smsbox", "sendsms-user", "sendsms-user", "smsbox"]
    );
    // Checked against smsbox 1.4.5: it logged global sender 'three'.
    assert_eq!(value(&conf, "smsbox", "global-sender"), Some("three"));
    assert_eq!(conf.groups[1].get("global-sender").unwrap().value, "two");
    assert_eq!(conf.groups[2].at.line, 9);
    assert_eq!(conf.groups[3].get("password").unwrap().at.line, 15);
    assert!(conf.groups[2].get("group").is_none());
}

#[test]
fn a_key_set_many_times_keeps_its_first_place_and_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("group = smsbox\nsmsbox-id = a\n");
    for i in 0..40_000 {
        text.push_str(&format!("global-sender = {i}\n"));
    }
    text.push_str("smsbox-id = b\n");
    write(dir.path(), "many.conf", text.as_bytes());
    let conf = read_in(dir.path(), "many.conf").unwrap();
    let keys: Vec<_> = conf.groups[0]
        .vars
        .iter()
        .map(|var| var.key.as_str())
        .collect();
    assert_eq!(keys, ["smsbox-id", "global-sender"]);
    assert_eq!(value(&conf, "smsbox", "global-sender"), Some("39999"));
    assert_eq!(value(&conf, "smsbox", "smsbox-id"), Some("b"));
}

#[test]
fn relative_includes_start_in_kannels_directory_not_the_including_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "etc/main.conf",
        b"include = \"etc/part.conf\"\n",
    );
    write(
        dir.path(),
        "etc/part.conf",
        b"group = smsbox\nsmsbox-id = part\n",
    );
    let conf = read_in(dir.path(), "etc/main.conf").unwrap();
    assert_eq!(value(&conf, "smsbox", "smsbox-id"), Some("part"));

    // Checked against smsbox 1.4.5: run elsewhere, `part.conf` is not found
    // beside the file that includes it.
    write(dir.path(), "etc/beside.conf", b"include = part.conf\n");
    let err = read_in(dir.path(), "etc/beside.conf").unwrap_err();
    assert!(
        matches!(err, ReadError::Io { at: Some(ref at), .. } if at.line == 1),
        "{err}"
    );
    assert!(
        err.to_string().contains("beside.conf:1: included here"),
        "{err}"
    );
}

#[test]
fn an_include_continues_the_open_group_and_its_end_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "keys.conf", b"bearerbox-host = 10.0.0.1\n");
    write(
        dir.path(),
        "main.conf",
        b"group = smsbox\ninclude = keys.conf\n\ngroup = core\nsmsbox-port = 1\n",
    );
    let conf = read_in(dir.path(), "main.conf").unwrap();
    assert_eq!(value(&conf, "smsbox", "bearerbox-host"), Some("10.0.0.1"));
    // A setting after the include is a new group, without a `group` line.
    write(
        dir.path(),
        "after.conf",
        b"group = smsbox\ninclude = keys.conf\nsmsbox-id = x\n",
    );
    let err = read_in(dir.path(), "after.conf").unwrap_err();
    assert!(
        matches!(err, ReadError::NoGroupKey { ref at } if at.line == 3),
        "{err}"
    );
}

#[test]
fn a_directory_include_reads_its_files_in_name_order_and_skips_directories() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "conf.d/20-users.conf",
        b"group = sendsms-user\nusername = b\npassword = p\n",
    );
    write(
        dir.path(),
        "conf.d/10-users.conf",
        b"group = sendsms-user\nusername = a\npassword = p\n",
    );
    write(dir.path(), "conf.d/sub/x.conf", b"this is never read\n");
    write(dir.path(), "main.conf", b"include = conf.d\n");
    let conf = read_in(dir.path(), "main.conf").unwrap();
    let users: Vec<_> = conf
        .all("sendsms-user")
        .map(|group| group.get("username").unwrap().value.as_str())
        .collect();
    assert_eq!(users, ["a", "b"]);
}

#[test]
fn a_file_included_twice_or_in_a_loop_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "part.conf", b"group = core\n");
    // Checked against smsbox 1.4.5: "Recursive include ... detected".
    write(
        dir.path(),
        "twice.conf",
        b"include = part.conf\n\ninclude = part.conf\n",
    );
    let err = read_in(dir.path(), "twice.conf").unwrap_err();
    assert!(
        matches!(err, ReadError::IncludedTwice { ref at, .. } if at.line == 3),
        "{err}"
    );
    // A loop under another name, which Kannel follows until memory runs out.
    write(dir.path(), "loop.conf", b"include = ./loop.conf\n");
    let err = read_in(dir.path(), "loop.conf").unwrap_err();
    assert!(matches!(err, ReadError::IncludeLoop { .. }), "{err}");
    write(dir.path(), "a.conf", b"include = b.conf\n");
    write(dir.path(), "b.conf", b"include = ./a.conf\n");
    let err = read_in(dir.path(), "a.conf").unwrap_err();
    assert!(matches!(err, ReadError::IncludeLoop { .. }), "{err}");
}

#[test]
fn unknown_groups_keys_and_bad_lines_are_errors_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[u8], u32, &str); 5] = [
        (
            b"group = smsbox\nbearerbox-host = x\nfoo = 1\n",
            3,
            "may not contain \"foo\"",
        ),
        (b"# c\n\ngroup = Smsbox\n", 3, "\"Smsbox\" is no group"),
        (
            b"group = core\n\nsmsbox-port = 1\n",
            3,
            "has no `group = ...` line",
        ),
        (b"group = core\nsmsbox-port 13001\n", 2, "equals sign"),
        // sendsms-port is smsbox's, not core's.
        (
            b"group = core\n\\\nsendsms-port = 1\n",
            2,
            "group core may not contain",
        ),
    ];
    for (i, (text, line, expected)) in cases.into_iter().enumerate() {
        let name = format!("bad{i}.conf");
        write(dir.path(), &name, text);
        let err = read_in(dir.path(), &name).unwrap_err().to_string();
        assert!(err.contains(&format!("bad{i}.conf:{line}: ")), "{err}");
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
}

#[test]
fn the_readers_bounds_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = ReadOptions::new(dir.path());
    options.max_file_bytes = 64;
    write(dir.path(), "big.conf", &[b'#'; 65]);
    let err = read(&dir.path().join("big.conf"), &options).unwrap_err();
    assert!(
        matches!(err, ReadError::TooLarge { limit: 64, .. }),
        "{err}"
    );

    options.max_depth = 3;
    for i in 0..5 {
        write(
            dir.path(),
            &format!("d{i}.conf"),
            format!("include = d{}.conf\n", i + 1).as_bytes(),
        );
    }
    write(dir.path(), "d5.conf", b"group = core\n");
    let err = read(&dir.path().join("d0.conf"), &options).unwrap_err();
    assert!(matches!(err, ReadError::TooDeep { limit: 3, .. }), "{err}");

    options.max_files = 2;
    for i in 0..3 {
        write(dir.path(), &format!("many/{i}.conf"), b"group = core\n");
    }
    write(dir.path(), "many.conf", b"include = many\n");
    let err = read(&dir.path().join("many.conf"), &options).unwrap_err();
    assert!(
        matches!(err, ReadError::TooManyFiles { limit: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_setting_containing_include_is_an_include_as_in_kannel() {
    let dir = tempfile::tempdir().unwrap();
    // Checked against smsbox 1.4.5: "Failed to include `http://x/include'".
    write(
        dir.path(),
        "main.conf",
        b"group = sms-service\nkeyword = k\nget-url = \"http://x/include\"\n",
    );
    let err = read_in(dir.path(), "main.conf").unwrap_err();
    assert!(
        matches!(err, ReadError::IncludeQuirk { ref at, ref key, .. } if at.line == 3 && key == "get-url"),
        "{err}"
    );
    assert!(
        err.to_string().contains("this `get-url = ...` line too"),
        "{err}"
    );
}

#[test]
fn an_empty_include_path_is_refused_not_read_as_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "other.conf", b"group = core\n");
    write(dir.path(), "main.conf", b"include = \"\"\n");
    let err = read_in(dir.path(), "main.conf").unwrap_err();
    assert!(
        matches!(err, ReadError::Io { at: Some(ref at), .. } if at.line == 1),
        "{err}"
    );
}

#[test]
fn a_missing_main_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_in(dir.path(), "nowhere.conf").unwrap_err();
    assert!(matches!(err, ReadError::Io { at: None, .. }));
    assert!(
        err.to_string().contains("nowhere.conf: cannot read"),
        "{err}"
    );
}

fn var(value: &str) -> Var {
    Var {
        key: "k".into(),
        value: value.into(),
        lossy: false,
        at: Location {
            file: "k.conf".into(),
            line: 1,
        },
    }
}

#[test]
fn numbers_and_flags_read_as_kannels_strtol_and_cfg_get_bool() {
    for (text, expected) in [
        ("13001", Some(13001)),
        (" 13001 # the box port", Some(13001)),
        ("0x32C9", Some(13001)),
        ("031311", Some(13001)),
        ("-1", Some(-1)),
        ("0xZ", Some(0)),
        ("port", None),
        ("", None),
        ("99999999999999999999", None),
    ] {
        assert_eq!(var(text).integer(), expected, "{text:?}");
    }
    for text in ["true", "YES", "on", "1", "maybe", ""] {
        assert!(var(text).flag(), "{text:?}");
    }
    for text in ["false", "No", "OFF", "0"] {
        assert!(!var(text).flag(), "{text:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any bytes at all: an error or groups, never a panic.
    #[test]
    fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let mut text = b"group = smsbox\n".to_vec();
        text.extend_from_slice(&bytes);
        write(dir.path(), "any.conf", &text);
        if let Ok(conf) = read_in(dir.path(), "any.conf") {
            for group in &conf.groups {
                prop_assert!(super::keys::group(group.name).is_some());
            }
        }
    }
}
