//! Checking documents against the JSON Schemas in `docs/json/`, with Debian's
//! python3-jsonschema (draft 2020-12): no validator of our own that could agree with our own
//! mistakes, and nothing to compile. `/usr/bin/python3` by name: it is the Python that Debian's
//! package installs into, whatever else is first on PATH.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";

/// Reads [{"schema": PATH, "document": ...}] on stdin and prints, for each, the list of its
/// violations (empty: valid). A schema that is not itself valid draft 2020-12 is an error.
const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
out = []
for case in json.load(sys.stdin):
    with open(case["schema"]) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    out.append(["/".join(map(str, e.absolute_path)) + ": " + e.message
                for e in validator.iter_errors(case["document"])])
json.dump(out, sys.stdout)
"#;

/// `docs/json/NAME.schema.json`.
pub fn schema_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/json")
        .join(format!("{name}.schema.json"))
}

pub fn schema(name: &str) -> Value {
    let path = schema_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (every JSON output has a schema)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The violations of each (schema name, document), in order, from one run of the validator.
pub fn violations(cases: &[(&str, &Value)]) -> Vec<Vec<String>> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(name, document)| {
            let path = schema_path(name);
            assert!(path.exists(), "no schema {}", path.display());
            json!({"schema": path, "document": document})
        })
        .collect();
    let mut python = Command::new(PYTHON)
        .args(["-c", VALIDATE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}: install python3 and python3-jsonschema"));
    python
        .stdin
        .take()
        .unwrap()
        .write_all(input_text(&input).as_bytes())
        .expect("writing to the validator");
    let output = python.wait_with_output().expect("running the validator");
    assert!(
        output.status.success(),
        "the JSON Schema validator failed (python3-jsonschema missing? `cargo xtask setup` \
         installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the validator's answer")
}

fn input_text(input: &[Value]) -> String {
    serde_json::to_string(input).expect("documents serialize")
}
