//! `streamcheck list`: the catalog by category, for people (aligned text) and for tools (JSON).

use serde_json::json;

use super::{Category, Drive, catalog};

/// What a scenario needs beyond a running daemon, in words.
fn needs(drive: Drive) -> Option<&'static str> {
    match drive {
        Drive::Unreachable => Some("--daemon-cmd"),
        Drive::SlowReader | Drive::Concurrent { .. } => Some("runs alone"),
        Drive::Single | Drive::SocketType => None,
    }
}

/// The catalog as aligned text: one block per category, one line per scenario.
pub fn list_human() -> String {
    let width = catalog().iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for category in Category::ALL {
        out.push_str(&format!(
            "{} {} — {}\n",
            category.number(),
            category.name(),
            category.summary()
        ));
        for s in catalog().iter().filter(|s| s.category == category) {
            let note = needs(s.drive).map_or(String::new(), |n| format!(" [{n}]"));
            out.push_str(&format!(
                "  {:<5} {:<width$}  {}{note}\n",
                s.id, s.name, s.description
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{} scenarios in {} categories; run some with --category NAME or --scenario NAME|ID\n",
        catalog().len(),
        Category::ALL.len()
    ));
    out
}

/// The catalog as one JSON document:
/// `{"categories":[{"number","name","summary","scenarios":[{"id","name","description",
/// "pattern","exclusive","needs_daemon_cmd"}]}]}`.
pub fn list_json() -> serde_json::Value {
    let categories: Vec<serde_json::Value> = Category::ALL
        .iter()
        .map(|c| {
            let scenarios: Vec<serde_json::Value> = catalog()
                .iter()
                .filter(|s| s.category == *c)
                .map(|s| {
                    json!({
                        "id": s.id,
                        "name": s.name,
                        "description": s.description,
                        "pattern": s.pattern,
                        "exclusive": s.drive.exclusive(),
                        "needs_daemon_cmd": s.drive == Drive::Unreachable,
                    })
                })
                .collect();
            json!({
                "number": c.number(),
                "name": c.name(),
                "summary": c.summary(),
                "scenarios": scenarios,
            })
        })
        .collect();
    json!({ "categories": categories })
}
