// The Dockgate console: five pages over the JSON API of /api/. Plain modern JavaScript, no build
// step, nothing fetched from elsewhere. Each page's question lives in the URL's hash
// (#/ask?principal=...), so a link to it asks it again; the console never writes.
"use strict";

const PAGES = ["ask", "who-can", "what-can", "preview", "state"];
const PHASES = {
  Request: "the request",
  IdentityPolicy: "identity policy",
  ResourcePolicy: "repository policy",
  PermissionsBoundary: "permissions boundary",
  SessionPolicy: "session policy",
  ServiceControlPolicy: "service control policy (SCP)",
  ResourceControlPolicy: "resource control policy (RCP)",
  RootUser: "root user",
};
const ACCESS = {
  Allowed: "✓ Allowed",
  Conditional: "? Conditional",
  Partial: "◐ Partial",
  ImplicitlyDenied: "– Denied (implicitly)",
  ExplicitlyDenied: "✗ Denied (explicitly)",
};
let statePoll = null;
let catalogue = null;

// -- small DOM and HTTP tools ------------------------------------------------------------------

function h(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) {
  return document.getElementById(id);
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = { error: `the server answered ${response.status}` };
  }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function show(target, ...content) {
  target.replaceChildren(...content);
}

function failure(target, error) {
  show(target, h("p", { class: "error", role: "alert" }, `Error: ${error.message}`));
}

function accessLabel(access) {
  return ACCESS[access] || access;
}

// -- routing: #/page?question ------------------------------------------------------------------

function route() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "ask";
  const [name, query] = hash.split("?", 2);
  const page = PAGES.includes(name) ? name : "ask";
  const params = new URLSearchParams(query || "");
  for (const other of PAGES) $(`page-${other}`).hidden = other !== page;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${$(`page-${page}`).querySelector("h1").textContent} · Dockgate console`;
  if (statePoll !== null && page !== "state") {
    clearInterval(statePoll);
    statePoll = null;
  }
  ROUTES[page](params);
}

function navigate(page, params) {
  const query = params.toString();
  const hash = `#/${page}${query ? `?${query}` : ""}`;
  if (location.hash === hash) route();
  else location.hash = hash;
}

const ROUTES = {
  "ask": openAsk,
  "who-can": openWhoCan,
  "what-can": openWhatCan,
  "preview": openPreview,
  "state": openState,
};

// -- search as you type ------------------------------------------------------------------------

function suggest(input, list, path, key) {
  let asked = null;
  input.addEventListener("input", async () => {
    const text = input.value.trim();
    if (text === asked) return;
    asked = text;
    try {
      const found = await api(`${path}?q=${encodeURIComponent(text)}`);
      if (asked !== text) return; // a later keystroke asked again
      $(list).replaceChildren(...found[key].map((arn) => h("option", { value: arn })));
    } catch (_) {
      // suggestions are a convenience: the question itself reports errors
    }
  });
}

async function fillSuggestions() {
  try {
    const [principals, repositories] = await Promise.all([
      api("/api/principals"),
      api("/api/repositories"),
    ]);
    $("principal-options").replaceChildren(
      ...principals.principals.map((arn) => h("option", { value: arn })),
    );
    $("repository-options").replaceChildren(
      ...repositories.repositories.map((arn) => h("option", { value: arn })),
    );
  } catch (_) {
    // the pages report the server's errors when a question is asked
  }
}

// -- Ask ---------------------------------------------------------------------------------------

async function loadCatalogue() {
  if (catalogue !== null) return catalogue;
  catalogue = await api("/api/actions");
  const select = $("ask-action");
  select.replaceChildren(
    h("optgroup", { label: "Repository actions" },
      catalogue.repository.map((a) => h("option", { value: a }, a))),
    h("optgroup", { label: "Account actions (resource *)" },
      catalogue.account.map((a) => h("option", { value: a }, a))),
  );
  select.value = "ecr:BatchGetImage";
  return catalogue;
}

