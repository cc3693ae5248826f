// One scan: state, progress, rate and ETA range, the live skymap, workforce, event, products, and the
// delete and rescan buttons (for the user role). Kept current by the scan's event stream.
import {
  ApiError,
  api,
  classifiersText,
  config,
  duration,
  el,
  follow,
  setupSignOut,
  showError,
  stateWord,
} from "./common.js";
import { contourStyles, drawColourBar, drawFullSky, drawZoom, parseResult } from "./skymap.js";

const scanId = config.scan_id;
const levels = config.levels;
const $ = (id) => document.getElementById(id);
const figure = $("map-fig");
let current = null; // the latest summary
let sky = null; // the parsed result
let resultKind = "";
let draws = 0;
let source = null;
let ended = false;
let productsDocumented = null;

function fact(dl, term, value) {
  dl.append(el("dt", { text: term }), el("dd", { text: value === undefined || value === null || value === "" ? "—" : String(value) }));
}

function renderSummary(s) {
  current = s;
  const [word, cls] = stateWord(s);
  const badge = $("state");
  badge.textContent = `${word} · ${s.state}`;
  badge.className = `badge ${cls}`;
  $("meaning").textContent = s.meaning;
  document.body.dataset.state = s.state;

  // per-nside progress bars (monotone: an nside's bar never shrinks when refinement adds pixels to a later one)
  const bars = $("bars");
  const list = el("ul", { class: "bars" });
  for (const n of s.progress.nsides) {
    const max = n.finished ? n.generated : Math.max(n.generated, n.estimate, n.done, 1);
    const label = `nside ${n.nside}: ${n.done} / ${n.finished ? n.generated : `${n.generated} queued (~${n.estimate} expected)`}${n.finished ? " ✓ finished" : ""}`;
    list.append(
      el("li", { "data-nside": String(n.nside) },
        el("span", { class: "bar-label", text: label }),
        el("progress", { max: String(max), value: String(n.done), "aria-label": label })),
    );
  }
  if (!s.progress.nsides.length) list.append(el("li", { class: "muted", text: "no progress report yet" }));
  const total = el("p", { class: "total", id: "total", "data-done": String(s.progress.done), text: `${s.progress.done} pixels done of ~${s.progress.expected}` });
  bars.replaceChildren(list, total);

  if (s.rate_px_per_s) {
    const [lo, hi] = s.rate_band;
    $("rate").textContent = `${s.rate_px_per_s.toFixed(2)} pixels/s (${lo.toFixed(2)}–${hi.toFixed(2)}), measured over ${s.measured_pixels} pixels in ${duration(s.measured_over_s)}`;
  } else {
    $("rate").textContent = s.has_final_result ? "—" : s.why || "—";
  }
  if (s.has_final_result) {
    $("eta").textContent = "finished";
  } else if (s.eta) {
    const [left0, left1] = s.pixels_left;
    $("eta").textContent = `${duration(s.eta.low_s)} – ${duration(s.eta.high_s)} (${left0}–${left1} pixels left; finer nsides' counts are estimates)`;
  } else {
    $("eta").textContent = s.why || "—";
  }
  $("updated").textContent = s.last_updated ? new Date(s.last_updated * 1000).toLocaleString() : "—";

  const wf = $("workforce");
  wf.replaceChildren();
  const w = s.workforce;
  if (w) {
    fact(wf, "Running", w.n_running);
    fact(wf, "Failed", w.n_failed);
    fact(wf, "Requested", w.n_requested);
    fact(wf, "Backend", w.backend);
    fact(wf, "Statuses", Object.entries(w.statuses).map(([k, v]) => `${k}: ${v}`).join(", "));
    const errs = Object.entries(w.top_errors);
    $("errors").replaceChildren(...(errs.length ? errs.map(([e, n]) => el("li", { text: `${n}× ${e}` })) : [el("li", { class: "muted", text: "none" })]));
  } else {
    fact(wf, "Workers", "no report yet");
  }

  const ev = $("event");
  ev.replaceChildren();
  if (s.event) {
    fact(ev, "Run", s.event.run_id);
    fact(ev, "Event", s.event.event_id);
    fact(ev, "Type", s.event.event_type);
    const utc = new Date((s.event.mjd - 40587) * 86400000).toISOString().replace("T", " ").slice(0, 19);
    fact(ev, "Time", `MJD ${s.event.mjd} (${utc} UTC)`);
    fact(ev, "Real event", s.event.is_real_event ? "yes" : "no (simulated)");
  } else {
    fact(ev, "Event", "read by the scanner when it starts");
  }
  fact(ev, "Reco", s.reco_algo);
  fact(ev, "Nsides", s.nsides);
  fact(ev, "Priority", s.priority);
  fact(ev, "Classifiers", classifiersText(s.classifiers));
  fact(ev, "Submitted", `${new Date(s.created * 1000).toLocaleString()} by ${s.created_by || "?"}`);
  if (s.deleted_by) fact(ev, "Deleted by", s.deleted_by);
  if (s.replaced_by_scan_id) {
    ev.append(el("dt", { text: "Replaced by" }), el("dd", {}, el("a", { href: `/dashboard/scan/${s.replaced_by_scan_id}`, text: s.replaced_by_scan_id })));
  }

  const actions = $("actions");
  actions.hidden = !config.can_write;
  $("delete").disabled = s.is_deleted;
  renderProducts();
}

