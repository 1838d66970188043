//! Delegation that gets out of hand: agents nested under agents deeper than a limit, an agent
//! that ends up delegating to itself through others (A → B → A), or one agent spawning an
//! explosion of sub-agents.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};
use pisama_trace::{HandoffMode, SpanKind};

use super::turns::handoffs;

pub(crate) struct DelegationRunaway;

const MAX_CHAIN: usize = 256;

impl Detector for DelegationRunaway {
    fn id(&self) -> &'static str {
        "delegation-runaway"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_depth = params.usize("max_depth", 3).max(1);
        let max_spawned = params.usize("max_spawned", 10).max(1);
        let levels = levels(view);
        let mut hits = Vec::new();
        hits.extend(depth_hit(view, &levels, max_depth));
        hits.extend(cycle_hit(view, &levels));
        hits.extend(spawn_hit(view, &levels, max_spawned));
        hits
    }
}

/// A chain of nested agents, outermost first (consecutive duplicates collapsed), with the
/// agent spans that opened each level.
#[derive(Debug, Default, Clone)]
struct Chain {
    agents: Vec<String>,
    spans: Vec<Idx>,
}

/// One level of agent nesting: an agent span whose nearest agent ancestor is another agent.
#[derive(Debug, Clone)]
struct Level<'t> {
    agent: &'t str,
    span: Idx,
    parent: Option<usize>,
    /// Levels above this one.
    depth: usize,
}

/// The nesting tree of agents over the span parent links, built once in O(n): every span
/// points at its level, every level at its parent level.
fn levels<'t>(view: &TraceView<'t>) -> Vec<Level<'t>> {
    let n = view.len();
    // `Some(None)`: resolved, outside any agent; `Some(Some(l))`: inside level `l`.
    let mut level_of: Vec<Option<Option<usize>>> = vec![None; n];
    let mut levels: Vec<Level<'t>> = Vec::new();
    for start in 0..n {
        if level_of[start].is_some() {
            continue;
        }
        // Walk up to the first resolved ancestor (or the root), then resolve downwards. The
        // step cap guards against parent cycles in malformed input.
        let mut path = Vec::new();
        let mut cur = Some(start);
        while let Some(i) = cur {
            if level_of[i].is_some() || path.len() > n {
                break;
            }
            path.push(i);
            cur = view
                .span(i)
                .parent
                .map(|p| p as usize)
                .filter(|&p| p < n && p != i);
        }
        let mut base = cur.and_then(|i| level_of[i]).flatten();
        for &i in path.iter().rev() {
            let span = view.span(i);
            if span.kind == SpanKind::Agent
                && let Some(name) = span.agent.as_deref()
                && base.is_none_or(|b| levels[b].agent != name)
            {
                let depth = base.map_or(0, |b| levels[b].depth + 1);
                levels.push(Level {
                    agent: name,
                    span: i,
                    parent: base,
                    depth,
                });
                base = Some(levels.len() - 1);
            }
            level_of[i] = Some(base);
        }
    }
    levels
}

/// The chain from the outermost level down to `level` (at most `MAX_CHAIN` levels, the
/// innermost kept).
fn chain_of(levels: &[Level<'_>], level: usize) -> Chain {
    let mut agents = Vec::new();
    let mut spans = Vec::new();
    let mut cur = Some(level);
    while let Some(l) = cur {
        if agents.len() >= MAX_CHAIN {
            break;
        }
        agents.push(levels[l].agent.to_owned());
        spans.push(levels[l].span);
        cur = levels[l].parent;
    }
    agents.reverse();
    spans.reverse();
    Chain { agents, spans }
}

fn depth_hit(view: &TraceView<'_>, levels: &[Level<'_>], max_depth: usize) -> Option<Hit> {
    // Depth from span nesting, and from declared parent agents (Claude Code sub-agents).
    let deepest_level = levels
        .iter()
        .enumerate()
        .max_by_key(|(_, l)| (l.depth, std::cmp::Reverse(l.span)))
        .map(|(k, _)| k);
    let chain = deepest_level
        .map(|k| chain_of(levels, k))
        .unwrap_or_default();
    let deepest = deepest_level.map_or(0, |k| levels[k].span);
    let nested_depth = deepest_level.map_or(0, |k| levels[k].depth);
    let declared = declared_depth(view);
    let depth = nested_depth.max(declared.0);
    if depth <= max_depth {
        return None;
    }
    let excess = (depth - max_depth) as i32;
    let score = 1.0 - 0.4 * 0.7f64.powi(excess - 1);
    let path = if nested_depth >= declared.0 {
        display_path(&chain.agents)
    } else {
        display_path(&declared.1)
    };
    let evidence: Vec<HitEvidence> = if nested_depth >= declared.0 {
        let s = &chain.spans;
        let mut picks: Vec<Idx> = s.iter().copied().take(2).collect();
        picks.extend(
            s.iter()
                .copied()
                .skip(2)
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev(),
        );
        picks.dedup();
        picks
            .into_iter()
            .map(|i| HitEvidence::new(i, format!("{} starts at this level", view.agent(i))))
            .collect()
    } else {
        Vec::new()
    };
    let at = if nested_depth >= declared.0 {
        chain.spans.get(max_depth).copied().or(Some(deepest))
    } else {
        first_span_of(view, declared.1.get(max_depth).map_or("", String::as_str))
    };
    Some(Hit {
        score,
        severity: (depth >= 2 * max_depth).then_some(Severity::High),
        summary: format!("delegation went {depth} levels deep (limit {max_depth}): {path}"),
        at,
        evidence,
        ..Hit::default()
    })
}

