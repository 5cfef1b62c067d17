// factflow dashboard: asks the JSON API under /api/ and draws what it answers.
// Plain JavaScript, no build step; charts by plotly.js, served by factflow itself.
"use strict";

const STATUS_EVERY_MS = 5000;
// New events refresh the answers, but not more often than this.
const REFRESH_AT_MOST_EVERY_MS = 15000;

const page = {
  headline: null, // the summary of the headline KPI
  cards: [], // {kpi, element, question, load}
  answeredEvents: null, // events processed when the answers were last fetched
  answeredAt: 0,
  unanswered: false, // some answer failed for want of the warehouse
};

class ApiError extends Error {
  constructor(status, message, warehouse) {
    super(message);
    this.status = status;
    this.warehouse = warehouse; // "busy" or "unavailable" with a 503
  }
}

// The status bar explains a warehouse that cannot answer; each answer only says it waits.
function failureText(failure) {
  return failure.status === 503 ? `waiting for the warehouse (${failure.warehouse})` : failure.message;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, body && body.warehouse);
  }
  return body;
}

// --- questions ----------------------------------------------------------------------------

function sameList(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function parameters(kpi, question) {
  const query = new URLSearchParams();
  // The KPI's own grouping needs no `by`: its answer is the same without.
  if (!sameList(question.by, kpi.default_by)) {
    question.by.forEach((name) => query.append("by", name));
  }
  question.where.forEach(([name, value]) => query.append("where", `${name}:${value}`));
  if (question.from) query.append("from", question.from);
  if (question.to) query.append("to", question.to);
  const text = query.toString();
  return text ? `?${text}` : "";
}

// --- drawing ------------------------------------------------------------------------------

function show(element, visible) {
  element.hidden = !visible;
}

function cellText(value) {
  return value === null || value === undefined ? "NULL" : String(value);
}

function drawTable(table, answer) {
  const head = table.tHead;
  const body = table.tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  const headRow = head.insertRow();
  answer.columns.forEach((column) => {
    const th = document.createElement("th");
    th.textContent = column;
    if (answer.measures.includes(column)) th.className = "num";
    headRow.appendChild(th);
  });
  answer.rows.forEach((row) => {
    const tr = body.insertRow();
    answer.columns.forEach((column) => {
      const td = tr.insertCell();
      const value = row[column];
      td.textContent = cellText(value); // exact: decimals arrive as strings
      if (answer.measures.includes(column)) td.classList.add("num");
      if (value === null || value === undefined) td.classList.add("null");
    });
  });
  if (!answer.rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = answer.columns.length || 1;
    td.className = "null";
    td.textContent = "no rows";
  }
}

function drawChart(element, answer) {
  const dimensions = answer.columns.filter((column) => !answer.measures.includes(column));
  element.classList.remove("number");
  if (!dimensions.length) {
    // Nothing to draw along: the answer is a number (or a few).
    if (window.Plotly) window.Plotly.purge(element);
    element.classList.add("number");
    element.dataset.kind = "number";
    const row = answer.rows[0] || {};
    element.textContent = answer.measures.map((m) => `${cellText(row[m])} ${m}`).join(" · ");
    return;
  }
  if (!window.Plotly) {
    element.textContent = "charts are unavailable (plotly.js did not load)";
    return;
  }
  const time = answer.time_column;
  const x = time || dimensions[0];
  const others = dimensions.filter((column) => column !== x);
  const series = new Map();
  answer.rows.forEach((row) => {
    const key = others.map((column) => cellText(row[column])).join(" · ");
    if (!series.has(key)) series.set(key, []);
    series.get(key).push(row);
  });
  const traces = [];
  answer.measures.forEach((measure) => {
    series.forEach((rows, key) => {
      const names = [key, answer.measures.length > 1 ? measure : ""].filter(Boolean);
      traces.push({
        type: time ? "scatter" : "bar",
        mode: time ? "lines+markers" : undefined,
        name: names.join(" · ") || measure,
        x: rows.map((row) => cellText(row[x])),
        // Charts only: the table keeps the exact decimals.
        y: rows.map((row) => (row[measure] === null ? null : Number(row[measure]))),
      });
    });
  });
  const layout = {
    margin: { l: 56, r: 12, t: 8, b: 44 },
    barmode: "group",
    showlegend: traces.length > 1,
    legend: { orientation: "h", y: -0.25 },
    xaxis: {
      title: { text: x },
      type: "category",
      categoryorder: time ? "category ascending" : "trace",
    },
    yaxis: { title: { text: answer.measures.join(", ") }, rangemode: "tozero", automargin: true },
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1d2330" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    colorway: ["#2457c5", "#12805c", "#b54708", "#c01048", "#6938ef", "#0e9384", "#667085"],
  };
  // Plotly updates a chart it drew in place; anything else in the element goes first.
  if (element.dataset.kind !== "line" && element.dataset.kind !== "bar") element.textContent = "";
  element.dataset.kind = time ? "line" : "bar";
  window.Plotly.react(element, traces, layout, { displaylogo: false, responsive: true });
}

// --- the headline -------------------------------------------------------------------------

async function loadHeadline() {
  const kpi = page.headline;
  const value = document.getElementById("headline-value");
  const error = document.getElementById("headline-error");
  try {
    const answer = await getJson(`/api/kpi/${encodeURIComponent(kpi.name)}`);
    const dimensions = answer.columns.filter((column) => !answer.measures.includes(column));
    const measure = answer.measures[0];
    if (!dimensions.length && answer.rows.length === 1 && measure) {
      value.textContent = cellText(answer.rows[0][measure]);
      document.getElementById("headline-unit").textContent = measure;
    } else {
      value.textContent = `${answer.rows.length} rows`;
    }
    value.dataset.ready = "true";
    show(error, false);
  } catch (failure) {
    value.dataset.ready = "error";
    value.textContent = "—";
    error.textContent = failureText(failure);
    show(error, true);
    noteFailure(failure);
  }
}

// --- a card per KPI -----------------------------------------------------------------------

function makeCard(kpi) {
  const element = document.getElementById("kpi-card").content.firstElementChild.cloneNode(true);
  element.id = `kpi-${kpi.name}`;
  element.dataset.kpi = kpi.name;
  element.querySelector(".kpi-name").textContent = kpi.name;
  element.querySelector(".kpi-description").textContent =
    kpi.description + (kpi.owner ? ` (owner: ${kpi.owner})` : "");
  const chart = element.querySelector(".chart");
  chart.id = `chart-${kpi.name}`;
  chart.setAttribute("aria-label", `chart of ${kpi.name}`);
  element.querySelector(".answer-table").id = `table-${kpi.name}`;
  element.querySelector(".csv").id = `csv-${kpi.name}`;
  const card = {
    kpi,
    element,
    question: { by: [...kpi.default_by], where: [], from: "", to: "" },
    lastAnswer: null,
  };
  card.load = () => loadCard(card);
  if (kpi.group_bys.length) setUpFilters(card);
  return card;
}

function setUpFilters(card) {
  const { kpi, element } = card;
  const form = element.querySelector(".filters");
  form.id = `filters-${kpi.name}`;
  show(form, true);
  const groupBy = form.querySelector(".group-by");
  kpi.group_bys.forEach((name) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.name = "by";
    box.checked = card.question.by.includes(name);
    box.addEventListener("change", () => {
      // Keep the order of the KPI's own list, whatever the order of clicks.
      const checked = [...groupBy.querySelectorAll("input:checked")].map((b) => b.value);
      card.question.by = kpi.group_bys.filter((n) => checked.includes(n));
      if (!card.question.by.length) {
        // Asked by nothing, a KPI answers by its own grouping: show that it does.
        card.question.by = [...kpi.default_by];
        groupBy.querySelectorAll("input").forEach((b) => {
          b.checked = kpi.default_by.includes(b.value);
        });
      }
      card.load();
    });
    label.append(box, name);
    groupBy.appendChild(label);
  });
  const whereName = form.querySelector(".where-name");
  const whereValue = form.querySelector(".where-value");
  const values = form.querySelector("datalist");
  values.id = `values-${kpi.name}`;
  whereValue.setAttribute("list", values.id);
  kpi.group_bys.forEach((name) => whereName.add(new Option(name, name)));
  const offerValues = () => {
    const rows = (card.lastAnswer && card.lastAnswer.rows) || [];
    const seen = [...new Set(rows.map((row) => row[whereName.value]).filter((v) => v !== undefined && v !== null))];
    values.replaceChildren(...seen.map((v) => new Option(String(v))));
  };
  whereName.addEventListener("change", offerValues);
  whereValue.addEventListener("focus", offerValues);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = whereValue.value.trim();
    if (!value) return;
    card.question.where.push([whereName.value, value]);
    whereValue.value = "";
    drawWhere(card);
    card.load();
  });
  if (kpi.time_by) {
    const days = form.querySelector(".days");
    show(days, true);
    ["from", "to"].forEach((end) => {
      form.querySelector(`.${end}`).addEventListener("change", (event) => {
        card.question[end] = event.target.value;
        card.load();
      });
    });
  }
  form.querySelector(".reset").addEventListener("click", () => {
    card.question = { by: [...kpi.default_by], where: [], from: "", to: "" };
    groupBy.querySelectorAll("input").forEach((box) => {
      box.checked = kpi.default_by.includes(box.value);
    });
    form.querySelectorAll(".days input").forEach((input) => {
      input.value = "";
    });
    drawWhere(card);
    card.load();
  });
}

