//! `pisama convert`: the canonical model as a bridge between ecosystems.

use std::io::{self, Write};

use pisama_trace::export::{Target, export};

use crate::args::{ConvertArgs, ConvertTarget};
use crate::output;
use crate::{Exit, Failure};

pub(crate) fn run(args: &ConvertArgs) -> Result<Exit, Failure> {
    let target = match args.to {
        ConvertTarget::Otlp => Target::Otlp,
        ConvertTarget::Atif => Target::Atif,
        ConvertTarget::Pisama => Target::Pisama,
    };
    let mut docs = Vec::new();
    let report = output::load_inputs(&args.input, &mut |t| docs.push(export(&t, target)))?;
    for (path, reason) in &report.skipped {
        output::warning_line(&format!("skipped {path}: {reason}"));
    }
    if !report.failed.is_empty() {
        for e in &report.failed {
            output::error_line(&e.to_string());
        }
        // Nothing is written when an input failed: a partial conversion would look complete.
        return Err(Failure {
            exit: Exit::Input,
            message: format!(
                "{} input(s) could not be read; nothing written",
                report.failed.len()
            ),
        });
    }
    for file in &report.files {
        for w in &file.warnings {
            output::warning_line(&format!("{}: {w}", file.path));
        }
    }
    let mut bytes = Vec::new();
    if docs.len() == 1 && !args.jsonl {
        serde_json::to_writer_pretty(&mut bytes, &docs[0]).map_err(io::Error::from)?;
        bytes.push(b'\n');
    } else {
        for doc in &docs {
            serde_json::to_writer(&mut bytes, doc).map_err(io::Error::from)?;
            bytes.push(b'\n');
        }
    }
    if let Some(path) = &args.output {
        output::write_atomic(path, &bytes).map_err(|e| Failure {
            exit: Exit::Input,
            message: format!("{}: cannot write: {e}", path.display()),
        })?;
    } else {
        let mut out = io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()?;
    }
    Ok(Exit::Ok)
}