function addContextRow(key, value) {
  const rows = $("ask-context");
  const index = rows.children.length + 1;
  const row = h("div", { class: "context-row" },
    h("div", { class: "field" },
      h("label", { for: `ask-context-key-${index}` }, `Key ${index}`),
      h("input", { id: `ask-context-key-${index}`, class: "context-key", value: key || "",
        placeholder: "aws:SourceIp", autocomplete: "off", spellcheck: "false" })),
    h("div", { class: "field" },
      h("label", { for: `ask-context-value-${index}` }, `Value ${index}`),
      h("input", { id: `ask-context-value-${index}`, class: "context-value", value: value || "",
        placeholder: "203.0.113.7", autocomplete: "off", spellcheck: "false" })),
  );
  const remove = h("button", { type: "button", "aria-label": `Remove context key ${index}` }, "Remove");
  remove.addEventListener("click", () => {
    row.remove();
    $("ask-add-context").focus();
  });
  row.append(remove);
  rows.append(row);
  return row;
}

function askParams() {
  const params = new URLSearchParams();
  params.set("principal", $("ask-principal").value.trim());
  params.set("action", $("ask-action").value);
  const repository = $("ask-repository").value.trim();
  if (repository) params.set("resource", repository);
  for (const row of $("ask-context").children) {
    const key = row.querySelector(".context-key").value.trim();
    if (key) params.append("context", `${key}=${row.querySelector(".context-value").value}`);
  }
  return params;
}

async function openAsk(params) {
  const result = $("ask-result");
  try {
    await loadCatalogue();
  } catch (error) {
    failure(result, error);
    return;
  }
  if (!params.has("principal")) return;
  $("ask-principal").value = params.get("principal");
  if (params.get("action")) $("ask-action").value = params.get("action");
  $("ask-repository").value = params.get("resource") || "";
  $("ask-context").replaceChildren();
  for (const pair of params.getAll("context")) {
    const at = pair.indexOf("=");
    addContextRow(at < 0 ? pair : pair.slice(0, at), at < 0 ? "" : pair.slice(at + 1));
  }
  $("ask-link").href = `#/ask?${params}`;
  show(result, h("p", {}, "Deciding…"));
  try {
    const answer = await api(`/api/ask?${params}`);
    show(result, ...renderDecision(answer));
  } catch (error) {
    failure(result, error);
  }
}

function renderDecision(answer) {
  const verdict = answer.decision === "Allowed" ? "Allowed" : answer.decision;
  const parts = [
    h("h2", {}, "Decision"),
    h("p", {}, h("span", { class: `verdict ${verdict}`, id: "ask-verdict" }, accessLabel(verdict)),
      ` at revision ${answer.revision}`),
  ];
  if (answer.errors.length) {
    parts.push(h("p", { class: "error" }, "Context values that did not convert: ",
      answer.errors.join("; ")));
  }
  parts.push(h("h2", {}, "Why"));
  const list = h("ol", { class: "reasons" });
  for (const reason of answer.reasons) list.append(h("li", {}, renderReason(reason)));
  parts.push(list);
  return parts;
}

function renderReason(reason) {
  const box = h("div", { class: "reason" },
    h("p", {}, h("span", { class: "phase" }, PHASES[reason.phase] || reason.phase),
      reason.effect ? ` · ${reason.effect}` : ""),
    h("p", {}, reason.detail));
  if (reason.policy === undefined) return box;
  const sid = reason.sid ? ` (Sid ${reason.sid})` : "";
  box.append(h("p", {}, "Policy ", h("code", {}, reason.policy),
    `, statement ${reason.statement}${sid}`));
  if (reason.document === null) {
    box.append(h("p", { class: "note" }, "The store no longer holds this policy."));
  } else {
    box.append(renderPolicy(reason.document, reason.statement));
  }
  return box;
}

