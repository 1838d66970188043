//! Scoring detection against labelled data (`pisama eval`): the metrics of the evaluation
//! protocol, each with N and a 95% bootstrap interval.
//!
//! Labels are read here, after detection, and never before: the reports being scored were
//! produced from traces alone.

use serde::Serialize;

use pisama_trace::Labels;

use crate::engine::TraceReport;
use crate::finding::Verdict;

/// Resamples for bootstrap intervals, and the fixed seed that makes them reproducible.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
pub const BOOTSTRAP_SEED: u64 = 0x5EED_2026;

/// A proportion or score with its sample size and 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metric {
    pub value: f64,
    pub n: usize,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Metric {
    /// The mean of 0/1 outcomes, with a percentile bootstrap interval.
    pub fn proportion(outcomes: &[bool]) -> Metric {
        let values: Vec<f64> = outcomes
            .iter()
            .map(|&b| if b { 1.0 } else { 0.0 })
            .collect();
        Metric::bootstrap(&values, mean)
    }

    /// Any statistic of a sample, with a percentile bootstrap interval.
    pub fn bootstrap<T: Clone>(items: &[T], stat: impl Fn(&[T]) -> f64) -> Metric {
        let n = items.len();
        let value = if n == 0 { f64::NAN } else { stat(items) };
        if n == 0 {
            return Metric {
                value,
                n,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
            };
        }
        let mut rng = fastrand::Rng::with_seed(BOOTSTRAP_SEED);
        let mut stats: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
            .map(|_| {
                let sample: Vec<T> = (0..n).map(|_| items[rng.usize(0..n)].clone()).collect();
                stat(&sample)
            })
            .filter(|s| s.is_finite())
            .collect();
        stats.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            if stats.is_empty() {
                f64::NAN
            } else {
                stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)]
            }
        };
        Metric {
            value,
            n,
            ci_low: pick(0.025),
            ci_high: pick(0.975),
        }
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Area under the ROC curve of `scores` for `positives` (Mann–Whitney U, ties count half).
pub fn auroc(scored: &[(f64, bool)]) -> f64 {
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = sorted.iter().filter(|(_, p)| *p).count() as f64;
    let neg = sorted.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0.total_cmp(&sorted[i].0).is_eq() {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_pos += sorted[i..j].iter().filter(|(_, p)| *p).count() as f64 * avg_rank;
        i = j;
    }
    (rank_sum_pos - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

// ---- Who&When ----------------------------------------------------------------------------

/// One Who&When case: the answer and what was predicted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionCase {
    pub source: String,
    pub true_agent: String,
    pub true_step: u32,
    pub predicted_agent: Option<String>,
    pub predicted_step: Option<u32>,
    /// The first speaker (trivial baseline "the first speaker, step 0").
    pub first_speaker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionMetrics {
    pub agent_accuracy: Metric,
    pub step_exact: Metric,
    pub step_within_1: Metric,
    pub step_within_2: Metric,
    pub step_within_5: Metric,
    /// Cases where no attribution was produced (counted as misses above).
    pub unattributed: usize,
    pub baselines: Vec<Baseline>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub name: String,
    pub agent_accuracy: Option<Metric>,
    pub step_exact: Option<Metric>,
}

/// The Who&When answer in a trace's labels, if any.
pub fn who_when_answer(labels: &Labels) -> Option<(String, u32)> {
    labels
        .iter()
        .find(|l| l.source == "who-and-when" && l.step.is_some() && l.agent.is_some())
        .and_then(|l| Some((l.agent.clone()?, l.step?)))
}

pub fn score_attribution(cases: &[AttributionCase]) -> AttributionMetrics {
    let within = |k: u32| -> Vec<bool> {
        cases
            .iter()
            .map(|c| {
                c.predicted_step
                    .is_some_and(|p| p.abs_diff(c.true_step) <= k)
            })
            .collect()
    };
    let agent: Vec<bool> = cases
        .iter()
        .map(|c| c.predicted_agent.as_deref() == Some(c.true_agent.as_str()))
        .collect();
    let most_common_agent = most_common(cases.iter().map(|c| c.true_agent.as_str()));
    let baselines = vec![
        Baseline {
            name: "first speaker, step 0".to_owned(),
            agent_accuracy: Some(Metric::proportion(
                &cases
                    .iter()
                    .map(|c| c.first_speaker.as_deref() == Some(c.true_agent.as_str()))
                    .collect::<Vec<_>>(),
            )),
            step_exact: Some(Metric::proportion(
                &cases.iter().map(|c| c.true_step == 0).collect::<Vec<_>>(),
            )),
        },
        Baseline {
            name: format!(
                "always `{}` (most common answer; uses the labels)",
                most_common_agent.unwrap_or("?")
            ),
            agent_accuracy: Some(Metric::proportion(
                &cases
                    .iter()
                    .map(|c| Some(c.true_agent.as_str()) == most_common_agent)
                    .collect::<Vec<_>>(),
            )),
            step_exact: None,
        },
    ];
    AttributionMetrics {
        agent_accuracy: Metric::proportion(&agent),
        step_exact: Metric::proportion(&within(0)),
        step_within_1: Metric::proportion(&within(1)),
        step_within_2: Metric::proportion(&within(2)),
        step_within_5: Metric::proportion(&within(5)),
        unattributed: cases
            .iter()
            .filter(|c| c.predicted_step.is_none() && c.predicted_agent.is_none())
            .count(),
        baselines,
    }
}

fn most_common<'a>(items: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for i in items {
        *counts.entry(i).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| k)
}

