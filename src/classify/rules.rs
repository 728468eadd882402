//! Classification rules: an ordered list of `when` conditions in CEL (the Common Expression
//! Language) with routing actions. Pure: compiled once at load, evaluated per contact with no IO.
//!
//! Semantics a rule author can rely on:
//!
//! - Rules run in file order. The first rule whose condition is true applies its actions and
//!   stops the evaluation, unless it says `continue = true`; then its actions apply and the
//!   next rules still run (tagging rules stack before a routing rule).
//! - Later actions override earlier ones for single values (queue, priority, SLA policy,
//!   preferred agent); skills merge (the higher minimum level wins), tags and attributes
//!   accumulate, `raise_priority` adds up.
//! - A condition that fails at run time (a missing attribute, a comparison between a string
//!   and a number) counts as not matching; the failure is kept in the decision, with the
//!   rule's name, so it is logged and metered, and the contact is never dropped.
//! - A condition must be a boolean; anything else is a run-time failure of that rule.
//!
//! Helper functions, on top of CEL's own (`contains`, `startsWith`, `endsWith`, `matches`,
//! `size`, `in`, `has`):
//!
//! - `keyword("refund")`, `keyword(["refund", "money back"])`: the message (subject or body)
//!   mentions the word or phrase, ASCII-case-insensitively, at word boundaries ("refund" does
//!   not match "refunding"). Literal keywords are gathered from every rule at load into one
//!   Aho-Corasick automaton that reads the message once per contact, so a hundred keyword
//!   rules cost one pass over the text, not a hundred.
//! - `keyword(text, "word")`: the same on any string, e.g. `keyword(subject, "urgent")`.
//! - `regex("order #[0-9]+")`, `regex(text, "...")`: a regular-expression search (Rust
//!   `regex` syntax, linear time). Literal patterns are compiled once at load, and a bad one
//!   is a config error.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use cel_interpreter::extractors::Arguments;
use cel_interpreter::objects::{Key, Map, Value};
use cel_interpreter::{Context, ExecutionError, FunctionContext};
use cel_parser::Expression;
use cel_parser::ast::{EntryExpr, Expr};
use cel_parser::reference::Val;
use serde::Deserialize;

use super::quick::{self, Quick};

/// The hidden per-contact variable holding which gathered keywords the message mentions.
const KEYWORD_HITS: &str = "__keyword_hits";
/// The hidden per-contact variable holding the message text, for non-literal keywords.
const MESSAGE: &str = "__message";

/// One rule as written in the rules file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Shown in explanations, logs and the `rule` metric label.
    pub name: String,
    /// The condition, in CEL.
    pub when: String,
    /// Keep evaluating later rules after this one matched.
    #[serde(default, rename = "continue")]
    pub keep_going: bool,
    /// Route to this queue (unless the intake named one itself).
    #[serde(default)]
    pub queue: Option<String>,
    /// Require these skills with these minimum levels.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Set the priority (unless the intake gave one itself).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Add to the priority.
    #[serde(default)]
    pub raise_priority: i32,
    /// Give the contact this SLA policy instead of its queue's.
    #[serde(default)]
    pub sla: Option<String>,
    /// Add these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Set these attributes.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Prefer this agent.
    #[serde(default)]
    pub preferred_agent: Option<String>,
}

/// A rule whose condition did not compile, or used a helper wrongly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rule {index} ({name}): {message}")]
pub struct CompileError {
    /// 0-based position in the file.
    pub index: usize,
    /// The rule's name.
    pub name: String,
    /// What is wrong, with line and column when the parser gave them.
    pub message: String,
}

/// A compiled rule.
#[derive(Debug)]
struct Rule {
    spec: RuleSpec,
    condition: Expression,
    /// The condition on the native fast path, when its shape allows.
    quick: Quick,
}

/// Customer fields always present for conditions, `""` when unknown.
pub(super) const CUSTOMER_FIELDS: [&str; 5] = ["id", "name", "email", "phone", "tier"];

/// Compiled rules and the shared CEL environment they run in.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// The root CEL context: built-in and helper functions, built once (building it registers
    /// every function into a map, far too costly per contact).
    root: Context<'static>,
    /// Every literal keyword of every rule, in one automaton.
    keywords: Option<AhoCorasick>,
    /// Every literal pattern of every rule, with the literals a match must start with.
    patterns: Patterns,
}

