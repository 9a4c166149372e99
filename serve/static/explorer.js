// The audience explorer: calls the app's JSON routes with relative URLs (so it works under any
// route prefix) and shows every answer, every wait and every error on the page. Every call sends
// the API key the page asked for; the key is kept in this tab's sessionStorage only (gone when
// the tab closes, never in localStorage or a cookie), and a refused key asks for another.
import { UserMap } from "./map.js";

const TIMEOUT_MS = 60000;
const TABLE_ROWS = 200; // audience rows shown (the map shows the whole audience)
const $ = (id) => document.getElementById(id);
const state = { run: null, audience: [], seeds: [], lists: new Map(), userRequest: null, expansion: 0 };

class ApiError extends Error {}

// ---- the API key ------------------------------------------------------------------------------
const KEY = "reco-api-key";
const apiKey = () => sessionStorage.getItem(KEY);

function askForKey(message) {
  sessionStorage.removeItem(KEY);
  $("key-status").hidden = true;
  $("key-form").hidden = false;
  $("key-error").textContent = message || "";
  $("key-error").hidden = !message;
  $("api-key").value = "";
  $("api-key").focus();
}

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) { askForKey("Paste an API key (python -m serve.keys new makes one)."); return; }
  sessionStorage.setItem(KEY, key);
  $("api-key").value = "";
  $("key-form").hidden = true;
  $("key-status").hidden = false;
  start();
}

// One request; a readable ApiError for every way it can fail (refused, failed, unreachable, slow).
async function request(path, body, signal) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort("timeout"), TIMEOUT_MS);
  if (signal) signal.addEventListener("abort", () => ctl.abort("replaced"));
  const headers = { authorization: `Bearer ${apiKey() || ""}` };
  let response;
  try {
    response = await fetch(path, body === undefined ? { headers, signal: ctl.signal } : {
      method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body), signal: ctl.signal,
    });
  } catch (e) {
    if (ctl.signal.reason === "replaced") throw new DOMException("a newer request replaced this one", "AbortError");
    if (ctl.signal.reason === "timeout") throw new ApiError(`No answer after ${TIMEOUT_MS / 1000} s: the server is busy or stuck. Try again.`);
    throw new ApiError("Could not reach the server. Is it still running?");
  } finally {
    clearTimeout(timer);
  }
  if (response.ok) return response;
  const text = await response.text();
  let data = null;
  try { data = JSON.parse(text); } catch { /* not JSON: described below */ }
  const err = data && typeof data.error === "object" ? data.error : null;
  const reason = (err ? err.message : text.slice(0, 200)) || response.statusText;
  const ref = err && err.request_id ? ` (request ${err.request_id})` : "";
  if (response.status === 401) {
    askForKey(`The key was refused: ${reason}`);
    throw new ApiError("The API key was refused: enter a valid one above.");
  }
  const what = { 400: "The request was refused", 403: "This key may not do that", 404: "Not found", 413: "Too large",
    422: "The request is not valid", 503: "The server is not ready" }[response.status] || `The server failed (HTTP ${response.status})`;
  throw new ApiError(`${what}: ${reason}${ref}`);
}

// A JSON answer.
async function api(path, body, signal) {
  const response = await request(path, body, signal);
  try { return await response.json(); } catch { throw new ApiError("The server answered with something that is not JSON."); }
}

// A file (the report plots) as an object URL: an <img src> could not send the key.
async function blobUrl(path) {
  return URL.createObjectURL(await (await request(path)).blob());
}

