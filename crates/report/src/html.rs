//! `report.html`: a folder's report as one page that works offline, for people to explore
//! in a browser. The page is the folder's `report.md` rendered to HTML (the same outcomes,
//! verdicts, theory agreement and tables), its figures inlined (SVG where the folder has
//! one, else the PNG as a data URI), every table sortable, and, for an experiment's folder,
//! one interactive chart per charted statistic with filters over the configurations' keys.
//! The style sheet and the script are inlined from `assets/`; nothing is fetched.
//!
//! Not the Markdown (`report.rs` and the studies write it; Markdown stays for reviews and
//! papers) nor the static charts (`charts.rs`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use base64::Engine;
use pulldown_cmark::{Event, Options, Parser};
use serde_json::{Value, json};
use sigprop_spec::RunnerError;
use sigprop_spec::format::slug;

use crate::outcome::Tables;
use crate::output::write_atomic;
use crate::rows::{AggRow, ConfigKey};
use crate::statistics::{Axis, charted};
use crate::summary::primary_site;
use crate::verdict::rank;

const STYLE: &str = include_str!("../assets/report.css");
const SCRIPT: &str = include_str!("../assets/report.js");

/// The name of the page in a folder.
pub const REPORT_HTML: &str = "report.html";

/// Write `dir/report.html` from `markdown` (the folder's `report.md`), with `tables` for
/// an experiment's folder (its interactive charts and filters).
pub fn write_html(
    dir: &Path,
    title: &str,
    markdown: &str,
    tables: Option<&Tables>,
) -> Result<(), RunnerError> {
    write_atomic(
        &dir.join(REPORT_HTML),
        page(title, markdown, dir, tables).as_bytes(),
    )
}

/// The page: `markdown` rendered, its images inlined from `dir`, and with `tables` the
/// data of the interactive charts, the configurations tagged in the ranking table and the
/// outcomes, and each verdict linked to its configuration's view.
pub fn page(title: &str, markdown: &str, dir: &Path, tables: Option<&Tables>) -> String {
    let explore = tables.filter(|t| !t.summaries.is_empty());
    let mut body = String::new();
    // The reports write no HTML: any in a description, label or verdict is text to show.
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        e => e,
    });
    pulldown_cmark::html::push_html(&mut body, events);
    let drawn: BTreeSet<String> = explore.map(interactive_stems).unwrap_or_default();
    let mut body = inline_images(&body, dir, &drawn);
    let mut data = String::new();
    if let Some(t) = explore {
        let order: Vec<usize> = rank(&t.summaries)
            .into_iter()
            .map(|(_, (k, _))| k.config)
            .collect();
        body = tag_section(&body, "Outcomes", "<li>", &order, |k| {
            format!("<li data-config=\"{k}\">")
        });
        body = tag_ranking(&body, &order);
        body = body.replacen(
            "<h2>Outcomes</h2>",
            "<div id=\"explore-here\"></div>\n<h2>Outcomes</h2>",
            1,
        );
        // No `<` inside the script element (`</script>` or `<!--` would end or derail
        // it): JSON writes it as an escape.
        data = format!(
            "<script type=\"application/json\" id=\"sigprop-data\">{}</script>\n\
             <noscript><p>The interactive charts need JavaScript; the charts as PNG and SVG \
             files are next to this page.</p></noscript>\n",
            explore_data(t).to_string().replace('<', "\\u003c")
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}{data}\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        escape(title)
    )
}

/// `s` with `&`, `<`, `>` and `"` escaped for HTML text and attributes.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart files the interactive charts draw again: each charted statistic's, whole or
/// per activation (`charts.rs` names them `<stat>` and `<stat>_<activation>`).
fn interactive_stems(t: &Tables) -> BTreeSet<String> {
    let acts: BTreeSet<String> = t
        .summaries
        .iter()
        .map(|(k, _)| slug(&k.activation))
        .collect();
    let mut out = BTreeSet::new();
    for (s, _) in charted() {
        out.insert(s.name.to_string());
        for a in &acts {
            out.insert(format!("{}_{a}", s.name));
        }
    }
    out
}

