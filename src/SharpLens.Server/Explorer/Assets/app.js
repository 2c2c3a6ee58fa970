// SharpLens Explorer: one page app over /api/. Each view keeps its state in the URL hash (#page?key=value&...), so a
// view can be shared or reopened. Text from the model is only ever set as textContent (never parsed as HTML).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
let model = null;           // /api/model
let inFlight = 0;           // this page's requests waiting for an answer

// ---- small DOM helpers ----
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toFixed(d);
const pct = x => (100 * x).toFixed(1) + "%";

function tooltip(text, ev) {
  const t = $("#tooltip");
  if (text === null) { t.hidden = true; return; }
  t.textContent = text; t.hidden = false;
  t.style.left = (ev.clientX + 12) + "px"; t.style.top = (ev.clientY + 12) + "px";
}

// ---- state in the URL ----
function route() {
  const hash = location.hash.replace(/^#/, "") || "prompt";
  const [page, query] = hash.split("?");
  return { page, params: new URLSearchParams(query || "") };
}
function setParams(values) {
  const { page, params } = route();
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === "") params.delete(k); else params.set(k, v);
  }
  history.replaceState(null, "", "#" + page + (params.toString() ? "?" + params : ""));
}
const param = (k, fallback) => route().params.get(k) ?? fallback;