/// A chain of agent names for a summary, elided in the middle when long.
fn display_path(names: &[String]) -> String {
    if names.len() <= 6 {
        return names.join(" → ");
    }
    format!(
        "{} → … → {}",
        names[..3].join(" → "),
        names[names.len() - 2..].join(" → ")
    )
}

fn first_span_of(view: &TraceView<'_>, agent: &str) -> Option<Idx> {
    (0..view.len()).find(|&i| view.span(i).agent.as_deref() == Some(agent))
}

/// Longest chain of declared parent agents (`AgentInfo::parent_agent`), outermost first.
fn declared_depth(view: &TraceView<'_>) -> (usize, Vec<String>) {
    let agents = &view.trace.agents;
    let parent_of: BTreeMap<&str, &str> = agents
        .iter()
        .filter_map(|a| a.parent_agent.as_deref().map(|p| (a.name.as_str(), p)))
        .collect();
    let mut best: (usize, Vec<String>) = (0, Vec::new());
    for a in agents {
        let mut path = vec![a.name.clone()];
        let mut cur = a.name.as_str();
        while let Some(&p) = parent_of.get(cur) {
            if path.iter().any(|x| x == p) || path.len() > agents.len() {
                break;
            }
            path.push(p.to_owned());
            cur = p;
        }
        if path.len() - 1 > best.0 {
            path.reverse();
            best = (path.len() - 1, path);
        }
    }
    best
}

/// An agent nested (directly or not) inside itself through another agent.
fn cycle_hit(view: &TraceView<'_>, levels: &[Level<'_>]) -> Option<Hit> {
    // The first level (in span order) whose agent already appears above it.
    let recursive = levels
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let mut cur = l.parent;
            let mut steps = 0;
            while let Some(p) = cur {
                if levels[p].agent == l.agent {
                    return true;
                }
                steps += 1;
                if steps >= MAX_CHAIN {
                    break;
                }
                cur = levels[p].parent;
            }
            false
        })
        .min_by_key(|(k, l)| (l.span, *k))
        .map(|(k, _)| k)?;
    let chain = chain_of(levels, recursive);
    let repeat_at = chain.agents.len().checked_sub(1)?;
    let name = &chain.agents[repeat_at];
    let first = chain.agents.iter().position(|a| a == name).unwrap_or(0);
    if first == repeat_at {
        return None;
    }
    let loop_path = display_path(&chain.agents[first..=repeat_at]);
    Some(Hit {
        score: 0.7,
        severity: None,
        summary: format!("{name} ended up delegating to itself through other agents: {loop_path}"),
        at: Some(chain.spans[repeat_at]),
        evidence: vec![
            HitEvidence::new(chain.spans[first], format!("{name} at the outer level")),
            HitEvidence::new(
                chain.spans[repeat_at],
                format!("{name} again, nested inside its own delegation"),
            ),
        ],
        ..Hit::default()
    })
    .filter(|_| view.len() > 1)
}