// Run `work` with a loading state: busy panel, disabled buttons, a spinner and a message.
async function busy({ panel, buttons = [], status, message, error }, work) {
  panel.setAttribute("aria-busy", "true");
  buttons.forEach((b) => { b.disabled = true; });
  if (status) { status.textContent = message; status.classList.add("spinner"); }
  if (error) error.hidden = true;
  try {
    return await work();
  } catch (e) {
    if (e instanceof ApiError && error) { error.textContent = e.message; error.hidden = false; }
    else if (!(e instanceof DOMException || e?.name === "AbortError")) {
      if (error) { error.textContent = `Something went wrong on the page: ${e.message}`; error.hidden = false; }
      console.error(e);
    }
    return null;
  } finally {
    panel.removeAttribute("aria-busy");
    buttons.forEach((b) => { b.disabled = false; });
    if (status) { status.classList.remove("spinner"); if (status.textContent === message) status.textContent = ""; }
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

const fmt = (x, digits = 4) => (x === null || x === undefined ? "–" : typeof x === "number" ? x.toFixed(digits) : String(x));
const itemName = (it) => (it.name ? `${it.name}` : `item ${it.item_id}`);
const parseIds = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);

// ---- the run and its prepared lists ---------------------------------------------------------
async function loadRun() {
  const info = $("run-info");
  const run = await busy({ panel: info, error: $("run-error") }, () => api("v1/explorer/run"));
  if (!run) { info.textContent = "The run could not be loaded."; return; }
  state.run = run;
  info.replaceChildren(
    "Run ", el("b", { id: "run-dir" }, run.run_dir), ` · ${run.data} · `,
    el("b", {}, run.users.toLocaleString()), " users, ", el("b", {}, run.topics.toLocaleString()), " topics",
    run.interactions ? `, ${run.interactions.toLocaleString()} interactions` : "",
    run.ranker ? ` · ranker ${run.ranker}` : " · no ranker", run.created_at ? ` · made ${run.created_at}` : "");
  $("weight-label").textContent = run.weight_label;
  $("audience-size").max = run.limits.max_audience_size;
  $("audience-size").min = run.limits.min_audience_size;
  const lists = await busy({ panel: $("expand-panel"), error: $("expand-error") }, () => api("v1/explorer/seed-lists"));
  if (!lists) return;
  const select = $("seed-list");
  select.querySelectorAll("optgroup").forEach((g) => g.remove()); // a second key: the lists once
  for (const bucket of ["small", "medium", "large"]) {
    const group = el("optgroup", { label: `${bucket} lists` });
    for (const l of lists.lists.filter((x) => x.bucket === bucket)) {
      state.lists.set(l.id, l);
      group.append(el("option", { value: l.id }, `${l.label} (${l.size} users)`));
    }
    if (group.children.length) select.append(group);
  }
}

async function pickList() {
  const id = $("seed-list").value;
  if (!id) return;
  const list = await busy({ panel: $("expand-panel"), buttons: [$("expand-btn")], status: $("expand-status"),
    message: "Loading the seed list…", error: $("expand-error") }, () => api(`v1/explorer/seed-lists/${encodeURIComponent(id)}`));
  if (list) $("seed-ids").value = list.user_ids.join(" ");
}

// ---- expansion: table and map ---------------------------------------------------------------
async function expand(event) {
  event.preventDefault();
  const seeds = parseIds($("seed-ids").value);
  const size = Number($("audience-size").value);
  const method = $("method").value;
  const body = { seed_user_ids: seeds, audience_size: Number.isFinite(size) ? Math.trunc(size) : 0, method };
  const result = await busy({ panel: $("expand-panel"), buttons: [$("expand-btn")], status: $("expand-status"),
    message: `Expanding ${seeds.length} seed ids with ${method}…`, error: $("expand-error") },
  () => api("v1/audiences/expand", body));
  if (!result) return;
  state.seeds = seeds;
  state.audience = result.audience;
  const generation = ++state.expansion; // a later expansion's answers win over this one's
  showAudience(result, seeds.length);
  await Promise.all([describeAudience(generation), drawMap(generation)]);
}

function showAudience(result, given) {
  $("results").hidden = false;
  const unknown = result.seeds_unknown
    ? ` ${result.seeds_unknown} of the ids are not users of this run (${result.unknown_seed_ids.slice(0, 5).join(", ")}${result.seeds_unknown > 5 ? ", …" : ""}).` : "";
  const dupes = result.duplicate_seed_ids ? ` ${result.duplicate_seed_ids} repeated id(s) ignored.` : "";
  $("expand-summary").textContent = `${result.audience.length} users found by ${result.method} from ${result.seeds_used} seeds `
    + `(${given} ids given) in ${result.elapsed_ms.toFixed(0)} ms.${unknown}${dupes}`;
  const rows = result.audience.slice(0, TABLE_ROWS).map((m) => el("tr", { "data-user": m.user_id },
    el("td", { class: "num" }, String(m.rank)),
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => showUser(m.user_id) }, m.user_id)),
    el("td", { class: "num" }, fmt(m.score)),
    el("td", {}, el("span", { class: `source ${m.source}` }, m.source === "both" ? "both (density + classifier)" : m.source)),
    el("td", { class: "topics" }, "…")));
  $("audience-table").tBodies[0].replaceChildren(...rows);
  $("audience-more").textContent = result.audience.length > TABLE_ROWS
    ? `Showing the first ${TABLE_ROWS} of ${result.audience.length}; the map shows all of them.` : "";
}

async function describeAudience(generation) {
  const shown = state.audience.slice(0, TABLE_ROWS).map((m) => m.user_id);
  if (!shown.length) return;
  const r = await busy({ panel: $("audience-wrap"), error: $("expand-error") }, () => api("v1/explorer/top-topics", { user_ids: shown, k: 3 }));
  if (generation !== state.expansion) return;
  for (const tr of $("audience-table").tBodies[0].rows) {
    const topics = r ? r.users[tr.dataset.user] || [] : null;
    tr.cells[4].textContent = topics === null ? "(not loaded)" : topics.map(itemName).join(" · ") || "(no history)";
  }
}

