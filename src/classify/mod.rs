//! Classification: deciding a contact's queue, skills and priority from what it says. Pure:
//! no IO, no clock.
//!
//! - `intent.rs`: intent detection, a linear model over word and character n-grams trained
//!   from a labeled CSV.
//! - `signals.rs`: language (whatlang) and a lexicon sentiment and urgency score.
//!
//! Rules (CEL), wiring into intake and hot reload are the rest of the classification issue and
//! not here yet.

pub mod intent;
pub mod signals;