// ---- API ----
async function api(path, body, method) {
  inFlight++; busy();
  try {
    const res = await fetch("api/" + path, {
      method: method || (body === undefined ? "GET" : "POST"),
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data;
  } finally { inFlight--; busy(); }
}
let serverBusy = null;
function busy() {
  const el = $("#busy");
  const running = inFlight > 0 || (serverBusy && serverBusy.busy);
  el.className = running ? "busy" : "idle";
  el.textContent = running ? "busy" + (serverBusy && serverBusy.running ? ": " + serverBusy.running : "") + (serverBusy && serverBusy.waiting ? ` (${serverBusy.waiting} waiting)` : "") : "idle";
}
async function pollStatus() {
  try { const r = await fetch("api/status"); if (r.ok) { serverBusy = await r.json(); busy(); } } catch (e) { /* the server stopped */ }
  setTimeout(pollStatus, 2000);
}

function showError(container, e) { container.replaceChildren(h("div", { class: "error", role: "alert", text: e.message })); }

// A background job (a patching sweep, a graph) followed over server-sent events: the bar and status show its progress
// (`describe` words it), Cancel deletes it, and `render(id)` fills the page once it is done. Returns the starter.
function jobRunner(bar, status, cancel, out, describe, render) {
  let source = null, job = null;
  cancel.addEventListener("click", async () => { if (job) await api(`jobs/${job}`, undefined, "DELETE"); });
  return async (path, body) => {
    if (source) source.close();
    out.replaceChildren();
    try {
      const r = await api(path, body);
      job = r.job.id; cancel.disabled = false; status.textContent = "queued";
      source = new EventSource(`api/jobs/${job}/events`);
      const update = ev => {
        const info = JSON.parse(ev.data);
        bar.style.width = info.total ? (100 * info.done / info.total) + "%" : "0";
        status.textContent = `${info.state}: ${describe(info)}` + (info.error ? " — " + info.error : "");
        status.dataset.state = info.state;
        return info;
      };
      source.addEventListener("progress", update);
      source.addEventListener("done", async ev => {
        const info = update(ev);
        source.close(); source = null; cancel.disabled = true;
        if (info.state === "failed") return showError(out, new Error(info.error));
        if (info.state !== "done") return;
        await render(job);
      });
    } catch (e) { showError(out, e); }
  };
}
function needsDecoder(view, what) {
  if (model.kind === "decoder") return false;
  view.append(h("div", { class: "note", id: "needs-decoder", text: `${what} needs a decoder (a model that predicts the next token); ${model.name} is an encoder. The Attention page works for it${model.saes.length ? ", and so does Features" : ""}.` }));
  return true;
}

// A prompt box whose text lives in the URL (?prompt=).
function promptBox(key = "prompt", label = "Prompt", fallback = null) {
  const value = param(key, fallback ?? model.examples.prompt);
  const area = h("textarea", { id: key + "-input", spellcheck: "false" });
  area.value = value;
  area.addEventListener("input", () => setParams({ [key]: area.value }));
  return { el: h("label", { class: "wide" }, model.has_tokenizer ? label : label + " (token ids; this model has no tokenizer)", area), get value() { return area.value; } };
}
function field(key, label, fallback, attrs = {}) {
  const input = h("input", { id: key + "-input", value: param(key, fallback), ...attrs });
  input.addEventListener("input", () => setParams({ [key]: input.value }));
  return { el: h("label", {}, label, input), input, get value() { return input.value; } };
}
function choice(key, label, options, fallback) {
  const select = h("select", { id: key + "-input" }, options.map(([v, t]) => h("option", { value: v, text: t })));
  select.value = param(key, fallback);
  select.addEventListener("change", () => setParams({ [key]: select.value }));
  return { el: h("label", {}, label, select), select, get value() { return select.value; } };
}
const num = (s, fallback) => { const v = Number(s); return s === "" || Number.isNaN(v) ? fallback : v; };

function colourTokens(strings, values, max, colour, extra) {
  return h("div", { class: "tokens" }, strings.map((s, i) => {
    const v = values[i];
    const a = v === null || v === undefined ? 0 : Math.max(0, Math.min(1, v / max));
    return h("span", { class: "tok", "data-pos": i, "data-value": v ?? "", style: { background: `rgba(${colour},${a.toFixed(3)})` }, ...(extra ? extra(i) : {}) }, s);
  }));
}

// ---- pages ----
const pages = {};

pages.prompt = async view => {
  view.append(h("h2", { text: "Prompt" }));
  if (model.kind === "encoder") needsDecoder(view, "Per-token loss, next-token predictions and generation");
  const prompt = promptBox();
  const k = field("k", "top-k", "5", { type: "number", min: 1, max: model.limits.max_top_k, style: { width: "70px" } });
  const out = h("div", { id: "prompt-out" });
  const run = async () => {
    try {
      const r = await api("prompt", { prompt: prompt.value, top_k: num(k.value, 5) });
      const maxLoss = Math.log(model.d_vocab);
      let selected = Number(param("pos", r.tokens.length - 1));
      if (!(selected >= 0 && selected < r.tokens.length)) selected = r.tokens.length - 1;
      const table = h("div", { id: "topk" });
      const showTop = pos => {
        selected = pos; setParams({ pos });
        out.querySelectorAll(".tok").forEach(t => t.classList.toggle("selected", Number(t.dataset.pos) === pos));
        if (!r.top.length) { table.replaceChildren(); return; }
        table.replaceChildren(h("h3", { text: `Next-token predictions after position ${pos} (“${r.strings[pos]}”)` }),
          h("table", { id: "topk-table" }, h("tr", {}, h("th", { text: "rank" }), h("th", { text: "token" }), h("th", { text: "probability" }), h("th")),
            r.top[pos].map((t, i) => h("tr", { "data-token": t.token, "data-prob": t.prob }, h("td", { class: "num", text: i + 1 }), h("td", { class: "tokcell", text: t.text }),
              h("td", { class: "num", text: fmt(t.prob, 4) }), h("td", {}, h("span", { class: "bar", style: { width: (200 * t.prob) + "px", background: "#2f6fdf" } }))))));
      };
      const tokens = colourTokens(r.strings, r.loss, maxLoss, "220,60,60", i => ({
        title: r.loss[i] === null ? "first token: no prediction" : `loss ${fmt(r.loss[i])} (predicting this token)`,
        onclick: () => showTop(i), onmouseenter: () => showTop(i),
      }));
      tokens.id = "prompt-tokens";
      out.replaceChildren(h("p", { class: "small", text: r.mean_loss === null ? (r.note || "") : `Tokens coloured by loss (white 0 → red ln(d_vocab) = ${fmt(maxLoss, 2)}); mean loss ${fmt(r.mean_loss)}. Hover or click a token for the model's predictions after it.` }),
        tokens, table);
      showTop(selected);
    } catch (e) { showError(out, e); }
  };
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, prompt.el, k.el, h("button", { id: "run-prompt", onclick: run }, "Analyse")), out));

  if (model.kind === "decoder") {
    const n = field("n", "max new tokens", "20", { type: "number", min: 1, style: { width: "80px" } });
    const t = field("temperature", "temperature", "1", { type: "number", step: "0.1", min: 0, style: { width: "80px" } });
    const tk = field("top_k", "top-k (sampling)", "", { type: "number", min: 1, style: { width: "90px" } });
    const tp = field("top_p", "top-p", "", { type: "number", step: "0.05", min: 0, max: 1, style: { width: "80px" } });
    const seed = field("seed", "seed", "0", { type: "number", style: { width: "70px" } });
    const gen = h("div", { id: "generation" });
    const generate = async () => {
      try {
        const r = await api("generate", { prompt: prompt.value, max_new_tokens: num(n.value, 20), temperature: num(t.value, 1), top_k: tk.value ? Number(tk.value) : null, top_p: tp.value ? Number(tp.value) : null, seed: num(seed.value, 0) });
        gen.replaceChildren(h("h3", { text: "Continuation" }), h("div", { class: "tokens", id: "generated" }, r.new_strings.map(s => h("span", { class: "tok", text: s }))));
      } catch (e) { showError(gen, e); }
    };
    view.append(h("div", { class: "panel" }, h("h3", { text: "Generate" }), h("div", { class: "row" }, n.el, t.el, tk.el, tp.el, seed.el, h("button", { id: "run-generate", onclick: generate }, "Generate")), gen));
  }
  await run();
};

