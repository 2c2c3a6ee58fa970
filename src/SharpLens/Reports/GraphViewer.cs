using System.Text;
using System.Text.Json;

namespace SharpLens.Reports;

/// <summary>
/// The attribution-graph viewer: one self-contained HTML page (inline CSS and JS, no network) that draws a
/// circuit-tracer <c>graph.json</c> as its frontend does — nodes by layer × token position (embeddings at the bottom,
/// logits on top), signed edges weighted by strength, a pruning slider over the nodes' cumulative influence, a click
/// on a node listing its strongest inputs and outputs (and, for a feature, its dashboard), pinned nodes grouped into
/// supernodes, and a download of the graph with that grouping saved in its <c>qParams</c>.
/// </summary>
/// <remarks>
/// The view's state (threshold, pinned nodes, supernodes, the clicked node) lives in the page's URL fragment, so a
/// view can be shared or reopened. As circuit-tracer's frontend does, a feature that is active at more than 2/3 of
/// the prompt's positions is hidden (a checkbox shows it again).
/// </remarks>
public static class GraphViewer
{
    /// <summary>Graphs larger than this are refused: a browser cannot lay out what such a file holds.</summary>
    public const long MaxGraphBytes = 256L << 20;

    /// <summary>Reads <paramref name="graphJsonPath"/>, checks it, and writes the viewer page to <paramref name="htmlPath"/>.</summary>
    /// <param name="features">Optional feature dashboards keyed by the feature nodes' <c>feature</c> (Cantor) id.</param>
    public static void Write(string graphJsonPath, string htmlPath, IReadOnlyDictionary<long, GraphFeatureDetails>? features = null)
    {
        var info = new FileInfo(graphJsonPath);
        if (!info.Exists) throw new GraphFileException(graphJsonPath, null, "the file does not exist; write it with `sharplens graph ... --out DIR` (DIR/graph.json).");
        if (info.Length > MaxGraphBytes)
            throw new GraphFileException(graphJsonPath, null, $"the file is {info.Length:N0} bytes, more than the viewer's {MaxGraphBytes:N0}; prune harder (a lower --node-threshold or --max-feature-nodes) and write it again.");
        AtomicFile.WriteAllText(htmlPath, Render(File.ReadAllText(graphJsonPath), features, graphJsonPath));
    }