function renderPolicy(document_, deciding) {
  // The document as JSON, one block per statement, the deciding one marked in text and color
  const pre = h("pre", { class: "policy", tabindex: "0", "aria-label": "Policy text" });
  const statements = Array.isArray(document_.Statement) ? document_.Statement : [document_.Statement];
  const head = Object.fromEntries(Object.entries(document_).filter(([k]) => k !== "Statement"));
  const headText = JSON.stringify(head, null, 2);
  const opening = Object.keys(head).length ? `${headText.slice(0, -2)},` : "{";
  pre.append(`${opening}\n  "Statement": [\n`);
  statements.forEach((statement, index) => {
    const text = JSON.stringify(statement, null, 2).replace(/^/gm, "    ");
    const comma = index < statements.length - 1 ? "," : "";
    if (index === deciding) {
      pre.append(h("mark", { class: "statement deciding", "data-statement": index },
        h("span", { class: "deciding-label" }, `    ▶ statement ${index}: the deciding statement`),
        `${text}${comma}\n`));
    } else {
      pre.append(h("span", { class: "statement", "data-statement": index }, `${text}${comma}\n`));
    }
  });
  pre.append("  ]\n}");
  return pre;
}

// -- Who can -----------------------------------------------------------------------------------

async function openWhoCan(params) {
  const result = $("who-result");
  if (!params.has("repository")) return;
  $("who-repository").value = params.get("repository");
  show(result, h("p", {}, "Asking…"));
  try {
    const answer = await api(`/api/who-can?${params}`);
    show(result, ...renderMatrix(answer));
  } catch (error) {
    failure(result, error);
  }
}

function renderMatrix(answer) {
  if (!answer.rows.length) {
    return [h("p", {}, `No principal has any of these actions on ${answer.repository}.`)];
  }
  const table = h("table", { id: "who-matrix" },
    h("caption", {}, `Who can act on ${answer.repository} (revision ${answer.revision})`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", class: "arn" }, "Principal"),
      h("th", { scope: "col" }, "Type"),
      answer.groups.map((group) => h("th", { scope: "col", title: group.actions.join(", ") },
        group.name)))));
  const body = h("tbody");
  answer.rows.forEach((row, r) => {
    const cells = answer.groups.map((group, c) => {
      const cell = row.cells[group.name];
      const tipId = `who-tip-${r}-${c}`;
      const button = h("button", {
        type: "button", class: `cell ${cell.access}`, "aria-describedby": tipId,
        "data-principal": row.principal, "data-group": group.name,
      }, accessLabel(cell.access), h("span", { class: "tip", role: "tooltip", id: tipId },
        cellReason(row, group.name, cell)));
      button.addEventListener("click", () => {
        const ask = new URLSearchParams({ principal: row.principal, action: group.actions[0],
          resource: answer.repository });
        navigate("ask", ask);
      });
      return h("td", {}, button);
    });
    const kind = row.decided ? row.type : `${row.type} (a grant as written, not decided)`;
    body.append(h("tr", {}, h("th", { scope: "row", class: "arn" }, row.principal),
      h("td", {}, kind), cells));
  });
  table.append(body);
  return [
    h("p", { class: "note" }, "Focus or hover a cell for its reason; press Enter to ask that question."),
    h("div", { class: "table-wrap" }, table),
  ];
}

function cellReason(row, group, cell) {
  const lines = cell.actions.map((found) => {
    const why = (found.reasons || []).map((reason) => reason.detail);
    const when = (found.conditions || []).map((c) =>
      `when statement ${c.statement} of ${c.policy} holds (${c.keys.join(", ")})`);
    const text = [...why, ...when].join("; ") || "no policy allows it";
    return `${found.action}: ${accessLabel(found.access)} (${text})`;
  });
  return `${group} for ${row.principal}: ${lines.join(" · ")}`;
}