/// The gathered patterns and their prefilter. Most patterns of a rule set start with some
/// literal text (`order #[0-9]+`, `(?i)case-[0-9]{6}`); regex-syntax tells which, and one
/// Aho-Corasick pass over the lowered message finds which of those literals occur at all, so
/// only the patterns whose literal occurs run their regex, the way regex engines prefilter a
/// single pattern. Patterns without such a literal always run.
#[derive(Default)]
struct Patterns {
    /// Compiled, in the order of the fast path's pattern indexes.
    compiled: Vec<regex::Regex>,
    /// The prefilter over ASCII-lowered text, and for each of its literals the pattern it
    /// belongs to.
    prefilter: Option<(AhoCorasick, Vec<usize>)>,
    /// Patterns with no literal to prefilter on.
    unfiltered: Vec<usize>,
}

impl Patterns {
    fn new(patterns: &HashMap<String, regex::Regex>) -> (Patterns, Vec<String>) {
        let order: Vec<String> = patterns.keys().cloned().collect();
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut owners = Vec::new();
        let mut unfiltered = Vec::new();
        for (i, pattern) in order.iter().enumerate() {
            match prefix_literals(pattern) {
                Some(prefixes) => {
                    for prefix in prefixes {
                        literals.push(prefix);
                        owners.push(i);
                    }
                }
                None => unfiltered.push(i),
            }
        }
        let prefilter = if literals.is_empty() {
            None
        } else {
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&literals)
            {
                Ok(automaton) => Some((automaton, owners)),
                // Beyond the automaton's limits: every pattern runs.
                Err(_) => {
                    unfiltered = (0..order.len()).collect();
                    None
                }
            }
        };
        let compiled = order.iter().map(|p| patterns[p].clone()).collect();
        (
            Patterns {
                compiled,
                prefilter,
                unfiltered,
            },
            order,
        )
    }

    /// Indexes of the patterns that match `message`.
    fn matching(&self, message: &str) -> Vec<usize> {
        let mut candidates = self.unfiltered.clone();
        if let Some((automaton, owners)) = &self.prefilter {
            let lowered = message.to_ascii_lowercase();
            for m in automaton.find_overlapping_iter(&lowered) {
                let owner = owners[m.pattern().as_usize()];
                if !candidates.contains(&owner) {
                    candidates.push(owner);
                }
            }
        }
        candidates.retain(|&i| self.compiled[i].is_match(message));
        candidates
    }
}

/// The ASCII-lowered literals one of which every match of `pattern` starts with, or `None`
/// when regex-syntax cannot promise one (a pattern that can match the empty string or start
/// with almost anything). Lowering keeps the set a superset: the text is lowered the same way.
fn prefix_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut extractor = regex_syntax::hir::literal::Extractor::new();
    extractor.limit_total(256);
    let seq = extractor.extract(&hir);
    let mut prefixes: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    if prefixes.is_empty() || prefixes.iter().any(|p| p.len() < 2) {
        return None;
    }
    prefixes.sort();
    prefixes.dedup();
    Some(prefixes)
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

/// What the rules saw of a contact, besides its text.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    /// Channel name.
    pub channel: &'a str,
    /// Subject line ("" when none).
    pub subject: &'a str,
    /// Message body.
    pub body: &'a str,
    /// Customer fields; `id`, `name`, `email`, `phone` and `tier` are always present ("" when
    /// unknown) so rules can compare them without `has()`.
    pub customer: Option<&'a serde_json::Value>,
    /// Intake attributes, as sent.
    pub attributes: Option<&'a serde_json::Value>,
    /// The queue the intake asked for ("" when none).
    pub queue: &'a str,
    /// ISO 639-3 language code ("" when unknown).
    pub language: &'a str,
    /// The detected intent ("" when there is no intent model).
    pub intent: &'a str,
    /// Its confidence, 0 to 1.
    pub intent_confidence: f64,
    /// Sentiment, -1 (angry) to 1 (pleased).
    pub sentiment: f64,
    /// Urgency, 0 to 1.
    pub urgency: f64,
    /// Hour of the day, 0-23, in the center's time zone.
    pub hour: u8,
    /// Day of the week: "mon", "tue", ... "sun".
    pub weekday: &'a str,
}