/// Sub-agents started by one agent: nested agent spans whose parent level is that agent, or
/// its delegation handoffs, whichever is larger (they often describe the same spawns).
fn spawn_hit(view: &TraceView<'_>, levels: &[Level<'_>], max_spawned: usize) -> Option<Hit> {
    let mut nested: BTreeMap<&str, Vec<Idx>> = BTreeMap::new();
    for l in levels {
        if let Some(p) = l.parent {
            nested.entry(levels[p].agent).or_default().push(l.span);
        }
    }
    // Delegations count once per distinct target: a planner sending work to the same three
    // workers thirty times is a long task, not an explosion.
    let mut delegated: BTreeMap<&str, Vec<Idx>> = BTreeMap::new();
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    for h in handoffs(view) {
        if h.mode != HandoffMode::Delegate {
            continue;
        }
        let span = view.span(h.span);
        let from = span
            .handoff
            .as_ref()
            .and_then(|x| x.from.as_deref())
            .or(span.agent.as_deref())
            .unwrap_or("?");
        let to = span.handoff.as_ref().map_or("", |x| x.to.as_str());
        if seen.insert((from, to)) {
            delegated.entry(from).or_default().push(h.span);
        }
    }
    let mut best: Option<(&str, &Vec<Idx>)> = None;
    for (agent, spans) in nested.iter().chain(delegated.iter()) {
        if best.is_none_or(|(_, b)| spans.len() > b.len()) {
            best = Some((agent, spans));
        }
    }
    let (agent, spans) = best?;
    if spans.len() <= max_spawned {
        return None;
    }
    let ratio = spans.len() as f64 / max_spawned as f64;
    let score = (1.0 - 0.5 / ratio).clamp(0.0, 1.0);
    let distinct = {
        let mut names: Vec<&str> = spans.iter().map(|&i| spawned_name(view, i)).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    let mut evidence: Vec<HitEvidence> = spans
        .iter()
        .take(2)
        .map(|&i| HitEvidence::new(i, format!("{agent} starts {}", spawned_name(view, i))))
        .collect();
    if let Some(&last) = spans.last() {
        evidence.push(HitEvidence::new(
            last,
            format!("spawn {} of {}", spans.len(), spans.len()),
        ));
    }
    Some(Hit {
        score,
        severity: (spans.len() >= 3 * max_spawned).then_some(Severity::High),
        summary: format!(
            "{agent} spawned {} sub-agents ({distinct} distinct), more than the limit of {max_spawned}",
            spans.len()
        ),
        at: spans.get(max_spawned).copied(),
        agent: Some(agent.to_owned()),
        evidence,
        ..Hit::default()
    })
}

fn spawned_name<'v>(view: &TraceView<'v>, i: Idx) -> &'v str {
    let s = view.span(i);
    s.handoff
        .as_ref()
        .map_or_else(|| view.agent(i), |h| h.to.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{Span, Trace};

    fn agent_span(name: &str, seq: u32, parent: Option<u32>) -> Span {
        Span {
            id: format!("a{seq}"),
            seq,
            parent,
            kind: SpanKind::Agent,
            name: name.to_owned(),
            agent: Some(name.to_owned()),
            ..Span::default()
        }
    }

    #[test]
    fn empty_and_flat_traces_are_quiet() {
        let t = Trace::default();
        assert!(
            DelegationRunaway
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
        let flat = Trace {
            spans: vec![agent_span("a", 0, None), agent_span("b", 1, Some(0))],
            ..Trace::default()
        };
        assert!(
            DelegationRunaway
                .detect(&TraceView::new(&flat), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn deep_nesting_and_cycles_fire() {
        let names = ["a", "b", "c", "d", "e", "f"];
        let spans = names
            .iter()
            .enumerate()
            .map(|(k, n)| agent_span(n, k as u32, k.checked_sub(1).map(|p| p as u32)))
            .collect();
        let t = Trace {
            spans,
            ..Trace::default()
        };
        let hits = DelegationRunaway.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert!(hits[0].summary.contains("5 levels"));
        let cyc = Trace {
            spans: vec![
                agent_span("a", 0, None),
                agent_span("b", 1, Some(0)),
                agent_span("a", 2, Some(1)),
            ],
            ..Trace::default()
        };
        let hits = DelegationRunaway.detect(&TraceView::new(&cyc), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(2));
    }

    #[test]
    fn parent_cycles_and_long_chains_do_not_hang() {
        let mut spans: Vec<Span> = (0..3000)
            .map(|k| agent_span(if k % 2 == 0 { "x" } else { "y" }, k, k.checked_sub(1)))
            .collect();
        spans[0].parent = Some(2999);
        let t = Trace {
            spans,
            ..Trace::default()
        };
        let _ = DelegationRunaway.detect(&TraceView::new(&t), &Params::default());
    }

    #[test]
    fn spawn_explosion_fires() {
        let mut spans = vec![agent_span("lead", 0, None)];
        for k in 1..=15 {
            spans.push(agent_span(&format!("worker{k}"), k, Some(0)));
        }
        let t = Trace {
            spans,
            ..Trace::default()
        };
        let hits = DelegationRunaway.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert!(hits[0].summary.contains("15 sub-agents"));
    }
}
