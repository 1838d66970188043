//! [`TraceBuilder`]: the one way adapters assemble a [`Trace`].
//!
//! Adapters push spans in source order and name parents either by builder index or by native
//! id. `finish` does the work every format needs the same way: resolving parents (breaking
//! cycles), inheriting agents from ancestors, sorting by time, listing agents, rolling up usage
//! and cost, and filling the trace's time bounds, task and final output.

use std::collections::HashMap;

use crate::model::{
    AgentInfo, Cost, CostSource, Format, Role, Span, SpanIdx, SpanKind, Status, Trace, Usage,
    UsageScope,
};
use crate::pricing;

/// Builds one trace. See the module docs.
#[derive(Debug)]
pub struct TraceBuilder {
    trace: Trace,
    spans: Vec<Span>,
    parent: Vec<ParentRef>,
    agents: Vec<AgentInfo>,
    /// First builder index of each native id, as given at push time (keeps `find` O(1)).
    by_id: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
enum ParentRef {
    None,
    Index(usize),
    Native(String),
}

impl TraceBuilder {
    pub fn new(format: Format, id: impl Into<String>) -> Self {
        TraceBuilder {
            trace: Trace {
                id: id.into(),
                format,
                ..Trace::default()
            },
            spans: Vec::new(),
            parent: Vec::new(),
            agents: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// Makes room for `additional` more spans. Adapters that know their span count call it
    /// once: at 100,000 spans, growing by doubling copies the span table several times and
    /// touches fresh memory each time.
    pub fn reserve(&mut self, additional: usize) {
        self.spans.reserve_exact(additional);
        self.parent.reserve_exact(additional);
        self.by_id.reserve(additional);
    }

    /// Trace-level fields (session, task, status, metadata, format version...).
    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// Adds a span and returns its builder index. `seq` is set to the push order.
    pub fn push(&mut self, mut span: Span) -> usize {
        let idx = self.spans.len();
        span.seq = idx as u32;
        span.parent = None;
        self.by_id.entry(span.id.clone()).or_insert(idx);
        self.spans.push(span);
        self.parent.push(ParentRef::None);
        idx
    }

    /// Adds a span inside `parent` (a builder index).
    pub fn push_child(&mut self, parent: usize, span: Span) -> usize {
        let idx = self.push(span);
        self.set_parent(idx, parent);
        idx
    }

    pub fn set_parent(&mut self, child: usize, parent: usize) {
        if child != parent && parent < self.spans.len() {
            self.parent[child] = ParentRef::Index(parent);
        }
    }

    /// Names the parent by its native span id; resolved in `finish`.
    pub fn set_parent_id(&mut self, child: usize, parent_id: impl Into<String>) {
        let id = parent_id.into();
        if !id.is_empty() {
            self.parent[child] = ParentRef::Native(id);
        }
    }

    pub fn parent_of(&self, child: usize) -> Option<usize> {
        match &self.parent[child] {
            ParentRef::Index(i) => Some(*i),
            _ => None,
        }
    }

    pub fn span(&self, idx: usize) -> &Span {
        &self.spans[idx]
    }

    pub fn span_mut(&mut self, idx: usize) -> &mut Span {
        &mut self.spans[idx]
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The builder index of the first span pushed with this native id (ids changed later
    /// through `span_mut` are not re-indexed).
    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Declares an agent (with role, model, parent agent). Agents that only appear on spans
    /// are added automatically in `finish`.
    pub fn agent(&mut self, info: AgentInfo) {
        if let Some(existing) = self.agents.iter_mut().find(|a| a.name == info.name) {
            existing.id = existing.id.take().or(info.id);
            existing.role = existing.role.take().or(info.role);
            existing.model = existing.model.take().or(info.model);
            existing.parent_agent = existing.parent_agent.take().or(info.parent_agent);
        } else {
            self.agents.push(info);
        }
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        if self.trace.warnings.len() < 200 && !self.trace.warnings.contains(&message) {
            self.trace.warnings.push(message);
        }
    }

    /// Assembles the trace.
    pub fn finish(mut self) -> Trace {
        let n = self.spans.len();
        let parents = self.resolve_parents();
        self.inherit_agents(&parents);

        // Sort by time; spans without a start take the last known start before them so they
        // stay near their neighbours, and `seq` breaks ties.
        let mut order: Vec<usize> = (0..n).collect();
        let mut sort_key = Vec::with_capacity(n);
        let mut last = i64::MIN;
        for span in &self.spans {
            if let Some(s) = span.start_ns {
                last = s;
            }
            sort_key.push(span.start_ns.unwrap_or(last));
        }
        order.sort_by_key(|&i| (sort_key[i], i));
        let mut new_index = vec![0 as SpanIdx; n];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as SpanIdx;
        }
        // Reorder in place by following the permutation's cycles: a large trace's spans are
        // the biggest allocation here, and a second copy of them would double the peak.
        let mut spans = std::mem::take(&mut self.spans);
        for (old, span) in spans.iter_mut().enumerate() {
            span.parent = parents[old].map(|p| new_index[p]);
        }
        let mut target: Vec<usize> = new_index.iter().map(|&i| i as usize).collect();
        for start in 0..n {
            while target[start] != start {
                let dest = target[start];
                spans.swap(start, dest);
                target.swap(start, dest);
            }
        }
        self.trace.spans = spans;

        let mut trace = self.trace;
        fill_agents(&mut trace, self.agents);
        roll_up(&mut trace);
        fill_bounds(&mut trace);
        fill_task_and_output(&mut trace);
        if trace.status == Status::Unset {
            let root_error = trace
                .spans
                .iter()
                .any(|s| s.parent.is_none() && s.status == Status::Error && !is_handled(s));
            if root_error {
                trace.status = Status::Error;
            }
        }
        trace
    }

    fn resolve_parents(&mut self) -> Vec<Option<usize>> {
        let n = self.spans.len();
        let by_id = std::mem::take(&mut self.by_id);
        let mut parents: Vec<Option<usize>> = Vec::with_capacity(n);
        let mut missing = 0usize;
        for (i, p) in self.parent.iter().enumerate() {
            parents.push(match p {
                ParentRef::None => None,
                ParentRef::Index(j) => Some(*j),
                ParentRef::Native(id) => match by_id.get(id.as_str()) {
                    Some(&j) if j != i => Some(j),
                    _ => {
                        missing += 1;
                        None
                    }
                },
            });
        }
        if missing > 0 {
            self.warn(format!(
                "{missing} span(s) name a parent that is not in the trace; kept as roots"
            ));
        }
        // Break cycles: walk up from each span with a step budget of n.
        let mut state = vec![0u8; n]; // 0 unvisited, 1 on stack, 2 done
        let mut broken = 0usize;
        for start in 0..n {
            let mut path = Vec::new();
            let mut cur = start;
            loop {
                match state[cur] {
                    2 => break,
                    1 => {
                        // `cur` is on the current path: a cycle. Cut the edge into it.
                        if let Some(&last) = path.last() {
                            parents[last] = None;
                            broken += 1;
                        }
                        break;
                    }
                    _ => {}
                }
                state[cur] = 1;
                path.push(cur);
                match parents[cur] {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            for i in path {
                state[i] = 2;
            }
        }
        if broken > 0 {
            self.warn(format!("{broken} parent cycle(s) broken"));
        }
        parents
    }

    fn inherit_agents(&mut self, parents: &[Option<usize>]) {
        for span in &mut self.spans {
            if span.kind == SpanKind::Agent && span.agent.is_none() && !span.name.is_empty() {
                span.agent = Some(span.name.clone());
            }
        }
        // Memoized walk up the containment tree.
        let n = self.spans.len();
        let mut resolved: Vec<Option<Option<String>>> = vec![None; n];
        for i in 0..n {
            if self.spans[i].agent.is_some() {
                continue;
            }
            let mut chain = vec![i];
            let mut cur = parents[i];
            let mut found: Option<String> = None;
            while let Some(p) = cur {
                if let Some(a) = &self.spans[p].agent {
                    found = Some(a.clone());
                    break;
                }
                if let Some(r) = &resolved[p] {
                    found.clone_from(r);
                    break;
                }
                chain.push(p);
                cur = parents[p];
                if chain.len() > n {
                    break;
                }
            }
            for c in chain {
                resolved[c] = Some(found.clone());
            }
        }
        for (i, r) in resolved.into_iter().enumerate() {
            if let Some(Some(agent)) = r
                && self.spans[i].agent.is_none()
            {
                self.spans[i].agent = Some(agent);
            }
        }
    }
}

fn is_handled(span: &Span) -> bool {
    span.error.as_ref().is_some_and(|e| e.handled)
}

fn fill_agents(trace: &mut Trace, declared: Vec<AgentInfo>) {
    let mut agents: Vec<AgentInfo> = Vec::new();
    for span in &trace.spans {
        if let Some(name) = &span.agent {
            if !agents.iter().any(|a| &a.name == name) {
                let model = if span.kind == SpanKind::Llm {
                    span.llm.as_ref().and_then(|l| l.model()).map(str::to_owned)
                } else {
                    None
                };
                agents.push(AgentInfo {
                    name: name.clone(),
                    model,
                    ..AgentInfo::default()
                });
            } else if span.kind == SpanKind::Llm
                && let Some(a) = agents.iter_mut().find(|a| &a.name == name)
                && a.model.is_none()
            {
                a.model = span.llm.as_ref().and_then(|l| l.model()).map(str::to_owned);
            }
        }
    }
    for info in declared {
        if let Some(a) = agents.iter_mut().find(|a| a.name == info.name) {
            a.id = info.id.or(a.id.take());
            a.role = info.role.or(a.role.take());
            a.model = info.model.or(a.model.take());
            a.parent_agent = info.parent_agent.or(a.parent_agent.take());
        } else {
            agents.push(info);
        }
    }
    trace.agents = agents;
}

fn roll_up(trace: &mut Trace) {
    let mut usage = Usage::default();
    let mut total_cost = 0.0f64;
    let mut any_cost = false;
    let mut all_reported = true;
    for span in &mut trace.spans {
        let Some(u) = &span.usage else { continue };
        if span.usage_scope != UsageScope::SelfOnly {
            continue;
        }
        if span.kind == SpanKind::Llm || span.llm.is_some() {
            usage.add(u);
            if span.cost.is_none() {
                let model = span.llm.as_ref().and_then(|l| l.model());
                if let Some(amount) = model.and_then(|m| pricing::estimate(m, u)) {
                    span.cost = Some(Cost {
                        amount,
                        currency: "USD".to_owned(),
                        source: CostSource::Estimated,
                    });
                }
            }
        }
    }
    // Costs are summed per currency; a trace priced in several currencies gets no single
    // total (adding RMB to USD would be a made-up number) and says so.
    let mut currencies: Vec<String> = Vec::new();
    for span in &trace.spans {
        if span.usage_scope != UsageScope::SelfOnly {
            continue;
        }
        if let Some(c) = &span.cost {
            any_cost = true;
            total_cost += c.amount;
            all_reported &= c.source == CostSource::Reported;
            if !currencies.contains(&c.currency) {
                currencies.push(c.currency.clone());
            }
        }
    }
    if currencies.len() > 1 {
        any_cost = false;
        trace.warnings.push(format!(
            "costs are in several currencies ({}); no total is given",
            currencies.join(", ")
        ));
    }
    let currency = currencies.pop();
    if !usage.is_empty() && trace.usage.is_empty() {
        trace.usage = usage;
    }
    if trace.cost.is_none() && any_cost {
        trace.cost = Some(Cost {
            amount: total_cost,
            currency: currency.unwrap_or_else(|| "USD".to_owned()),
            source: if all_reported {
                CostSource::Reported
            } else {
                CostSource::Estimated
            },
        });
    }
}

fn fill_bounds(trace: &mut Trace) {
    let min_start = trace.spans.iter().filter_map(|s| s.start_ns).min();
    let max_end = trace
        .spans
        .iter()
        .filter_map(|s| s.end_ns.or(s.start_ns))
        .max();
    if trace.start_ns.is_none() {
        trace.start_ns = min_start;
    }
    if trace.end_ns.is_none() {
        trace.end_ns = max_end;
    }
}

fn fill_task_and_output(trace: &mut Trace) {
    if trace.task.is_none() {
        trace.task = trace
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Human)
            .and_then(|s| s.input.as_ref().or(s.output.as_ref()))
            .map(|p| p.text.clone())
            .or_else(|| {
                trace
                    .spans
                    .iter()
                    .filter_map(|s| s.llm.as_ref())
                    .find_map(|l| {
                        l.input_messages
                            .iter()
                            .find(|m| m.role == Role::User)
                            .map(crate::model::Message::joined_text)
                    })
            })
            .filter(|t| !t.is_empty());
    }
    if trace.final_output.is_none() {
        trace.final_output = trace
            .spans
            .iter()
            .rev()
            .filter(|s| matches!(s.kind, SpanKind::Llm | SpanKind::Agent | SpanKind::Step))
            .find_map(|s| s.output.as_ref().map(|p| p.text.clone()))
            .filter(|t| !t.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LlmCall;

    fn span(id: &str, kind: SpanKind, start: Option<i64>) -> Span {
        Span {
            id: id.into(),
            name: id.into(),
            kind,
            start_ns: start,
            ..Span::default()
        }
    }

    #[test]
    fn parents_resolve_sort_and_agents_inherit() {
        let mut b = TraceBuilder::new(Format::Otlp, "t");
        let child = b.push(span("c", SpanKind::Llm, Some(20)));
        let root = b.push(span("r", SpanKind::Agent, Some(10)));
        b.set_parent_id(child, "r");
        let _ = root;
        let t = b.finish();
        assert_eq!(t.spans[0].id, "r");
        assert_eq!(t.spans[1].parent, Some(0));
        assert_eq!(t.spans[1].agent.as_deref(), Some("r"));
        assert_eq!(t.agents.len(), 1);
        assert_eq!(t.start_ns, Some(10));
    }

    #[test]
    fn cycles_are_broken() {
        let mut b = TraceBuilder::new(Format::Otlp, "t");
        let a = b.push(span("a", SpanKind::Step, None));
        let c = b.push(span("b", SpanKind::Step, None));
        b.set_parent(a, c);
        b.set_parent(c, a);
        let t = b.finish();
        assert!(t.spans.iter().any(|s| s.parent.is_none()));
        assert!(t.warnings.iter().any(|w| w.contains("cycle")));
    }

    #[test]
    fn usage_rolls_up_self_only_llm_spans() {
        let mut b = TraceBuilder::new(Format::Otlp, "t");
        let mut s1 = span("a", SpanKind::Llm, Some(1));
        s1.usage = Some(Box::new(Usage {
            input: Some(10),
            output: Some(5),
            ..Usage::default()
        }));
        s1.llm = Some(Box::new(LlmCall {
            request_model: Some("gpt-4o".into()),
            ..LlmCall::default()
        }));
        let mut s2 = span("b", SpanKind::Agent, Some(0));
        s2.usage = Some(Box::new(Usage {
            input: Some(100),
            output: Some(50),
            ..Usage::default()
        }));
        s2.usage_scope = UsageScope::Subtree;
        b.push(s1);
        b.push(s2);
        let t = b.finish();
        assert_eq!(t.usage.input, Some(10));
        assert_eq!(t.usage.output, Some(5));
        let cost = t.cost.unwrap();
        assert_eq!(cost.source, CostSource::Estimated);
        assert!(cost.amount > 0.0);
    }
}
