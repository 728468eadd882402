//! Classification rules and the classifier, table-driven.

use std::collections::BTreeMap;

use serde_json::json;

use super::intent::{Example, IntentModel};
use super::rules::{RuleSet, RuleSpec};
use super::*;

/// Rules from TOML as an operator writes them.
fn rules(toml_text: &str) -> RuleSet {
    #[derive(serde::Deserialize)]
    struct File {
        rules: Vec<RuleSpec>,
    }
    let file: File = toml::from_str(toml_text).expect("test rules parse");
    RuleSet::compile(&file.rules).expect("test rules compile")
}

fn intake<'a>(subject: &'a str, body: &'a str) -> Intake<'a> {
    Intake {
        channel: "email",
        subject,
        body,
        fallback_queue: "support",
        hour: 10,
        weekday: "tue",
        ..Intake::default()
    }
}

fn classify(rule_set: RuleSet, intake: &Intake<'_>) -> Decision {
    Classifier::new(rule_set, None).classify(intake)
}

#[test]
fn the_first_matching_rule_wins_and_later_rules_do_not_run() {
    let decision = classify(
        rules(
            r#"
            [[rules]]
            name = "refunds"
            when = 'keyword("refund")'
            queue = "billing"
            [[rules]]
            name = "everything"
            when = "true"
            queue = "sales"
            "#,
        ),
        &intake("Refund please", "I was charged twice."),
    );
    assert_eq!(decision.queue, "billing");
    assert_eq!(decision.explanation.rules.matched, ["refunds"]);
    assert_eq!(decision.explanation.queue_from, "rule");
}

#[test]
fn continue_lets_tagging_rules_stack_before_a_routing_rule() {
    let decision = classify(
        rules(
            r#"
            [[rules]]
            name = "tag-angry"
            when = "sentiment < -0.3"
            continue = true
            tags = ["angry"]
            raise_priority = 5
            [[rules]]
            name = "tag-gold"
            when = 'customer.tier == "gold"'
            continue = true
            tags = ["gold"]
            raise_priority = 10
            [[rules]]
            name = "angry-gold-to-vip"
            when = '"angry" in tags && "gold" in tags'
            queue = "vip"
            sla = "vip"
            [[rules]]
            name = "never-reached"
            when = "true"
            queue = "sales"
            "#,
        ),
        &Intake {
            customer: Some(&json!({"id": "c-1", "tier": "gold"})),
            ..intake("", "This is terrible, I am furious and angry!")
        },
    );
    assert_eq!(
        decision.explanation.rules.matched,
        ["tag-angry", "tag-gold", "angry-gold-to-vip"]
    );
    assert_eq!(decision.queue, "vip");
    assert_eq!(decision.sla.as_deref(), Some("vip"));
    assert_eq!(decision.tags, ["angry", "gold"]);
    assert_eq!(decision.priority, 15);
}

#[test]
fn every_action_shapes_the_decision() {
    let decision = classify(
        rules(
            r#"
            [[rules]]
            name = "spanish-billing"
            when = 'keyword(["factura", "reembolso"])'
            continue = true
            queue = "billing"
            skills = { spanish = 3, billing = 4 }
            priority = 7
            raise_priority = 2
            sla = "standard"
            tags = ["es"]
            set = { segment = "latam" }
            preferred_agent = "bea"
            [[rules]]
            name = "more-billing"
            when = "true"
            skills = { billing = 6 }
            "#,
        ),
        &Intake {
            skills: BTreeMap::from([("billing".to_owned(), 2)]),
            ..intake("Factura duplicada", "Quiero un reembolso.")
        },
    );
    assert_eq!(decision.queue, "billing");
    assert_eq!(
        decision.skills,
        BTreeMap::from([("billing".to_owned(), 6), ("spanish".to_owned(), 3)])
    );
    assert_eq!(decision.priority, 9, "set to 7, raised by 2");
    assert_eq!(decision.sla.as_deref(), Some("standard"));
    assert_eq!(decision.tags, ["es"]);
    assert_eq!(decision.attributes["segment"], "latam");
    assert_eq!(decision.preferred_agent.as_deref(), Some("bea"));
}

