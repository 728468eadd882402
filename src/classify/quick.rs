//! The fast path for rule conditions: the common shapes of a routing condition (string
//! equality on a fact, a number compared with a literal, `in` a literal list, `keyword`,
//! `regex`, `"tag" in tags`, joined by `&&`, `||` and `!`) are compiled at load into a small
//! tree that is judged natively, without building a CEL environment per contact.
//!
//! The tree only answers when the answer is certain and the same as cel-interpreter's:
//! [`judge`] returns `Some(true)` or `Some(false)` exactly when cel-interpreter would return
//! that boolean, and `None` whenever it cannot tell (a shape it does not know, a customer or
//! attribute field that is absent or not a string, mixed number types). On `None` the rule
//! runs through cel-interpreter as written. Operators follow cel-interpreter's evaluation:
//! left to right, `&&` and `||` short-circuit on the left operand, and an error on the left
//! operand propagates, so a `None` on the left makes the whole `None`.
//!
//! Why: the tree-walking interpreter costs about half a microsecond per simple rule (it
//! allocates for every literal and field name it touches), so a hundred rules would cost tens
//! of microseconds per contact; judged natively they cost tens of nanoseconds each.

use cel_parser::Expression;
use cel_parser::ast::Expr;
use cel_parser::reference::Val;

use super::rules::Facts;

/// A string-valued fact.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Text {
    Channel,
    Subject,
    Body,
    Queue,
    Language,
    Intent,
    Weekday,
    /// `customer.FIELD`.
    Customer(String),
    /// `attributes.FIELD`.
    Attribute(String),
}

/// A number-valued fact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Number {
    /// A double: `intent_confidence`, `sentiment`, `urgency`.
    IntentConfidence,
    Sentiment,
    Urgency,
    /// An int: `hour`.
    Hour,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A compiled condition.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Quick {
    Const(bool),
    /// `fact == "literal"` (or `!=` with `negate`).
    TextIs {
        fact: Text,
        literal: String,
        negate: bool,
    },
    /// `fact in ["a", "b"]`.
    TextIn {
        fact: Text,
        set: Vec<String>,
    },
    /// `fact <op> literal`, both of the same number type.
    NumberCmp {
        fact: Number,
        op: Cmp,
        literal: f64,
    },
    /// `"tag" in tags`.
    Tagged(String),
    /// `keyword(...)` on the message: any of these gathered keywords.
    Keyword(Vec<usize>),
    /// `regex("...")` on the message: this gathered pattern.
    Pattern(usize),
    And(Box<Quick>, Box<Quick>),
    Or(Box<Quick>, Box<Quick>),
    Not(Box<Quick>),
    /// A shape the fast path does not know: cel-interpreter decides.
    Unknown,
}

/// What [`judge`] reads besides the facts.
pub(super) struct Seen<'a> {
    /// Tags added by the rules matched so far.
    pub tags: &'a [String],
    /// Which gathered keywords the message mentions.
    pub keyword: &'a dyn Fn(usize) -> bool,
    /// Which gathered patterns the message matches.
    pub pattern: &'a dyn Fn(usize) -> bool,
}

