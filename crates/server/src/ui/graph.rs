//! `GET /ui/graph`: datasources -> jobs -> depend jobs -> exports, drawn as
//! SVG on the server, one picture per workflow.
//!
//! A job belongs to the workflow of its first src (a datasource's
//! `workflow`, or its upstream job's); jobs whose srcs name no workflow
//! form the last group. Columns are depths: datasources, then jobs by the
//! length of their longest upstream chain, then exports. Within a column
//! nodes are ordered by the mean row of what they read (one barycenter
//! pass), which keeps most edges from crossing on graphs of this size.

use super::pages::{error_page, html_response};
use super::session::Session;
use crate::App;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pbatch_model::{HistoryQuery, JobDesc, RunStatus, SrcType};
use std::collections::{BTreeMap, HashMap, HashSet};

const NODE_W: i64 = 180;
const NODE_H: i64 = 30;
const COL_GAP: i64 = 250;
const ROW_GAP: i64 = 46;
const PAD: i64 = 12;
/// Characters of a name a node shows (the full name is its tooltip).
const LABEL_CHARS: usize = 24;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum NodeKind {
    Datasource,
    Job,
    Export,
}

impl NodeKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Datasource => "datasource",
            Self::Job => "job",
            Self::Export => "export",
        }
    }
}

/// One box of a picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    /// Datasource or job name; `<job>/<export>` for exports.
    pub(crate) name: String,
    pub(crate) col: i64,
    pub(crate) row: i64,
}

#[cfg(test)]
impl Node {
    fn key(&self) -> (NodeKind, &str) {
        (self.kind, &self.name)
    }
}

/// One picture: a workflow's nodes placed, and its edges (indexes into nodes).
#[derive(Debug, Default)]
pub(crate) struct Picture {
    pub(crate) workflow: String,
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<(usize, usize)>,
}

/// Jobs as the graph reads them: name, srcs (type, name), export names.
pub(crate) struct JobShape {
    pub(crate) name: String,
    pub(crate) srcs: Vec<(SrcType, String)>,
    pub(crate) exports: Vec<String>,
}

fn depth(
    job: &str,
    jobs: &HashMap<&str, &JobShape>,
    memo: &mut HashMap<String, i64>,
    seen: &mut HashSet<String>,
) -> i64 {
    if let Some(d) = memo.get(job) {
        return *d;
    }
    if !seen.insert(job.to_string()) {
        return 1; // a cycle (refused at create time; drawn flat if one is stored)
    }
    let d = jobs.get(job).map_or(1, |j| {
        j.srcs
            .iter()
            .filter(|(t, _)| *t == SrcType::Job)
            .map(|(_, up)| depth(up, jobs, memo, seen) + 1)
            .max()
            .unwrap_or(1)
    });
    memo.insert(job.to_string(), d);
    d
}

fn workflow_of(
    job: &str,
    jobs: &HashMap<&str, &JobShape>,
    ds_workflow: &HashMap<String, String>,
    seen: &mut HashSet<String>,
) -> String {
    if !seen.insert(job.to_string()) {
        return String::new();
    }
    let Some(j) = jobs.get(job) else { return String::new() };
    match j.srcs.first() {
        Some((SrcType::Datasource, d)) => ds_workflow.get(d).cloned().unwrap_or_default(),
        Some((SrcType::Job, up)) => workflow_of(up, jobs, ds_workflow, seen),
        _ => String::new(),
    }
}

/// A node before it is placed: kind and name.
type Key = (NodeKind, String);

/// One workflow's nodes and edges before layout.
#[derive(Default)]
struct Group {
    keys: Vec<Key>,
    edges: Vec<(Key, Key)>,
}

