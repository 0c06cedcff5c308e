//! The `sgbridge` binary, run as a user runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn sgbridge(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sgbridge");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn example() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cc-docs-rules.json")).unwrap()
}

#[test]
fn cc_docs_example_goes_to_gcore_and_back_unchanged() {
    let to_gcore = sgbridge(
        &["translate", "--from", "cf", "--to", "gcore", "--with-tags"],
        &example(),
    );
    assert!(
        to_gcore.status.success(),
        "{}",
        String::from_utf8_lossy(&to_gcore.stderr)
    );
    let gcore: serde_json::Value = serde_json::from_slice(&to_gcore.stdout).unwrap();
    let rules = gcore["rules"].as_array().unwrap();
    // icmp 1 + tcp 1 + udp 2 (53, 5353) + all narrowed around port 25 (20).
    assert_eq!(rules.len(), 24);
    assert_eq!(rules[0]["protocol"], "icmp");
    assert_eq!(rules[0]["port_range_min"], 0);
    assert_eq!(rules[0]["port_range_max"], 1);
    assert!(rules
        .iter()
        .all(|r| r["direction"] == "egress" && r["remote_ip_prefix"] == "0.0.0.0/0"));
    assert_eq!(
        gcore["tags"].as_object().unwrap().len(),
        1,
        "one log tag for the tcp rule"
    );
    let stderr = String::from_utf8_lossy(&to_gcore.stderr);
    assert!(stderr.contains("rule number 4 was narrowed"), "{stderr}");

    let back = sgbridge(&["translate", "--from", "gcore", "--to", "cf"], &to_gcore.stdout);
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let original: serde_json::Value = serde_json::from_slice(&example()).unwrap();
    let returned: serde_json::Value = serde_json::from_slice(&back.stdout).unwrap();
    assert_eq!(returned, original);
}

#[test]
fn without_tags_the_log_flag_loss_is_reported() {
    let out = sgbridge(&["translate", "--from", "cf", "--to", "gcore"], &example());
    assert!(out.status.success());
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rules.is_array());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--with-tags"));
}

#[test]
fn invalid_cf_input_exits_non_zero_with_the_cc_error_body() {
    let out = sgbridge(
        &["translate", "--from", "cf", "--to", "gcore"],
        br#"[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"0"}]"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let body: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "code": 300001,
            "description": "The security group is invalid: rules rule number 1 contains invalid ports",
            "error_code": "CF-SecurityGroupInvalid"
        })
    );
}

#[test]
fn invalid_gcore_input_exits_non_zero_with_a_gcore_error_body() {
    let out = sgbridge(&["translate", "--from", "gcore", "--to", "cf"], b"not json");
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(body["exception_class"], "ValidationError");
}

#[test]
fn port25_reject_refuses_and_allow_keeps() {
    let all = br#"[{"protocol":"all","destination":"10.0.0.0/8"}]"#;
    let reject = sgbridge(
        &["translate", "--from", "cf", "--to", "gcore", "--port25", "reject"],
        all,
    );
    assert_eq!(reject.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&reject.stderr).contains("port 25"));
    let allow = sgbridge(
        &["translate", "--from", "cf", "--to", "gcore", "--port25", "allow"],
        all,
    );
    let rules: serde_json::Value = serde_json::from_slice(&allow.stdout).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 1);
    assert_eq!(rules[0]["protocol"], serde_json::Value::Null);
}

#[test]
fn help_works() {
    let out = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("translate"));
}
