//! End-to-end: the audit log through the real `arcus` binary — changes made with the CLI
//! are listed by `arcus audit` with who, what, before/after and the peer address of the
//! connection; bad filters are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_testkit::node::Node;
use common::{bin, failed, ok, ok_json};

#[test]
fn cli_changes_are_in_the_audit_log() {
    let node = Node::start(bin());
    ok(&node.cli(["app", "create", "demo"]));
    ok(&node.cli(["app", "quota", "demo", "--rate-limit-rps", "5"]));
    let page = ok_json(&node.cli(["audit", "--json", "--app", "demo"]));
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    let update = &items[0];
    assert_eq!(update["method"], "PATCH");
    assert_eq!(update["route"], "/api/v1/apps/{app}");
    assert_eq!(update["actor"], "admin");
    assert_eq!(update["status"], 200);
    assert_eq!(update["client_ip"], "127.0.0.1");
    assert!(update["before"]["quotas"].get("rate_limit_rps").is_none());
    assert_eq!(update["after"]["quotas"]["rate_limit_rps"], 5);
    assert_eq!(items[1]["method"], "POST");
    assert_eq!(items[1]["app"], "demo");
    let table = ok(&node.cli(["audit", "--app", "demo"]));
    assert!(
        table.contains("PATCH") && table.contains("/api/v1/apps/{app}"),
        "{table}"
    );
    let err = failed(&node.cli(["audit", "--since", "yesterday"]));
    assert!(err.contains("since"), "{err}");
}