/// The accumulated effect of the rules that matched.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// Names of the rules that matched, in order.
    pub matched: Vec<String>,
    /// Queue set by a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Skills required by rules.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skills: BTreeMap<String, u8>,
    /// Priority set by a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Sum of `raise_priority`.
    #[serde(skip_serializing_if = "is_zero")]
    pub raise_priority: i32,
    /// SLA policy set by a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
    /// Tags added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Attributes set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Preferred agent set by a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_agent: Option<String>,
    /// Rules whose condition failed at run time, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<RuleFailure>,
    /// Matched rules that name a queue while the intake named its own: their queue, skills,
    /// SLA policy and preferred agent belong to that queue and were not applied (their tags,
    /// attributes and priority raise were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routing_kept_from_intake: Vec<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A rule whose condition could not be evaluated for one contact.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleFailure {
    /// The rule's name.
    pub rule: String,
    /// The evaluation error.
    pub error: String,
}

impl RuleSet {
    /// Compiles every rule, reporting every rule that does not compile.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<CompileError>> {
        let mut rules = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        let mut literals = Literals::default();
        for (index, spec) in specs.iter().enumerate() {
            let fail = |message: String| CompileError {
                index,
                name: spec.name.clone(),
                message,
            };
            let condition = match parse(&spec.when) {
                Ok(expression) => expression,
                Err(message) => {
                    errors.push(fail(message));
                    continue;
                }
            };
            if let Err(message) = literals.gather(&condition) {
                errors.push(fail(message));
                continue;
            }
            rules.push(Rule {
                spec: spec.clone(),
                condition,
                quick: Quick::Unknown,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Keywords are lowercase and the text is lowered before the pass (ASCII only, so
        // offsets stay those of the original): a case-sensitive automaton keeps the SIMD
        // prefilter that an ASCII-case-insensitive one loses, several times faster. Should the
        // automaton or the pattern set not build (beyond their size limits), every keyword or
        // pattern falls back to being searched on its own: slower, never wrong.
        let keywords = if literals.keywords.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&literals.keywords)
                .ok()
        };
        let index: HashMap<String, usize> = match keywords {
            Some(_) => literals
                .keywords
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i))
                .collect(),
            None => HashMap::new(),
        };
        let (patterns, pattern_order) = Patterns::new(&literals.patterns);
        for rule in &mut rules {
            rule.quick = quick::compile(&rule.condition, &|k| index.get(k).copied(), &|p| {
                pattern_order.iter().position(|q| q == p)
            });
        }
        let root = root_context(Arc::new(index), Arc::new(literals.patterns));
        Ok(RuleSet {
            rules,
            root,
            keywords,
            patterns,
        })
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as written, in order.
    pub fn specs(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    /// The same rules with the native fast path turned off: every condition runs through
    /// cel-interpreter. For the benchmark that measures what the fast path saves, and for the
    /// test that checks both paths agree.
    pub fn without_fast_path(mut self) -> RuleSet {
        for rule in &mut self.rules {
            rule.quick = Quick::Unknown;
        }
        self
    }

    /// How many rules the native fast path can decide on its own for every contact (the
    /// others may still be decided natively on some contacts, and otherwise run through
    /// cel-interpreter).
    pub fn fully_native(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| !quick::has_unknown(&r.quick))
            .count()
    }

    /// Runs the rules over one contact.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Outcome {
        let mut outcome = Outcome::default();
        if self.rules.is_empty() {
            return outcome;
        }
        // Everything per contact is computed on first use: a contact decided by native
        // conditions on the first rules never pays for the CEL environment or the text passes.
        let message = OnceCell::new();
        let message = || message.get_or_init(|| format!("{}\n{}", facts.subject, facts.body));
        let keyword_hits = OnceCell::new();
        let keyword_hits = || keyword_hits.get_or_init(|| self.keyword_hits(facts));
        let pattern_hits = OnceCell::new();
        let pattern_hits = || pattern_hits.get_or_init(|| self.patterns.matching(message()));
        let mut scope: Option<Context<'_>> = None;
        let mut scope_tags = 0;