const hue = (i, n) => `hsl(${Math.round(360 * i / n)}, 70%, 45%)`;
function drawPattern(canvas, grid, colour) {
  const n = grid.length;
  canvas.width = n; canvas.height = n;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(n, n);
  const [r, g, b] = colour;
  for (let d = 0; d < n; d++) for (let s = 0; s < n; s++) {
    const a = grid[d][s], o = 4 * (d * n + s);
    img.data[o] = 255 - (255 - r) * a; img.data[o + 1] = 255 - (255 - g) * a; img.data[o + 2] = 255 - (255 - b) * a; img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
function hslToRgb(hh, s, l) {
  const k = n => (n + hh / 30) % 12, a = s * Math.min(l, 1 - l);
  const f = n => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}

pages.attention = async view => {
  view.append(h("h2", { text: "Attention" }));
  const prompt = promptBox();
  const layer = choice("layer", "layer", [...Array(model.n_layers).keys()].map(l => [String(l), `layer ${l}`]), "0");
  const out = h("div", { id: "attention-out" });
  const run = async () => {
    try {
      const r = await api("attention", { prompt: prompt.value, layer: Number(layer.value) });
      const heads = r.pattern.length;
      let locked = param("head", null);
      const zoom = h("div", { id: "zoom", class: "panel" });
      const tokenView = h("div", { id: "token-view", class: "panel" });
      const mode = choice("mode", "colour the other tokens by attention", [["from", "from the hovered token (it is the destination)"], ["to", "to the hovered token (it is the source)"]], "from");
      const showHead = head => {
        const grid = r.pattern[head], n = grid.length, rgb = hslToRgb(360 * head / heads, .7, .45);
        const canvas = h("canvas", { id: "zoom-canvas", "data-head": head });
        drawPattern(canvas, grid, rgb);
        const cellPx = Math.max(8, Math.min(28, Math.floor(560 / n)));
        canvas.style.width = canvas.style.height = (cellPx * n) + "px";
        canvas.addEventListener("mousemove", ev => {
          const rect = canvas.getBoundingClientRect();
          const s = Math.floor((ev.clientX - rect.left) / rect.width * n), d = Math.floor((ev.clientY - rect.top) / rect.height * n);
          if (d < 0 || s < 0 || d >= n || s >= n) return tooltip(null);
          tooltip(`L${r.layer}H${head}: ${d} “${r.strings[d]}” ← ${s} “${r.strings[s]}”: ${fmt(grid[d][s], 4)}`, ev);
        });
        canvas.addEventListener("mouseleave", () => tooltip(null));
        zoom.replaceChildren(h("h3", { text: `Head L${r.layer}H${head}: destination (rows) ← source (columns); hover a cell` }), canvas,
          h("p", { class: "small", text: "Row d is where token d attends; the upper triangle is masked (causal) in a decoder." }));
        // Token-centric view: hover a token to colour the others by how much it attends to them (or they to it).
        const line = h("div", { class: "tokens", id: "attn-tokens" });
        const paint = i => line.querySelectorAll(".tok").forEach((t, j) => {
          const v = i === null ? 0 : (mode.value === "from" ? grid[i][j] : grid[j][i]);
          t.style.background = `rgba(${rgb.join(",")},${v.toFixed(3)})`; t.dataset.value = i === null ? "" : v; t.title = i === null ? "" : fmt(v, 4);
        });
        r.strings.forEach((s, i) => line.append(h("span", { class: "tok", "data-pos": i, onmouseenter: () => { paint(i); line.querySelectorAll(".tok").forEach(t => t.classList.toggle("selected", t === line.children[i])); } }, s)));
        mode.select.onchange = () => { setParams({ mode: mode.value }); paint(null); };
        tokenView.replaceChildren(h("h3", { text: `Tokens, head L${r.layer}H${head}` }), mode.el, line);
      };
      const thumbs = h("div", { class: "grid", id: "head-grid" }, r.pattern.map((grid, i) => {
        const c = h("canvas");
        drawPattern(c, grid, hslToRgb(360 * i / heads, .7, .45));
        const t = h("div", { class: "thumb", "data-head": i, style: { borderColor: hue(i, heads) } }, c, `Head ${i}`);
        t.addEventListener("mouseenter", () => { if (locked === null) showHead(i); });
        t.addEventListener("click", () => { locked = String(i); setParams({ head: i }); thumbs.querySelectorAll(".thumb").forEach(x => x.classList.toggle("locked", x === t)); showHead(i); });
        return t;
      }));
      out.replaceChildren(h("div", { class: "panel" }, h("h3", { text: `Layer ${r.layer}: ${heads} heads (hover to view, click to lock)` }), thumbs), zoom, tokenView);
      const first = locked !== null && Number(locked) < heads ? Number(locked) : 0;
      if (locked !== null) thumbs.children[first].classList.add("locked");
      showHead(first);
    } catch (e) { showError(out, e); }
  };
  layer.select.addEventListener("change", run);
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, prompt.el, layer.el, h("button", { id: "run-attention", onclick: run }, "Show")), out));
  await run();
  if (model.kind === "decoder") {
    const scores = h("div", { class: "panel", id: "head-scores" }, "scoring heads…");
    view.append(scores);
    try {
      const s = await api("heads");
      const cell = v => h("td", { class: "num", style: { background: `rgba(47,111,223,${Math.min(1, v).toFixed(3)})`, color: v > .5 ? "#fff" : "" }, text: fmt(v) });
      const rows = [];
      for (let l = 0; l < s.layers; l++) for (let hh = 0; hh < s.heads; hh++)
        rows.push(h("tr", { "data-head": `${l}.${hh}` }, h("td", { text: `L${l}H${hh}` }), cell(s.previous_token[l][hh]), cell(s.duplicate_token[l][hh]), cell(s.induction[l][hh])));
      scores.replaceChildren(h("h3", { text: "Head detector scores" }), h("p", { class: "small", text: `Mean attention where each kind of head would look, on ${s.data}.` }),
        h("table", {}, h("tr", {}, ["head", "previous-token", "duplicate-token", "induction"].map(t => h("th", { text: t }))), rows));
    } catch (e) { showError(scores, e); }
  }
};

