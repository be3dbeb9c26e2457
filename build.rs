//! napi's build setup, and the limits and defaults shared with the JavaScript side: they are written
//! once, in data/limits.json, and become Rust constants here (see `crate::limits`).

use std::fmt::Write as _;
use std::path::Path;

const LIMITS: &str = "data/limits.json";

fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-changed={LIMITS}");
    let text = std::fs::read_to_string(LIMITS).expect("data/limits.json is readable");
    let limits: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("data/limits.json is a JSON object");
    let mut out = String::new();
    for (name, value) in &limits {
        let constant = screaming_snake(name);
        let (ty, literal) = match value {
            serde_json::Value::String(s) => ("&str", format!("{s:?}")),
            serde_json::Value::Number(n) if n.is_u64() => ("u64", n.to_string()),
            other => panic!("{LIMITS}: {name} must be a string or a whole number, got {other}"),
        };
        writeln!(out, "pub const {constant}: {ty} = {literal};").unwrap();
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("limits.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

/// `maxEventBytes` -> `MAX_EVENT_BYTES`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