async function loadResult() {
  const data = await api(`/scan/${scanId}/result?include_deleted=true`);
  if (!data || !data.skyscan_result || !Object.keys(data.skyscan_result).length) return;
  sky = parseResult(data.skyscan_result);
  resultKind = data.is_final ? "final" : "partial";
  if (!sky.best) return;
  drawMap();
  renderProducts();
}

function drawMap() {
  if (!sky || !sky.best) return;
  $("map-empty").hidden = true;
  figure.hidden = false;
  const width = Math.min(figure.parentElement.clientWidth - 4, 900);
  drawFullSky($("sky"), width, sky, levels);
  drawZoom($("zoom"), Math.min(width, 480), sky, levels);
  drawColourBar($("colourbar"), Math.min(width, 560), levels);
  draws += 1;
  figure.dataset.draws = String(draws);
  figure.dataset.pixels = String(sky.count);
  figure.dataset.kind = resultKind;
  $("map-kind").textContent = `(${resultKind} result, ${sky.count} pixels)`;
  const raDeg = (sky.best.ra * 180) / Math.PI;
  const decDeg = (sky.best.dec * 180) / Math.PI;
  const best = $("bestfit");
  best.textContent = `Best fit${resultKind === "final" ? "" : " so far"}: RA ${raDeg.toFixed(3)}°, Dec ${decDeg.toFixed(3)}° (nside ${sky.best.nside} pixel ${sky.best.pix}, llh ${sky.best.llh.toFixed(3)})`;
  best.dataset.ra = raDeg.toFixed(4);
  best.dataset.dec = decDeg.toFixed(4);
  $("legend").replaceChildren(
    el("li", {}, el("span", { class: "key star", text: "★" }), ` best fit`),
    ...contourStyles(levels).map((c) => el("li", {}, el("span", { class: `key line${c.dashed ? " dashed" : ""}`, style: { borderColor: c.css } }), ` ${c.label}`)),
  );
}

function renderProducts() {
  const ul = $("products");
  const items = [];
  const hasResult = sky !== null;
  items.push(
    hasResult
      ? el("li", {}, el("a", { href: `/scan/${scanId}/result?include_deleted=true`, text: `Result JSON (${resultKind}, SkyScanResult)` }))
      : el("li", { class: "muted", text: "Result JSON: none yet" }),
  );
  items.push(el("li", {}, el("a", { href: `/scan/${scanId}/summary`, text: "Summary JSON" })));
  items.push(el("li", {}, el("a", { href: `/scan/${scanId}/events`, text: "Event stream (server-sent events)" })));
  ul.replaceChildren(...items, ...productItems);
}