/// `html` with each `<img src="F" alt="A" />` of a file in `dir` replaced by the figure
/// inline (dropped where its stem is in `drawn`: the page draws it interactively).
fn inline_images(html: &str, dir: &Path, drawn: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find("<img src=\"") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find("/>").map(|e| e + 2) else {
            out.push_str(tail);
            return out;
        };
        let tag = &tail[..end];
        rest = &tail[end..];
        let attr = |name: &str| -> String {
            let key = format!("{name}=\"");
            tag.find(&key)
                .map(|i| {
                    let v = &tag[i + key.len()..];
                    v[..v.find('"').unwrap_or(v.len())].to_string()
                })
                .unwrap_or_default()
        };
        let (src, alt) = (unescape_url(&attr("src")), attr("alt"));
        let path = dir.join(&src);
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !src.contains('/') && drawn.contains(stem) {
            continue;
        }
        let svg = path.with_extension("svg");
        let figure = match std::fs::read_to_string(&svg) {
            Ok(text) => {
                let start = text.find("<svg").unwrap_or(0);
                text[start..].to_string()
            }
            Err(_) => match std::fs::read(&path) {
                Ok(bytes) => format!(
                    "<img alt=\"{alt}\" src=\"data:image/png;base64,{}\">",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ),
                Err(_) => format!("<p>(missing figure: {})</p>", escape(&src)),
            },
        };
        out.push_str(&format!(
            "<figure>{figure}<figcaption>{alt}</figcaption></figure>"
        ));
    }
    out.push_str(rest);
    // A figure is a block: not inside the paragraph Markdown put the image in.
    out.replace("<p><figure>", "<figure>")
        .replace("</figure></p>", "</figure>")
        .replace("<p></p>\n", "")
}

