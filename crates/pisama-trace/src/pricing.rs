//! A small price table for estimating cost when a source reports none.
//!
//! Prices are USD per million tokens (input, cached input, output), list prices as published
//! by the providers in 2025–2026. Models are matched by the longest known prefix of the model
//! name with any provider prefix (`openai/`, `anthropic.`) removed, so dated snapshots
//! (`gpt-4o-2024-08-06`) find their family. Unknown models get no estimate rather than a guess.

use crate::model::Usage;

/// (model prefix, input, cached input, output) in USD per 1M tokens.
const PRICES: &[(&str, f64, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.075, 0.60),
    ("gpt-4o", 2.50, 1.25, 10.00),
    ("gpt-4.1-nano", 0.10, 0.025, 0.40),
    ("gpt-4.1-mini", 0.40, 0.10, 1.60),
    ("gpt-4.1", 2.00, 0.50, 8.00),
    ("gpt-4-turbo", 10.00, 10.00, 30.00),
    ("gpt-4", 30.00, 30.00, 60.00),
    ("gpt-3.5-turbo", 0.50, 0.50, 1.50),
    ("gpt-5-nano", 0.05, 0.005, 0.40),
    ("gpt-5-mini", 0.25, 0.025, 2.00),
    ("gpt-5", 1.25, 0.125, 10.00),
    ("o1-mini", 1.10, 0.55, 4.40),
    ("o1", 15.00, 7.50, 60.00),
    ("o3-mini", 1.10, 0.55, 4.40),
    ("o3", 2.00, 0.50, 8.00),
    ("o4-mini", 1.10, 0.275, 4.40),
    ("claude-3-5-haiku", 0.80, 0.08, 4.00),
    ("claude-3-haiku", 0.25, 0.03, 1.25),
    ("claude-haiku-4", 1.00, 0.10, 5.00),
    ("claude-3-5-sonnet", 3.00, 0.30, 15.00),
    ("claude-3-7-sonnet", 3.00, 0.30, 15.00),
    ("claude-sonnet-4", 3.00, 0.30, 15.00),
    ("claude-3-opus", 15.00, 1.50, 75.00),
    ("claude-opus-4-5", 5.00, 0.50, 25.00),
    ("claude-opus-4", 15.00, 1.50, 75.00),
    ("gemini-2.5-pro", 1.25, 0.31, 10.00),
    ("gemini-2.5-flash", 0.30, 0.075, 2.50),
    ("gemini-2.0-flash", 0.10, 0.025, 0.40),
    ("gemini-1.5-pro", 1.25, 0.3125, 5.00),
    ("gemini-1.5-flash", 0.075, 0.01875, 0.30),
    ("mistral-large", 2.00, 2.00, 6.00),
    ("deepseek-chat", 0.27, 0.07, 1.10),
    ("deepseek-reasoner", 0.55, 0.14, 2.19),
];

/// Estimated cost in USD of one call, or `None` if the model is unknown or usage is empty.
pub fn estimate(model: &str, usage: &Usage) -> Option<f64> {
    if usage.input.is_none() && usage.output.is_none() {
        return None;
    }
    let (inp, cached, out) = lookup(model)?;
    let input = usage.input.unwrap_or(0) as f64;
    let cache_read = usage.cache_read.unwrap_or(0).min(usage.input.unwrap_or(0)) as f64;
    let output = usage.output.unwrap_or(0) as f64;
    Some(((input - cache_read) * inp + cache_read * cached + output * out) / 1_000_000.0)
}

fn lookup(model: &str) -> Option<(f64, f64, f64)> {
    let lower = model.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    // Bedrock ids carry a region and vendor prefix: `us.anthropic.claude-...-v1:0`.
    let name = name
        .rsplit_once("anthropic.")
        .map_or(name, |(_, rest)| rest);
    PRICES
        .iter()
        .filter(|(prefix, ..)| name.starts_with(prefix))
        .max_by_key(|(prefix, ..)| prefix.len())
        .map(|&(_, i, c, o)| (i, c, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let u = Usage {
            input: Some(1_000_000),
            output: Some(0),
            ..Usage::default()
        };
        assert!((estimate("gpt-4o-mini-2024-07-18", &u).unwrap() - 0.15).abs() < 1e-9);
        assert!((estimate("openai/gpt-4o", &u).unwrap() - 2.50).abs() < 1e-9);
        assert!(estimate("my-local-llama", &u).is_none());
    }
}