/// Compiles a parsed condition; `keyword` and `pattern` give the index of a gathered literal.
pub(super) fn compile(
    expression: &Expression,
    keyword: &dyn Fn(&str) -> Option<usize>,
    pattern: &dyn Fn(&str) -> Option<usize>,
) -> Quick {
    let Expr::Call(call) = &expression.expr else {
        return match &expression.expr {
            Expr::Literal(Val::Boolean(b)) => Quick::Const(*b),
            _ => Quick::Unknown,
        };
    };
    let args = &call.args;
    let sub = |e: &Expression| Box::new(compile(e, keyword, pattern));
    match (call.func_name.as_str(), call.target.is_some(), args.len()) {
        ("_&&_", false, 2) => Quick::And(sub(&args[0]), sub(&args[1])),
        ("_||_", false, 2) => Quick::Or(sub(&args[0]), sub(&args[1])),
        ("!_", false, 1) => Quick::Not(sub(&args[0])),
        ("_==_" | "_!=_", false, 2) => {
            let negate = call.func_name == "_!=_";
            let pair = match (text_fact(&args[0]), string_literal(&args[1])) {
                (Some(fact), Some(literal)) => Some((fact, literal)),
                _ => text_fact(&args[1]).zip(string_literal(&args[0])),
            };
            match pair {
                Some((fact, literal)) => Quick::TextIs {
                    fact,
                    literal: literal.to_owned(),
                    negate,
                },
                None => number_comparison(&call.func_name, &args[0], &args[1]),
            }
        }
        ("_<_" | "_<=_" | "_>_" | "_>=_", false, 2) => {
            number_comparison(&call.func_name, &args[0], &args[1])
        }
        ("@in", false, 2) => {
            if let (Some(tag), Expr::Ident(list)) = (string_literal(&args[0]), &args[1].expr)
                && list == "tags"
            {
                return Quick::Tagged(tag.to_owned());
            }
            match (text_fact(&args[0]), string_list(&args[1])) {
                (Some(fact), Some(set)) => Quick::TextIn { fact, set },
                _ => Quick::Unknown,
            }
        }
        ("keyword", false, 1) => {
            let words = match &args[0].expr {
                Expr::Literal(Val::String(w)) => vec![w.as_str()],
                Expr::List(list) => match list
                    .elements
                    .iter()
                    .map(string_literal)
                    .collect::<Option<Vec<&str>>>()
                {
                    Some(words) => words,
                    None => return Quick::Unknown,
                },
                _ => return Quick::Unknown,
            };
            match words
                .iter()
                .map(|w| keyword(&w.trim().to_ascii_lowercase()))
                .collect::<Option<Vec<usize>>>()
            {
                Some(indexes) => Quick::Keyword(indexes),
                None => Quick::Unknown,
            }
        }
        ("regex", false, 1) => match string_literal(&args[0]).and_then(pattern) {
            Some(i) => Quick::Pattern(i),
            None => Quick::Unknown,
        },
        _ => Quick::Unknown,
    }
}

fn string_literal(e: &Expression) -> Option<&str> {
    match &e.expr {
        Expr::Literal(Val::String(s)) => Some(s),
        _ => None,
    }
}