/// Lays the graph out: one picture per workflow (named ones first, by
/// name; the unnamed group last).
pub(crate) fn layout(datasources: &[(String, String)], shapes: &[JobShape]) -> Vec<Picture> {
    let jobs: HashMap<&str, &JobShape> = shapes.iter().map(|j| (j.name.as_str(), j)).collect();
    let ds_workflow: HashMap<String, String> = datasources.iter().cloned().collect();
    let mut memo = HashMap::new();
    // workflow -> (node keys, edges by key)
    let mut groups: BTreeMap<(bool, String), Group> = BTreeMap::new();
    for (d, wf) in datasources {
        groups
            .entry((wf.is_empty(), wf.clone()))
            .or_default()
            .keys
            .push((NodeKind::Datasource, d.clone()));
    }
    for j in shapes {
        let wf = workflow_of(&j.name, &jobs, &ds_workflow, &mut HashSet::new());
        let g = groups.entry((wf.is_empty(), wf)).or_default();
        let me = (NodeKind::Job, j.name.clone());
        g.keys.push(me.clone());
        for (t, src) in &j.srcs {
            let from = match t {
                SrcType::Job => (NodeKind::Job, src.clone()),
                _ => (NodeKind::Datasource, src.clone()),
            };
            g.keys.push(from.clone());
            g.edges.push((from, me.clone()));
        }
        for e in &j.exports {
            let x = (NodeKind::Export, format!("{}/{e}", j.name));
            g.keys.push(x.clone());
            g.edges.push((me.clone(), x));
        }
    }
    let mut out = Vec::new();
    for ((_, workflow), Group { keys, edges }) in groups {
        let mut seen = HashSet::new();
        let mut nodes: Vec<Node> = Vec::new();
        for (kind, name) in keys {
            if !seen.insert((kind, name.clone())) {
                continue;
            }
            let col = match kind {
                NodeKind::Datasource => 0,
                NodeKind::Job => depth(&name, &jobs, &mut memo, &mut HashSet::new()),
                NodeKind::Export => -1, // placed below, once the jobs have theirs
            };
            nodes.push(Node {
                kind,
                name,
                col,
                row: 0,
            });
        }
        // an export sits just right of its job
        let job_col: HashMap<String, i64> = nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Job)
            .map(|n| (n.name.clone(), n.col))
            .collect();
        for n in nodes.iter_mut().filter(|n| n.kind == NodeKind::Export) {
            let job = n.name.split_once('/').map_or("", |(j, _)| j);
            n.col = job_col.get(job).copied().unwrap_or(0) + 1;
        }
        let index: HashMap<Key, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| ((n.kind, n.name.clone()), i))
            .collect();
        let mut edge_ix: Vec<(usize, usize)> = edges
            .iter()
            .filter_map(|(a, b)| Some((*index.get(a)?, *index.get(b)?)))
            .collect();
        edge_ix.sort_unstable();
        edge_ix.dedup();
        // rows: column by column, by the mean row of each node's inputs
        let cols = nodes.iter().map(|n| n.col).max().unwrap_or(0);
        for c in 0..=cols {
            let mut in_col: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].col == c).collect();
            let weight = |i: usize| -> f64 {
                let ups: Vec<f64> = edge_ix
                    .iter()
                    .filter(|(_, b)| *b == i)
                    .filter(|(a, _)| nodes[*a].col < c)
                    .map(|(a, _)| nodes[*a].row as f64)
                    .collect();
                if ups.is_empty() {
                    f64::MAX
                } else {
                    ups.iter().sum::<f64>() / ups.len() as f64
                }
            };
            let mut keyed: Vec<(f64, String, usize)> = in_col
                .drain(..)
                .map(|i| (weight(i), nodes[i].name.clone(), i))
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            for (row, (_, _, i)) in keyed.into_iter().enumerate() {
                nodes[i].row = row as i64;
            }
        }
        out.push(Picture {
            workflow,
            nodes,
            edges: edge_ix,
        });
    }
    out
}

/// What a node shows: the name, an export's without its job (its edge
/// says which).
fn label(n: &Node) -> String {
    let name = match n.kind {
        NodeKind::Export => n.name.split_once('/').map_or(n.name.as_str(), |(_, e)| e),
        _ => n.name.as_str(),
    };
    if name.chars().count() <= LABEL_CHARS {
        return name.to_string();
    }
    let mut s: String = name.chars().take(LABEL_CHARS - 1).collect();
    s.push('…');
    s
}

fn href(n: &Node) -> String {
    match n.kind {
        NodeKind::Datasource => format!("/ui/datasources#ds-{}", n.name),
        NodeKind::Job => format!("/ui/jobs/{}", n.name),
        NodeKind::Export => match n.name.split_once('/') {
            Some((job, e)) => format!("/ui/jobs/{job}#export-{e}"),
            None => "/ui/".to_string(),
        },
    }
}

