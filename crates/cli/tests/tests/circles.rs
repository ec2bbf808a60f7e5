//! The layering rule of docs/architecture.md, checked on the sources: no crate of the
//! workspace has an import circle among its files.
//!
//! A file *uses* another when it names a path into that file's module: `crate::a::b::Name`,
//! `super::x`, `self::x`, `super::*`, or a grouped `crate::{a::{B, C}, d}` (each item
//! counted). The path's longest prefix that is a module of the crate decides which file; a
//! name the crate root re-exports (`crate::Name` for `pub use a::Name` in `lib.rs`) is the
//! re-exporting module's. A path into the file's own module is no edge. Doc comments
//! count: a link is a dependency a reader follows. `#[cfg(test)] mod ... { }` blocks are
//! skipped (tests may use anything). A circle is a strongly connected set of two or more
//! files.

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

/// The paths of a use tree that starts at `s` (just after `head::`): `a::b::C` one path,
/// `{a::B, c::{D, E}}` one per leaf, `*` (or anything not a path) the empty path. Returns
/// the paths and the bytes read.
fn use_tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut at = 0;
    loop {
        at += s[at..].len() - s[at..].trim_start().len();
        if s[at..].starts_with('{') {
            at += 1;
            let mut out = Vec::new();
            loop {
                at += s[at..].len() - s[at..].trim_start().len();
                if s[at..].starts_with('}') {
                    at += 1;
                    break;
                }
                let (paths, n) = use_tree(&s[at..]);
                if n == 0 {
                    break; // not a use tree (a brace in prose)
                }
                out.extend(
                    paths
                        .into_iter()
                        .map(|p| prefix.iter().cloned().chain(p).collect()),
                );
                at += n;
                at += s[at..].len() - s[at..].trim_start().len();
                if s[at..].starts_with(',') {
                    at += 1;
                }
            }
            return (out, at);
        }
        let id = ident(&s[at..]);
        if id.is_empty() {
            return (vec![prefix], at);
        }
        prefix.push(id.to_string());
        at += id.len();
        if !s[at..].starts_with("::") {
            return (vec![prefix], at);
        }
        at += 2;
    }
}

/// The paths (segments after the head) that `text` names from `head::` on, and `head`
/// alone (`super::*` names the parent).
fn paths_after(text: &str, head: &str) -> Vec<Vec<String>> {
    let pat = format!("{head}::");
    let mut found = Vec::new();
    for (at, _) in text.match_indices(&pat) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        found.extend(use_tree(&text[at + pat.len()..]).0);
    }
    found
}

/// The names the crate root re-exports (`pub use a::b::Name;`, `pub use a::{B, C as D};`),
/// with the path each stands for.
fn root_exports(mods: &BTreeMap<Vec<String>, PathBuf>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(root) = mods.get(&Vec::new()) else {
        return out;
    };
    let text = std::fs::read_to_string(root).unwrap();
    for (at, _) in text.match_indices("pub use ") {
        let (paths, _) = use_tree(&text[at + "pub use ".len()..]);
        let tail = &text[at..];
        for p in paths {
            let Some(last) = p.last() else { continue };
            // `X as Y` exports Y.
            let alias = tail
                .split(';')
                .next()
                .and_then(|stmt| stmt.split(&format!("{last} as ")).nth(1))
                .map(|rest| ident(rest.trim_start()).to_string());
            out.insert(alias.unwrap_or_else(|| last.clone()), p.clone());
        }
    }
    out
}

/// Which files each file uses, by module path.
fn edges(mods: &BTreeMap<Vec<String>, PathBuf>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let exports = root_exports(mods);
    let mut graph = BTreeMap::new();
    for (me, file) in mods {
        let text = strip_tests(&std::fs::read_to_string(file).unwrap());
        let parent = me[..me.len().saturating_sub(1)].to_vec();
        let mut uses = BTreeSet::new();
        for head in ["crate", "super", "self"] {
            for segs in paths_after(&text, head) {
                let base: Vec<String> = match head {
                    "crate" => Vec::new(),
                    "super" => parent.clone(),
                    _ => me.clone(),
                };
                let mut full: Vec<String> = base.into_iter().chain(segs).collect();
                // A crate-root re-export stands for the path it exports.
                if let Some(target) = full
                    .first()
                    .filter(|_| head == "crate" || (head == "super" && parent.is_empty()))
                    .filter(|first| !mods.contains_key(&vec![first.to_string()]))
                    .and_then(|first| exports.get(first))
                {
                    full = target
                        .iter()
                        .cloned()
                        .chain(full.into_iter().skip(1))
                        .collect();
                }
                // The longest prefix that is a module (`super::*`: the parent itself); the
                // crate root is no edge (it declares every module and uses none by path).
                let module = (1..=full.len())
                    .rev()
                    .map(|k| &full[..k])
                    .find(|p| mods.contains_key(*p));
                if let Some(m) = module.filter(|m| **m != me[..]) {
                    uses.insert(m.to_vec());
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
    let mut uses = 0;
    for entry in std::fs::read_dir(crates_dir()).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        checked += 1;
        let mods = modules(&src);
        let graph = edges(&mods);
        uses += graph.values().map(BTreeSet::len).sum::<usize>();
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
    // The workspace's files use each other hundreds of times: a finder that sees few uses
    // is broken, not a proof of no circles.
    assert!(uses > 200, "only {uses} uses between files found");
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
        "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod arch;\npub use c::{C as Renamed, Other};\n",
    );
    write("a.rs", "use crate::{b::{B, Bee}, c};\n");
    // b's only use of a is in a doc link: it counts.
    write("b.rs", "/// See [`crate::a::A`].\npub struct B;\n");
    // c uses a only in its tests: no edge.
    write(
        "c.rs",
        "pub struct C;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
    );
    // d names c only through the crate root's re-export.
    write("d.rs", "/// Like [`crate::Renamed`].\npub struct D;\n");
    write("arch/mod.rs", "mod mlp;\npub struct Net;\n");
    write("arch/mlp.rs", "use super::*;\nuse crate::c::C;\n");
    let mods = modules(&src);
    let graph = edges(&mods);
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(graph[&v(&["a"])], BTreeSet::from([v(&["b"]), v(&["c"])]));
    assert!(graph[&v(&["c"])].is_empty());
    assert_eq!(graph[&v(&["d"])], BTreeSet::from([v(&["c"])]));
    assert_eq!(
        graph[&v(&["arch", "mlp"])],
        BTreeSet::from([v(&["arch"]), v(&["c"])])
    );
    assert_eq!(circles(&graph), vec![vec![v(&["a"]), v(&["b"])]]);
}