async function drawMap(generation) {
  const points = await busy({ panel: $("map-figure"), status: $("map-note"), message: "Projecting…", error: $("map-error") },
    () => api("v1/explorer/map", { seed_user_ids: state.seeds, audience_user_ids: state.audience.map((m) => m.user_id) }));
  if (generation !== state.expansion) return;
  if (!points) { map.clear(); return; }
  const drawn = map.draw(points);
  $("legend-seeds").textContent = drawn.seeds ?? 0;
  $("legend-audience").textContent = drawn.audience ?? 0;
  $("legend-background").textContent = drawn.background ?? 0;
  const ev = points.explained_variance.map((v) => `${(100 * v).toFixed(1)}%`).join(" + ");
  const missing = points.seeds_unknown + points.audience_unknown;
  $("map-note").textContent = `PCA of the user embeddings (${ev} of the variance), fitted on the background sample.`
    + (missing ? ` ${missing} id(s) have no embedding and are not drawn.` : "") + " Click a point to see that user.";
}

// ---- one user: history beside recommendations --------------------------------------------
async function showUser(userId) {
  userId = String(userId).trim();
  $("user-id").value = userId;
  document.querySelectorAll("#audience-table tr.selected").forEach((tr) => tr.classList.remove("selected"));
  document.querySelector(`#audience-table tr[data-user="${CSS.escape(userId)}"]`)?.classList.add("selected");
  $("user-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  state.userRequest?.abort();
  const ctl = new AbortController();
  state.userRequest = ctl;
  const k = Math.min(10, state.run?.limits.max_k ?? 10);
  const shown = await busy({ panel: $("user-panel"), buttons: [$("user-btn")], status: $("user-status"), message: `Loading user ${userId}…`,
    error: $("user-error") }, async () => {
    if (!userId) throw new ApiError("Type a user id, or pick a user in the table or on the map.");
    const [history, recs] = await Promise.all([
      api(`v1/explorer/users/${encodeURIComponent(userId)}/history`, undefined, ctl.signal),
      api("v1/recommend", { user_id: userId, k }, ctl.signal).catch((e) => e),
    ]);
    if (ctl.signal.aborted) return;
    $("user-details").hidden = false;
    showHistory(history);
    showRecommendations(recs);
    return true;
  });
  if (!shown && !ctl.signal.aborted) $("user-details").hidden = true; // no stale user under an error
}

function showHistory(h) {
  $("history-count").textContent = `(${Math.min(h.items.length, h.total)} of ${h.total}, ${h.weight_label} highest first)`;
  $("history-table").tBodies[0].replaceChildren(...h.items.map((it) => el("tr", {},
    el("td", {}, itemName(it), it.held_out ? el("span", { class: "held-out" }, " (held out)") : ""),
    el("td", { class: "num" }, fmt(it.weight, it.weight % 1 ? 1 : 0)),
    el("td", {}, it.ts > 1e8 ? new Date(it.ts * 1000).toISOString().slice(0, 10) : String(it.ts)))));
}

function showRecommendations(r) {
  const error = $("recs-error");
  if (r instanceof Error) {
    $("recs-table").tBodies[0].replaceChildren();
    error.textContent = r instanceof ApiError ? r.message : `Something went wrong: ${r.message}`;
    error.hidden = false;
    $("recs-note").textContent = "";
    return;
  }
  error.hidden = true;
  $("recs-note").textContent = `(${r.retriever}${r.fallback ? `; ${r.fallback_reason}` : ""})`;
  $("recs-table").tBodies[0].replaceChildren(...r.items.map((it, i) => el("tr", {},
    el("td", { class: "num" }, String(i + 1)), el("td", {}, itemName(it)),
    el("td", {}, el("span", { class: "bar", style: `width:${Math.round(it.probability * 120)}px` }), fmt(it.probability, 3)),
    el("td", { class: "num" }, fmt(it.retrieval_score, 3)))));
}

// ---- the offline evaluation ---------------------------------------------------------------
function metricTable(rows, columns, caption) {
  return el("table", {}, el("caption", {}, caption), el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { class: c.num ? "num" : "" }, c.label)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map((c) => el("td", { class: c.num ? "num" : "" }, c.get(r)))))));
}