#[test]
fn an_explicit_intake_queue_and_priority_win_over_rules_but_boosts_still_add() {
    let decision = classify(
        rules(
            r#"
            [[rules]]
            name = "urgent"
            when = 'keyword("urgent")'
            continue = true
            queue = "vip"
            skills = { vip_care = 5 }
            sla = "vip"
            priority = 50
            raise_priority = 3
            tags = ["urgent"]
            [[rules]]
            name = "spanish"
            when = 'keyword("factura")'
            skills = { spanish = 3 }
            "#,
        ),
        &Intake {
            queue: Some("billing"),
            priority: Some(1),
            ..intake("URGENT", "urgent invoice question, factura")
        },
    );
    assert_eq!(decision.queue, "billing");
    assert_eq!(decision.explanation.queue_from, "intake");
    assert_eq!(decision.priority, 4);
    assert_eq!(decision.tags, ["urgent"], "tags still apply");
    assert_eq!(
        decision.skills,
        BTreeMap::from([("spanish".to_owned(), 3)]),
        "the vip rule's skills stay with the vip queue; a rule without a queue applies"
    );
    assert_eq!(decision.sla, None);
    assert_eq!(
        decision.explanation.rules.routing_kept_from_intake,
        ["urgent"]
    );
}

#[test]
fn no_matching_rule_leaves_the_fallback_queue() {
    let decision = classify(
        rules("[[rules]]\nname = \"x\"\nwhen = 'channel == \"voice\"'\nqueue = \"sales\"\n"),
        &intake("hello", "just a question"),
    );
    assert_eq!(decision.queue, "support");
    assert_eq!(decision.explanation.queue_from, "default");
    assert!(decision.explanation.rules.matched.is_empty());
}

