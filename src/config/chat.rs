//! `[chat]`: the customer chat websocket: its pre-chat menu, resume grace and abuse limits.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[chat]`. Every key has a default; without a `menu` a chat goes to the routing default
/// queue (until classification decides).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// How long a customer whose connection dropped keeps the place in line (or the agent);
    /// after it, the chat counts as abandoned.
    #[serde(
        default = "defaults::resume_grace",
        deserialize_with = "duration::deserialize"
    )]
    pub resume_grace: Duration,
    /// Largest customer frame, in bytes.
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// Frames per second one connection may send.
    #[serde(default = "defaults::messages_per_second")]
    pub messages_per_second: u32,
    /// Chats open at once from one remote address.
    #[serde(default = "defaults::max_chats_per_address")]
    pub max_chats_per_address: usize,
    /// The pre-chat menu, if any.
    #[serde(default)]
    pub menu: Option<MenuConfig>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            resume_grace: defaults::resume_grace(),
            max_message_bytes: defaults::max_message_bytes(),
            messages_per_second: defaults::messages_per_second(),
            max_chats_per_address: defaults::max_chats_per_address(),
            menu: None,
        }
    }
}

/// A menu: a prompt and the options a customer may choose.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuConfig {
    /// What the customer is asked.
    pub prompt: String,
    /// The choices, in the order shown.
    pub options: Vec<MenuOption>,
}

/// One menu choice: what it sets, and optionally a further menu.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    /// What the customer sends in `choose` ("1", "billing", ...).
    pub id: String,
    /// What the customer sees.
    pub label: String,
    /// Queue the chat goes to.
    #[serde(default)]
    pub queue: Option<String>,
    /// Skills the chat needs, with minimum levels.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Priority of the chat.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Attributes recorded on the contact.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// A further menu shown after this choice.
    #[serde(default)]
    pub menu: Option<Box<MenuConfig>>,
}

mod defaults {
    use std::time::Duration;

    pub fn resume_grace() -> Duration {
        Duration::from_secs(60)
    }
    pub fn max_message_bytes() -> usize {
        4096
    }
    pub fn messages_per_second() -> u32 {
        5
    }
    pub fn max_chats_per_address() -> usize {
        20
    }
}
