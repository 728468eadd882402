//! Compiles a validated [`Config`] into what the router runs on: names interned to ids,
//! durations in milliseconds, queue settings filled from the `[routing]` defaults.

use std::collections::HashMap;

use super::duration::millis;
use super::{Config, SelectionConfig};
use crate::model::{
    AgentId, AgentProfile, AgentSkills, Capacity, QueueId, Requirement, SkillId, SkillReq,
};
use crate::router::{BreachActions, EscalationStep, QueuePlan, RoutingPlan, Selection, SlaPolicy};

impl From<SelectionConfig> for Selection {
    fn from(selection: SelectionConfig) -> Self {
        match selection {
            SelectionConfig::LongestIdle => Selection::LongestIdle,
            SelectionConfig::MostSkilled => Selection::MostSkilled,
            SelectionConfig::LeastOccupied => Selection::LeastOccupied,
        }
    }
}

/// Name-to-id lookups for one config, built once per compilation.
struct Interned<'a> {
    skills: HashMap<&'a str, SkillId>,
    queues: HashMap<&'a str, QueueId>,
}

impl<'a> Interned<'a> {
    fn new(config: &'a Config) -> Self {
        Interned::in_order(
            config.skills.iter().map(String::as_str),
            config.queue_names(),
        )
    }

    /// Ids in the given orders: the `n`th skill is `SkillId(n)`, the `n`th queue `QueueId(n)`.
    fn in_order(
        skills: impl Iterator<Item = &'a str>,
        queues: impl Iterator<Item = &'a str>,
    ) -> Self {
        // Validation caps both lists at u16::MAX + 1 entries.
        let id = |i: usize| u16::try_from(i).expect("validated: at most 65536 entries");
        Interned {
            skills: skills
                .enumerate()
                .map(|(i, name)| (name, SkillId(id(i))))
                .collect(),
            queues: queues
                .enumerate()
                .map(|(i, name)| (name, QueueId(id(i))))
                .collect(),
        }
    }

    fn skill(&self, name: &str) -> SkillId {
        *self.skills.get(name).expect("validated: skill is listed")
    }

    fn queue(&self, name: &str) -> QueueId {
        *self.queues.get(name).expect("validated: queue exists")
    }
}

/// One `[sla.NAME]` policy, compiled.
fn sla_policy(name: &str, policy: &super::SlaConfig) -> SlaPolicy {
    SlaPolicy {
        name: name.to_owned(),
        first_response: millis(policy.first_response),
        resolution: policy.resolution.map(millis),
        warn_at: policy.warn_at,
        on_breach: BreachActions {
            raise_priority: policy.on_breach.raise_priority,
            escalate: policy.on_breach.escalate,
            notify: policy.on_breach.notify,
        },
    }
}

impl Config {
    /// The routing plan for this config: skills interned in the order of the `skills` list,
    /// queues in name order (the order of [`Config::queue_names`]).
    ///
    /// # Panics
    ///
    /// If the config has not passed [`Config::validate`]; [`Config::load`] and
    /// [`Config::from_toml_str`] only return validated configs.
    pub fn routing_plan(&self) -> RoutingPlan {
        self.compile_plan(
            self.skills.clone(),
            self.queue_names().map(str::to_owned).collect(),
            None,
        )
    }

    /// The routing plan for this config as a reload of `previous`: every skill and queue of
    /// `previous` keeps its id (so contacts and agents the router holds stay meaningful), new
    /// ones follow in config order, and a queue this config no longer has keeps its last rules
    /// so its waiting contacts drain ([`Router::update_plan`](crate::router::Router::update_plan)).
    pub fn routing_plan_after(&self, previous: &RoutingPlan) -> RoutingPlan {
        let mut skills = previous.skills.clone();
        skills.extend(
            self.skills
                .iter()
                .filter(|s| !previous.skills.contains(s))
                .cloned(),
        );
        let mut queues: Vec<String> = previous.queues.iter().map(|q| q.name.clone()).collect();
        queues.extend(
            self.queue_names()
                .filter(|name| previous.queue_id(name).is_none())
                .map(str::to_owned),
        );
        self.compile_plan(skills, queues, Some(previous))
    }

