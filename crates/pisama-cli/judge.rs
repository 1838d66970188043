//! `--judge` and `--judge-dry-run` for `pisama detect` and `pisama eval`: resolving the
//! judge's configuration (flags > `PISAMA_JUDGE_*` > `[judge]` in pisama.toml), the redaction
//! rules (the project brain's, when there is one), and what the user sees: the dry-run plan on
//! stdout, a one-line summary of a live run on stderr.

#![allow(clippy::print_stderr, reason = "the run summary is a terminal message")]

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use pisama_detect::{Engine, TraceReport};
use pisama_judge::{BlockingJudge, Judge, Overrides, Settings, TraceJudgement};
use pisama_redact::Redactor;
use pisama_trace::Trace;

use crate::Failure;
use crate::args::JudgeArgs;
use crate::config::Config;
use crate::output::thousands;

/// Tag key when the project has no brain: fixed, so the same trace redacts to the same text
/// on every run (the cache key depends on it).
const DEFAULT_REDACTION_KEY: &[u8] = b"pisama-judge";

/// A judge for this run, when `--judge` or `--judge-dry-run` asked for one.
#[derive(Debug)]
pub(crate) struct Session {
    judge: BlockingJudge,
    dry_run: bool,
}

impl Session {
    pub(crate) fn start(args: &JudgeArgs, config: &Config) -> Result<Option<Session>, Failure> {
        if !args.judge && !args.judge_dry_run {
            return Ok(None);
        }
        let dry_run = args.judge_dry_run;
        let flags = Overrides {
            base_url: args.judge_base_url.clone(),
            model: args.judge_model.clone(),
            api_key_env: args.judge_api_key_env.clone(),
            cache_dir: args.judge_cache_dir.clone(),
            no_cache: args.judge_no_cache,
            max_calls: args.judge_max_calls,
            max_cost_usd: args.judge_max_cost,
            timeout_secs: args.judge_timeout,
        };
        let env = |name: &str| std::env::var(name).ok();
        let settings = Settings::resolve(&config.judge, &flags, &env, default_cache_dir(), dry_run)
            .map_err(|e| {
                let origin = config
                    .path
                    .as_ref()
                    .map(|p| format!(" (configuration read from {})", p.display()))
                    .unwrap_or_default();
                Failure::input(format!("{e}{origin}"))
            })?;
        if settings.base_url.starts_with("http://")
            && !pisama_judge::settings::is_loopback(&settings.base_url)
        {
            crate::output::warning_line(&format!(
                "judge: {} is plain HTTP; the key and the redacted excerpts travel unencrypted",
                settings.base_url
            ));
        }
        let redactor = redactor()?;
        let judge = if dry_run {
            Judge::dry_run(settings, redactor)
        } else {
            Judge::new(settings, redactor).map_err(|e| Failure::input(e.to_string()))?
        };
        let judge = BlockingJudge::new(judge).map_err(|e| Failure::from(anyhow::anyhow!("{e}")))?;
        Ok(Some(Session { judge, dry_run }))
    }

    pub(crate) fn dry_run(&self) -> bool {
        self.dry_run
    }

    pub(crate) fn stats(&self) -> &pisama_judge::RunStats {
        self.judge.judge().stats()
    }

    pub(crate) fn review(
        &mut self,
        label: &str,
        trace: &Trace,
        report: &mut TraceReport,
        engine: &Engine,
    ) -> TraceJudgement {
        self.judge.review(label, trace, report, engine)
    }

    /// A live run's totals, on stderr.
    pub(crate) fn print_summary(&self) {
        let judge = self.judge.judge();
        let st = judge.stats();
        let s = judge.settings();
        let mut line = format!(
            "judge ({} at {}): {} request(s) sent, {} answer(s) from the cache",
            s.model, s.base_url, st.requests, st.cached
        );
        for (n, what) in [
            (st.skipped, "skipped"),
            (st.failed, "failed"),
            (st.malformed, "ignored (malformed)"),
        ] {
            if n > 0 {
                let _ = write!(line, ", {n} {what}");
            }
        }
        let _ = write!(
            line,
            "; {} input + {} output tokens{}",
            thousands(st.input_tokens),
            thousands(st.output_tokens),
            st.cost_usd
                .map(|c| format!(", ~${c:.4}"))
                .unwrap_or_default()
        );
        eprintln!("{line}");
        if let Some(why) = &st.stopped {
            crate::output::warning_line(why);
        }
        if st.skipped > 0 {
            eprintln!(
                "  skipped escalations are listed per trace under `judge.escalations` in --format json"
            );
        }
    }

