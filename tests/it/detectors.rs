//! Detector fixtures: every detector has positive cases (it must fire) and negative cases (it
//! must stay quiet) in `fixtures/detectors/<id>/`, and its findings on the positive cases are
//! snapshots (`tests/it/snapshots/`), so a behaviour change is a reviewed diff.

use std::path::Path;

use pisama_detect::{Engine, EngineConfig};
use pisama_trace::load::{LoadOptions, load_all};

use crate::support::{files_under, root};

fn engine_for(id: &str) -> Engine {
    Engine::new(&EngineConfig {
        only: vec![id.to_owned()],
        ..EngineConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn run(id: &str, file: &Path) -> Vec<pisama_detect::Finding> {
    let (_, traces) = load_all(file, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let engine = engine_for(id);
    traces
        .iter()
        .flat_map(|t| engine.run(&t.trace).findings)
        .filter(|f| f.detector == id || f.merged.iter().any(|m| m == id))
        .collect()
}

#[test]
fn every_detector_has_positive_and_negative_fixtures_and_they_hold() {
    let engine = Engine::new(&EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let dir = root().join("fixtures/detectors");
    let mut failures = Vec::new();
    for id in engine.ids() {
        let base = dir.join(id);
        for (kind, must_fire) in [("positive", true), ("negative", false)] {
            let cases = if base.join(kind).is_dir() {
                files_under(&base.join(kind))
            } else {
                Vec::new()
            };
            if cases.is_empty() {
                failures.push(format!(
                    "{id}: no {kind} fixture in fixtures/detectors/{id}/{kind}/"
                ));
            }
            for case in cases {
                let findings = run(id, &case);
                let name = case
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("case")
                    .replace('.', "_");
                if must_fire {
                    if findings.is_empty() {
                        failures.push(format!("{id}: did not fire on {}", case.display()));
                        continue;
                    }
                    insta::with_settings!({ snapshot_path => root().join("tests/it/snapshots"), prepend_module_to_snapshot => false }, {
                        insta::assert_json_snapshot!(format!("{id}__{name}"), findings);
                    });
                } else if !findings.is_empty() {
                    failures.push(format!(
                        "{id}: fired on negative {}: {}",
                        case.display(),
                        findings[0].summary
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn catalogue_and_implementations_match() {
    // Engine::new fails on a catalogue file without an implementation; this checks the other
    // direction and that every detector is documented.
    let engine = Engine::new(&EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    for meta in engine.metas() {
        assert!(
            !meta.description.trim().is_empty(),
            "{}: empty description",
            meta.id
        );
        assert!(
            !meta.remediation.trim().is_empty(),
            "{}: empty remediation",
            meta.id
        );
    }
    assert_eq!(engine.ids().len(), pisama_detect::detectors::all().len());
}

#[test]
fn labels_do_not_reach_detectors() {
    // The same Who&When case with its answers removed or changed gives identical findings.
    let src = std::fs::read_to_string(
        root().join("fixtures/traces/who-and-when/algorithm-generated.json"),
    )
    .unwrap();
    let mut altered: serde_json::Value = serde_json::from_str(&src).unwrap();
    altered["mistake_agent"] = "Verification_Expert".into();
    altered["mistake_step"] = "5".into();
    let mut removed = altered.clone();
    for key in [
        "mistake_agent",
        "mistake_step",
        "mistake_reason",
        "ground_truth",
        "is_correct",
    ] {
        removed.as_object_mut().unwrap().remove(key);
    }
    removed["history"] = altered["history"].clone();
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let report = |text: &str| {
        let (_, traces) =
            pisama_trace::load::load_bytes("case.json", text.as_bytes(), &LoadOptions::default())
                .unwrap();
        serde_json::to_value(engine.run(&traces[0].trace)).unwrap()
    };
    let a = report(&src);
    assert_eq!(a, report(&altered.to_string()));
    // Without the answer keys the file is generic chat (`history`), so compare findings only.
    let c = report(&removed.to_string());
    assert_eq!(a["findings"], c["findings"]);
}