    fn compile_plan(
        &self,
        skill_order: Vec<String>,
        queue_order: Vec<String>,
        previous: Option<&RoutingPlan>,
    ) -> RoutingPlan {
        let ids = Interned::in_order(
            skill_order.iter().map(String::as_str),
            queue_order.iter().map(String::as_str),
        );
        let routing = &self.routing;
        let queues = queue_order
            .iter()
            .map(|name| {
                let Some(q) = self.queues.get(name) else {
                    let retired = previous.and_then(|p| p.queue_id(name));
                    return previous
                        .zip(retired)
                        .map(|(p, id)| p.queue(id).clone())
                        .expect("a queue not in the config comes from the previous plan");
                };
                let sla_config = self.sla.get(&q.sla).expect("validated: SLA policy exists");
                let required = q.skills.iter().map(|(s, &level)| SkillReq {
                    skill: ids.skill(s),
                    min_level: level,
                    optional: false,
                });
                let optional = q.optional_skills.iter().map(|(s, &level)| SkillReq {
                    skill: ids.skill(s),
                    min_level: level,
                    optional: true,
                });
                let service_level = q.service_level.unwrap_or(routing.service_level);
                QueuePlan {
                    name: name.clone(),
                    priority: q.priority,
                    skills: Requirement::new(required.chain(optional)).skills().to_vec(),
                    selection: q.selection.unwrap_or(routing.selection).into(),
                    offer_timeout: millis(q.offer_timeout.unwrap_or(routing.offer_timeout)),
                    wrap_up: millis(q.wrap_up.unwrap_or(routing.wrap_up)),
                    service_level_threshold: millis(service_level.threshold),
                    service_level_target: service_level.target,
                    short_abandon: millis(q.short_abandon.unwrap_or(routing.short_abandon)),
                    preferred_agent_timeout: millis(
                        q.preferred_agent_timeout
                            .unwrap_or(routing.preferred_agent_timeout),
                    ),
                    sla: sla_policy(&q.sla, sla_config),
                    escalation: q
                        .escalation
                        .iter()
                        .map(|step| EscalationStep {
                            after: millis(step.after),
                            relax: step
                                .relax
                                .iter()
                                .map(|(s, &level)| (ids.skill(s), level))
                                .collect(),
                            drop_optional: step.drop_optional,
                            raise_priority: step.raise_priority,
                            overflow_to: step.overflow_to.as_deref().map(|t| ids.queue(t)),
                        })
                        .collect(),
                }
            })
            .collect();
        RoutingPlan {
            skills: skill_order,
            queues,
            max_missed_offers: routing.max_missed_offers,
            voice_blocks_other_channels: routing.voice_blocks_other_channels,
            position_update_interval: millis(routing.position_update_interval),
            sla_policies: self
                .sla
                .iter()
                .map(|(name, policy)| sla_policy(name, policy))
                .collect(),
        }
    }