fn string_list(e: &Expression) -> Option<Vec<String>> {
    match &e.expr {
        Expr::List(list) => list
            .elements
            .iter()
            .map(|e| string_literal(e).map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn text_fact(e: &Expression) -> Option<Text> {
    match &e.expr {
        Expr::Ident(name) => match name.as_str() {
            "channel" => Some(Text::Channel),
            "subject" => Some(Text::Subject),
            "body" => Some(Text::Body),
            "queue" => Some(Text::Queue),
            "language" => Some(Text::Language),
            "intent" => Some(Text::Intent),
            "weekday" => Some(Text::Weekday),
            _ => None,
        },
        Expr::Select(select) if !select.test => match &select.operand.expr {
            Expr::Ident(map) if map == "customer" => Some(Text::Customer(select.field.clone())),
            Expr::Ident(map) if map == "attributes" => Some(Text::Attribute(select.field.clone())),
            _ => None,
        },
        _ => None,
    }
}

/// A number literal, with its type: `true` for a double.
fn number_literal(e: &Expression) -> Option<(f64, bool)> {
    match &e.expr {
        Expr::Literal(Val::Double(d)) => Some((*d, true)),
        Expr::Literal(Val::Int(i)) => Some((*i as f64, false)),
        Expr::Call(call) if call.func_name == "-_" && call.args.len() == 1 => {
            match &call.args[0].expr {
                // cel-interpreter negates the i64 itself: leave its overflow to it.
                Expr::Literal(Val::Int(i)) => i.checked_neg().map(|n| (n as f64, false)),
                _ => number_literal(&call.args[0]).map(|(v, double)| (-v, double)),
            }
        }
        _ => None,
    }
}

fn number_fact(e: &Expression) -> Option<(Number, bool)> {
    match &e.expr {
        Expr::Ident(name) => match name.as_str() {
            "intent_confidence" => Some((Number::IntentConfidence, true)),
            "sentiment" => Some((Number::Sentiment, true)),
            "urgency" => Some((Number::Urgency, true)),
            "hour" => Some((Number::Hour, false)),
            _ => None,
        },
        _ => None,
    }
}

fn number_comparison(op: &str, left: &Expression, right: &Expression) -> Quick {
    let op_of = |op: &str, flipped: bool| match (op, flipped) {
        ("_<_", false) | ("_>_", true) => Cmp::Lt,
        ("_<=_", false) | ("_>=_", true) => Cmp::Le,
        ("_>_", false) | ("_<_", true) => Cmp::Gt,
        ("_>=_", false) | ("_<=_", true) => Cmp::Ge,
        ("_==_", _) => Cmp::Eq,
        _ => Cmp::Ne,
    };
    let (fact, literal, flipped) = match (number_fact(left), number_literal(right)) {
        (Some(f), Some(l)) => (f, l, false),
        _ => match (number_fact(right), number_literal(left)) {
            (Some(f), Some(l)) => (f, l, true),
            _ => return Quick::Unknown,
        },
    };
    // Mixed int and double comparisons are left to cel-interpreter's own rules.
    if fact.1 != literal.1 {
        return Quick::Unknown;
    }
    Quick::NumberCmp {
        fact: fact.0,
        op: op_of(op, flipped),
        literal: literal.0,
    }
}

/// True when some part of the condition always needs cel-interpreter.
pub(super) fn has_unknown(quick: &Quick) -> bool {
    match quick {
        Quick::Unknown => true,
        Quick::And(a, b) | Quick::Or(a, b) => has_unknown(a) || has_unknown(b),
        Quick::Not(a) => has_unknown(a),
        _ => false,
    }
}

/// The condition's value when it is certain, else `None`.
pub(super) fn judge(quick: &Quick, facts: &Facts<'_>, seen: &Seen<'_>) -> Option<bool> {
    match quick {
        Quick::Const(b) => Some(*b),
        Quick::TextIs {
            fact,
            literal,
            negate,
        } => text(fact, facts).map(|value| match value {
            // A present non-string value is simply unequal to a string, as in
            // cel-interpreter.
            Some(value) => (value == literal) != *negate,
            None => *negate,
        }),
        Quick::TextIn { fact, set } => {
            text(fact, facts).map(|value| value.is_some_and(|v| set.iter().any(|s| s == v)))
        }
        Quick::NumberCmp { fact, op, literal } => {
            let value = match fact {
                Number::IntentConfidence => facts.intent_confidence,
                Number::Sentiment => facts.sentiment,
                Number::Urgency => facts.urgency,
                Number::Hour => f64::from(facts.hour),
            };
            if value.is_nan() || literal.is_nan() {
                return None;
            }
            Some(match op {
                Cmp::Lt => value < *literal,
                Cmp::Le => value <= *literal,
                Cmp::Gt => value > *literal,
                Cmp::Ge => value >= *literal,
                Cmp::Eq => value == *literal,
                Cmp::Ne => value != *literal,
            })
        }
        Quick::Tagged(tag) => Some(seen.tags.iter().any(|t| t == tag)),
        Quick::Keyword(indexes) => Some(indexes.iter().any(|&i| (seen.keyword)(i))),
        Quick::Pattern(i) => Some((seen.pattern)(*i)),
        Quick::And(left, right) => match judge(left, facts, seen)? {
            false => Some(false),
            true => judge(right, facts, seen),
        },
        Quick::Or(left, right) => match judge(left, facts, seen)? {
            true => Some(true),
            false => judge(right, facts, seen),
        },
        Quick::Not(inner) => judge(inner, facts, seen).map(|b| !b),
        Quick::Unknown => None,
    }
}

/// A string fact: `Some(Some(s))` a string, `Some(None)` present but not a string, `None`
/// absent (cel-interpreter would fail on it).
fn text<'f>(fact: &Text, facts: &'f Facts<'_>) -> Option<Option<&'f str>> {
    let field = |map: Option<&'f serde_json::Value>, key: &str| -> Option<Option<&'f str>> {
        map.and_then(|m| m.get(key)).map(serde_json::Value::as_str)
    };
    Some(Some(match fact {
        Text::Channel => facts.channel,
        Text::Subject => facts.subject,
        Text::Body => facts.body,
        Text::Queue => facts.queue,
        Text::Language => facts.language,
        Text::Intent => facts.intent,
        Text::Weekday => facts.weekday,
        Text::Customer(key) => {
            let customer = facts.customer.filter(|c| c.is_object());
            return match field(customer, key) {
                Some(value) => Some(value),
                // The usual customer fields are always there, "" when unknown.
                None if super::rules::CUSTOMER_FIELDS.contains(&key.as_str()) => Some(Some("")),
                None => None,
            };
        }
        Text::Attribute(key) => return field(facts.attributes.filter(|a| a.is_object()), key),
    }))
}