function expansionBlock(ex) {
  const cols = [{ label: "bucket", get: (r) => r.first ? `${r.bucket} (${r.lists} lists, mean ${Math.round(r.mean)} seeds)` : "" },
    { label: "method", get: (r) => el("span", { class: r.best ? "best" : "" }, r.method) },
    { label: "recall@|H|", num: true, get: (r) => fmt(r.m["recall@holdout"], 3) + (r.m["recall@holdout_se"] != null ? ` ±${fmt(r.m["recall@holdout_se"], 3)}` : "") },
    { label: "recall@5|H|", num: true, get: (r) => fmt(r.m["recall@5x_holdout"], 3) },
    { label: "precision@|H|", num: true, get: (r) => fmt(r.m["precision@holdout"], 3) },
    { label: "recall@10% of users", num: true, get: (r) => fmt(r.m["recall@audience"], 3) },
    { label: "AUC", num: true, get: (r) => fmt(r.m.auc, 3) }];
  const rows = [];
  for (const bucket of ["small", "medium", "large"]) {
    const b = ex.buckets[bucket];
    if (!b) continue;
    const methods = Object.entries(b.methods);
    const top = Math.max(...methods.map(([, m]) => m["recall@holdout"] ?? -1));
    methods.forEach(([method, m], i) => rows.push({ bucket, lists: b.lists, mean: b.mean_size, first: i === 0, method, m, best: m["recall@holdout"] === top }));
  }
  const meta = ex.meta || {};
  return el("div", { class: "eval-block", id: "eval-expansion" }, el("h3", {}, "Audience expansion by seed-list size"),
    el("p", { class: "hint" }, `${meta.lists} lists from ${meta.source}; ${Math.round(100 * meta.holdout_share)}% of each held out, `
      + `${meta.splits} splits, ${meta.stage} stage. Best recall@|H| per bucket in bold.`),
    metricTable(rows, cols, "held-out seeds found (|H| = held-out seeds)"));
}

function rankingBlock(r) {
  const blocks = [el("h3", {}, `Ranking: ${r.model}`), el("p", { class: "hint" }, `${r.data}; best epoch ${r.best_epoch} of ${r.epochs_run}, early stopping on ${r.monitor}.`)];
  for (const [view, byTask] of Object.entries(r.test || {})) {
    const tasks = Object.entries(byTask).filter(([, v]) => v && typeof v === "object");
    const rows = tasks.length ? tasks : [[view, byTask]];
    const keys = [...new Set(rows.flatMap(([, m]) => Object.keys(m).filter((k) => typeof m[k] === "number")))];
    blocks.push(metricTable(rows, [{ label: "task", get: ([t]) => t },
      ...keys.map((k) => ({ label: k, num: true, get: ([, m]) => fmt(m[k], Number.isInteger(m[k]) ? 0 : 4) }))], `test: ${view}`));
  }
  return el("div", { class: "eval-block", id: "eval-ranking" }, ...blocks);
}

function embeddingBlock(e) {
  const rows = Object.entries(e).flatMap(([role, byModel]) => Object.entries(byModel).map(([model, m]) => ({ role, model, m })));
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.m)))];
  return el("div", { class: "eval-block", id: "eval-embeddings" }, el("h3", {}, "Embeddings: held-out topics"),
    metricTable(rows, [{ label: "users", get: (r) => r.role }, { label: "model", get: (r) => r.model },
      ...keys.map((k) => ({ label: k, num: true, get: (r) => fmt(r.m[k], Number.isInteger(r.m[k]) ? 0 : 4) }))], "hit@k and ranks of held-out topics"));
}

async function loadEvaluation() {
  const ev = await busy({ panel: $("evaluation"), status: $("evaluation-status"), message: "Loading the evaluation…",
    error: $("evaluation-error") }, () => api("v1/explorer/evaluation"));
  if (!ev) return;
  const body = [];
  if (ev.expansion) body.push(expansionBlock(ev.expansion));
  if (ev.ranking) body.push(rankingBlock(ev.ranking));
  if (ev.embeddings) body.push(embeddingBlock(ev.embeddings));
  if (ev.reports.length) {
    const figures = ev.reports.map((name) => {
      const img = el("img", { alt: name });
      blobUrl(`v1/explorer/reports/${encodeURIComponent(name)}`).then((url) => { img.src = url; },
        (e) => { img.replaceWith(el("p", { class: "error" }, e.message)); });
      return el("figure", {}, img, el("figcaption", { class: "hint" }, name));
    });
    body.push(el("div", { class: "eval-block" }, el("h3", {}, "Plots the evaluation wrote"), el("div", { class: "plots" }, ...figures)));
  }
  if (!body.length) body.push(el("p", {}, "This run has no evaluation yet (run python -m ray_jobs.evaluate)."));
  $("evaluation-body").replaceChildren(...body);
}

const map = new UserMap($("map"), (userId) => showUser(userId));
$("seed-list").addEventListener("change", pickList);
$("expand-form").addEventListener("submit", expand);
$("user-form").addEventListener("submit", (e) => { e.preventDefault(); showUser($("user-id").value); });
$("key-form").addEventListener("submit", useKey);
$("key-forget").addEventListener("click", () => askForKey(""));

function start() {
  loadRun();
  loadEvaluation();
}

if (apiKey()) { $("key-status").hidden = false; start(); } else askForKey("");