        for rule in &self.rules {
            let seen = quick::Seen {
                tags: &outcome.tags,
                keyword: &|i| {
                    keyword_hits()
                        .get(i / 8)
                        .is_some_and(|b| b & (1 << (i % 8)) != 0)
                },
                pattern: &|i| pattern_hits().contains(&i),
            };
            let verdict = match quick::judge(&rule.quick, facts, &seen) {
                Some(matched) => Ok(Value::Bool(matched)),
                None => {
                    let scope = scope.get_or_insert_with(|| {
                        self.scope(facts, keyword_hits().clone(), message().clone())
                    });
                    if scope_tags != outcome.tags.len() {
                        let tags = outcome.tags.iter().map(|t| text_value(t)).collect();
                        scope.add_variable_from_value("tags", Value::List(Arc::new(tags)));
                        scope_tags = outcome.tags.len();
                    }
                    // A panic inside cel-interpreter (some of its branches are unfinished for some shapes on
                    // some values) is this rule's failure on this contact, not the end of
                    // classification.
                    let scope = &*scope;
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Value::resolve(&rule.condition, scope)
                    }))
                    .unwrap_or_else(|_| {
                        Err(ExecutionError::function_error(
                            "when",
                            "the CEL interpreter failed on this input",
                        ))
                    })
                }
            };
            match verdict {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => continue,
                Ok(other) => {
                    outcome.failed.push(RuleFailure {
                        rule: rule.spec.name.clone(),
                        error: format!("condition gave {other:?}, not a boolean"),
                    });
                    continue;
                }
                Err(e) => {
                    outcome.failed.push(RuleFailure {
                        rule: rule.spec.name.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            }
            apply(&rule.spec, &mut outcome, !facts.queue.is_empty());
            if !rule.spec.keep_going {
                break;
            }
        }
        outcome
    }

    /// The CEL environment of one contact, for conditions the fast path cannot decide.
    fn scope(&self, facts: &Facts<'_>, keyword_hits: Vec<u8>, message: String) -> Context<'_> {
        let mut scope = self.root.new_inner_scope();
        scope.add_variable_from_value("channel", text_value(facts.channel));
        scope.add_variable_from_value("subject", text_value(facts.subject));
        scope.add_variable_from_value("body", text_value(facts.body));
        scope.add_variable_from_value("customer", customer_value(facts.customer));
        scope.add_variable_from_value(
            "attributes",
            facts
                .attributes
                .filter(|a| a.is_object())
                .map(json_value)
                .unwrap_or_else(|| json_value(&serde_json::json!({}))),
        );
        scope.add_variable_from_value("queue", text_value(facts.queue));
        scope.add_variable_from_value("language", text_value(facts.language));
        scope.add_variable_from_value("intent", text_value(facts.intent));
        scope.add_variable_from_value("intent_confidence", Value::Float(facts.intent_confidence));
        scope.add_variable_from_value("sentiment", Value::Float(facts.sentiment));
        scope.add_variable_from_value("urgency", Value::Float(facts.urgency));
        scope.add_variable_from_value("hour", Value::Int(i64::from(facts.hour)));
        scope.add_variable_from_value("weekday", text_value(facts.weekday));
        scope.add_variable_from_value("tags", Value::List(Arc::new(Vec::new())));
        scope.add_variable_from_value(KEYWORD_HITS, Value::Bytes(Arc::new(keyword_hits)));
        scope.add_variable_from_value(MESSAGE, Value::String(Arc::new(message)));
        scope
    }

    /// One pass of the keyword automaton over the message: a bit per gathered keyword.
    fn keyword_hits(&self, facts: &Facts<'_>) -> Vec<u8> {
        let Some(automaton) = &self.keywords else {
            return Vec::new();
        };
        let mut hits = vec![0u8; automaton.patterns_len().div_ceil(8)];
        for text in [facts.subject, facts.body] {
            let lowered = text.to_ascii_lowercase();
            for m in automaton.find_overlapping_iter(&lowered) {
                if at_word_boundaries(text, m.start(), m.end()) {
                    let i = m.pattern().as_usize();
                    hits[i / 8] |= 1 << (i % 8);
                }
            }
        }
        hits
    }
}

fn text_value(s: &str) -> Value {
    Value::String(Arc::new(s.to_owned()))
}

/// Parses one condition. The parser (generated by ANTLR) panics on some malformed input
/// instead of returning an error, so the panic is caught and reported as a syntax error: a
/// typo in a rule must never take the daemon down during a reload.
fn parse(source: &str) -> Result<Expression, String> {
    let parsed = std::panic::catch_unwind(|| {
        cel_parser::Parser::default().parse(source).map_err(|e| {
            e.errors
                .iter()
                .map(|e| format!("line {}, column {}: {}", e.pos.0, e.pos.1 + 1, e.msg))
                .collect::<Vec<_>>()
                .join("; ")
        })
    });
    match parsed {
        Ok(result) => result,
        Err(_) => Err(format!(
            "syntax error in {source:?} (the CEL parser gave up)"
        )),
    }
}

/// Applies one matched rule's actions.
fn apply(spec: &RuleSpec, outcome: &mut Outcome, intake_named_queue: bool) {
    outcome.matched.push(spec.name.clone());
    for tag in &spec.tags {
        if !outcome.tags.contains(tag) {
            outcome.tags.push(tag.clone());
        }
    }
    for (key, value) in &spec.set {
        outcome.attributes.insert(key.clone(), value.clone());
    }
    outcome.raise_priority = outcome.raise_priority.saturating_add(spec.raise_priority);
    if let Some(priority) = spec.priority {
        outcome.priority = Some(priority);
    }
    // A rule's skills, SLA and preferred agent go with its queue: "technical questions go to
    // support with technical 3" must not ask for technical 3 in billing, where the intake sent
    // the contact.
    if spec.queue.is_some() && intake_named_queue {
        outcome.routing_kept_from_intake.push(spec.name.clone());
        return;
    }
    if let Some(queue) = &spec.queue {
        outcome.queue = Some(queue.clone());
    }
    for (skill, &level) in &spec.skills {
        let entry = outcome.skills.entry(skill.clone()).or_insert(level);
        *entry = (*entry).max(level);
    }
    if let Some(sla) = &spec.sla {
        outcome.sla = Some(sla.clone());
    }
    if let Some(agent) = &spec.preferred_agent {
        outcome.preferred_agent = Some(agent.clone());
    }
}

/// True when `text[start..end]` is not glued to a letter or digit on either side.
fn at_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// Case-insensitive whole-word search of `needle` in `haystack`, for keywords that are not
/// literals (the slow path; literals go through the automaton).
/// `lowered` is the haystack after `to_ascii_lowercase`, done once by the caller however many
/// words it looks for.
fn mentions(lowered: &str, needle: &str) -> bool {
    let needle = needle.trim();
    if needle.is_empty() {
        return false;
    }
    let needle = needle.to_ascii_lowercase();
    lowered
        .match_indices(&needle)
        .any(|(start, m)| at_word_boundaries(lowered, start, start + m.len()))
}

/// Literal keywords and regex patterns gathered from every condition.
#[derive(Default)]
struct Literals {
    keywords: Vec<String>,
    patterns: HashMap<String, regex::Regex>,
}

impl Literals {
    /// Walks a condition, collecting the literal arguments of `keyword` and `regex`, and
    /// checking that those helpers are called with one or two arguments.
    fn gather(&mut self, expression: &Expression) -> Result<(), String> {
        match &expression.expr {
            Expr::Call(call) => {
                let literal_arg = match call.func_name.as_str() {
                    "keyword" | "regex" => {
                        if call.target.is_some() || !(1..=2).contains(&call.args.len()) {
                            return Err(format!(
                                "{}() takes (text) or (text, {})",
                                call.func_name,
                                if call.func_name == "regex" {
                                    "pattern"
                                } else {
                                    "keyword"
                                }
                            ));
                        }
                        call.args.last()
                    }
                    _ => None,
                };
                if let Some(arg) = literal_arg {
                    match (call.func_name.as_str(), &arg.expr) {
                        ("keyword", Expr::Literal(Val::String(k))) => self.keyword(k)?,
                        ("keyword", Expr::List(list)) => {
                            for element in &list.elements {
                                if let Expr::Literal(Val::String(k)) = &element.expr {
                                    self.keyword(k)?;
                                }
                            }
                        }
                        ("regex", Expr::Literal(Val::String(p))) => self.pattern(p)?,
                        _ => {}
                    }
                }
                if let Some(target) = &call.target {
                    self.gather(target)?;
                }
                for arg in &call.args {
                    self.gather(arg)?;
                }
                Ok(())
            }
            Expr::Comprehension(c) => {
                for e in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    self.gather(e)?;
                }
                Ok(())
            }
            Expr::List(list) => list.elements.iter().try_for_each(|e| self.gather(e)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => {
                    self.gather(&m.key)?;
                    self.gather(&m.value)
                }
                EntryExpr::StructField(f) => self.gather(&f.value),
            }),
            Expr::Select(select) => self.gather(&select.operand),
            // cel-interpreter cannot evaluate message construction (`Foo{a: 1}`): refused at
            // load rather than failing on every contact.
            Expr::Struct(s) => Err(format!(
                "message construction ({}{{...}}) is not supported",
                s.type_name
            )),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), String> {
        let keyword = keyword.trim().to_ascii_lowercase();
        if keyword.is_empty() {
            return Err("keyword(\"\") can never match".into());
        }
        if !self.keywords.contains(&keyword) {
            self.keywords.push(keyword);
        }
        Ok(())
    }

    fn pattern(&mut self, pattern: &str) -> Result<(), String> {
        if !self.patterns.contains_key(pattern) {
            let compiled = regex::Regex::new(pattern)
                .map_err(|e| format!("regex({pattern:?}) does not compile: {e}"))?;
            self.patterns.insert(pattern.to_owned(), compiled);
        }
        Ok(())
    }
}

