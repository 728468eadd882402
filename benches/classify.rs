//! Classification figures, each beside a baseline measured in the same run.
//!
//! Run: `cargo bench --bench classify` (figures and method in docs/performance.md).
//!
//! - `rules_100`: 100 rules over 2 KB customer messages, none of which match, so every rule is
//!   evaluated (the worst case; a matching rule stops earlier). Three ways: our [`RuleSet`]
//!   (conditions of the common shapes judged natively, keywords answered by one Aho-Corasick
//!   pass and patterns only where their leading literal occurs); the native path turned off, so
//!   every condition runs through cel-interpreter in one shared environment (what conditions
//!   of other shapes cost); and the baseline, the same conditions run with cel-interpreter used
//!   directly, as its documentation shows (a `Context::default()` per contact, `matches()` for
//!   patterns and `contains()` on the lowered text for keywords).
//! - `rules_by_kind`: 20 rules of each family, natively judged.
//! - `classify_2kb`: the whole [`Classifier::classify`] a daemon runs per contact: language,
//!   sentiment, intent (the shipped demo model) and the 100 rules.
//! - `banking77_train`: intent training time on BANKING77's training split with a fifth held
//!   out, printed with accuracy and macro-F1 on the held-out part (skipped when
//!   `../shared/data/banking77/train.csv` is absent).

use std::path::Path;
use std::sync::Arc;

use cel_interpreter::objects::Value;
use cel_interpreter::{Context, Program};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use switchboard::classify::intent::{IntentModel, evaluate, holdout, read_csv};
use switchboard::classify::rules::{Facts, RuleSet, RuleSpec};
use switchboard::classify::{Classifier, Intake};

const KEYWORDS: [&str; 40] = [
    "chargeback",
    "overdraft",
    "mortgage",
    "warranty",
    "firmware",
    "router",
    "modem",
    "fibre",
    "voucher",
    "coupon",
    "loyalty",
    "upgrade",
    "downgrade",
    "roaming",
    "invoice copy",
    "tax id",
    "vat number",
    "direct debit",
    "standing order",
    "iban",
    "swift",
    "pin reset",
    "sim swap",
    "porting",
    "esim",
    "outage",
    "latency",
    "packet loss",
    "dns",
    "vpn",
    "parental control",
    "gift card",
    "pre-order",
    "backorder",
    "recall",
    "exchange",
    "repair",
    "technician",
    "appointment",
    "installation",
];