// ---- trace-level verdicts (tau-bench) -------------------------------------------------------

/// One run: whether it really failed, and what detection said.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VerdictCase {
    pub failed: bool,
    pub verdict: Verdict,
    pub score: f64,
    /// The highest severity among its findings is high or critical.
    pub severe_finding: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictMetrics {
    pub precision: Metric,
    pub recall: Metric,
    pub f1: Metric,
    /// Share of successful runs given a `fail` verdict.
    pub false_positive_rate: Metric,
    /// Share of successful runs with a high or critical finding.
    pub severe_on_successful: Metric,
    pub auroc: Metric,
    pub failed_runs: usize,
    pub successful_runs: usize,
    pub unsure: usize,
    pub baselines: Vec<VerdictBaseline>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictBaseline {
    pub name: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub false_positive_rate: f64,
}

fn prf(cases: &[VerdictCase], flag: impl Fn(&VerdictCase) -> bool) -> (f64, f64, f64, f64) {
    let tp = cases.iter().filter(|c| c.failed && flag(c)).count() as f64;
    let fp = cases.iter().filter(|c| !c.failed && flag(c)).count() as f64;
    let fneg = cases.iter().filter(|c| c.failed && !flag(c)).count() as f64;
    let negatives = cases.iter().filter(|c| !c.failed).count() as f64;
    let precision = if tp + fp > 0.0 {
        tp / (tp + fp)
    } else {
        f64::NAN
    };
    let recall = if tp + fneg > 0.0 {
        tp / (tp + fneg)
    } else {
        f64::NAN
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let fpr = if negatives > 0.0 {
        fp / negatives
    } else {
        f64::NAN
    };
    (precision, recall, f1, fpr)
}

pub fn score_verdicts(cases: &[VerdictCase]) -> VerdictMetrics {
    let flagged = |c: &VerdictCase| c.verdict == Verdict::Fail;
    let successful: Vec<VerdictCase> = cases.iter().copied().filter(|c| !c.failed).collect();
    let all_flag = prf(cases, |_| true);
    let unsure_flag = prf(cases, |c| c.verdict != Verdict::Pass);
    VerdictMetrics {
        precision: Metric::bootstrap(cases, |s| prf(s, flagged).0),
        recall: Metric::bootstrap(cases, |s| prf(s, flagged).1),
        f1: Metric::bootstrap(cases, |s| prf(s, flagged).2),
        false_positive_rate: Metric::proportion(
            &successful.iter().map(flagged).collect::<Vec<_>>(),
        ),
        severe_on_successful: Metric::proportion(
            &successful
                .iter()
                .map(|c| c.severe_finding)
                .collect::<Vec<_>>(),
        ),
        auroc: Metric::bootstrap(cases, |s| {
            auroc(&s.iter().map(|c| (c.score, c.failed)).collect::<Vec<_>>())
        }),
        failed_runs: cases.iter().filter(|c| c.failed).count(),
        successful_runs: successful.len(),
        unsure: cases
            .iter()
            .filter(|c| c.verdict == Verdict::Unsure)
            .count(),
        baselines: vec![
            VerdictBaseline {
                name: "flag every run".to_owned(),
                precision: all_flag.0,
                recall: all_flag.1,
                f1: all_flag.2,
                false_positive_rate: all_flag.3,
            },
            VerdictBaseline {
                name: "ours, counting unsure as fail".to_owned(),
                precision: unsure_flag.0,
                recall: unsure_flag.1,
                f1: unsure_flag.2,
                false_positive_rate: unsure_flag.3,
            },
        ],
    }
}

/// Builds a verdict case from a report and a run's success label (tau-bench `reward`).
pub fn verdict_case(report: &TraceReport, failed: bool) -> VerdictCase {
    VerdictCase {
        failed,
        verdict: report.verdict,
        score: report.score,
        severe_finding: report
            .findings
            .iter()
            .any(|f| f.severity >= crate::finding::Severity::High),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_perfect_and_random_scores() {
        assert!(
            (auroc(&[(0.1, false), (0.2, false), (0.8, true), (0.9, true)]) - 1.0).abs() < 1e-9
        );
        assert!((auroc(&[(0.5, false), (0.5, true)]) - 0.5).abs() < 1e-9);
        assert!((auroc(&[(0.9, false), (0.1, true)])).abs() < 1e-9);
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_value() {
        let outcomes: Vec<bool> = (0..100).map(|i| i % 3 == 0).collect();
        let a = Metric::proportion(&outcomes);
        let b = Metric::proportion(&outcomes);
        assert_eq!(a, b);
        assert!(a.ci_low <= a.value && a.value <= a.ci_high);
        assert_eq!(a.n, 100);
    }

    #[test]
    fn exact_step_is_integer_equality() {
        // The upstream scorer compared strings by substring, so "10" matched "1". Not here.
        let case = AttributionCase {
            source: "x".into(),
            true_agent: "A".into(),
            true_step: 1,
            predicted_agent: Some("A".into()),
            predicted_step: Some(10),
            first_speaker: None,
        };
        let m = score_attribution(&[case]);
        assert!(m.step_exact.value.abs() < 1e-9);
        assert!((m.agent_accuracy.value - 1.0).abs() < 1e-9);
    }
}

// ---- calibration -----------------------------------------------------------------------------

/// Fits a monotone map from a detector's raw score to the probability that a run it fires on
/// failed: scores are pooled into at most `bins` groups of equal size, each group's failure
/// rate is smoothed with a Beta(1, 1) prior, and adjacent groups that break monotonicity are
/// merged (pool-adjacent-violators). Returns `[raw, probability]` points, or nothing when
/// there are fewer than `min_n` observations.
pub fn fit_calibration(observations: &[(f64, bool)], bins: usize, min_n: usize) -> Vec<[f64; 2]> {
    if observations.len() < min_n.max(1) || bins == 0 {
        return Vec::new();
    }
    let mut sorted: Vec<(f64, bool)> = observations
        .iter()
        .map(|&(s, y)| (s.clamp(0.0, 1.0), y))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let per_bin = sorted.len().div_ceil(bins);
    // (sum of scores, failures, count) per pooled block.
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for chunk in sorted.chunks(per_bin) {
        let score: f64 = chunk.iter().map(|c| c.0).sum();
        let fails = chunk.iter().filter(|c| c.1).count() as f64;
        blocks.push((score, fails, chunk.len() as f64));
        while blocks.len() >= 2 {
            let n = blocks.len();
            let rate = |b: &(f64, f64, f64)| (b.1 + 1.0) / (b.2 + 2.0);
            if rate(&blocks[n - 2]) <= rate(&blocks[n - 1]) {
                break;
            }
            let last = blocks.pop().unwrap_or_default();
            if let Some(prev) = blocks.last_mut() {
                prev.0 += last.0;
                prev.1 += last.1;
                prev.2 += last.2;
            }
        }
    }
    let mut points: Vec<[f64; 2]> = blocks
        .iter()
        .map(|b| {
            [
                crate::engine::round3(b.0 / b.2),
                crate::engine::round3((b.1 + 1.0) / (b.2 + 2.0)),
            ]
        })
        .collect();
    points.dedup_by(|a, b| (a[0] - b[0]).abs() < 1e-9);
    points
}

#[cfg(test)]
mod calibration_tests {
    use super::*;

    #[test]
    fn fitted_points_are_monotone_and_smoothed() {
        let mut obs = Vec::new();
        for i in 0..100 {
            let s = f64::from(i) / 100.0;
            obs.push((s, i % 10 < (i / 10)));
        }
        let pts = fit_calibration(&obs, 5, 10);
        assert!(!pts.is_empty());
        assert!(
            pts.windows(2)
                .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1])
        );
        assert!(pts.iter().all(|p| p[1] > 0.0 && p[1] < 1.0));
        assert!(fit_calibration(&obs[..3], 5, 10).is_empty());
    }
}
