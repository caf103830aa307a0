//! The layout stays true: every `crate::` path in the api's sources points from a higher layer to a lower one
//! (ARCHITECTURE.md), so there is no import cycle between the api's modules. A module is a top-level file or folder
//! of `api/src`; files of one module may use each other freely.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers, lowest first, and the modules in each. Two modules of one layer may not use each other.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("primitives", &["error", "money", "vocabulary", "glossary", "calendar", "observe", "secrets"]),
    ("foundation", &["validation", "db", "pagination", "context", "selection"]),
    ("territory", &["territory"]),
    ("records", &["records"]),
    ("access", &["access"]),
    ("reconciled state", &["reconciled"]),
    ("write kernel", &["kernel"]),
    (
        "capabilities",
        &["auth", "programming", "needs", "school", "campaigns", "audit", "reconciliation", "exchange", "steering"],
    ),
    ("channel support", &["http"]),
    ("file channel", &["files", "demo"]),
    ("pull channel", &["pulls"]),
    ("GraphQL channel", &["graphql"]),
    ("page channel", &["pages"]),
    ("configuration and routes", &["config", "routes"]),
    ("composition", &["app", "lib"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

/// The modules a source text names through `crate::` (in `use` lines, grouped `use crate::{…}` and inline paths),
/// comments left out.
fn used_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::b, c, d::{e, f}}`: the first identifier of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        used.insert(ident(&group[k..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

fn sources(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("api/src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

#[test]
fn every_import_points_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("api/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 40, "the api's sources are found");
    let mut wrong = Vec::new();
    let mut arrows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let module =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        let Some(own) = layer_of(&module) else {
            wrong.push(format!("{}: module `{module}` has no layer in ARCHITECTURE.md", relative.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_modules(&text) {
            if used == module {
                continue;
            }
            arrows.entry(module.clone()).or_default().insert(used.clone());
            match layer_of(&used) {
                None => wrong.push(format!("{}: uses `crate::{used}`, which has no layer", relative.display())),
                Some(target) if target >= own => wrong.push(format!(
                    "{}: `{module}` ({}) uses `crate::{used}` ({}): only lower layers may be used",
                    relative.display(),
                    LAYERS[own].0,
                    LAYERS[target].0
                )),
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering of ARCHITECTURE.md:\n{}", wrong.join("\n"));
    assert!(arrows.values().map(BTreeSet::len).sum::<usize>() > 50, "the imports are read: {arrows:?}");
}

#[test]
fn the_reader_of_imports_sees_grouped_and_inline_paths_and_skips_comments() {
    let text = "use crate::{kernel::write::{Begun, Write}, money, records::MeasureRecord};\n\
                let x = crate::calendar::deadline_end(d); // crate::graphql is mentioned here\n\
                //! see `crate::files`\n";
    let used: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(used, ["calendar", "kernel", "money", "records"]);
}

#[test]
fn architecture_md_lists_the_same_layers() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ARCHITECTURE.md")).unwrap_or_default();
    for (layer, modules) in LAYERS {
        assert!(text.contains(layer), "ARCHITECTURE.md does not name the layer « {layer} »");
        for module in *modules {
            assert!(text.contains(&format!("`{module}`")), "ARCHITECTURE.md does not place the module `{module}`");
        }
    }
}