pages.lens = async view => {
  view.append(h("h2", { text: "Logit lens & direct logit attribution" }));
  if (needsDecoder(view, "The logit lens and direct logit attribution")) return;
  const prompt = promptBox();
  const answer = field("answer", model.has_tokenizer ? "answer token (text)" : "answer token id", "");
  const wrong = field("wrong", model.has_tokenizer ? "wrong token (optional)" : "wrong token id (optional)", "");
  const perHead = choice("split", "DLA components", [["layers", "layers"], ["heads", "heads"]], "heads");
  const out = h("div", { id: "lens-out" });
  const run = async () => {
    const body = { prompt: prompt.value, answer: answer.value || null, wrong: wrong.value || null };
    try {
      const [lens, dla] = await Promise.all([api("lens", body), api("dla", { ...body, per_head: perHead.value === "heads" })]);
      const last = lens.position;
      const lensTable = h("table", { id: "lens-table" }, h("tr", {}, h("th", { text: "read at" }), h("th", { text: `p(“${lens.answer_text}”)` }), h("th", { text: "rank" }),
        lens.logit_diff ? h("th", { text: `logit diff vs “${lens.wrong_text}”` }) : null, h("th", { text: "top 5 at the last position" })),
        lens.rows.map((name, r) => h("tr", { "data-row": name, "data-prob": lens.answer_prob[r][last] }, h("td", { text: name }), h("td", { class: "num", text: fmt(lens.answer_prob[r][last], 4) }),
          h("td", { class: "num", text: lens.answer_rank[r] }), lens.logit_diff ? h("td", { class: "num", text: fmt(lens.logit_diff[r]) }) : null,
          h("td", { text: lens.top_at_position[r].map(t => `${t.text} ${fmt(t.prob, 3)}`).join("   ") }))));
      const heat = h("table", { class: "heat", id: "lens-heat" }, h("tr", {}, h("th"), lens.strings.map(s => h("th", { text: s }))),
        lens.rows.map((name, r) => h("tr", {}, h("th", { text: name }), lens.answer_prob[r].map((p, pos) =>
          h("td", { class: "cell", "data-value": p, title: `${name}, position ${pos}: p = ${fmt(p, 4)}`, style: { background: `rgba(47,111,223,${p.toFixed(3)})` } })))));
      const maxAbs = Math.max(1e-9, ...dla.values.map(Math.abs));
      const dlaTable = h("table", { id: "dla-table" }, h("tr", {}, h("th", { text: "component" }), h("th", { text: "contribution" }), h("th")),
        dla.components.map((c, i) => h("tr", { "data-component": c, "data-value": dla.values[i] }, h("td", { text: c }), h("td", { class: "num", text: fmt(dla.values[i], 4) }),
          h("td", {}, h("span", { class: "bar", style: { width: (150 * Math.abs(dla.values[i]) / maxAbs) + "px", background: dla.values[i] >= 0 ? "#2f6fdf" : "#dc3c3c" } })))),
        h("tr", {}, h("th", { text: "sum" }), h("td", { class: "num", text: fmt(dla.sum, 4) })));
      out.replaceChildren(
        h("div", { class: "panel" }, h("h3", { text: `Logit lens: the residual stream read as the output, for “${lens.answer_text}” after “${lens.strings[last]}”` }), lensTable,
          h("h3", { text: `p(“${lens.answer_text}”) by layer and position` }), heat),
        h("div", { class: "panel" }, h("h3", { text: `Direct logit attribution of “${dla.answer_text}” − “${dla.wrong_text}” at the last position` }),
          h("p", { class: "small", id: "dla-total", text: `Model's logit difference ${fmt(dla.logit_difference, 4)}; components sum to ${fmt(dla.sum, 4)}.${wrong.value ? "" : " (No wrong token given: the runner-up is used.)"}` }), dlaTable));
    } catch (e) { showError(out, e); }
  };
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, prompt.el, answer.el, wrong.el, perHead.el, h("button", { id: "run-lens", onclick: run }, "Compute")), out));
  await run();
};

