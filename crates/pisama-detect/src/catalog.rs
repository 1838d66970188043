//! The detector catalogue: one TOML file per detector in `detectors/`, embedded at build time.
//!
//! A file holds the detector's metadata (title, tier, category, MAST mode, TRAIL category,
//! default severity, description, remediation, references), its parameters with defaults, and
//! the calibration that maps its raw score to a confidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::{MastMode, Severity, Tier};

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// A parameter value: a number, a flag, a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Param {
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

/// Parameters of one detector, after overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params(pub BTreeMap<String, Param>);

impl Params {
    /// A number parameter. Detectors read only parameters their TOML declares (a test
    /// enforces it), so a missing one is a catalogue bug; the fallback keeps the run alive.
    pub fn f64(&self, key: &str, fallback: f64) -> f64 {
        match self.0.get(key) {
            Some(Param::Number(n)) => *n,
            _ => fallback,
        }
    }

    pub fn usize(&self, key: &str, fallback: usize) -> usize {
        let v = self.f64(key, fallback as f64);
        if v.is_finite() && v >= 0.0 {
            v as usize
        } else {
            fallback
        }
    }

    pub fn bool(&self, key: &str, fallback: bool) -> bool {
        match self.0.get(key) {
            Some(Param::Bool(b)) => *b,
            _ => fallback,
        }
    }

    pub fn list(&self, key: &str) -> &[String] {
        match self.0.get(key) {
            Some(Param::List(l)) => l,
            _ => &[],
        }
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        match self.0.get(key) {
            Some(Param::Text(t)) => Some(t),
            _ => None,
        }
    }
}

/// A piecewise-linear map from a detector's raw score (0..1) to a calibrated confidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// `[raw, confidence]` points, sorted by raw score.
    #[serde(default)]
    pub points: Vec<[f64; 2]>,
    /// Where the points came from (data set, N, date), for `pisama explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Calibration {
    /// The calibrated confidence for a raw score; without points, the raw score itself.
    pub fn apply(&self, raw: f64) -> f64 {
        let raw = if raw.is_finite() {
            raw.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let pts = &self.points;
        let Some(first) = pts.first() else { return raw };
        if raw <= first[0] {
            return first[1].clamp(0.0, 1.0);
        }
        for pair in pts.windows(2) {
            let ([x0, y0], [x1, y1]) = (pair[0], pair[1]);
            if raw <= x1 {
                let t = if x1 > x0 { (raw - x0) / (x1 - x0) } else { 1.0 };
                return (y0 + t * (y1 - y0)).clamp(0.0, 1.0);
            }
        }
        pts.last().map_or(raw, |p| p[1].clamp(0.0, 1.0))
    }
}

/// Everything a detector's TOML says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorMeta {
    pub id: String,
    pub title: String,
    pub tier: Tier,
    /// Operational category: `loop`, `tool`, `coordination`, `cost`, `security`, `completion`...
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mast: Option<MastMode>,
    /// TRAIL taxonomy category, where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<String>,
    pub severity: Severity,
    pub description: String,
    pub remediation: String,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub params: Params,
    /// What each parameter means.
    #[serde(default)]
    pub param_docs: BTreeMap<String, String>,
    #[serde(default)]
    pub calibration: Calibration,
}

/// A catalogue file that does not parse or does not fit its rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("detectors/{file}: {message}")]
pub struct CatalogError {
    pub file: String,
    pub message: String,
}

/// Parses and checks one catalogue file.
pub fn parse_meta(file: &str, text: &str) -> Result<DetectorMeta, CatalogError> {
    let err = |message: String| CatalogError {
        file: file.to_owned(),
        message,
    };
    let meta: DetectorMeta = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    if format!("{}.toml", meta.id) != file {
        return Err(err(format!(
            "id {:?} does not match the file name",
            meta.id
        )));
    }
    if !meta
        .id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(err(format!("id {:?} must be kebab-case ascii", meta.id)));
    }
    for key in meta.params.0.keys() {
        if !meta.param_docs.contains_key(key) {
            return Err(err(format!(
                "parameter {key:?} has no entry in [param_docs]"
            )));
        }
    }
    let mut last = f64::NEG_INFINITY;
    for p in &meta.calibration.points {
        if !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]) || p[0] < last {
            return Err(err(
                "calibration points must be in 0..1 and sorted by raw score".to_owned(),
            ));
        }
        last = p[0];
    }
    Ok(meta)
}

/// The embedded catalogue, parsed.
pub fn builtin() -> Result<Vec<DetectorMeta>, CatalogError> {
    CATALOGUE
        .iter()
        .map(|(file, text)| parse_meta(file, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_interpolates_and_clamps() {
        let c = Calibration {
            points: vec![[0.0, 0.1], [0.5, 0.3], [1.0, 0.9]],
            source: None,
        };
        assert!((c.apply(0.25) - 0.2).abs() < 1e-9);
        assert!((c.apply(0.75) - 0.6).abs() < 1e-9);
        assert!((c.apply(2.0) - 0.9).abs() < 1e-9);
        assert!((Calibration::default().apply(0.42) - 0.42).abs() < 1e-9);
    }

    #[test]
    fn every_catalogue_file_parses() {
        let metas = builtin().unwrap_or_else(|e| panic!("{e}"));
        assert!(!metas.is_empty());
    }

    #[test]
    fn a_bad_file_names_itself() {
        let e = parse_meta("x.toml", "id = 3").unwrap_err();
        assert!(e.to_string().starts_with("detectors/x.toml:"));
    }
}
