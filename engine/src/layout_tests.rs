//! The engine's modules import each other in one direction: no circles. Read from the
//! sources, `crate::` paths outside comments and test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`statements::check`) to the `crate::` paths its code names.
fn modules(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("source folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).expect("under the root");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            if parts.last().is_some_and(|p| p.ends_with("tests")) {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("source file");
            // Test modules may use anything.
            let code = source.split("#[cfg(test)]").next().unwrap_or_default();
            let mut named = BTreeSet::new();
            for line in code.lines() {
                let line = line.split("//").next().unwrap_or_default();
                for (at, _) in line.match_indices("crate::") {
                    let path: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    named.insert(path.trim_end_matches(':').to_string());
                }
            }
            out.insert(parts.join("::"), named);
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module.
fn module_of<'a>(path: &str, modules: &'a BTreeMap<String, BTreeSet<String>>) -> Option<&'a str> {
    let mut parts: Vec<&str> = path.split("::").collect();
    while !parts.is_empty() {
        let candidate = parts.join("::");
        if let Some((name, _)) = modules.get_key_value(&candidate) {
            return Some(name.as_str());
        }
        parts.pop();
    }
    None
}

#[test]
fn no_module_imports_itself_round_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&root);
    assert!(
        modules.contains_key("statements::check"),
        "{:?}",
        modules.keys()
    );
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, named) in &modules {
        for path in named {
            let Some(target) = module_of(path, &modules) else {
                continue;
            };
            let nested = |a: &str, b: &str| a.starts_with(&format!("{b}::")) || b.is_empty();
            if target != module && !nested(module, target) && !nested(target, module) {
                edges.entry(module).or_default().insert(target);
            }
        }
    }
    // A module in a circle reaches itself.
    let mut circles = vec![];
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = edges[start].iter().copied().collect();
        while let Some(next) = todo.pop() {
            if next == *start {
                circles.push(*start);
                break;
            }
            if seen.insert(next) {
                todo.extend(edges.get(next).into_iter().flatten().copied());
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import themselves round a circle: {circles:?}"
    );
}