function heatmap(values, rowLabels, colLabels, id) {
  let max = 1e-9;
  for (const row of values) for (const v of row) max = Math.max(max, Math.abs(v));
  return h("table", { class: "heat", id }, h("tr", {}, h("th"), colLabels.map(c => h("th", { class: "small", text: c }))),
    values.map((row, r) => h("tr", {}, h("th", { text: rowLabels[r] }), row.map((v, c) => h("td", {
      class: "cell", "data-row": r, "data-col": c, "data-value": v, title: `${rowLabels[r]}, ${colLabels[c]}: ${fmt(v, 4)}`, text: fmt(v, 2),
      style: { background: v >= 0 ? `rgba(47,111,223,${(v / max).toFixed(3)})` : `rgba(220,60,60,${(-v / max).toFixed(3)})`, color: Math.abs(v) / max > .6 ? "#fff" : "" },
    })))));
}

pages.patching = async view => {
  view.append(h("h2", { text: "Patching" }));
  if (needsDecoder(view, "Patching")) return;
  const clean = promptBox("clean", "Clean prompt", model.examples.clean);
  const corrupted = promptBox("corrupted", "Corrupted prompt (same number of tokens)", model.examples.corrupted);
  const answer = field("answer", "answer (clean)", model.examples.answer);
  const wrong = field("wrong", "wrong (corrupted)", model.examples.wrong);
  const components = model.attn_only ? ["resid_pre", "resid_post", "attn_out", "z"] : ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z"];
  const component = choice("component", "component", components.map(c => [c, c]), "resid_pre");
  const method = choice("method", "method", [["activation", "activation patching"], ["attribution", "attribution patching (gradients)"]], "activation");
  const cells = field("cells", "cells per pass", "", { type: "number", min: 1, style: { width: "90px" }, placeholder: "auto" });
  const bar = h("div", {});
  const progress = h("div", { class: "progress", id: "patch-progress" }, bar);
  const status = h("span", { id: "patch-status", class: "small", text: "" });
  const cancel = h("button", { class: "secondary", id: "cancel-patching", disabled: true }, "Cancel");
  const out = h("div", { id: "patching-out" });
  const start = jobRunner(bar, status, cancel, out, info => `${info.done}/${info.total} cells`, async job => {
    const p = (await api(`jobs/${job}`)).patching;
    out.replaceChildren(h("div", { class: "panel" }, h("h3", { text: `${p.method} patching of ${p.component} (${p.dims.join(" × ")}): 1 = the clean answer restored, 0 = corrupted` }),
      h("p", { class: "small", text: `Metric: logit difference answer − wrong; clean ${fmt(p.clean_metric)}, corrupted ${fmt(p.corrupted_metric)}; ${p.forward_passes} forward passes.` }),
      heatmap(p.values, p.row_labels, p.column_labels, "patch-heat")));
  });
  const run = () => start("jobs/patching", { clean: clean.value, corrupted: corrupted.value, answer: answer.value, wrong: wrong.value, component: component.value, method: method.value, cells_per_pass: cells.value ? Number(cells.value) : null });
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, clean.el, corrupted.el, answer.el, wrong.el, component.el, method.el, cells.el,
    h("button", { id: "run-patching", onclick: run }, "Run")), h("div", { class: "row", style: { marginTop: "10px", alignItems: "center" } }, progress, status, cancel)), out);
};