#[test]
fn conditions_read_every_fact_of_the_intake() {
    let customer = json!({"id": "c-9", "name": "Ada", "tier": "gold"});
    let attributes = json!({"order_id": "A-17", "amount": 250, "vip": true});
    let base = Intake {
        channel: "sms",
        customer: Some(&customer),
        attributes: Some(&attributes),
        queue: Some("billing"),
        hour: 22,
        weekday: "sat",
        ..intake("Order A-17", "Where is my parcel? Ordered last week.")
    };
    let cases = [
        ("channel", r#"channel == "sms""#),
        ("subject", r#"subject.startsWith("Order")"#),
        ("body", r#"body.contains("parcel")"#),
        ("customer.id", r#"customer.id == "c-9""#),
        ("customer.tier", r#"customer.tier == "gold""#),
        (
            "customer.email defaults to empty",
            r#"customer.email == """#,
        ),
        ("attributes string", r#"attributes.order_id == "A-17""#),
        ("attributes number", "attributes.amount > 200"),
        ("attributes bool", "attributes.vip"),
        ("has() on a missing attribute", "!has(attributes.coupon)"),
        ("requested queue", r#"queue == "billing""#),
        ("language", r#"language == "eng""#),
        (
            "a calm message reads neutral",
            "sentiment == 0.0 && urgency == 0.0",
        ),
        ("hour", "hour >= 20"),
        ("weekday", r#"weekday in ["sat", "sun"]"#),
        (
            "intent without a model",
            r#"intent == "" && intent_confidence == 0.0"#,
        ),
        ("keyword on the message", r#"keyword("parcel")"#),
        ("keyword phrase", r#"keyword("last week")"#),
        ("keyword on a field", r#"keyword(subject, "order")"#),
        ("keyword non-literal", r#"keyword(attributes.order_id)"#),
        ("regex on the message", r#"regex("[A-Z]-[0-9]+")"#),
        ("regex on a field", r#"regex(subject, "^Order")"#),
        ("standard matches", r#"body.matches("par.el")"#),
    ];
    for (what, condition) in cases {
        let rule_set = rules(&format!(
            "[[rules]]\nname = \"r\"\nwhen = '{condition}'\ntags = [\"hit\"]\n"
        ));
        let decision = Classifier::new(rule_set, None).classify(&base);
        assert_eq!(
            decision.explanation.rules.matched,
            ["r"],
            "{what}: {condition} should match; failures: {:?}",
            decision.explanation.rules.failed
        );
    }
}

#[test]
fn sentiment_and_urgency_reach_the_rules_as_the_scorer_reads_the_message() {
    let angry_rule = rules(
        "[[rules]]\nname = \"angry\"\nwhen = 'sentiment < -0.3 && urgency > 0.3'\npriority = 9\n",
    );
    let classifier = Classifier::new(angry_rule, None);
    let angry = intake(
        "URGENT",
        "This is terrible, I am furious! Fix it immediately!!",
    );
    let calm = intake("Question", "Thanks, the parcel arrived and it works well.");
    let scored = signals::sentiment("URGENT\nThis is terrible, I am furious! Fix it immediately!!");
    assert!(scored.score < -0.3 && scored.urgency > 0.3, "{scored:?}");
    assert_eq!(
        classifier.classify(&angry).explanation.rules.matched,
        ["angry"]
    );
    assert!(
        classifier
            .classify(&calm)
            .explanation
            .rules
            .matched
            .is_empty(),
        "a calm, thankful message is not angry"
    );
}

#[test]
fn keywords_match_whole_words_case_insensitively() {
    let cases = [
        ("refund", "I want a REFUND now", true),
        ("refund", "refund.", true),
        ("refund", "refunding is slow", false),
        ("refund", "nonrefundable ticket", false),
        ("money back", "give me my Money Back", true),
        ("money back", "money is back", false),
    ];
    for (keyword, body, expected) in cases {
        let rule_set = rules(&format!(
            "[[rules]]\nname = \"k\"\nwhen = 'keyword(\"{keyword}\")'\n"
        ));
        let decision = Classifier::new(rule_set, None).classify(&intake("", body));
        assert_eq!(
            !decision.explanation.rules.matched.is_empty(),
            expected,
            "keyword({keyword:?}) on {body:?}"
        );
    }
}

#[test]
fn a_condition_that_fails_at_run_time_counts_as_not_matching_and_is_reported() {
    let decision = classify(
        rules(
            r#"
            [[rules]]
            name = "missing-attribute"
            when = 'attributes.plan == "gold"'
            queue = "vip"
            [[rules]]
            name = "not-a-boolean"
            when = "hour + 1"
            queue = "vip"
            [[rules]]
            name = "string-versus-int"
            when = 'customer.tier > 3'
            queue = "vip"
            [[rules]]
            name = "fallback"
            when = "true"
            tags = ["routed"]
            "#,
        ),
        &intake("hi", "hello"),
    );
    assert_eq!(decision.queue, "support");
    assert_eq!(decision.explanation.rules.matched, ["fallback"]);
    let failed: Vec<&str> = decision
        .explanation
        .rules
        .failed
        .iter()
        .map(|f| f.rule.as_str())
        .collect();
    assert_eq!(
        failed,
        ["missing-attribute", "not-a-boolean", "string-versus-int"]
    );
}

#[test]
fn compile_errors_name_every_bad_rule_with_its_position() {
    let specs: Vec<RuleSpec> = [
        ("ok", "true"),
        ("syntax", "channel == "),
        ("bad-regex", r#"regex("([unclosed")"#),
        ("keyword-arity", r#"keyword("a", "b", "c")"#),
        ("empty-keyword", r#"keyword("")"#),
        ("struct", r#"Foo{a: 1} == channel"#),
    ]
    .into_iter()
    .map(|(name, when)| RuleSpec {
        name: name.into(),
        when: when.into(),
        keep_going: false,
        queue: None,
        skills: BTreeMap::new(),
        priority: None,
        raise_priority: 0,
        sla: None,
        tags: Vec::new(),
        set: BTreeMap::new(),
        preferred_agent: None,
    })
    .collect();
    let errors = RuleSet::compile(&specs).expect_err("five rules are bad");
    let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "syntax",
            "bad-regex",
            "keyword-arity",
            "empty-keyword",
            "struct"
        ]
    );
    assert_eq!(errors[0].index, 1);
    assert!(
        errors[0].message.contains("syntax error") || errors[0].message.contains("line 1"),
        "{}",
        errors[0].message
    );
    assert!(errors[1].message.contains("does not compile"));
}

#[test]
fn intent_and_its_confidence_reach_the_rules() {
    let examples: Vec<Example> = [
        ("I want my money back", "refund"),
        ("please refund my order", "refund"),
        ("refund the charge", "refund"),
        ("my card was declined", "card"),
        ("card not working at the shop", "card"),
        ("the card payment failed", "card"),
    ]
    .into_iter()
    .map(|(text, intent)| Example {
        text: text.into(),
        intent: intent.into(),
    })
    .collect();
    let model = IntentModel::train(&examples).expect("two intents");
    let classifier = Classifier::new(
        rules(
            "[[rules]]\nname = \"refunds\"\nwhen = 'intent == \"refund\" && intent_confidence > 0.5'\nqueue = \"billing\"\n",
        ),
        Some(model),
    );
    let decision = classifier.classify(&intake("", "I would like a refund of my money"));
    let intent = decision.explanation.signals.intent.as_ref().expect("model");
    assert_eq!(intent.name, "refund");
    assert_eq!(decision.queue, "billing");
    let empty = classifier.classify(&intake("", "  "));
    assert_eq!(
        empty.explanation.signals.intent, None,
        "no words, no intent (not the model's pick for a zero vector)"
    );
}

#[test]
fn signals_read_only_the_head_of_a_long_body() {
    let classifier = Classifier::empty();
    let opening = "Hello, my order has not arrived and the tracking page shows nothing since \
                   Monday. Could you please tell me where the parcel is and when it will come? ";
    let long = format!("{}{}", opening.repeat(8), "é".repeat(5_000));
    let signals = classifier.signals("", &long);
    assert_eq!(signals.language.map(|l| l.code), Some("eng"));
    assert_eq!(truncate("aé", 2), "a", "never cuts inside a character");
}

#[test]
fn the_fast_path_agrees_with_cel_interpreter_on_every_shape_it_decides() {
    let conditions = [
        r#"channel == "email""#,
        r#"channel != "email""#,
        r#""sms" == channel"#,
        r#"customer.tier == "gold""#,
        r#"customer.tier != "gold""#,
        r#"customer.email == """#,
        r#"customer.plan == "pro""#,
        r#"customer.vip == "yes""#,
        r#"attributes.region == "eu""#,
        r#"attributes.amount == "250""#,
        r#"attributes.missing == "x""#,
        r#"attributes.missing != "x""#,
        r#"customer.tier in ["gold", "platinum"]"#,
        r#"attributes.region in ["eu", "us"]"#,
        r#"language in ["spa", "por"]"#,
        "intent_confidence > 0.5",
        "intent_confidence >= 0.9",
        "0.2 < sentiment",
        "sentiment < -0.3",
        "urgency <= 0.0",
        "hour >= 20",
        "hour == 10",
        "hour > 9.5",
        "sentiment > 0",
        r#""vip" in tags"#,
        r#"keyword("refund")"#,
        r#"keyword(["invoice", "money back"])"#,
        r#"regex("order [0-9]+")"#,
        r#"regex("^Order")"#,
        r#"regex("(?i)MONEY +back")"#,
        r#"regex("(?i)case-[0-9]{3}")"#,
        r#"regex("[0-9]{3}")"#,
        r#"!keyword("refund")"#,
        r#"keyword("refund") && channel == "email""#,
        r#"keyword("refund") || attributes.missing == "x""#,
        r#"attributes.missing == "x" || keyword("refund")"#,
        r#"channel == "voice" && attributes.missing == "x""#,
        r#"attributes.missing == "x" && channel == "voice""#,
        r#"(intent == "billing" && intent_confidence > 0.7) || (sentiment < -0.9 && urgency > 0.1)"#,
        r#"!(customer.tier == "gold") && hour < 12"#,
        r#"true && false"#,
        "true",
        r#"body.contains("refund") && channel == "email""#,
    ];
    let customers = [
        json!({"id": "c-1", "tier": "gold", "vip": true}),
        json!({"id": "c-2", "tier": 3, "plan": "pro"}),
        json!("not an object"),
    ];
    let attributes = [
        json!({"region": "eu", "amount": 250}),
        json!({"region": 7}),
        json!(null),
    ];
    let bodies = [
        (
            "Order 12345",
            "I want a refund for order 998, money back please",
        ),
        ("hello", "Nothing to see here; refunding later."),
    ];
    let specs: Vec<RuleSpec> = conditions
        .iter()
        .enumerate()
        .map(|(i, when)| RuleSpec {
            name: format!("r{i}"),
            when: (*when).into(),
            keep_going: true,
            queue: None,
            skills: BTreeMap::new(),
            priority: None,
            raise_priority: 0,
            sla: None,
            tags: if i == 3 { vec!["vip".into()] } else { vec![] },
            set: BTreeMap::new(),
            preferred_agent: None,
        })
        .collect();
    let fast = RuleSet::compile(&specs).expect("compiles");
    let slow = RuleSet::compile(&specs)
        .expect("compiles")
        .without_fast_path();
    assert!(
        fast.fully_native() >= conditions.len() - 5,
        "most shapes are native: {}",
        fast.fully_native()
    );
    for customer in &customers {
        for attrs in &attributes {
            for (subject, body) in bodies {
                for (intent, confidence, sentiment, hour) in
                    [("billing", 0.8, -0.95, 22), ("refund", 0.3, 0.4, 10)]
                {
                    let facts = rules::Facts {
                        channel: "email",
                        subject,
                        body,
                        customer: Some(customer),
                        attributes: Some(attrs),
                        queue: "",
                        language: "spa",
                        intent,
                        intent_confidence: confidence,
                        sentiment,
                        urgency: 0.2,
                        hour,
                        weekday: "mon",
                    };
                    let (f, s) = (fast.evaluate(&facts), slow.evaluate(&facts));
                    assert_eq!(
                        f.matched, s.matched,
                        "matched, for {customer} {attrs} {body}"
                    );
                    let names = |o: &rules::Outcome| -> Vec<String> {
                        o.failed.iter().map(|f| f.rule.clone()).collect()
                    };
                    assert_eq!(
                        names(&f),
                        names(&s),
                        "failed, for {customer} {attrs} {body}"
                    );
                }
            }
        }
    }
}