function drawWhere(card) {
  const list = card.element.querySelector(".where-list");
  list.replaceChildren(
    ...card.question.where.map(([name, value], index) => {
      const chip = document.createElement("span");
      chip.className = "chip";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `remove ${name} = ${value}`);
      remove.addEventListener("click", () => {
        card.question.where.splice(index, 1);
        drawWhere(card);
        card.load();
      });
      chip.append(`${name} = ${value}`, remove);
      return chip;
    }),
  );
}

async function loadCard(card) {
  const { kpi, element } = card;
  const query = parameters(kpi, card.question);
  // Filters clicked in quick succession: only the answer to the latest question is drawn.
  card.asked = (card.asked || 0) + 1;
  const asked = card.asked;
  const error = element.querySelector(".error");
  const name = encodeURIComponent(kpi.name);
  element.querySelector(".csv").href = `/api/kpi/${name}.csv${query}`;
  element.dataset.state = "loading";
  try {
    const answer = await getJson(`/api/kpi/${name}${query}`);
    if (asked !== card.asked) return;
    card.lastAnswer = answer;
    drawChart(element.querySelector(".chart"), answer);
    drawTable(element.querySelector(".answer-table"), answer);
    show(error, false);
    element.dataset.state = "ready";
  } catch (failure) {
    if (asked !== card.asked) return;
    error.textContent = failureText(failure);
    show(error, true);
    element.dataset.state = "error";
    noteFailure(failure);
  }
}

