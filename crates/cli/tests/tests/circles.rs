//! The layering rule of docs/architecture.md, checked on the sources: no crate of the
//! workspace has an import circle among its files.
//!
//! A file *uses* another when it names a path into that file's module: `crate::a::b::Name`,
//! `super::x`, `self::x`, or a grouped `crate::{a::Name, b}` (each item counted). The path's
//! longest prefix that is a module of the crate decides which file; a path into the file's
//! own module or into no module (a crate-root re-export) is no edge. Doc comments count:
//! a link is a dependency a reader follows. `#[cfg(test)] mod ... { }` blocks are skipped
//! (tests may use anything). A circle is a strongly connected set of two or more files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["arch", "mlp"]`; the crate root is `[]`) to its file, for a `src` folder.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// `text` without its `#[cfg(test)] mod name { ... }` blocks.
fn strip_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let is_mod = after.starts_with("mod ") && {
            let head: String = after
                .chars()
                .take_while(|&c| c != ';' && c != '{')
                .collect();
            after[head.len()..].starts_with('{')
        };
        out.push_str(&rest[..at]);
        if !is_mod {
            out.push_str("#[cfg(test)]");
            rest = &rest[at + "#[cfg(test)]".len()..];
            continue;
        }
        let open = at + rest[at..].find('{').unwrap();
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn ident(s: &str) -> &str {
    let n = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..n]
}

/// The paths (segments after the head) that `text` names from `head::` on.
fn paths_after(text: &str, head: &str) -> Vec<(String, Vec<String>)> {
    let pat = format!("{head}::");
    let mut found = Vec::new();
    for (at, _) in text.match_indices(&pat) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at + pat.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let segs: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|s| ident(s.trim()).to_string())
                    .take_while(|s| !s.is_empty())
                    .collect();
                if !segs.is_empty() {
                    found.push((head.to_string(), segs));
                }
            }
            continue;
        }
        let mut segs = Vec::new();
        let mut r = rest;
        loop {
            let id = ident(r);
            if id.is_empty() {
                break;
            }
            segs.push(id.to_string());
            match r[id.len()..].strip_prefix("::") {
                Some(next) => r = next,
                None => break,
            }
        }
        if !segs.is_empty() {
            found.push((head.to_string(), segs));
        }
    }
    found
}

/// Which files each file uses, by module path.
fn edges(mods: &BTreeMap<Vec<String>, PathBuf>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut graph = BTreeMap::new();
    for (me, file) in mods {
        let text = strip_tests(&std::fs::read_to_string(file).unwrap());
        let parent = me[..me.len().saturating_sub(1)].to_vec();
        let mut uses = BTreeSet::new();
        for head in ["crate", "super", "self"] {
            for (_, segs) in paths_after(&text, head) {
                let base: Vec<String> = match head {
                    "crate" => Vec::new(),
                    "super" => parent.clone(),
                    _ => me.clone(),
                };
                let full: Vec<String> = base.into_iter().chain(segs).collect();
                for k in (1..=full.len()).rev() {
                    if mods.contains_key(&full[..k]) {
                        if full[..k] != me[..] {
                            uses.insert(full[..k].to_vec());
                        }
                        break;
                    }
                }
            }
        }
        graph.insert(me.clone(), uses);
    }
    graph
}

/// Strongly connected sets of two or more files (Tarjan).
fn circles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.graph[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.found.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn no_crate_has_an_import_circle_among_its_files() {
    let mut report = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(crates_dir()).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        checked += 1;
        let mods = modules(&src);
        let graph = edges(&mods);
        for circle in circles(&graph) {
            let name = |m: &Vec<String>| mods[m].display().to_string();
            let members: BTreeSet<&Vec<String>> = circle.iter().collect();
            let mut lines = vec![format!("circle in {}:", src.display())];
            for m in &circle {
                for to in graph[m].iter().filter(|t| members.contains(t)) {
                    lines.push(format!("  {} uses {}", name(m), name(to)));
                }
            }
            report.push(lines.join("\n"));
        }
    }
    assert!(checked >= 6, "found only {checked} crates under crates/");
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_circle_finder_finds_a_circle_and_reads_grouped_imports() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("arch")).unwrap();
    let write = |p: &str, t: &str| std::fs::write(src.join(p), t).unwrap();
    write(
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod arch;\n",
    );
    write("a.rs", "use crate::{b::B, c};\n");
    // b's only use of a is in a doc link: it counts.
    write("b.rs", "/// See [`crate::a::A`].\npub struct B;\n");
    // c uses a only in its tests: no edge.
    write(
        "c.rs",
        "pub struct C;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
    );
    write("arch/mod.rs", "mod mlp;\npub struct Net;\n");
    write("arch/mlp.rs", "use super::Net;\nuse crate::c::C;\n");
    let mods = modules(&src);
    let graph = edges(&mods);
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(graph[&v(&["a"])], BTreeSet::from([v(&["b"]), v(&["c"])]));
    assert!(graph[&v(&["c"])].is_empty());
    assert_eq!(
        graph[&v(&["arch", "mlp"])],
        BTreeSet::from([v(&["arch"]), v(&["c"])])
    );
    assert_eq!(circles(&graph), vec![vec![v(&["a"]), v(&["b"])]]);
}
