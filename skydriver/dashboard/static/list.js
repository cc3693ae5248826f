// The scan list: the newest scans, filtered and searched here, kept current by the event stream of every
// scan (`summary` events carry a changed scan's new row).
import {
  age,
  api,
  classifiersText,
  config,
  el,
  eventLabel,
  follow,
  progressBar,
  setupSignOut,
  stateWord,
} from "./common.js";

const LIMIT = 500;
const rows = new Map(); // scan_id -> row
const tbody = document.getElementById("rows");
const q = document.getElementById("q");
const stateFilter = document.getElementById("state");
const recoFilter = document.getElementById("reco");
const deleted = document.getElementById("deleted");
const count = document.getElementById("count");
const empty = document.getElementById("empty");
let source = null;

function matches(row) {
  const [word] = stateWord(row);
  const want = stateFilter.value;
  if (want === "active" && !["queued", "starting", "scanning"].includes(word)) return false;
  if (want === "queued" && !["queued", "starting"].includes(word)) return false;
  if (want === "scanning" && word !== "scanning") return false;
  if (want === "done" && word !== "done") return false;
  if (want === "stopped" && !["stopped", "deleted"].includes(word)) return false;
  if (recoFilter.value && row.reco_algo !== recoFilter.value) return false;
  if (row.is_deleted && !deleted.checked) return false;
  const needle = q.value.trim().toLowerCase();
  if (!needle) return true;
  const hay = [
    row.scan_id,
    eventLabel(row),
    row.event ? `${row.event.run_id} ${row.event.event_id} ${row.event.event_type}` : "",
    row.reco_algo,
    row.nsides,
    row.created_by,
    classifiersText(row.classifiers),
    row.state,
  ]
    .join(" ")
    .toLowerCase();
  return needle.split(/\s+/).every((part) => hay.includes(part));
}

function rowNode(row) {
  const [word, cls] = stateWord(row);
  const href = `/dashboard/scan/${encodeURIComponent(row.scan_id)}`;
  const p = row.progress || { done: 0, expected: 0 };
  const progressText = p.expected ? `${p.done} / ~${p.expected} px` : "—";
  return el(
    "tr",
    { "data-scan-id": row.scan_id, class: row.is_deleted ? "deleted" : "" },
    el("td", { "data-label": "State" }, el("span", { class: `badge ${cls}`, title: `${row.state}: ${row.meaning}`, text: word })),
    el("td", { "data-label": "Event" }, el("a", { href, text: eventLabel(row) })),
    el("td", { "data-label": "Reco", text: row.reco_algo || "—" }),
    el("td", { "data-label": "Nsides", text: row.nsides || "—" }),
    el("td", { "data-label": "Progress", class: "progress" }, progressBar(p.done, p.expected, progressText), el("span", { text: ` ${progressText}` })),
    el("td", { "data-label": "Age", "data-created": String(row.created), text: age(row.created) }),
    el("td", { "data-label": "Classifiers", class: "classifiers", text: classifiersText(row.classifiers) || "—" }),
    el("td", { "data-label": "Scan" }, el("a", { href, class: "mono", text: row.scan_id.slice(0, 12) })),
  );
}

function render() {
  const sorted = [...rows.values()].sort((a, b) => b.created - a.created);
  const shown = sorted.filter(matches);
  tbody.replaceChildren(...shown.map(rowNode));
  count.textContent = `${shown.length} of ${sorted.length} scans`;
  empty.hidden = shown.length > 0;
  const recos = [...new Set(sorted.map((r) => r.reco_algo).filter(Boolean))].sort();
  const current = recoFilter.value;
  recoFilter.replaceChildren(el("option", { value: "", text: "all" }), ...recos.map((r) => el("option", { value: r, text: r })));
  recoFilter.value = recos.includes(current) ? current : "";
}

let pending = null;
function renderSoon() {
  // many events at once (a burst of progress) redraw once per frame
  if (pending === null) pending = requestAnimationFrame(() => {
    pending = null;
    render();
  });
}

async function load() {
  const data = await api(`/scans/summaries?limit=${LIMIT}${deleted.checked ? "&include_deleted_scans=true" : ""}`);
  rows.clear();
  for (const row of data.scans) rows.set(row.scan_id, row);
  render();
  if (source) source.close();
  source = follow(`/scans/events?summaries=true&last_event_id=${data.last_event_id}`, {
    summary: (row) => {
      rows.set(row.scan_id, row);
      renderSoon();
    },
  });
}

for (const input of [q, stateFilter, recoFilter]) input.addEventListener("input", render);
document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
deleted.addEventListener("change", load);
setInterval(() => {
  for (const td of tbody.querySelectorAll("td[data-created]")) td.textContent = age(Number(td.dataset.created));
}, 15000);
setupSignOut();
document.body.dataset.role = config.can_write ? "user" : "viewer";
load();