    /// The dry run's plan: text, or one JSON document for every other format.
    pub(crate) fn write_plan(&self, out: &mut dyn Write, json_output: bool) -> io::Result<()> {
        let judge = self.judge.judge();
        let s = judge.settings();
        let st = judge.stats();
        let plan = judge.plan();
        let to_send = plan.iter().filter(|p| p.status == "send").count();
        let cached = plan.iter().filter(|p| p.status == "cached").count();
        let skipped = plan.iter().filter(|p| p.status == "skipped").count();
        let key = match (&s.api_key_env, &s.api_key) {
            (Some(v), Some(_)) => format!("from ${v} (set)"),
            (Some(v), None) => format!("from ${v} (NOT SET: a live run would stop here)"),
            (None, _) => "none (loopback endpoint)".to_owned(),
        };
        if json_output {
            let doc = json!({
                "dry_run": true,
                "endpoint": s.endpoint_url(),
                "model": s.model,
                "api_key_env": s.api_key_env,
                "prompt_version": pisama_judge::PROMPT_VERSION,
                "requests": plan,
                "totals": {
                    "send": to_send, "cached": cached, "skipped": skipped,
                    "estimated_input_tokens": st.input_tokens,
                    "max_output_tokens": st.output_tokens,
                    "estimated_cost_usd": st.cost_usd,
                    "redactions": st.redactions,
                },
            });
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
            return writeln!(out);
        }
        writeln!(out, "pisama judge dry run: nothing was sent.")?;
        writeln!(out, "endpoint  POST {}", s.endpoint_url())?;
        writeln!(out, "model     {}", s.model)?;
        writeln!(out, "key       {key}")?;
        writeln!(
            out,
            "price     {}",
            s.price.map_or_else(
                || "unknown (no cost estimate; set [judge] price_input_per_1k / price_output_per_1k)".to_owned(),
                |p| format!(
                    "${} / ${} per 1k input / output tokens ({})",
                    p.input_per_1k, p.output_per_1k, p.source
                )
            )
        )?;
        writeln!(
            out,
            "budget    {} calls, {} input tokens, {}",
            s.budget.max_calls,
            thousands(s.budget.max_input_tokens),
            s.budget
                .max_cost_usd
                .map_or_else(|| "no cost limit".to_owned(), |c| format!("${c} at most"))
        )?;
        for (n, p) in plan.iter().enumerate() {
            writeln!(
                out,
                "\nrequest {} of {}: {} · {}",
                n + 1,
                plan.len(),
                p.trace,
                p.target
            )?;
            match p.status {
                "send" => {
                    writeln!(
                        out,
                        "  ~{} input tokens, at most {} output tokens{}, {} secret(s) redacted",
                        thousands(p.estimated_input_tokens),
                        p.max_output_tokens,
                        p.estimated_cost_usd
                            .map(|c| format!(", ~${c:.4}"))
                            .unwrap_or_default(),
                        p.redactions
                    )?;
                    serde_json::to_writer_pretty(&mut *out, &p.body).map_err(io::Error::from)?;
                    writeln!(out)?;
                }
                status => writeln!(
                    out,
                    "  {status}: {}",
                    p.detail.as_deref().unwrap_or_default()
                )?,
            }
        }
        writeln!(
            out,
            "\ntotal: {to_send} request(s) would be sent, {cached} answered from the cache, {skipped} skipped; ~{} input tokens, at most {} output tokens{}",
            thousands(st.input_tokens),
            thousands(st.output_tokens),
            st.cost_usd
                .map(|c| format!(", at most ~${c:.4}"))
                .unwrap_or_default()
        )?;
        writeln!(
            out,
            "(input tokens are estimated as characters / 4; the endpoint's count decides the bill)"
        )
    }
}

/// `$XDG_CACHE_HOME/pisama/judge`, else `$HOME/.cache/pisama/judge`.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("pisama").join("judge"))
}

/// The project brain's redaction rules (its deny and allow rules and tag key) when the
/// repository has `.brain/brain.toml`, else the built-in rules.
fn redactor() -> Result<Redactor, Failure> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = pisama_brain::Brain::discover(&cwd);
    let path = root.join(".brain").join("brain.toml");
    if !Path::new(&path).is_file() {
        return Ok(Redactor::new(DEFAULT_REDACTION_KEY, Vec::new(), Vec::new()));
    }
    let config = pisama_brain::config::Config::load(&path)
        .map_err(|e| Failure::input(format!("redaction rules for the judge: {e}")))?;
    config
        .redactor(&path)
        .map_err(|e| Failure::input(format!("redaction rules for the judge: {e}")))
}
