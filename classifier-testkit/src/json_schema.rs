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
    crate::workspace()
        .join("docs/json")
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
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
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

/// Each (schema, what printed it, document) satisfies its schema, and the schema refuses the
/// document with one field renamed: a schema that let that pass would let a field renamed in
/// the code pass unnoticed.
pub fn assert_conform(cases: &[(&str, &str, &Value)]) {
    let as_printed: Vec<(&str, &Value)> = cases.iter().map(|(s, _, d)| (*s, *d)).collect();
    let failures: Vec<String> = cases
        .iter()
        .zip(violations(&as_printed))
        .filter(|(_, found)| !found.is_empty())
        .map(|((schema, what, _), found)| format!("`{what}` vs {schema}: {found:?}"))
        .collect();
    assert!(
        failures.is_empty(),
        "output drifted from docs/json/:\n{}",
        failures.join("\n")
    );
    let drifted: Vec<Value> = cases.iter().map(|(_, _, d)| renamed(d)).collect();
    let drifted: Vec<(&str, &Value)> = cases.iter().zip(&drifted).map(|(c, d)| (c.0, d)).collect();
    for ((schema, what, _), found) in cases.iter().zip(violations(&drifted)) {
        assert!(
            !found.is_empty(),
            "{schema}.schema.json accepts `{what}`'s output with a field renamed"
        );
    }
}

/// The document with one key renamed: the first key of the object reached by following
/// first keys (and first items of arrays) down as far as objects go, so that the schemas of
/// nested objects are tried too.
pub fn renamed(document: &Value) -> Value {
    fn descend(value: &mut Value) -> bool {
        let object = match value {
            Value::Array(items) => return items.first_mut().is_some_and(descend),
            Value::Object(object) => object,
            _ => return false,
        };
        let Some(key) = object.keys().next().cloned() else {
            return false;
        };
        if descend(object.get_mut(&key).unwrap()) {
            return true;
        }
        let value = object.remove(&key).unwrap();
        object.insert(format!("{key}_renamed"), value);
        true
    }
    let mut copy = document.clone();
    assert!(descend(&mut copy), "nothing to rename in {document}");
    copy
}