// -- What can ----------------------------------------------------------------------------------

async function openWhatCan(params) {
  const result = $("what-result");
  if (!params.has("principal")) return;
  $("what-principal").value = params.get("principal");
  $("what-repository").value = params.get("repository") || "";
  show(result, h("p", {}, "Asking…"));
  try {
    const answer = await api(`/api/what-can?${params}`);
    show(result, ...renderWhatCan(answer));
  } catch (error) {
    failure(result, error);
  }
}

function renderWhatCan(answer) {
  const parts = [h("h2", {}, `What ${answer.principal} can do (revision ${answer.revision})`)];
  if (!answer.repositories.length) parts.push(h("p", {}, "Nothing: no action is allowed."));
  for (const group of answer.repositories) {
    const title = group.repository === "*" ? "Account actions (resource *)" : group.repository;
    const table = h("table", {},
      h("caption", {}, title),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Action"),
        h("th", { scope: "col" }, "Access"), h("th", { scope: "col" }, "Why"))),
      h("tbody", {}, group.actions.map((found) => h("tr", {},
        h("th", { scope: "row" }, found.action),
        h("td", { class: found.access }, accessLabel(found.access)),
        h("td", { class: "arn" }, [
          ...(found.reasons || []).map((r) => r.detail),
          ...(found.conditions || []).map((c) =>
            `when statement ${c.statement} of ${c.policy} holds (${c.keys.join(", ")})`),
        ].join("; "))))));
    parts.push(h("div", { class: "table-wrap" }, table));
  }
  return parts;
}

// -- Preview -----------------------------------------------------------------------------------

function previewMode() {
  return document.querySelector('#preview-form input[name="mode"]:checked').value;
}

function syncPreviewMode() {
  const bundle = previewMode() === "bundle";
  for (const field of document.querySelectorAll("#preview-form .policy-only")) field.hidden = bundle;
  $("preview-text-label").textContent = bundle ? "Bundle (JSON)" : "Policy document (JSON)";
}