    /// The configured agents as the router sees them, in file order, with ids matching
    /// [`Config::routing_plan`].
    ///
    /// # Panics
    ///
    /// If the config has not passed [`Config::validate`].
    pub fn agent_profiles(&self) -> Vec<AgentProfile> {
        let ids = Interned::new(self);
        self.agents
            .iter()
            .map(|a| {
                let mut queues: Vec<QueueId> = a.queues.iter().map(|q| ids.queue(q)).collect();
                queues.sort_unstable();
                queues.dedup();
                AgentProfile {
                    id: AgentId::new(&a.id),
                    skills: AgentSkills::new(
                        a.skills.iter().map(|(s, &level)| (ids.skill(s), level)),
                    ),
                    capacity: match &a.capacity {
                        Some(c) => Capacity([c.voice, c.chat, c.email, c.sms, c.social, c.webhook]),
                        None => Capacity::default(),
                    },
                    queues,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channel;

    fn skill(plan: &RoutingPlan, name: &str) -> SkillId {
        plan.skill_id(name).expect("skill in plan")
    }

    #[test]
    fn skills_keep_list_order_and_queues_name_order() {
        let config = Config::embedded_default();
        let plan = config.routing_plan();
        assert_eq!(plan.skills, config.skills);
        let names: Vec<&str> = plan.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, config.queue_names().collect::<Vec<_>>());
        assert_eq!(names, ["billing", "sales", "support", "vip"]);
    }

    #[test]
    fn queues_fall_back_to_routing_defaults() {
        let text = r#"
            skills = ["english", "billing", "spanish"]
            [routing]
            default_queue = "a"
            offer_timeout = "25s"
            wrap_up = "45s"
            selection = "least_occupied"
            service_level = { threshold = "30s", target = 0.9 }
            short_abandon = "8s"
            preferred_agent_timeout = "2m"
            max_missed_offers = 2
            voice_blocks_other_channels = false
            position_update_interval = "5s"
            [sla.live]
            first_response = "60s"
            resolution = "1h"
            warn_at = 0.5
            on_breach = { raise_priority = 10, escalate = true }
            [queues.a]
            sla = "live"
            [queues.b]
            sla = "live"
            priority = 7
            skills = { billing = 3, english = 2 }
            optional_skills = { spanish = 5 }
            selection = "most_skilled"
            offer_timeout = "15s"
            wrap_up = "0s"
            service_level = { threshold = "10s", target = 0.95 }
            short_abandon = "3s"
            preferred_agent_timeout = "30s"
            [[queues.b.escalation]]
            after = "1m"
            relax = { billing = 1 }
            drop_optional = true
            raise_priority = 5
            overflow_to = "a"
        "#;
        let config = Config::from_toml_str(text, "t.toml").expect("valid");
        let plan = config.routing_plan();
        assert_eq!(plan.max_missed_offers, 2);
        assert!(!plan.voice_blocks_other_channels);
        assert_eq!(plan.position_update_interval, 5_000);

        let a = plan.queue(plan.queue_id("a").expect("a"));
        assert_eq!(a.priority, 0);
        assert!(a.skills.is_empty());
        assert_eq!(a.selection, Selection::LeastOccupied);
        assert_eq!(a.offer_timeout, 25_000);
        assert_eq!(a.wrap_up, 45_000);
        assert_eq!(a.service_level_threshold, 30_000);
        assert_eq!(a.service_level_target, 0.9);
        assert_eq!(a.short_abandon, 8_000);
        assert_eq!(a.preferred_agent_timeout, 120_000);
        assert_eq!(
            a.sla,
            SlaPolicy {
                name: "live".into(),
                first_response: 60_000,
                resolution: Some(3_600_000),
                warn_at: 0.5,
                on_breach: BreachActions {
                    raise_priority: 10,
                    escalate: true,
                    notify: false
                },
            }
        );
        assert!(a.escalation.is_empty());

        let b = plan.queue(plan.queue_id("b").expect("b"));
        assert_eq!(b.priority, 7);
        let (english, billing, spanish) = (
            skill(&plan, "english"),
            skill(&plan, "billing"),
            skill(&plan, "spanish"),
        );
        assert_eq!(
            (english, billing, spanish),
            (SkillId(0), SkillId(1), SkillId(2))
        );
        assert_eq!(
            b.skills,
            [
                SkillReq {
                    skill: english,
                    min_level: 2,
                    optional: false
                },
                SkillReq {
                    skill: billing,
                    min_level: 3,
                    optional: false
                },
                SkillReq {
                    skill: spanish,
                    min_level: 5,
                    optional: true
                },
            ]
        );
        assert_eq!(b.selection, Selection::MostSkilled);
        assert_eq!(b.offer_timeout, 15_000);
        assert_eq!(b.wrap_up, 0);
        assert_eq!(b.service_level_threshold, 10_000);
        assert_eq!(b.service_level_target, 0.95);
        assert_eq!(b.short_abandon, 3_000);
        assert_eq!(b.preferred_agent_timeout, 30_000);
        assert_eq!(
            b.escalation,
            [EscalationStep {
                after: 60_000,
                relax: vec![(billing, 1)],
                drop_optional: true,
                raise_priority: 5,
                overflow_to: plan.queue_id("a"),
            }]
        );
    }

    #[test]
    fn agent_profiles_resolve_names_and_capacity() {
        let text = r#"
            skills = ["english", "billing"]
            [routing]
            default_queue = "a"
            [sla.live]
            first_response = "60s"
            [queues.a]
            sla = "live"
            [queues.b]
            sla = "live"
            [[agents]]
            id = "alice"
            skills = { billing = 6, english = 8 }
            capacity = { voice = 1, chat = 2 }
            queues = ["b", "a", "b"]
            [[agents]]
            id = "bob"
        "#;
        let config = Config::from_toml_str(text, "t.toml").expect("valid");
        let plan = config.routing_plan();
        let profiles = config.agent_profiles();
        assert_eq!(profiles.len(), 2);

        let alice = &profiles[0];
        assert_eq!(alice.id, AgentId::new("alice"));
        assert_eq!(alice.skills.level(skill(&plan, "english")), 8);
        assert_eq!(alice.skills.level(skill(&plan, "billing")), 6);
        assert_eq!(alice.capacity.of(Channel::Voice), 1);
        assert_eq!(alice.capacity.of(Channel::Chat), 2);
        assert_eq!(
            alice.capacity.of(Channel::Email),
            0,
            "a given table zeroes the rest"
        );
        assert_eq!(alice.queues, [QueueId(0), QueueId(1)]);

        let bob = &profiles[1];
        assert_eq!(
            bob.capacity,
            Capacity::default(),
            "no table: the default blend"
        );
        assert!(bob.queues.is_empty(), "no list: every queue");
        assert_eq!(bob.skills, AgentSkills::default());
    }

    #[test]
    fn the_embedded_default_compiles_with_escalation_and_agents() {
        let config = Config::embedded_default();
        let plan = config.routing_plan();
        let billing = plan.queue(plan.queue_id("billing").expect("billing"));
        assert!(
            billing
                .escalation
                .iter()
                .any(|s| s.overflow_to == plan.queue_id("support")),
            "billing overflows to support"
        );
        let vip = plan.queue(plan.queue_id("vip").expect("vip"));
        assert!(vip.priority > 0, "vip outranks the other queues");
        assert!(vip.escalation.iter().any(|s| s.raise_priority > 0));
        assert!(plan.queue_id(&config.routing.default_queue).is_some());
        let profiles = config.agent_profiles();
        assert_eq!(profiles.len(), config.agents.len());
        assert!(profiles.iter().all(|p| p.capacity.total() > 0));
    }
}