/// The CEL environment: the standard functions plus `keyword` and `regex`.
fn root_context(
    keywords: Arc<HashMap<String, usize>>,
    patterns: Arc<HashMap<String, regex::Regex>>,
) -> Context<'static> {
    let mut root = Context::default();
    root.add_function(
        "keyword",
        move |ftx: &FunctionContext, Arguments(args): Arguments| -> Result<Value, ExecutionError> {
            let (text, wanted) = split_text_argument(ftx, &args)?;
            let words: Vec<&Arc<String>> = match wanted {
                Value::String(w) => vec![w],
                Value::List(list) => list
                    .iter()
                    .map(|v| match v {
                        Value::String(w) => Ok(w),
                        other => Err(ftx.error(format!("keyword list holds {other:?}"))),
                    })
                    .collect::<Result<_, _>>()?,
                other => return Err(ftx.error(format!("keyword takes strings, not {other:?}"))),
            };
            let found = match text {
                // The message itself: literal keywords are answered from the automaton's pass.
                None => {
                    let hits = match ftx.ptx.get_variable(KEYWORD_HITS)? {
                        Value::Bytes(hits) => hits,
                        _ => Arc::new(Vec::new()),
                    };
                    let message = OnceCell::new();
                    let lowered = || {
                        message.get_or_init(|| match ftx.ptx.get_variable(MESSAGE) {
                            Ok(Value::String(m)) => m.to_ascii_lowercase(),
                            _ => String::new(),
                        })
                    };
                    words.iter().any(|w| {
                        match keywords.get(w.trim().to_ascii_lowercase().as_str()) {
                            Some(&i) => hits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0),
                            None => mentions(lowered(), w),
                        }
                    })
                }
                Some(text) => {
                    let lowered = text.to_ascii_lowercase();
                    words.iter().any(|w| mentions(&lowered, w))
                }
            };
            Ok(Value::Bool(found))
        },
    );
    root.add_function(
        "regex",
        move |ftx: &FunctionContext, Arguments(args): Arguments| -> Result<Value, ExecutionError> {
            let (text, pattern) = split_text_argument(ftx, &args)?;
            let Value::String(pattern) = pattern else {
                return Err(ftx.error("regex takes a pattern string"));
            };
            let text = match text {
                Some(text) => text,
                None => match ftx.ptx.get_variable(MESSAGE)? {
                    Value::String(m) => m,
                    _ => Arc::new(String::new()),
                },
            };
            let found = match patterns.get(pattern.as_str()) {
                Some(compiled) => compiled.is_match(&text),
                None => regex::Regex::new(pattern)
                    .map_err(|e| ftx.error(format!("bad pattern: {e}")))?
                    .is_match(&text),
            };
            Ok(Value::Bool(found))
        },
    );
    root
}