/// One picture as SVG; `status` gives a job's last batch status.
fn svg(p: &Picture, status: &HashMap<String, RunStatus>) -> Markup {
    let cols = p.nodes.iter().map(|n| n.col).max().unwrap_or(0) + 1;
    let rows = p.nodes.iter().map(|n| n.row).max().unwrap_or(0) + 1;
    let w = cols * COL_GAP - (COL_GAP - NODE_W) + 2 * PAD;
    let h = rows * ROW_GAP - (ROW_GAP - NODE_H) + 2 * PAD;
    let x = |n: &Node| PAD + n.col * COL_GAP;
    let y = |n: &Node| PAD + n.row * ROW_GAP;
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" {
            @for (a, b) in &p.edges {
                @let (na, nb) = (&p.nodes[*a], &p.nodes[*b]);
                @let (x1, y1, x2, y2) = (x(na) + NODE_W, y(na) + NODE_H / 2, x(nb), y(nb) + NODE_H / 2);
                @let depend = na.kind == NodeKind::Job && nb.kind == NodeKind::Job;
                path class=(if depend { "edge edge-depend" } else { "edge" })
                    data-from=(format!("{}:{}", na.kind.as_str(), na.name))
                    data-to=(format!("{}:{}", nb.kind.as_str(), nb.name))
                    d=(format!("M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}", x1 + 50, x2 - 50)) {}
            }
            @for n in &p.nodes {
                @let st = (n.kind == NodeKind::Job).then(|| status.get(&n.name)).flatten();
                a class=(format!("node node-{}", n.kind.as_str())) href=(href(n))
                    data-node=(format!("{}:{}", n.kind.as_str(), n.name))
                    data-status=(st.map(|s| s.to_string()).unwrap_or_default()) {
                    title { (n.kind.as_str()) " " (n.name) @if let Some(s) = st { " (last batch " (s.to_string()) ")" } }
                    rect class=(st.map(|s| s.to_string()).unwrap_or_default())
                        x=(x(n)) y=(y(n)) width=(NODE_W) height=(NODE_H) {}
                    text x=(x(n) + 8) y=(y(n) + NODE_H / 2 + 4) { (label(n)) }
                }
            }
        }
    }
}

/// What the graph draws, read from the catalog.
struct Resources {
    /// Datasource name and workflow.
    datasources: Vec<(String, String)>,
    jobs: Vec<JobDesc>,
    shapes: Vec<JobShape>,
}

fn resources(app: &App) -> pbatch_model::Result<Resources> {
    let ds: Vec<(String, String)> = app
        .engine
        .list_datasources()?
        .into_iter()
        .map(|d| (d.name, d.spec.workflow))
        .collect();
    let jobs = app.engine.list_jobs(None, None)?;
    let shapes = jobs
        .iter()
        .map(|j| JobShape {
            name: j.name.clone(),
            srcs: j.spec.srcs.iter().map(|s| (s.ty.clone(), s.name.clone())).collect(),
            exports: app
                .engine
                .exports(&j.name)
                .unwrap_or_default()
                .into_iter()
                .map(|(e, _)| e)
                .collect(),
        })
        .collect();
    Ok(Resources {
        datasources: ds,
        jobs,
        shapes,
    })
}