async function openPreview(params) {
  const result = $("preview-result");
  if (!params.has("text")) return;
  const mode = params.get("mode") === "bundle" ? "bundle" : "policy";
  document.querySelector(`#preview-form input[value="${mode}"]`).checked = true;
  syncPreviewMode();
  $("preview-kind").value = params.get("kind") || "identity";
  $("preview-target").value = params.get("target") || "";
  $("preview-text").value = params.get("text");
  let parsed;
  try {
    parsed = JSON.parse(params.get("text"));
  } catch (error) {
    failure(result, new Error(`the ${mode} is not valid JSON: ${error.message}`));
    return;
  }
  const body = mode === "bundle"
    ? { bundle: parsed }
    : { kind: $("preview-kind").value, target: $("preview-target").value.trim(), policy: parsed };
  show(result, h("p", {}, "Previewing…"));
  try {
    const answer = await api("/api/preview", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    show(result, ...renderPreview(answer));
  } catch (error) {
    failure(result, error);
  }
}

function renderPreview(answer) {
  const parts = [
    h("h2", {}, "What would change"),
    h("p", { id: "preview-summary" },
      `${answer.changes.length} change${answer.changes.length === 1 ? "" : "s"} of access, ` +
      `${answer.newAccess} of them new access, against revision ${answer.revision}. Nothing was written.`),
  ];
  if (!answer.changes.length) return parts;
  const table = h("table", { id: "preview-changes" },
    h("caption", {}, "Every principal, repository and action whose access would change"),
    h("thead", {}, h("tr", {}, ["Principal", "Repository", "Action", "Before", "After", "Why"]
      .map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, answer.changes.map((change) => h("tr", { class: change.newAccess ? "new" : null },
      h("th", { scope: "row", class: "arn" }, change.principal),
      h("td", { class: "arn" }, change.repository),
      h("td", {}, change.action),
      h("td", { class: change.before }, accessLabel(change.before)),
      h("td", { class: change.after }, accessLabel(change.after),
        change.newAccess ? h("strong", {}, " (new access)") : null),
      h("td", { class: "arn" }, (change.reasons || []).map((r) => r.detail).join("; "))))));
  parts.push(h("div", { class: "table-wrap" }, table));
  return parts;
}

// -- State -------------------------------------------------------------------------------------

function seconds(value) {
  if (value === null || value === undefined) return "not measured yet";
  if (value < 0.001) return `${(value * 1e6).toFixed(0)} µs`;
  if (value < 1) return `${(value * 1e3).toFixed(2)} ms`;
  return `${value.toFixed(2)} s`;
}

async function readState() {
  const result = $("state-result");
  try {
    show(result, renderState(await api("/api/state")));
  } catch (error) {
    failure(result, error);
  }
}

function renderState(state) {
  const rows = [
    ["Revision", state.revision],
    ["Store reachable", state.storeReachable ? "yes" : "no"],
    ["Staleness", `${state.staleness.toFixed(2)} s since the store last answered`],
    ["Deciding", state.tooStale ? "no: past --max-staleness, every question is refused" : "yes"],
  ];
  const metrics = state.metrics;
  if (metrics === null) {
    rows.push(["Decisions", "this process makes no decisions and no worker metrics are readable"]);
  } else {
    const rate = metrics.rate === null ? "measuring (read again in a second)"
      : `${metrics.rate.toFixed(1)} a second over the last ${metrics.window.toFixed(0)} s`;
    rows.push(["Decision rate", rate]);
    rows.push(["Decisions made", `${metrics.total} (` + Object.entries(metrics.decisions)
      .map(([outcome, count]) => `${outcome}: ${count}`).join(", ") + ")"]);
    rows.push(["Mean latency", seconds(metrics.latencyMean)]);
    rows.push(["Median latency (at most)", seconds(metrics.latencyP50)]);
    rows.push(["99th percentile (at most)", seconds(metrics.latencyP99)]);
    rows.push(["Metrics from", metrics.source]);
  }
  return h("dl", { class: "state", id: "state-figures" },
    rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]));
}

function openState() {
  readState();
  if (statePoll === null) statePoll = setInterval(readState, 2000);
}

// -- wiring ------------------------------------------------------------------------------------

function focusHeading() {
  const page = document.querySelector(".page:not([hidden])");
  if (page) page.querySelector("h1").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  suggest($("ask-principal"), "principal-options", "/api/principals", "principals");
  suggest($("what-principal"), "principal-options", "/api/principals", "principals");
  for (const id of ["ask-repository", "who-repository", "what-repository"]) {
    suggest($(id), "repository-options", "/api/repositories", "repositories");
  }
  $("ask-add-context").addEventListener("click", () => {
    addContextRow("", "").querySelector("input").focus();
  });
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate("ask", askParams());
  });
  $("who-form").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate("who-can", new URLSearchParams({ repository: $("who-repository").value.trim() }));
  });
  $("what-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ principal: $("what-principal").value.trim() });
    const repository = $("what-repository").value.trim();
    if (repository) params.set("repository", repository);
    navigate("what-can", params);
  });
  for (const radio of document.querySelectorAll('#preview-form input[name="mode"]')) {
    radio.addEventListener("change", syncPreviewMode);
  }
  $("preview-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ mode: previewMode(), text: $("preview-text").value });
    if (previewMode() === "policy") {
      params.set("kind", $("preview-kind").value);
      params.set("target", $("preview-target").value.trim());
    }
    navigate("preview", params);
  });
  $("state-refresh").addEventListener("click", readState);
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    focusHeading();
  });
  for (const link of document.querySelectorAll("nav a")) {
    link.addEventListener("click", () => setTimeout(focusHeading, 0));
  }
  window.addEventListener("hashchange", route);
  fillSuggestions();
  route();
});