/// `f(x)` applies to the message, `f(text, x)` to `text`.
fn split_text_argument<'v>(
    ftx: &FunctionContext,
    args: &'v [Value],
) -> Result<(Option<Arc<String>>, &'v Value), ExecutionError> {
    match args {
        [wanted] => Ok((None, wanted)),
        [Value::String(text), wanted] => Ok((Some(text.clone()), wanted)),
        [other, _] => Err(ftx.error(format!("text must be a string, not {other:?}"))),
        _ => Err(ftx.error("takes one or two arguments")),
    }
}

/// The customer as a CEL map, with the usual fields present even when unknown.
fn customer_value(customer: Option<&serde_json::Value>) -> Value {
    let mut map = serde_json::Map::new();
    for key in CUSTOMER_FIELDS {
        map.insert(key.to_owned(), serde_json::Value::String(String::new()));
    }
    if let Some(serde_json::Value::Object(given)) = customer {
        for (k, v) in given {
            map.insert(k.clone(), v.clone());
        }
    }
    json_value(&serde_json::Value::Object(map))
}

/// JSON to a CEL value (numbers that fit an i64 become ints, others doubles).
fn json_value(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(items) => Value::List(Arc::new(items.iter().map(json_value).collect())),
        J::Object(map) => {
            let entries: HashMap<Key, Value> = map
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), json_value(v)))
                .collect();
            Value::Map(Map {
                map: Arc::new(entries),
            })
        }
    }
}