/// `GET /ui/graph`.
pub(crate) async fn page(State(app): State<App>, Extension(s): Extension<Session>) -> Response {
    let Resources {
        datasources: ds,
        jobs,
        shapes,
    } = match resources(&app) {
        Ok(x) => x,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let last = HistoryQuery {
        size: Some(1),
        sort_by: Some("-runId".into()),
        ..Default::default()
    };
    let status: HashMap<String, RunStatus> = jobs
        .iter()
        .filter_map(|j| {
            let h = app.engine.history(&j.name, &last).ok()?;
            Some((j.name.clone(), h.history.first()?.status))
        })
        .collect();
    let pictures = layout(&ds, &shapes);
    let body = html! {
        h2 { "Graph" }
        p.hint { "Datasources → jobs → depend jobs → exports. A job's box has the colour of its last batch." }
        div data-live="graph" {
            @if pictures.is_empty() { p { "Nothing yet." } }
            @for p in &pictures {
                section.workflow id=(format!("wf-{}", p.workflow)) {
                    h3 { @if p.workflow.is_empty() { "No workflow" } @else { "Workflow " (p.workflow) } }
                    (svg(p, &status))
                }
            }
        }
    };
    html_response(StatusCode::OK, "graph", Some(&s), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, srcs: &[(SrcType, &str)], exports: &[&str]) -> JobShape {
        JobShape {
            name: name.into(),
            srcs: srcs.iter().map(|(t, n)| (t.clone(), (*n).to_string())).collect(),
            exports: exports.iter().map(|e| (*e).to_string()).collect(),
        }
    }

    fn at<'a>(p: &'a Picture, kind: NodeKind, name: &str) -> &'a Node {
        p.nodes
            .iter()
            .find(|n| n.key() == (kind, name))
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    #[test]
    fn depend_chains_go_right_and_workflows_group() {
        use SrcType::{Datasource as D, Job as J};
        let ds = vec![
            ("logs".to_string(), "wf1".to_string()),
            ("other".to_string(), String::new()),
        ];
        let shapes = vec![
            job("daily", &[(J, "hourly")], &["out"]),
            job("hourly", &[(D, "logs")], &["e1", "e2"]),
            job("report", &[(J, "daily"), (J, "hourly")], &[]),
            job("loose", &[(D, "other")], &[]),
        ];
        let pics = layout(&ds, &shapes);
        assert_eq!(
            pics.iter().map(|p| p.workflow.as_str()).collect::<Vec<_>>(),
            ["wf1", ""]
        );
        let wf = &pics[0];
        assert_eq!(at(wf, NodeKind::Datasource, "logs").col, 0);
        assert_eq!(at(wf, NodeKind::Job, "hourly").col, 1);
        assert_eq!(at(wf, NodeKind::Job, "daily").col, 2);
        assert_eq!(at(wf, NodeKind::Job, "report").col, 3);
        for (e, col) in [("hourly/e1", 2), ("hourly/e2", 2), ("daily/out", 3)] {
            assert_eq!(at(wf, NodeKind::Export, e).col, col, "{e}");
        }
        let edge = |a: (NodeKind, &str), b: (NodeKind, &str)| {
            wf.edges
                .iter()
                .any(|(x, y)| wf.nodes[*x].key() == a && wf.nodes[*y].key() == b)
        };
        assert!(edge((NodeKind::Datasource, "logs"), (NodeKind::Job, "hourly")));
        assert!(edge((NodeKind::Job, "hourly"), (NodeKind::Job, "daily")));
        assert!(edge((NodeKind::Job, "hourly"), (NodeKind::Job, "report")));
        assert!(edge((NodeKind::Job, "daily"), (NodeKind::Export, "daily/out")));
        assert_eq!(wf.edges.len(), 7);
        assert!(!wf.nodes.iter().any(|n| n.name == "loose"));
        assert_eq!(pics[1].nodes.len(), 2, "other and loose");
        // no two nodes share a place
        let places: HashSet<(i64, i64)> = wf.nodes.iter().map(|n| (n.col, n.row)).collect();
        assert_eq!(places.len(), wf.nodes.len());
    }

    #[test]
    fn svg_links_nodes_and_marks_depend_edges() {
        use SrcType::{Datasource as D, Job as J};
        let pics = layout(
            &[("logs".into(), String::new())],
            &[job("a", &[(D, "logs")], &["x"]), job("b", &[(J, "a")], &[])],
        );
        let status = HashMap::from([("a".to_string(), RunStatus::Successful)]);
        let s = svg(&pics[0], &status).into_string();
        assert!(s.contains(r#"href="/ui/jobs/b""#), "{s}");
        assert!(s.contains(r#"href="/ui/jobs/a#export-x""#), "{s}");
        assert!(
            s.contains(r#"class="edge edge-depend" data-from="job:a" data-to="job:b""#),
            "{s}"
        );
        assert!(s.contains(r#"data-node="job:a" data-status="Successful""#), "{s}");
        let long = Node {
            kind: NodeKind::Job,
            name: "x".repeat(30),
            col: 0,
            row: 0,
        };
        assert_eq!(label(&long).chars().count(), LABEL_CHARS);
        let export = pics[0].nodes.iter().find(|n| n.kind == NodeKind::Export).expect("x");
        assert_eq!(label(export), "x");
    }
}