pages.features = async view => {
  view.append(h("h2", { text: "Features" }));
  if (!model.saes.length) {
    view.append(h("div", { class: "note", id: "no-sae", text: "No SAE was loaded. Start the Explorer with --sae DIR (an SAELens folder: cfg.json + sae_weights.safetensors; `sharplens sae train` writes one) to see the features active on a prompt and feature pages." }));
    return;
  }
  view.append(h("p", { id: "corpus-source", class: model.corpus_source === "text" ? "small" : "note small", "data-source": model.corpus_source, text: `Feature pages read ${model.corpus}.` }));
  const sae = choice("sae", "SAE", model.saes.map(s => [String(s.index), `${s.name} (${s.hook}, ${s.d_sae} features)`]), "0");
  const prompt = promptBox();
  const out = h("div", { id: "features-out" });
  const pageBox = h("div", { id: "feature-page" });
  const featureInput = field("feature", "feature #", "", { type: "number", min: 0, style: { width: "90px" } });
  const openFeature = async f => {
    featureInput.input.value = f; setParams({ feature: f });
    pageBox.replaceChildren("loading feature page…");
    try {
      const p = await api("features/page", { sae: Number(sae.value), feature: Number(f) });
      const hist = svgHistogram(p.freq_hist_data_bar_values, p.freq_hist_data_bar_heights);
      const logits = (rows, title, id) => h("div", {}, h("h3", { text: title }), rows ? h("table", { id }, rows.map(l => h("tr", {}, h("td", { text: l.text }), h("td", { class: "num", text: fmt(l.value) })))) : h("p", { class: "small", text: p.logit_note || "no logit effects" }));
      const context = c => h("div", { class: "ctx" }, c.tokens.map((t, i) => h("span", { class: "tok" + (i === c.center ? " center" : ""), title: fmt(c.values[i]), style: { background: `rgba(240,136,62,${(p.max_activation > 0 ? Math.max(0, c.values[i]) / p.max_activation : 0).toFixed(3)})` } }, t)), `  ${fmt(c.activation)}`);
      const custom = promptBox("test", "Test with custom text", prompt.value);
      const customOut = h("div", { id: "custom-out" });
      const test = async () => {
        try {
          const r = await api("features", { sae: Number(sae.value), prompt: custom.value, feature: Number(f), top_k: 1 });
          customOut.replaceChildren(colourTokens(r.strings, r.feature_acts, Math.max(1e-9, p.max_activation), "240,136,62", i => ({ title: fmt(r.feature_acts[i], 4) })));
        } catch (e) { showError(customOut, e); }
      };
      pageBox.replaceChildren(h("div", { class: "panel" },
        h("h3", { id: "feature-title", text: `Feature ${p.feature} of ${model.saes[p.sae].name} (${p.hook})` }),
        h("p", { id: "feature-density", text: `ACTIVATIONS · DENSITY = ${(100 * p.frac_nonzero).toFixed(3)}% of ${p.tokens_read} tokens; max ${fmt(p.max_activation)}, mean when firing ${fmt(p.mean_when_firing)}.` }),
        h("p", { id: "feature-corpus", class: "small", "data-source": p.corpus_source, text: `Contexts (${p.corpus_source === "text" ? "text" : "not text"}): ${p.corpus}.` }),
        hist,
        h("div", { class: "cols" }, logits(p.pos_logits, "Positive logits", "pos-logits"), logits(p.neg_logits, "Negative logits", "neg-logits")),
        h("h3", { text: "Top activations" }), h("div", { id: "top-contexts" }, p.top_activations.map(context)),
        p.intervals.filter(i => i.samples.length).map(i => h("div", {}, h("h3", { text: `Interval ${fmt(i.low)} – ${fmt(i.high)} · contains ${pct(i.contains)}` }), i.samples.map(context))),
        h("h3", { text: "Test activation with custom text" }), h("div", { class: "row" }, custom.el, h("button", { id: "run-custom", onclick: test }, "Test")), customOut));
      await test();
    } catch (e) { showError(pageBox, e); }
  };
  const run = async () => {
    try {
      const r = await api("features", { sae: Number(sae.value), prompt: prompt.value, top_k: 5 });
      const list = h("div", { id: "token-features" });
      const show = i => {
        list.replaceChildren(h("h3", { text: `Features active on position ${i} (“${r.strings[i]}”)` }),
          r.per_token[i].length ? h("table", {}, r.per_token[i].map(f => h("tr", { class: "feature-row", "data-feature": f.feature, onclick: () => openFeature(f.feature) },
            h("td", {}, h("a", { href: "javascript:void 0", text: `#${f.feature}` })), h("td", { class: "num", text: fmt(f.activation) })))) : h("p", { class: "small", text: "none active" }));
      };
      const best = r.per_token.map(p => p.length ? p[0].activation : 0);
      const tokens = colourTokens(r.strings, best, Math.max(1e-9, ...best), "240,136,62", i => ({ onmouseenter: () => show(i), onclick: () => show(i), title: `${r.per_token[i].length} of the top 5 features active` }));
      tokens.id = "feature-tokens";
      out.replaceChildren(h("p", { class: "small", text: "Tokens shaded by their strongest feature; hover a token for its top features, click a feature for its page." }), tokens, list);
      show(Math.max(0, best.indexOf(Math.max(...best))));
    } catch (e) { showError(out, e); }
  };
  const search = h("button", { id: "open-feature", onclick: () => featureInput.value !== "" && openFeature(featureInput.value) }, "Open feature");
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, sae.el, prompt.el, h("button", { id: "run-features", onclick: run }, "Show features")), out),
    h("div", { class: "panel" }, h("div", { class: "row" }, featureInput.el, search)), pageBox);
  await run();
  if (featureInput.value !== "") await openFeature(featureInput.value);
};