/// A link target as the file name it was written from: `&amp;` and `%XX` undone.
fn unescape_url(s: &str) -> String {
    let s = s.replace("&amp;", "&");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `html` with the first `order.len()` occurrences of `open` after the `<h2>` titled
/// `heading` replaced by `tag(order[i])`.
fn tag_section(
    html: &str,
    heading: &str,
    open: &str,
    order: &[usize],
    tag: impl Fn(usize) -> String,
) -> String {
    let h = format!("<h2>{heading}</h2>");
    let Some(at) = html.find(&h) else {
        return html.to_string();
    };
    let (head, mut rest) = html.split_at(at);
    let mut out = head.to_string();
    for &k in order {
        let Some(j) = rest.find(open) else { break };
        out.push_str(&rest[..j]);
        out.push_str(&tag(k));
        rest = &rest[j + open.len()..];
    }
    out.push_str(rest);
    out
}

/// The ranking table's body rows tagged with their configuration (in rank order, as
/// `report.md` writes them), each verdict cell a link to that configuration's view.
fn tag_ranking(html: &str, order: &[usize]) -> String {
    let h = "<h2>Ranked by stability</h2>";
    let Some(at) = html.find(h) else {
        return html.to_string();
    };
    let Some(table_end) = html[at..].find("</table>").map(|e| at + e) else {
        return html.to_string();
    };
    let section = &html[at..table_end];
    // Header cells are `<th>` or `<th style=...>` (not `<thead>`).
    let verdict_col = section.find("</thead>").and_then(|e| {
        section[..e]
            .split("<th")
            .skip(1)
            .filter(|c| c.starts_with('>') || c.starts_with(' '))
            .position(|c| c.contains(">verdict</th>"))
    });
    let Some(body_at) = section.find("<tbody>") else {
        return html.to_string();
    };
    let mut out = html[..at].to_string();
    out.push_str(&section[..body_at]);
    let mut rest = &section[body_at..];
    for &k in order {
        let Some(j) = rest.find("<tr>") else { break };
        out.push_str(&rest[..j]);
        rest = &rest[j + 4..];
        let end = rest.find("</tr>").unwrap_or(rest.len());
        let mut row = rest[..end].to_string();
        rest = &rest[end..];
        if let Some(col) = verdict_col {
            row = link_cell(&row, col, &format!("#config-{k}"));
        }
        out.push_str(&format!("<tr data-config=\"{k}\" id=\"rank-{k}\">{row}"));
    }
    out.push_str(rest);
    out.push_str(&html[table_end..]);
    out
}

/// `row` with the content of its cell `col` (0-based) wrapped in a link to `href`.
fn link_cell(row: &str, col: usize, href: &str) -> String {
    let mut out = String::new();
    let mut rest = row;
    for i in 0.. {
        let Some(j) = rest.find("<td") else { break };
        let Some(gt) = rest[j..].find('>').map(|g| j + g + 1) else {
            break;
        };
        let Some(close) = rest[gt..].find("</td>").map(|c| gt + c) else {
            break;
        };
        out.push_str(&rest[..gt]);
        if i == col {
            out.push_str(&format!("<a href=\"{href}\">{}</a>", &rest[gt..close]));
        } else {
            out.push_str(&rest[gt..close]);
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// `x` to 4 significant digits (the page's charts need no more), `null` where not finite.
fn compact(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    format!("{x:.3e}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The keys a configuration is filtered by, as `ConfigKey` names them.
fn key_values(k: &ConfigKey) -> [(&'static str, String); 12] {
    [
        ("arch", k.arch.clone()),
        ("init", k.init.clone()),
        ("bias-init", k.bias_init.clone()),
        ("activation", k.activation.clone()),
        ("depth", k.depth.to_string()),
        ("width", k.width.to_string()),
        ("batch", k.batch.to_string()),
        ("backend", k.backend.clone()),
        ("loss", k.loss.clone()),
        ("prune", k.prune.clone()),
        ("dtype", k.dtype.clone()),
        ("loss-scale", k.loss_scale.clone()),
    ]
}

/// The data of the interactive charts: the keys that vary, every configuration with its
/// values, rank and verdict, and per charted statistic each configuration's seed means
/// (and the theory's line) at the site its chart reads.
fn explore_data(t: &Tables) -> Value {
    let keys: Vec<usize> = (0..12)
        .filter(|&i| {
            let mut seen = BTreeSet::new();
            for (k, _) in &t.summaries {
                seen.insert(key_values(k)[i].1.clone());
            }
            seen.len() > 1
        })
        .collect();
    let ranks: Vec<(usize, usize)> = rank(&t.summaries)
        .into_iter()
        .map(|(r, (k, _))| (k.config, r))
        .collect();
    let configs: Vec<Value> = t
        .summaries
        .iter()
        .map(|(k, s)| {
            let kv = key_values(k);
            json!({
                "id": k.config,
                "label": k.label,
                "values": keys.iter().map(|&i| kv[i].1.clone()).collect::<Vec<_>>(),
                "rank": ranks.iter().find(|(c, _)| *c == k.config).map(|(_, r)| *r),
                "verdict": s.verdict_detail,
            })
        })
        .collect();
    let x = crate::charts::x_label(
        t,
        &t.summaries
            .iter()
            .map(|(k, _)| k.config)
            .collect::<Vec<_>>(),
    );
    // Each (configuration, site, statistic)'s rows, in file order, found once.
    let mut rows_of: HashMap<(usize, &str, &str), Vec<&AggRow>> = HashMap::new();
    for (c, a) in &t.aggs {
        rows_of
            .entry((c.config, a.site.as_str(), a.stat.as_str()))
            .or_default()
            .push(a);
    }
    let mut charts = Vec::new();
    for (stat, chart) in charted() {
        let mut series = Vec::new();
        for (k, _) in &t.summaries {
            let site = chart.site.unwrap_or_else(|| primary_site(&k.arch));
            let Some(rows) = rows_of.get(&(k.config, site, stat.name)) else {
                continue;
            };
            if rows.iter().all(|a| !a.mean.is_finite()) {
                continue;
            }
            let consecutive = rows.windows(2).all(|w| w[1].layer == w[0].layer + 1);
            let xs = if consecutive {
                json!(rows[0].layer)
            } else {
                json!(rows.iter().map(|a| a.layer).collect::<Vec<_>>())
            };
            let ys: Vec<Value> = rows.iter().map(|a| compact(a.mean)).collect();
            let theory = rows
                .iter()
                .any(|a| a.theory.is_some_and(f64::is_finite))
                .then(|| {
                    rows.iter()
                        .map(|a| compact(a.theory.unwrap_or(f64::NAN)))
                        .collect::<Vec<_>>()
                });
            series.push(json!([k.config, xs, ys, theory]));
        }
        if series.is_empty() {
            continue;
        }
        charts.push(json!({
            "stat": stat.name,
            "title": chart.title,
            "x": x,
            "y": chart.y,
            "log": chart.axis == Axis::Log,
            "fraction": chart.axis == Axis::Fraction,
            "series": series,
        }));
    }
    json!({
        "keys": keys.iter().map(|&i| key_values(&t.summaries[0].0)[i].0).collect::<Vec<_>>(),
        "configs": configs,
        "charts": charts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_significant_digits_and_non_finite_ones_are_null() {
        assert_eq!(compact(1.234_567_8e-5), json!(1.235e-5));
        assert_eq!(compact(2.0), json!(2.0));
        assert_eq!(compact(f64::NAN), Value::Null);
        assert_eq!(compact(f64::INFINITY), Value::Null);
    }

    #[test]
    fn html_in_the_markdown_is_shown_as_text_and_file_names_are_unescaped() {
        let dir = tempfile::tempdir().unwrap();
        let page = page(
            "t",
            "# t\n\nuse --init <scheme> <!-- here\n",
            dir.path(),
            None,
        );
        assert!(
            page.contains("--init &lt;scheme&gt; &lt;!-- here"),
            "{page}"
        );
        assert_eq!(unescape_url("a%20b&amp;c%2"), "a b&c%2");
    }

    #[test]
    fn the_verdict_cell_links_to_its_configuration() {
        let row = "<td>1</td><td>a</td><td>stable (x1)</td>";
        assert_eq!(
            link_cell(row, 2, "#config-4"),
            "<td>1</td><td>a</td><td><a href=\"#config-4\">stable (x1)</a></td>"
        );
    }

    #[test]
    fn ranking_rows_and_outcomes_are_tagged_in_rank_order() {
        let md = "## Outcomes\n\n- **b**: x\n- **a**: y\n\n## Ranked by stability\n\n\
                  | rank | configuration | verdict |\n|---|---|---|\n| 1 | b | stable |\n\
                  | 2 | a | exploding |\n";
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, Parser::new_ext(md, Options::ENABLE_TABLES));
        let order = [7, 3];
        let html = tag_section(&html, "Outcomes", "<li>", &order, |k| {
            format!("<li data-config=\"{k}\">")
        });
        let html = tag_ranking(&html, &order);
        assert!(
            html.contains("<li data-config=\"7\"><strong>b</strong>"),
            "{html}"
        );
        assert!(
            html.contains("<li data-config=\"3\"><strong>a</strong>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<tr data-config=\"7\" id=\"rank-7\"><td>1</td><td>b</td><td><a href=\"#config-7\">stable</a></td>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"#config-3\">exploding</a>"),
            "{html}"
        );
    }

    #[test]
    fn a_page_inlines_its_figures_and_fetches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hist.svg"),
            "<?xml version=\"1.0\"?>\n<svg id=\"h\"></svg>",
        )
        .unwrap();
        std::fs::write(dir.path().join("only.png"), [137u8, 80, 78, 71]).unwrap();
        let md = "# t\n\n![hist](hist.png)\n\n![only](only.png)\n\n![gone](gone.png)\n";
        let page = page("t <x>", md, dir.path(), None);
        assert!(page.contains("<figure><svg id=\"h\"></svg><figcaption>hist</figcaption>"));
        assert!(
            page.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{page}"
        );
        assert!(page.contains("(missing figure: gone.png)"));
        assert!(page.contains("<title>t &lt;x&gt;</title>"));
        assert!(!page.contains("<?xml"));
        // The one URL in the page is the SVG namespace its script creates elements in.
        assert_eq!(
            page.matches("http").count(),
            page.matches("\"http://www.w3.org/2000/svg\"").count()
        );
    }
}