function noteFailure(failure) {
  if (failure.status === 503) page.unanswered = true;
}

async function refreshAll(events) {
  page.answeredEvents = events === undefined ? page.answeredEvents : events;
  page.answeredAt = Date.now();
  page.unanswered = false;
  await Promise.all([loadHeadline(), ...page.cards.map((card) => card.load())]);
  document.getElementById("answered-at").textContent = `answered at ${new Date().toLocaleTimeString()}`;
}

// --- live status --------------------------------------------------------------------------

function showStatus(status) {
  const warehouse = document.getElementById("status-warehouse");
  warehouse.textContent = status.warehouse;
  warehouse.dataset.state = status.warehouse;
  const message = document.getElementById("status-message");
  message.textContent = status.message || "";
  show(message, Boolean(status.message));
  if (status.warehouse !== "ok") return;
  const rate = status.events_per_second;
  document.getElementById("status-rate").textContent =
    rate === null || rate === undefined ? "measuring…" : rate.toLocaleString(undefined, { maximumFractionDigits: 1 });
  document.getElementById("status-events").textContent = status.events.toLocaleString();
  document.getElementById("status-last-event").textContent = status.last_event_at
    ? status.last_event_at.replace("T", " ").replace(/(\.\d+)?Z$/, "")
    : "none yet";
  const dead = document.getElementById("status-dead-letters");
  dead.textContent = status.dead_letters.toLocaleString();
  dead.classList.toggle("nonzero", status.dead_letters > 0);
}

async function pollStatus() {
  try {
    const status = await getJson("/api/status");
    showStatus(status);
    const stale = page.answeredEvents !== null && status.events !== page.answeredEvents;
    const due = Date.now() - page.answeredAt >= REFRESH_AT_MOST_EVERY_MS;
    if (status.warehouse === "ok") {
      if (page.answeredEvents === null && !page.unanswered) page.answeredEvents = status.events;
      else if ((stale || page.unanswered) && due) refreshAll(status.events);
    }
  } catch (failure) {
    showStatus({ warehouse: "unavailable", message: failure.message });
  } finally {
    window.setTimeout(pollStatus, STATUS_EVERY_MS);
  }
}

// --- start --------------------------------------------------------------------------------

async function start() {
  let catalogue;
  try {
    catalogue = await getJson("/api/kpis");
  } catch (failure) {
    const message = document.getElementById("status-message");
    message.textContent = failure.message;
    show(message, true);
    return;
  }
  document.getElementById("app-name").textContent = catalogue.app;
  document.title = `${catalogue.app} · factflow`;
  page.headline = catalogue.kpis.find((kpi) => kpi.name === catalogue.headline);
  document.getElementById("headline-question").textContent = page.headline.description;
  document.getElementById("headline-name").textContent = page.headline.name;
  document.getElementById("headline-owner").textContent = page.headline.owner ? `owner: ${page.headline.owner}` : "";
  const container = document.getElementById("kpis");
  page.cards = catalogue.kpis.map(makeCard);
  container.replaceChildren(...page.cards.map((card) => card.element));
  document.getElementById("refresh").addEventListener("click", () => refreshAll());
  pollStatus();
  await refreshAll();
}

document.addEventListener("DOMContentLoaded", start);
