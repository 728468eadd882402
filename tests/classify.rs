//! Classification and hot reload through the real daemon: contacts posted over HTTP are routed
//! by the rules and intents of a config on disk, the decision is visible on the contact, and
//! `POST /v1/admin/reload` swaps rules and queues while contacts wait.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod common;
use common::{ADMIN, TempDir, agent, daemon, eventually, expect, http, say, settings};

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn post_contact(addr: SocketAddr, body: Value) -> (u16, Value) {
    http(addr, "POST", "/v1/contacts", &[JSON], &body.to_string()).await
}

async fn contact(addr: SocketAddr, id: &Value) -> Value {
    let id = id.as_str().expect("id");
    http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "")
        .await
        .1
}

async fn metrics_page(addr: SocketAddr) -> String {
    let (_, page) = http(addr, "GET", "/metrics", &[], "").await;
    page.as_str().expect("the metrics page is text").to_owned()
}

async fn reload(addr: SocketAddr) -> (u16, Value) {
    http(addr, "POST", "/v1/admin/reload", &[ADMIN], "").await
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// A config directory of the test's own: the shipped main file (with `edit` applied), the
/// given rules, and the shipped demo intents.
struct ConfigDir {
    _dir: TempDir,
    main: PathBuf,
}

impl ConfigDir {
    fn new(name: &str, rules: &str) -> Self {
        let dir = TempDir::new(&format!("config-{name}"));
        std::fs::create_dir_all(&dir.0).expect("config dir");
        let main = dir.0.join("switchboard.toml");
        std::fs::copy(shipped("switchboard.toml"), &main).expect("copy config");
        std::fs::copy(shipped("intents.csv"), dir.0.join("intents.csv")).expect("copy intents");
        let config = ConfigDir { _dir: dir, main };
        config.write_rules(rules);
        config
    }

    fn write_rules(&self, rules: &str) {
        std::fs::write(self.main.with_file_name("rules.toml"), rules).expect("write rules");
    }

    fn edit_main(&self, edit: impl Fn(String) -> String) {
        let text = std::fs::read_to_string(&self.main).expect("read config");
        let edited = edit(text.clone());
        assert_ne!(edited, text, "the edit must apply");
        std::fs::write(&self.main, edited).expect("write config");
    }

    fn settings(&self, data: &TempDir) -> switchboard::daemon::Settings {
        let config = switchboard::config::Config::load(&self.main).expect("test config loads");
        switchboard::daemon::Settings {
            config,
            config_path: Some(self.main.clone()),
            ..settings(data)
        }
    }
}

#[tokio::test]
async fn a_contact_without_a_queue_goes_where_the_shipped_rules_send_it_and_says_why() {
    let dir = TempDir::new("shipped-rules");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();

    let (status, answer) = post_contact(
        addr,
        json!({"channel": "email", "subject": "Invoice",
               "body": "I was charged twice on my invoice, please refund me"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["queue"], "billing", "the billing intent routes it");
    let view = contact(addr, &answer["id"]).await;
    let explanation = &view["classification"];
    assert_eq!(explanation["queue_from"], "rule");
    assert_eq!(explanation["signals"]["intent"]["name"], "billing");
    assert_eq!(explanation["signals"]["language"]["code"], "eng");
    assert!(
        explanation["rules"]["matched"]
            .as_array()
            .expect("matched")
            .contains(&json!("billing-intent")),
        "{explanation}"
    );

    // An upset premium customer: tags stack, then the VIP rule moves it and gives it the
    // 30-second VIP SLA instead of the support queue's.
    let (_, answer) = post_contact(
        addr,
        json!({"channel": "chat", "customer": {"id": "c-7", "tier": "gold"},
               "body": "This is terrible, I am furious, nothing works!"}),
    )
    .await;
    assert_eq!(answer["queue"], "vip", "{answer}");
    let view = contact(addr, &answer["id"]).await;
    assert_eq!(view["sla"]["policy"], "vip");
    let arrived = view["arrived_at"].as_u64().expect("arrived_at");
    let due = view["sla"]["first_response_due"].as_u64().expect("due");
    assert_eq!(due - arrived, 30_000, "the vip policy's first response");
    assert_eq!(
        view["payload"]["tags"],
        json!(["upset", "premium"]),
        "tags reach the payload agents see"
    );
    d.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_explicit_queue_is_kept_while_rules_still_boost_and_tag_it() {
    let dir = TempDir::new("explicit-queue");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (_, answer) = post_contact(
        addr,
        json!({"channel": "sms", "queue": "support", "priority": 1,
               "customer": {"id": "c-8", "tier": "platinum"},
               "body": "My invoice shows a double charge, please refund it"}),
    )
    .await;
    assert_eq!(answer["queue"], "support", "the sender's queue stays");
    assert_eq!(
        answer["priority"], 21,
        "1 given, +20 for a premium customer"
    );
    let view = contact(addr, &answer["id"]).await;
    assert_eq!(view["classification"]["queue_from"], "intake");
    d.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_rule_that_fails_on_a_contact_is_metered_and_the_contact_still_routes() {
    let config = ConfigDir::new(
        "failing-rule",
        r#"
[[rules]]
name = "plan-check"
when = 'attributes.plan == "gold"'
queue = "vip"

[[rules]]
name = "everything-else"
when = "true"
tags = ["seen"]
"#,
    );
    let dir = TempDir::new("failing-rule");
    let d = daemon(config.settings(&dir)).await;
    let addr = d.local_addr();
    let (status, answer) =
        post_contact(addr, json!({"channel": "webhook", "body": "hello there"})).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["queue"], "support", "the default queue");
    let view = contact(addr, &answer["id"]).await;
    let failed = &view["classification"]["rules"]["failed"];
    assert_eq!(failed[0]["rule"], "plan-check", "{view}");
    assert_eq!(
        view["classification"]["rules"]["matched"],
        json!(["everything-else"])
    );
    let page = metrics_page(addr).await;
    assert!(
        page.lines()
            .any(|l| l.starts_with("switchboard_classification_errors_total{rule=\"plan-check\"}")),
        "{page}"
    );
    d.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn reload_swaps_the_rules_while_contacts_wait_and_a_bad_file_keeps_the_running_ones() {
    let config = ConfigDir::new(
        "reload",
        r#"
[[rules]]
name = "nothing-yet"
when = "false"
"#,
    );
    let dir = TempDir::new("reload");
    let d = daemon(config.settings(&dir)).await;
    let addr = d.local_addr();

    // No agent is logged in: contacts wait.
    let (_, before) = post_contact(
        addr,
        json!({"channel": "email", "body": "Please refund the double charge"}),
    )
    .await;
    assert_eq!(before["queue"], "support");

    config.write_rules(
        r#"
[[rules]]
name = "refunds"
when = 'keyword("refund")'
queue = "billing"
raise_priority = 3
"#,
    );
    let (status, answer) = reload(addr).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["reloaded"]["rules"], 1);

    let (_, after) = post_contact(
        addr,
        json!({"channel": "email", "body": "Please refund the double charge"}),
    )
    .await;
    assert_eq!(
        after["queue"], "billing",
        "the new rule routes new contacts"
    );
    assert_eq!(after["priority"], 3);
    let waiting = contact(addr, &before["id"]).await;
    assert_eq!(
        waiting["status"], "queued",
        "the waiting contact is still there"
    );
    assert_eq!(waiting["queue"], "support", "and keeps its place");

    // A broken rules file: every problem is answered, nothing changes.
    config.write_rules(
        r#"
[[rules]]
name = "broken"
when = 'keyword("refund") &&'
[[rules]]
name = "nowhere"
when = "true"
queue = "atlantis"
"#,
    );
    let (status, answer) = reload(addr).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_config");
    let problems = answer["error"]["problems"].to_string();
    assert!(problems.contains("(broken).when"), "{problems}");
    assert!(
        problems.contains("unknown queue \\\"atlantis\\\""),
        "{problems}"
    );
    let (_, still) = post_contact(
        addr,
        json!({"channel": "email", "body": "Another refund question"}),
    )
    .await;
    assert_eq!(still["queue"], "billing", "the running rules stay");

    let page = metrics_page(addr).await;
    for result in ["ok", "error"] {
        assert!(
            page.contains(&format!(
                "switchboard_config_reloads_total{{result=\"{result}\"}}"
            )),
            "{page}"
        );
    }
    d.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_queue_removed_by_a_reload_takes_nothing_new_but_its_waiting_contacts_are_still_served() {
    let config = ConfigDir::new("drain", "");
    let dir = TempDir::new("drain");
    let d = daemon(config.settings(&dir)).await;
    let addr = d.local_addr();
    let mut leads = Vec::new();
    for n in 0..2 {
        let (_, lead) = post_contact(
            addr,
            json!({"channel": "voice", "queue": "sales", "body": format!("lead {n}")}),
        )
        .await;
        assert_eq!(lead["queue"], "sales");
        leads.push(lead["id"].clone());
    }

    // Sales goes away (with the escalation steps that belong to it).
    config.edit_main(|text| {
        let start = text.find("[queues.sales]").expect("sales queue");
        let end = text.find("[queues.support]").expect("support queue");
        let mut edited = text.clone();
        edited.replace_range(start..end, "");
        edited.replace(
            r#"queues = ["vip", "sales", "billing"]"#,
            r#"queues = ["vip", "billing"]"#,
        )
    });
    let (status, answer) = reload(addr).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["reloaded"]["draining_queues"], json!(["sales"]));
    let queues = eventually(addr, "/v1/queues", |_| true).await;
    let sales = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == "sales")
        .cloned()
        .expect("sales still listed while it drains");
    assert_eq!(sales["draining"], true);
    assert_eq!(sales["waiting"], 2);
    let (status, refused) = post_contact(
        addr,
        json!({"channel": "chat", "queue": "sales", "body": "me too"}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "unknown_queue");

    // Bruno sells: a waiting lead is offered to him as before the reload (one call at a time).
    let mut bruno = agent(addr, "bruno-demo-token").await;
    expect(&mut bruno, "hello").await;
    let offer = expect(&mut bruno, "offer").await;
    assert_eq!(offer["contact"]["id"], leads[0]);
    say(
        &mut bruno,
        json!({"type": "accept", "offer_id": offer["offer_id"]}),
    )
    .await;
    expect(&mut bruno, "assigned").await;
    drop(bruno);
    d.shutdown().await.expect("shutdown");

    // After a restart on the new file, the journal still holds both leads in a queue the
    // configuration no longer has: they come back in a draining queue and are still served.
    let d = daemon(config.settings(&dir)).await;
    let addr = d.local_addr();
    let queues = eventually(addr, "/v1/queues", |_| true).await;
    assert!(
        queues["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .any(|q| q["queue"] == "sales" && q["draining"] == true),
        "{queues}"
    );
    let mut bruno = agent(addr, "bruno-demo-token").await;
    expect(&mut bruno, "hello").await;
    let offer = expect(&mut bruno, "offer").await;
    assert!(leads.contains(&offer["contact"]["id"]), "{offer}");
    d.shutdown().await.expect("shutdown");
}

#[test]
fn the_classify_command_explains_each_line_and_reports_bad_ones() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["classify", "--at", "2026-12-05T22:30:00Z", "--config"])
        .arg(shipped("switchboard.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let input = [
        json!({"channel": "email", "subject": "Invoice",
               "body": "I was charged twice on my invoice, please refund me"})
        .to_string(),
        "{not json".to_string(),
        json!({"channel": "sms", "queue": "support",
               "body": "Quiero cancelar mi suscripción, no funciona nada"})
        .to_string(),
    ]
    .join("\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("finishes");
    assert_eq!(out.status.code(), Some(1), "one line was not intake JSON");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each answer is JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["decision"]["queue"], "billing");
    assert_eq!(
        lines[0]["decision"]["explanation"]["signals"]["intent"]["name"],
        "billing"
    );
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].is_string());
    let spanish = &lines[2]["decision"];
    assert_eq!(spanish["queue"], "support", "the named queue stays");
    assert_eq!(spanish["skills"]["spanish"], 3, "{spanish}");
    assert_eq!(spanish["explanation"]["signals"]["language"]["code"], "spa");
}