let productItems = [];
async function loadProducts() {
  // the products route is shown where this SkyDriver has it (its OpenAPI document says so)
  if (productsDocumented === null) {
    const doc = await api("/openapi.json");
    productsDocumented = Boolean(doc.paths && doc.paths["/scan/{scan_id}/products"]);
  }
  if (!productsDocumented || sky === null) return;
  try {
    const data = await api(`/scan/${scanId}/products`);
    const found = Array.isArray(data?.products) ? data.products : Object.entries(data?.products || {}).map(([name, v]) => ({ name, ...(typeof v === "object" ? v : { url: v }) }));
    productItems = [el("li", {}, el("a", { href: `/scan/${scanId}/products`, text: "Alert products (list)" }))];
    for (const p of found) {
      const name = typeof p === "string" ? p : p.name || p.file || p.path;
      const href = (typeof p === "object" && (p.url || p.href)) || `/scan/${scanId}/products/${encodeURIComponent(name)}`;
      productItems.push(el("li", {}, el("a", { href, text: name })));
    }
  } catch (err) {
    productItems = [el("li", { class: "muted", text: `Alert products: ${err.message}` })];
  }
  renderProducts();
}

async function refresh() {
  renderSummary(await api(`/scan/${scanId}/summary?no_redirect=true`));
}

function openStream(lastEventId) {
  const resultChanged = () => loadResult().then(loadProducts).catch((e) => showError("action-msg", e));
  source = follow(`/scan/${scanId}/events?summaries=true&no_redirect=true&last_event_id=${lastEventId}`, {
    summary: (s) => {
      renderSummary(s);
      if (ended) {
        source.close();
        $("live").textContent = s.has_final_result ? "final" : "ended";
        $("live").className = "live";
      }
    },
    partial_result: resultChanged,
    final_result: () => {
      ended = true;
      resultChanged();
    },
    failed: () => {
      ended = true;
    },
    deleted: () => {
      ended = true;
    },
  });
  source.addEventListener("error", () => {
    if (ended) source.close();
  });
}

function setupActions() {
  const dialog = $("delete-dialog");
  $("delete").addEventListener("click", () => {
    $("delete-final").hidden = !(current && current.has_final_result);
    $("delete-completed").checked = false;
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok") return;
    const msg = $("action-msg");
    try {
      await api(`/scan/${scanId}?no_redirect=true`, { method: "DELETE", body: { delete_completed_scan: $("delete-completed").checked } });
      msg.textContent = "Deleted: its instance is being stopped.";
      await refresh();
    } catch (err) {
      msg.textContent = `Delete refused: ${err instanceof ApiError ? err.message : err}`;
    }
  });
  $("rescan").addEventListener("click", async () => {
    const msg = $("action-msg");
    try {
      const made = await api(`/scan/${scanId}/actions/rescan`, { method: "POST", body: {} });
      msg.replaceChildren("Rescan queued: ", el("a", { href: `/dashboard/scan/${made.scan_id}`, text: made.scan_id }));
    } catch (err) {
      msg.textContent = `Rescan refused: ${err.message}`;
    }
  });
}

async function main() {
  setupSignOut();
  setupActions();
  const first = await api(`/scan/${scanId}/summary?no_redirect=true`);
  renderSummary(first);
  await loadResult();
  await loadProducts();
  if (first.has_final_result || first.is_deleted) {
    $("live").textContent = first.has_final_result ? "final" : "deleted";
    $("live").className = "live";
  } else {
    openStream(first.last_event_id);
  }
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(drawMap, 200);
});
main().catch((e) => showError("action-msg", e));