/// 100 rules in four families of real rule sets, none matching the bench messages.
fn rule_specs() -> Vec<RuleSpec> {
    let spec = |name: String, when: String| RuleSpec {
        name,
        when,
        keep_going: false,
        queue: Some("billing".into()),
        skills: Default::default(),
        priority: None,
        raise_priority: 1,
        sla: None,
        tags: vec![],
        set: Default::default(),
        preferred_agent: None,
    };
    let mut rules = Vec::new();
    for (i, k) in KEYWORDS.iter().enumerate() {
        rules.push(spec(
            format!("keyword-{i}"),
            format!(r#"keyword("{k}") && channel != "voice""#),
        ));
    }
    for i in 0..20 {
        rules.push(spec(
            format!("customer-{i}"),
            format!(r#"customer.tier == "tier{i}" && attributes.region == "r{i}""#),
        ));
    }
    for i in 0..20 {
        rules.push(spec(
            format!("pattern-{i}"),
            format!(r#"regex("(?i)case-{i}[0-9]{{6}}")"#),
        ));
    }
    for i in 0..20 {
        rules.push(spec(
            format!("signal-{i}"),
            format!(
                r#"(intent == "intent-{i}" && intent_confidence > 0.7) || (sentiment < -0.9 && urgency > 0.{i})"#
            ),
        ));
    }
    rules
}

/// A 2 KB customer message that mentions none of the keywords.
fn body() -> String {
    let sentences = [
        "Hello, I am writing about my account because something is not right with it.",
        "Last week I noticed that the amount on the statement was different from usual.",
        "I tried to call but the line was busy for a long time, so I am sending this.",
        "Could someone please look into it and tell me what happened and what to do next?",
        "I have been a customer for many years and I would like to keep it that way.",
        "Thank you in advance for your help, and have a nice day.",
    ];
    let mut text = String::new();
    while text.len() < 2048 {
        for s in sentences {
            text.push_str(s);
            text.push(' ');
        }
    }
    text.truncate(2048);
    text
}

/// The same conditions, for cel-interpreter used directly.
fn naive_condition(when: &str) -> String {
    let mut out = when.to_owned();
    if let Some(start) = out.find("keyword(\"") {
        let end = out[start..].find("\")").expect("closing") + start;
        let word = out[start + 9..end].to_owned();
        out.replace_range(start..end + 2, &format!("text.contains(\"{word}\")"));
    }
    if let Some(start) = out.find("regex(\"") {
        let end = out[start..].find("\")").expect("closing") + start;
        let pattern = out[start + 7..end].to_owned();
        out.replace_range(start..end + 2, &format!("text.matches(\"{pattern}\")"));
    }
    out
}

fn rules_100(c: &mut Criterion) {
    let specs = rule_specs();
    let rules = RuleSet::compile(&specs).expect("bench rules compile");
    let body = body();
    let customer = json!({"id": "c-1", "tier": "silver"});
    let attributes = json!({"region": "eu", "order": "A-1"});
    let facts = Facts {
        channel: "email",
        subject: "A question about my account",
        body: &body,
        customer: Some(&customer),
        attributes: Some(&attributes),
        queue: "",
        language: "eng",
        intent: "billing",
        intent_confidence: 0.4,
        sentiment: -0.1,
        urgency: 0.0,
        hour: 10,
        weekday: "tue",
    };
    let outcome = rules.evaluate(&facts);
    assert!(
        outcome.matched.is_empty() && outcome.failed.is_empty(),
        "{outcome:?}"
    );
    eprintln!(
        "rules_100: {} of {} rules judged natively",
        rules.fully_native(),
        rules.len()
    );

    let naive: Vec<Program> = specs
        .iter()
        .map(|s| Program::compile(&naive_condition(&s.when)).expect("naive compiles"))
        .collect();
    let naive_run = || {
        let mut ctx = Context::default();
        let text = format!("{}\n{}", facts.subject, facts.body).to_lowercase();
        ctx.add_variable_from_value("text", Value::String(Arc::new(text)));
        ctx.add_variable_from_value("channel", Value::String(Arc::new("email".into())));
        ctx.add_variable("customer", &customer).expect("customer");
        ctx.add_variable("attributes", &attributes)
            .expect("attributes");
        ctx.add_variable_from_value("intent", Value::String(Arc::new("billing".into())));
        ctx.add_variable_from_value("intent_confidence", Value::Float(0.4));
        ctx.add_variable_from_value("sentiment", Value::Float(-0.1));
        ctx.add_variable_from_value("urgency", Value::Float(0.0));
        let mut matched = 0;
        for program in &naive {
            if program.execute(&ctx) == Ok(Value::Bool(true)) {
                matched += 1;
            }
        }
        matched
    };
    assert_eq!(naive_run(), 0, "the baseline sees the same (non-)matches");

    // Where the time goes: 20 rules of each kind.
    let mut kinds = c.benchmark_group("rules_by_kind");
    for kind in ["keyword", "customer", "pattern", "signal"] {
        let subset: Vec<RuleSpec> = specs
            .iter()
            .filter(|s| s.name.starts_with(kind))
            .take(20)
            .cloned()
            .collect();
        let subset = RuleSet::compile(&subset).expect("subset compiles");
        kinds.bench_function(kind, |b| {
            b.iter(|| std::hint::black_box(subset.evaluate(std::hint::black_box(&facts))))
        });
    }
    kinds.finish();

    let mut group = c.benchmark_group("rules_100");
    group.throughput(Throughput::Elements(1));
    group.bench_function("switchboard", |b| {
        b.iter(|| std::hint::black_box(rules.evaluate(std::hint::black_box(&facts))))
    });
    let interpreted = RuleSet::compile(&specs)
        .expect("bench rules compile")
        .without_fast_path();
    group.bench_function("switchboard_interpreted", |b| {
        b.iter(|| std::hint::black_box(interpreted.evaluate(std::hint::black_box(&facts))))
    });
    group.bench_function("cel_interpreter_direct", |b| {
        b.iter(|| std::hint::black_box(naive_run()))
    });
    group.finish();
}

fn classify_2kb(c: &mut Criterion) {
    let intents = read_csv(include_str!("../config/intents.csv")).expect("demo intents");
    let model = IntentModel::train(&intents).expect("demo model");
    let classifier = Classifier::new(RuleSet::compile(&rule_specs()).expect("rules"), Some(model))
        .with_languages(&["eng", "spa", "deu", "fra", "por", "ita", "nld"].map(String::from));
    let body = body();
    let customer = json!({"id": "c-1", "tier": "silver"});
    let attributes = json!({"region": "eu"});
    let intake = Intake {
        channel: "email",
        subject: "A question about my account",
        body: &body,
        customer: Some(&customer),
        attributes: Some(&attributes),
        fallback_queue: "support",
        hour: 10,
        weekday: "tue",
        ..Intake::default()
    };
    let mut group = c.benchmark_group("classify_2kb");
    group.throughput(Throughput::Elements(1));
    let head = &body[..switchboard::classify::SIGNAL_TEXT_LIMIT];
    let short = &body[..switchboard::classify::LANGUAGE_TEXT_LIMIT];
    group.bench_function("language_all_languages_1000_bytes", |b| {
        b.iter(|| std::hint::black_box(switchboard::classify::signals::language(head)))
    });
    let shipped = whatlang::Detector::with_allowlist(
        ["eng", "spa", "deu", "fra", "por", "ita", "nld"]
            .iter()
            .filter_map(|c| whatlang::Lang::from_code(*c))
            .collect(),
    );
    group.bench_function("language_shipped_list_200_bytes", |b| {
        b.iter(|| {
            std::hint::black_box(switchboard::classify::signals::language_with(
                &shipped, short,
            ))
        })
    });
    group.bench_function("sentiment_1000_bytes", |b| {
        b.iter(|| std::hint::black_box(switchboard::classify::signals::sentiment(head)))
    });
    let model = classifier.intent_model().expect("demo model");
    let intent_head = &body[..switchboard::classify::INTENT_TEXT_LIMIT];
    group.bench_function("intent_500_bytes", |b| {
        b.iter(|| std::hint::black_box(model.classify(intent_head)))
    });
    group.bench_function("signals_only", |b| {
        b.iter(|| std::hint::black_box(classifier.signals(intake.subject, intake.body)))
    });
    group.bench_function("whole_decision", |b| {
        b.iter(|| std::hint::black_box(classifier.classify(std::hint::black_box(&intake))))
    });
    group.finish();
}

fn banking77_train(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/banking77/train.csv");
    let Ok(data) = std::fs::read_to_string(&path) else {
        eprintln!("banking77_train skipped: no {}", path.display());
        return;
    };
    let examples = read_csv(&data).expect("BANKING77");
    let (train, validation) = holdout(&examples, 0.2);
    let model = IntentModel::train(&train).expect("trains");
    let evaluation = evaluate(&model, &validation);
    eprintln!(
        "banking77: {} training / {} held-out examples, accuracy {:.4}, macro-F1 {:.4}",
        train.len(),
        validation.len(),
        evaluation.accuracy,
        evaluation.macro_f1
    );
    let mut group = c.benchmark_group("banking77_train");
    group.sample_size(10);
    group.bench_function("train", |b| {
        b.iter(|| IntentModel::train(std::hint::black_box(&train)).expect("trains"))
    });
    group.finish();
}

criterion_group!(benches, rules_100, classify_2kb, banking77_train);
criterion_main!(benches);