function svgHistogram(values, heights) {
  const ns = "http://www.w3.org/2000/svg", w = 420, hh = 110;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", hh + 18); svg.setAttribute("class", "hist"); svg.id = "feature-hist";
  const max = Math.max(1, ...heights), bw = w / Math.max(1, heights.length);
  heights.forEach((c, i) => {
    const r = document.createElementNS(ns, "rect");
    const bh = hh * c / max;
    r.setAttribute("x", i * bw); r.setAttribute("y", hh - bh); r.setAttribute("width", Math.max(1, bw - 1)); r.setAttribute("height", bh);
    const t = document.createElementNS(ns, "title"); t.textContent = `${fmt(values[i])}: ${c}`; r.append(t);
    svg.append(r);
  });
  if (values.length) {
    const lab = document.createElementNS(ns, "text");
    lab.setAttribute("x", 0); lab.setAttribute("y", hh + 14); lab.setAttribute("font-size", "11"); lab.textContent = `activation ${fmt(values[0], 2)} … ${fmt(values[values.length - 1], 2)} (non-zero only)`;
    svg.append(lab);
  }
  return svg;
}

pages.graph = async view => {
  view.append(h("h2", { text: "Attribution graph" }));
  if (needsDecoder(view, "An attribution graph")) return;
  if (!model.has_transcoders) { view.append(h("div", { class: "note", id: "no-graph", text: model.graph_note })); return; }
  const prompt = promptBox();
  const maxNodes = field("nodes", "max feature nodes", "", { type: "number", min: 1, style: { width: "110px" }, placeholder: "all" });
  const nodeThreshold = field("node_threshold", "node threshold", "0.8", { type: "number", min: 0.01, max: 1, step: 0.01, style: { width: "90px" } });
  const edgeThreshold = field("edge_threshold", "edge threshold", "0.98", { type: "number", min: 0.01, max: 1, step: 0.01, style: { width: "90px" } });
  const batch = field("batch", "rows per backward pass", "", { type: "number", min: 1, style: { width: "90px" }, placeholder: "512" });
  const bar = h("div", {});
  const progress = h("div", { class: "progress", id: "graph-progress" }, bar);
  const status = h("span", { id: "graph-status", class: "small" });
  const cancel = h("button", { class: "secondary", id: "cancel-graph", disabled: true }, "Cancel");
  const out = h("div", { id: "graph-out" });
  const start = jobRunner(bar, status, cancel, out, info => info.message || "", async job => {
    const g = (await api(`jobs/${job}`)).graph;
    out.replaceChildren(h("p", { id: "graph-summary" },
      `${g.active_features} active features, ${g.features} in the graph; ${g.kept_nodes} nodes and ${g.kept_links} links after pruning. Replacement score ${fmt(g.replacement_score)}, completeness ${fmt(g.completeness_score)}. `,
      h("a", { id: "graph-download", href: g.graph_url.replace(/^\//, ""), download: `graph-${job}.json` }, "graph.json"),
      " (circuit-tracer's format) · ",
      h("a", { href: g.viewer_url.replace(/^\//, ""), target: "_blank", rel: "noopener" }, "open the viewer on its own")),
      h("iframe", { id: "graph-frame", src: g.viewer_url.replace(/^\//, ""), title: "attribution graph viewer" }));
  });
  const run = () => {
    bar.style.width = "0";
    return start("jobs/graph", { prompt: prompt.value, max_feature_nodes: maxNodes.value ? Number(maxNodes.value) : null,
      batch_size: batch.value ? Number(batch.value) : null, node_threshold: Number(nodeThreshold.value), edge_threshold: Number(edgeThreshold.value) });
  };
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, prompt.el, maxNodes.el, nodeThreshold.el, edgeThreshold.el, batch.el,
    h("button", { id: "run-graph", onclick: run }, "Compute graph")),
    h("div", { class: "row", style: { marginTop: "10px", alignItems: "center" } }, progress, status, cancel),
    h("p", { class: "small", text: `The model's MLPs replaced by the transcoders (${model.transcoders || "loaded at start-up"}); features, errors and token embeddings attributed to the top logits, then pruned. Click a node in the viewer for its inputs and outputs.` })), out);
};

pages.steering = async view => {
  view.append(h("h2", { text: "Steering" }));
  if (needsDecoder(view, "Steering")) return;
  const prompt = promptBox();
  const layer = choice("layer", "layer (blocks.L.hook_resid_pre)", [...Array(model.n_layers).keys()].map(l => [String(l), `layer ${l}`]), String(Math.min(1, model.n_layers - 1)));
  const kinds = [["contrast", "contrastive direction"], ...(model.saes.length ? [["feature", "SAE feature"]] : [])];
  const kind = choice("by", "steer along", kinds, "contrast");
  const positive = promptBox("positive", "Positive prompts (one per line)", model.examples.clean);
  const negative = promptBox("negative", "Negative prompts (one per line)", model.examples.corrupted);
  const sae = model.saes.length ? choice("sae", "SAE", model.saes.map(s => [String(s.index), s.name]), "0") : null;
  const feature = field("feature", "feature #", "0", { type: "number", min: 0, style: { width: "80px" } });
  const coefficient = field("coefficient", "coefficient", "4", { type: "number", step: "0.5", style: { width: "80px" } });
  const n = field("n", "new tokens", "10", { type: "number", min: 1, style: { width: "70px" } });
  const t = field("temperature", "temperature", "0", { type: "number", step: "0.1", min: 0, style: { width: "80px" } });
  const seed = field("seed", "seed", "0", { type: "number", style: { width: "70px" } });
  const contrastBox = h("div", { class: "row", style: { flex: "1 1 100%" } }, positive.el, negative.el);
  const featureBox = h("div", { class: "row" }, sae ? sae.el : null, feature.el);
  const toggle = () => { contrastBox.hidden = kind.value !== "contrast"; featureBox.hidden = kind.value !== "feature"; };
  kind.select.addEventListener("change", toggle); toggle();
  const out = h("div", { id: "steering-out" });
  const run = async () => {
    const body = { prompt: prompt.value, layer: Number(layer.value), coefficient: num(coefficient.value, 4), max_new_tokens: num(n.value, 10), temperature: num(t.value, 0), seed: num(seed.value, 0) };
    if (kind.value === "contrast") { body.positive = positive.value; body.negative = negative.value; } else { body.sae = Number(sae.value); body.feature = Number(feature.value); }
    try {
      const r = await api("steer", body);
      const col = (title, strings, id) => h("div", { class: "panel" }, h("h3", { text: title }), h("div", { class: "tokens", id }, strings.map(s => h("span", { class: "tok", text: s }))));
      out.replaceChildren(h("p", { class: "small", id: "steer-summary", text: `Adding ${r.coefficient} × (${r.source}; norm ${fmt(r.vector_norm)}) at ${r.hook}.` }),
        h("div", { class: "cols" }, col("Unsteered", r.unsteered, "unsteered"), col("Steered", r.steered, "steered")));
    } catch (e) { showError(out, e); }
  };
  view.append(h("div", { class: "panel" }, h("div", { class: "row" }, prompt.el, layer.el, kind.el, contrastBox, featureBox, coefficient.el, n.el, t.el, seed.el,
    h("button", { id: "run-steering", onclick: run }, "Compare")), out));
};

// ---- shell ----
let rendering = 0;
async function render() {
  const { page } = route();
  const view = $("#view");
  const ticket = ++rendering;
  document.querySelectorAll("#pages a").forEach(a => a.classList.toggle("active", a.dataset.page === page));
  view.replaceChildren();
  const show = pages[page];
  if (!show) { view.append(h("div", { class: "error", text: `No page '${page}'.` })); return; }
  try { await show(view); } catch (e) { if (ticket === rendering) showError(view, e); }
  if (ticket === rendering) view.dataset.ready = page;
}

async function main() {
  try { model = await api("model"); }
  catch (e) { $("#view").replaceChildren(h("div", { class: "error", text: "The Explorer's API did not answer: " + e.message })); return; }
  $("#model-info").textContent = `${model.name} · ${model.kind} · ${model.n_layers} layers × ${model.n_heads} heads · d_model ${model.d_model} · vocab ${model.d_vocab}` + (model.saes.length ? ` · ${model.saes.length} SAE` : "");
  window.addEventListener("hashchange", () => { delete $("#view").dataset.ready; render(); });
  document.querySelectorAll("#pages a").forEach(a => a.addEventListener("click", ev => {
    ev.preventDefault();
    // Carry the prompt over to the next page, so one idea can be followed from view to view.
    const p = route().params.get("prompt");
    location.hash = a.dataset.page + (p ? "?prompt=" + encodeURIComponent(p) : "");
  }));
  pollStatus();
  await render();
}
main();