    /// <summary>The viewer page for a graph given as JSON text; <paramref name="source"/> names it in errors.</summary>
    public static string Render(string graphJson, IReadOnlyDictionary<long, GraphFeatureDetails>? features = null, string source = "graph.json")
    {
        string title = Check(graphJson, source);
        var featureMap = (features ?? new Dictionary<long, GraphFeatureDetails>())
            .ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value);
        string featureJson = JsonSerializer.Serialize(featureMap, GraphFeatureDetailsJson.Default.DictionaryStringGraphFeatureDetails);
        return Page
            .Replace("@@TITLE@@", HtmlReport.Escape(title))
            .Replace("@@GRAPH@@", ScriptSafe(graphJson))
            .Replace("@@FEATURES@@", ScriptSafe(featureJson));
    }

    // '<' appears in JSON only inside strings, where \u003c means the same: so no "</script>" can end the block early.
    static string ScriptSafe(string json) => json.Replace("<", "\\u003c");

    /// <summary>Checks the fields the viewer reads, naming the first one that is missing or of the wrong kind.</summary>
    static string Check(string graphJson, string source)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(graphJson, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e) { throw new GraphFileException(source, null, $"it is not valid JSON ({e.Message})."); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new GraphFileException(source, null, "the top level is not a JSON object with metadata, qParams, nodes and links.");
            var metadata = Require(root, "metadata", JsonValueKind.Object, source, "");
            var tokens = Require(metadata, "prompt_tokens", JsonValueKind.Array, source, "metadata.");
            int nPos = tokens.GetArrayLength();
            foreach (var t in tokens.EnumerateArray())
                if (t.ValueKind != JsonValueKind.String) throw new GraphFileException(source, "metadata.prompt_tokens", "every prompt token must be a string.");
            var ids = new HashSet<string>(StringComparer.Ordinal);
            int i = 0;
            foreach (var node in Require(root, "nodes", JsonValueKind.Array, source, "").EnumerateArray())
            {
                string at = $"nodes[{i++}].";
                if (node.ValueKind != JsonValueKind.Object) throw new GraphFileException(source, at.TrimEnd('.'), "each node must be an object.");
                string id = Require(node, "node_id", JsonValueKind.String, source, at).GetString()!;
                Require(node, "layer", JsonValueKind.String, source, at);
                Require(node, "feature_type", JsonValueKind.String, source, at);
                Require(node, "feature", JsonValueKind.Number, source, at);
                var ctx = Require(node, "ctx_idx", JsonValueKind.Number, source, at);
                if (!ctx.TryGetInt32(out int p) || p < 0 || p >= nPos)
                    throw new GraphFileException(source, at + "ctx_idx", $"{ctx.GetRawText()} is not a position of the {nPos}-token prompt.");
                if (!ids.Add(id)) throw new GraphFileException(source, at + "node_id", $"\"{id}\" is used by two nodes.");
            }
            i = 0;
            foreach (var link in Require(root, "links", JsonValueKind.Array, source, "").EnumerateArray())
            {
                string at = $"links[{i++}].";
                foreach (string end in new[] { "source", "target" })
                {
                    string id = Require(link, end, JsonValueKind.String, source, at).GetString()!;
                    if (!ids.Contains(id)) throw new GraphFileException(source, at + end, $"\"{id}\" is not the node_id of any node.");
                }
                Require(link, "weight", JsonValueKind.Number, source, at);
            }
            return metadata.TryGetProperty("prompt", out var prompt) && prompt.ValueKind == JsonValueKind.String ? prompt.GetString()! : "attribution graph";
        }
    }

    static JsonElement Require(JsonElement parent, string name, JsonValueKind kind, string source, string at)
    {
        if (!parent.TryGetProperty(name, out var value))
            throw new GraphFileException(source, at + name, "the field is missing; circuit-tracer's graph files have it.");
        if (value.ValueKind != kind)
            throw new GraphFileException(source, at + name, $"the field is a JSON {value.ValueKind.ToString().ToLowerInvariant()}, not a {kind.ToString().ToLowerInvariant()}.");
        return value;
    }

    const string Page = """
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@@TITLE@@ — SharpLens attribution graph</title>
<style>
  body { margin: 0; font: 13px system-ui, sans-serif; color: #0f172a; background: #f8fafc; display: flex; height: 100vh; }
  #main { flex: 1; overflow: auto; padding: 8px; }
  #side { width: 380px; border-left: 1px solid #cbd5e1; background: #fff; overflow: auto; padding: 10px 12px; }
  h1 { font-size: 15px; margin: 4px 0 8px; } h2 { font-size: 13px; margin: 14px 0 4px; color: #334155; }
  .muted { color: #64748b; } .row { display: flex; gap: 8px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
  table { border-collapse: collapse; width: 100%; } td, th { padding: 2px 4px; border-bottom: 1px solid #f1f5f9; text-align: left; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.edge:hover { background: #f1f5f9; cursor: pointer; }
  button { font: inherit; padding: 2px 8px; } input[type=text] { font: inherit; width: 140px; }
  svg text { font-size: 10px; fill: #334155; } svg .node { cursor: pointer; }
  svg .node.clicked { stroke: #0f172a; stroke-width: 2.5; } svg .node.pinned { stroke: #a21caf; stroke-width: 2; }
  svg .link { fill: none; } svg.has-click .link { opacity: 0.12; } svg.has-click .link.near { opacity: 1; }
  .tok { padding: 0 1px; border-radius: 2px; white-space: pre; } .ex { font-family: ui-monospace, monospace; font-size: 12px; margin: 2px 0; }
  .legend span { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px; vertical-align: middle; }
  #tip { position: fixed; pointer-events: none; background: #0f172a; color: #fff; padding: 2px 6px; border-radius: 3px; display: none; }
</style>
</head>
<body>
<div id="main">
  <h1 id="title"></h1>
  <div class="row legend muted">edges: <span style="background:#ea580c"></span>positive <span style="background:#2563eb"></span>negative;
    nodes: <span style="background:#94a3b8;border-radius:5px"></span>feature <span style="background:#fca5a5"></span>error
    <span style="background:#86efac"></span>token <span style="background:#fde68a"></span>logit</div>
  <svg id="graph" xmlns="http://www.w3.org/2000/svg"></svg>
</div>
<div id="side">
  <div class="row"><label for="threshold">Pruning threshold</label>
    <input id="threshold" type="range" min="0" max="1" step="0.01"> <b id="threshold-value"></b></div>
  <div class="row muted" id="counts"></div>
  <div class="row"><label><input type="checkbox" id="dense"> show features active at more than 2/3 of positions</label></div>
  <div class="row muted" id="dense-note"></div>
  <div id="details"><p class="muted">Click a node to see its inputs and outputs.</p></div>
  <h2>Pinned nodes</h2><div id="pinned" class="muted"></div>
  <div class="row"><input type="text" id="supernode-label" placeholder="supernode label">
    <button id="group">Group pinned as supernode</button></div>
  <h2>Supernodes</h2><div id="supernodes" class="muted"></div>
  <div class="row" style="margin-top:14px"><button id="download">Download graph.json with this grouping</button></div>
</div>
<div id="tip"></div>
<script type="application/json" id="graph-data">@@GRAPH@@</script>
<script type="application/json" id="feature-data">@@FEATURES@@</script>
<script>
"use strict";
const graph = JSON.parse(document.getElementById("graph-data").textContent);
const featureDetails = JSON.parse(document.getElementById("feature-data").textContent);
const tokens = graph.metadata.prompt_tokens.map(t => t.replace(/\n/g, "⏎").replace(/\t/g, "→").replace(/\r/g, "↵"));
const nPos = tokens.length;
const MAX_DRAWN_LINKS = 3000;

// ---- nodes and links, as circuit-tracer's frontend reads them ----
const nodes = graph.nodes.map(d => Object.assign({}, d));
const byId = new Map(nodes.map(d => [d.node_id, d]));
const maxLayer = Math.max(-1, ...nodes.filter(d => d.feature_type !== "logit" && isFinite(+d.layer)).map(d => +d.layer));
for (const d of nodes) {
  d.isLogit = d.feature_type === "logit"; d.isEmbedding = d.feature_type === "embedding";
  d.isError = d.feature_type.includes("error"); d.isFeature = !d.isLogit && !d.isEmbedding && !d.isError;
  d.row = d.isEmbedding ? 0 : d.isLogit ? maxLayer + 2 : +d.layer + 1;
  d.inputs = []; d.outputs = [];
  d.label = d.clerp ? d.clerp
    : d.isError ? `Err: mlp “${tokens[d.ctx_idx]}”`
    : d.isEmbedding ? `Emb: “${tokens[d.ctx_idx]}”`
    : `L${d.layer} #${d.node_id.split("_")[1]} @${d.ctx_idx}`;
}
const links = graph.links.map(l => ({ source: byId.get(l.source), target: byId.get(l.target), weight: l.weight }));
for (const l of links) { l.source.outputs.push(l); l.target.inputs.push(l); }
for (const d of nodes) d.inputAbsSum = d.inputs.reduce((s, l) => s + Math.abs(l.weight), 0);
// A feature (same layer and feature id) active at more than 2/3 of the positions is hidden by default, as in circuit-tracer.
const perFeature = new Map();
for (const d of nodes.filter(d => d.isFeature)) { const k = d.layer + "_" + d.feature; perFeature.set(k, (perFeature.get(k) || 0) + 1); }
const denseKeys = new Set([...perFeature].filter(([, n]) => n > nPos * 2 / 3).map(([k]) => k));
for (const d of nodes) d.dense = d.isFeature && denseKeys.has(d.layer + "_" + d.feature);

// ---- view state: graph.qParams, overridden by the URL fragment ----
const q = graph.qParams || {};
const state = {
  threshold: graph.metadata.node_threshold ?? 0.8, pinnedIds: [...(q.pinnedIds || [])],
  supernodes: (q.supernodes || []).map(s => [...s]), clickedId: q.clickedId || "", showDense: false,
};
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.has("threshold")) state.threshold = +hash.get("threshold");
if (hash.has("pinnedIds")) state.pinnedIds = hash.get("pinnedIds").split(",").filter(x => x);
if (hash.has("clickedId")) state.clickedId = hash.get("clickedId");
if (hash.has("supernodes")) { try { state.supernodes = JSON.parse(hash.get("supernodes")); } catch (e) { state.supernodes = []; } }
if (hash.has("dense")) state.showDense = hash.get("dense") === "1";

function saveState() {
  const p = new URLSearchParams();
  p.set("threshold", state.threshold); p.set("pinnedIds", state.pinnedIds.join(","));
  p.set("clickedId", state.clickedId); p.set("supernodes", JSON.stringify(state.supernodes));
  if (state.showDense) p.set("dense", "1");
  history.replaceState(null, "", "#" + p.toString());
}

function visible(d) {
  if (d.dense && !state.showDense) return false;
  return d.isEmbedding || d.isLogit || state.pinnedIds.includes(d.node_id)
    || (d.influence !== null && d.influence !== undefined && d.influence <= state.threshold);
}

// ---- drawing ----
const SVG = "http://www.w3.org/2000/svg";
const svg = document.getElementById("graph");
function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function fmt(x) { return x === null || x === undefined ? "—" : Math.abs(x) >= 100 || x === 0 ? x.toFixed(1) : x.toPrecision(3); }
function color(d) { return d.isLogit ? "#fde68a" : d.isEmbedding ? "#86efac" : d.isError ? "#fca5a5" : "#94a3b8"; }

function draw() {
  svg.replaceChildren();
  const shown = nodes.filter(visible);
  const shownSet = new Set(shown);
  const nRows = maxLayer + 3, rowH = 64, left = 44, top = 14, spacing = 16;
  const cells = new Map();
  for (const d of shown) {
    const k = d.row + ":" + d.ctx_idx;
    if (!cells.has(k)) cells.set(k, []);
    cells.get(k).push(d);
  }
  const colW = new Array(nPos).fill(70);
  for (const [k, list] of cells) {
    list.sort((a, b) => (a.influence ?? 2) - (b.influence ?? 2));
    const p = +k.split(":")[1];
    colW[p] = Math.max(colW[p], list.length * spacing + 14);
  }
  const colX = [left]; for (let p = 0; p < nPos; p++) colX.push(colX[p] + colW[p]);
  for (const [k, list] of cells) {
    const [r, p] = k.split(":").map(Number);
    list.forEach((d, i) => { d.x = colX[p] + (colW[p] - list.length * spacing) / 2 + (i + 0.5) * spacing; d.y = top + (nRows - 1 - r) * rowH + 20; });
  }
  const width = colX[nPos] + 10, height = top + nRows * rowH + 40;
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.classList.toggle("has-click", !!byId.get(state.clickedId) && shownSet.has(byId.get(state.clickedId)));

  for (let r = 0; r < nRows; r++) {
    const y = top + (nRows - 1 - r) * rowH + 20;
    el("line", { x1: left, x2: width - 10, y1: y, y2: y, stroke: "#e2e8f0" }, svg);
    el("text", { x: 4, y: y + 3 }, svg).textContent = r === 0 ? "Emb" : r === nRows - 1 ? "Logit" : "L" + (r - 1);
  }
  tokens.forEach((t, p) => {
    const txt = el("text", { x: colX[p] + colW[p] / 2, y: height - 14, "text-anchor": "middle", class: "token-label" }, svg);
    txt.textContent = t.length > 14 ? t.slice(0, 13) + "…" : t;
  });

  // Links between shown nodes: the strongest MAX_DRAWN_LINKS, and every link of the clicked node.
  const clicked = byId.get(state.clickedId);
  let drawn = links.filter(l => shownSet.has(l.source) && shownSet.has(l.target));
  const maxAbs = Math.max(1e-12, ...drawn.map(l => Math.abs(l.weight)));
  drawn.sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
  const near = l => clicked && (l.source === clicked || l.target === clicked);
  drawn = drawn.filter((l, i) => i < MAX_DRAWN_LINKS || near(l)).reverse();
  const gLinks = el("g", {}, svg);
  for (const l of drawn) {
    const mid = (l.source.y + l.target.y) / 2;
    el("path", {
      class: "link" + (near(l) ? " near" : ""), d: `M${l.source.x},${l.source.y} C${l.source.x},${mid} ${l.target.x},${mid} ${l.target.x},${l.target.y}`,
      stroke: l.weight >= 0 ? "#ea580c" : "#2563eb", "stroke-width": 0.4 + 3.6 * Math.abs(l.weight) / maxAbs,
      "data-source": l.source.node_id, "data-target": l.target.node_id,
    }, gLinks);
  }

  // Supernodes: a dashed box around their shown members.
  state.supernodes.forEach(([label, ...members]) => {
    const ms = members.map(m => byId.get(m)).filter(d => d && shownSet.has(d));
    if (!ms.length) return;
    const x0 = Math.min(...ms.map(d => d.x)) - 9, x1 = Math.max(...ms.map(d => d.x)) + 9;
    const y0 = Math.min(...ms.map(d => d.y)) - 9, y1 = Math.max(...ms.map(d => d.y)) + 9;
    el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: "#a21caf", "stroke-dasharray": "4 3", class: "supernode", "data-label": label }, svg);
    el("text", { x: x0, y: y0 - 3, fill: "#a21caf" }, svg).textContent = label;
  });

  for (const d of shown) {
    const cls = "node" + (d === clicked ? " clicked" : "") + (state.pinnedIds.includes(d.node_id) ? " pinned" : "");
    const attrs = { class: cls, fill: color(d), stroke: "#475569", "data-node-id": d.node_id };
    const shape = d.isFeature ? el("circle", Object.assign(attrs, { cx: d.x, cy: d.y, r: 6 }), svg)
      : el("rect", Object.assign(attrs, { x: d.x - 6, y: d.y - 6, width: 12, height: 12 }), svg);
    shape.addEventListener("click", () => { state.clickedId = state.clickedId === d.node_id ? "" : d.node_id; render(); });
    shape.addEventListener("mousemove", e => { tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 8 + "px"; tip.textContent = d.label; });
    shape.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    if (d.isLogit) el("text", { x: d.x, y: d.y - 10, "text-anchor": "middle" }, svg).textContent = d.label.replace(/^Output /, "");
  }
  const hiddenDense = nodes.filter(d => d.dense).length;
  document.getElementById("counts").textContent =
    `${shown.length} of ${nodes.length} nodes shown, ${drawn.length} of ${links.length} links drawn`;
  document.getElementById("dense-note").textContent = hiddenDense && !state.showDense
    ? `${hiddenDense} feature nodes hidden: their feature is active at more than 2/3 of the positions.` : "";
}

// ---- the side panel ----
const tip = document.getElementById("tip");
function edgeTable(list, pick, title, node) {
  const rows = [...list].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).slice(0, 25);
  if (!rows.length) return `<h2>${title}</h2><p class="muted">none</p>`;
  return `<h2>${title}</h2><table class="${title.toLowerCase()}"><tr><th>node</th><th class="num">weight</th>${node ? '<th class="num">% of input</th>' : ""}</tr>` +
    rows.map(l => `<tr class="edge" data-node-id="${esc(pick(l).node_id)}"><td>${esc(pick(l).label)}</td><td class="num">${fmt(l.weight)}</td>` +
      (node ? `<td class="num">${(100 * l.weight / (node.inputAbsSum || 1)).toFixed(1)}</td>` : "") + "</tr>").join("") + "</table>";
}
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }

function dashboard(d) {
  const f = featureDetails[String(d.feature)];
  if (!f) return `<h2>Feature dashboard</h2><p class="muted">No dashboard data for this feature in this page.</p>`;
  let html = `<h2>Feature dashboard</h2><div class="muted">${esc(f.transcoder_id)} #${f.index}; active on ${(100 * f.activation_frequency).toFixed(3)}% of tokens; activations ${fmt(f.act_min)} to ${fmt(f.act_max)}</div>`;
  if (f.histogram && f.histogram.length) {
    const hmax = Math.max(...f.histogram, 1e-12), w = 340 / f.histogram.length;
    html += `<svg class="histogram" width="340" height="50">` + f.histogram.map((h, i) =>
      `<rect x="${i * w}" y="${50 - 48 * h / hmax}" width="${Math.max(1, w - 1)}" height="${48 * h / hmax}" fill="#fb923c"></rect>`).join("") + "</svg>";
  }
  html += `<div class="row"><b>raises</b> ${f.top_logits.map(esc).join(", ")}</div><div class="row"><b>lowers</b> ${f.bottom_logits.map(esc).join(", ")}</div>`;
  for (const group of f.examples_quantiles) {
    html += `<h2>${esc(group.quantile_name)}</h2>`;
    for (const ex of group.examples.slice(0, 10)) {
      html += `<div class="ex">` + ex.tokens.map((t, i) => {
        const a = ex.tokens_acts_list[i] || 0, alpha = f.act_max > 0 ? Math.max(0, Math.min(1, a / f.act_max)) : 0;
        return `<span class="tok" title="${fmt(a)}" style="background:rgba(234,88,12,${alpha.toFixed(3)})">${esc(t)}</span>`;
      }).join("") + "</div>";
    }
  }
  return html;
}

function renderSide() {
  const d = byId.get(state.clickedId), box = document.getElementById("details");
  if (!d) { box.innerHTML = `<p class="muted">Click a node to see its inputs and outputs.</p>`; }
  else {
    const pinned = state.pinnedIds.includes(d.node_id);
    box.innerHTML = `<h1 id="clicked-label">${esc(d.label)}</h1>
      <div class="muted">${esc(d.feature_type)}; layer ${esc(d.layer)}; position ${d.ctx_idx} (“${esc(tokens[d.ctx_idx])}”);
      activation ${fmt(d.activation)}; influence ${fmt(d.influence)}</div>
      <div class="row"><button id="pin">${pinned ? "Unpin" : "Pin"}</button></div>` +
      edgeTable(d.inputs, l => l.source, "Inputs", d) + edgeTable(d.outputs, l => l.target, "Outputs", null) +
      (d.isFeature ? dashboard(d) : "");
    document.getElementById("pin").onclick = () => {
      state.pinnedIds = pinned ? state.pinnedIds.filter(x => x !== d.node_id) : [...state.pinnedIds, d.node_id];
      render();
    };
    box.querySelectorAll("tr.edge").forEach(tr => tr.onclick = () => { state.clickedId = tr.dataset.nodeId; render(); });
  }
  document.getElementById("pinned").innerHTML = state.pinnedIds.length
    ? state.pinnedIds.map(id => `<div class="pinned-item" data-node-id="${esc(id)}">${esc(byId.get(id)?.label ?? id)}</div>`).join("") : "none";
  document.getElementById("supernodes").innerHTML = state.supernodes.length
    ? state.supernodes.map(([label, ...m], i) => `<div class="supernode-item">${esc(label)} (${m.length} nodes) <button data-i="${i}">remove</button></div>`).join("") : "none";
  document.querySelectorAll(".supernode-item button").forEach(b => b.onclick = () => { state.supernodes.splice(+b.dataset.i, 1); render(); });
}

function render() {
  const slider = document.getElementById("threshold");
  slider.value = state.threshold; document.getElementById("threshold-value").textContent = (+state.threshold).toFixed(2);
  document.getElementById("dense").checked = state.showDense;
  draw(); renderSide(); saveState();
}

document.getElementById("threshold").addEventListener("input", e => { state.threshold = +e.target.value; render(); });
document.getElementById("dense").addEventListener("change", e => { state.showDense = e.target.checked; render(); });
document.getElementById("group").addEventListener("click", () => {
  if (!state.pinnedIds.length) return;
  const input = document.getElementById("supernode-label");
  state.supernodes.push([input.value.trim() || `supernode ${state.supernodes.length + 1}`, ...state.pinnedIds]);
  state.pinnedIds = []; input.value = ""; render();
});
document.getElementById("download").addEventListener("click", () => {
  const out = Object.assign({}, graph, {
    qParams: Object.assign({ linkType: "both", sg_pos: "" }, graph.qParams || {},
      { pinnedIds: state.pinnedIds, supernodes: state.supernodes, clickedId: state.clickedId }),
  });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([JSON.stringify(out)], { type: "application/json" }));
  a.download = (graph.metadata.slug || "graph") + ".json";
  document.body.appendChild(a); a.click(); a.remove();
});
document.getElementById("title").textContent = graph.metadata.prompt ?? "attribution graph";
render();
</script>
</body>
</html>
""";
}

/// <summary>A graph file the viewer cannot show, naming the file and the field.</summary>
public sealed class GraphFileException(string filePath, string? field, string problem)
    : SharpLensException($"{filePath}{(field is null ? "" : $", field {field}")}: {problem}")
{
    public string FilePath { get; } = filePath;
    public string? Field { get; } = field;
}
