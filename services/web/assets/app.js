// pbxfleet's fleet page. State comes from /api/events (Server-Sent Events): a
// snapshot, then batches of changes. Nothing polls; the 1 s timer only ages
// the "ago" labels locally.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const S = { sites: new Map(), rows: new Map(), rollouts: new Map(), current: "", rsites: new Map(), cells: new Map(), readOnly: true, detail: "", skew: 0 };

  function ago(t) {
    if (!t || t.startsWith("0001")) return "never";
    const s = Math.max(0, Math.round((Date.now() - S.skew - Date.parse(t)) / 1000));
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }
  function dur(ms) {
    if (ms == null) return "";
    if (ms < 1000) return ms + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    return Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
  }
  const clock = (t) => (t ? new Date(t).toLocaleTimeString() : "");

  // ---- fleet table ----
  function nodeLines(v, fn) { return (v.nodes || []).map((n) => "<div>" + fn(n) + "</div>").join(""); }
  function rowHTML(v) {
    const trunkCls = (n) => (n.trunk === "OK" || n.trunk === "Avail" || n.trunk === "Reachable" ? "ok" : n.healthy ? "" : "bad");
    return "<td class=mono>" + esc(v.site) + "</td><td>" + esc(v.scenario || "") + "</td>" +
      "<td>" + nodeLines(v, (n) => esc(n.role)) + "</td>" +
      "<td>" + nodeLines(v, (n) => "r" + n.desired_revision + " / " + (n.applied_revision === n.desired_revision ? "r" + n.applied_revision : '<span class=bad>r' + n.applied_revision + "</span>")) + "</td>" +
      "<td>" + nodeLines(v, (n) => '<span class="' + trunkCls(n) + '">' + esc(n.trunk) + "</span>") + "</td>" +
      "<td>" + nodeLines(v, (n) => (n.rtt_ms ? n.rtt_ms.toFixed(1) + " ms" : "-")) + "</td>" +
      "<td>" + nodeLines(v, (n) => n.last_probe ? '<span class="' + (n.last_probe === "trunk_works" ? "ok" : "bad") + '">' + esc(n.last_probe) + '</span> <span class="muted ago" data-t="' + esc(n.last_probe_at || "") + '">' + (n.last_probe_at ? ago(n.last_probe_at) : "") + "</span>" : "-") + "</td>" +
      "<td>" + nodeLines(v, (n) => (n.drift ? '<span class=bad>' + esc((n.drift_files || []).join(", ") || "drift") + "</span>" : "-")) + "</td>" +
      "<td>" + nodeLines(v, (n) => '<span class=ago data-t="' + esc(n.last_seen || "") + '">' + ago(n.last_seen) + "</span>") + "</td>" +
      '<td class=problem>' + nodeLines(v, (n) => (n.healthy ? '<span class=ok>ok</span>' : '<span class=bad>' + esc(n.problem || "unhealthy") + "</span>")) + "</td>";
  }
  function matches(v) {
    if ($("#f-unhealthy").checked && v.healthy) return false;
    const sc = $("#f-scenario").value;
    if (sc && v.scenario !== sc) return false;
    const q = $("#f-text").value.trim().toLowerCase();
    if (q) {
      const hay = [v.site, v.scenario].concat((v.nodes || []).flatMap((n) => [n.node, n.trunk, n.problem, n.last_probe, n.outcome])).join(" ").toLowerCase();
      if (!hay.includes(q)) return false;
    }
    return true;
  }
  function putSite(v) {
    S.sites.set(v.site, v);
    let tr = S.rows.get(v.site);
    if (!tr) {
      tr = document.createElement("tr");
      tr.className = "site";
      tr.dataset.site = v.site;
      tr.addEventListener("click", () => openDetail(v.site));
      S.rows.set(v.site, tr);
      insertRow(tr, v.site);
    }
    tr.innerHTML = rowHTML(v);
    tr.dataset.healthy = v.healthy ? "1" : "0";
    tr.classList.toggle("bad", !v.healthy);
    tr.classList.toggle("good", v.healthy);
    tr.hidden = !matches(v);
  }
  // The server's order of site names (state.go, naturalCompare): digit runs as
  // numbers, other bytes as bytes, so a site that appears later lands where a
  // reload would put it. (localeCompare puts "_" before "-" and both before
  // digits: another order.)
  function naturalCompare(a, b) {
    const run = (s, k) => { while (k < s.length && s[k] >= "0" && s[k] <= "9") k++; return k; };
    let i = 0, j = 0;
    while (i < a.length && j < b.length) {
      const ea = run(a, i), eb = run(b, j);
      if (ea > i && eb > j) {
        const na = a.slice(i, ea).replace(/^0+/, ""), nb = b.slice(j, eb).replace(/^0+/, "");
        if (na.length !== nb.length) return na.length - nb.length;
        if (na !== nb) return na < nb ? -1 : 1;
        i = ea; j = eb;
        continue;
      }
      if (a[i] !== b[j]) return a.charCodeAt(i) - b.charCodeAt(j);
      i++; j++;
    }
    return (a.length - i) - (b.length - j);
  }
  window.pbxfleetSiteOrder = naturalCompare; // the browser test compares it with the server's
  function insertRow(tr, site) {
    const body = $("#sites tbody");
    // Keep the rows sorted by name (new sites are rare: a linear walk is fine).
    for (const other of body.children) {
      if (naturalCompare(other.dataset.site, site) > 0) { body.insertBefore(tr, other); return; }
    }
    body.appendChild(tr);
  }
  function dropSite(id) {
    S.sites.delete(id);
    const tr = S.rows.get(id);
    if (tr) tr.remove();
    S.rows.delete(id);
  }
  function refilter() {
    let shown = 0;
    for (const [id, v] of S.sites) { const h = !matches(v); S.rows.get(id).hidden = h; if (!h) shown++; }
    $("#f-shown").textContent = shown + " of " + S.sites.size + " shown";
  }
  function counts() {
    let bad = 0, nodes = 0, badNodes = 0;
    for (const v of S.sites.values()) { if (!v.healthy) bad++; for (const n of v.nodes || []) { nodes++; if (!n.healthy) badNodes++; } }
    $("#counts").innerHTML = "<span><b>" + S.sites.size + "</b> sites</span><span><b>" + (S.sites.size - bad) + "</b> healthy</span>" +
      '<span class="' + (bad ? "bad" : "") + '"><b>' + bad + "</b> unhealthy</span><span class=muted>" + nodes + " nodes, " + badNodes + " unhealthy</span>";
    document.body.dataset.sites = String(S.sites.size);
    document.body.dataset.unhealthy = String(bad);
    let shown = 0;
    for (const tr of S.rows.values()) if (!tr.hidden) shown++;
    $("#f-shown").textContent = shown + " of " + S.sites.size + " shown";
  }

  // ---- rollouts ----
  function putRollout(h) { S.rollouts.set(h.id, h); }
  function renderRollouts() {
    const list = Array.from(S.rollouts.values()).sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    $("#rollouts tbody").innerHTML = list.map((h) => {
      const c = h.counters || {};
      const running = !h.finished_at;
      return '<tr data-rollout="' + esc(h.id) + '"><td class=mono>' + esc(h.id) + "</td><td>" + esc(h.origin || "operator") + '</td><td><span class="phase ' + esc(h.phase) + '">' + esc(h.phase) + "</span></td>" +
        "<td>" + c.sites + " sites: " + (c.converged || 0) + " converged, " + (c.failed || 0) + " failed, " + (c.unreachable || 0) + " unreachable" + (c.skipped ? ", " + c.skipped + " skipped" : "") + (c.restored ? ", " + c.restored + " nodes restored" : "") + "</td>" +
        "<td>" + esc(new Date(h.created_at).toLocaleString()) + "</td><td" + (running ? ' class=running data-start="' + esc(h.created_at) + '"' : "") + ">" + dur(running ? Date.now() - S.skew - Date.parse(h.created_at) : h.duration_ms) + "</td><td>" + esc(h.reason) + "</td></tr>";
    }).join("");
  }
  function renderCurrent() {
    const h = S.rollouts.get(S.current);
    const sec = $("#rollout");
    document.body.dataset.rollout = h ? h.id : "";
    document.body.dataset.phase = h ? h.phase : "";
    if (!h) {
      $("#r-id").textContent = "";
      $("#r-phase").textContent = "none yet";
      $("#r-phase").className = "phase";
      for (const b of $("#actions").querySelectorAll("button")) b.disabled = true;
      $("#waves").innerHTML = "";
      return;
    }
    $("#r-id").textContent = h.id;
    $("#r-phase").textContent = h.phase.replace("_", " ");
    $("#r-phase").className = "phase " + h.phase;
    $("#r-wave").textContent = h.waves ? "wave " + h.wave + " of " + h.waves + (h.canary ? " (wave 1 is the canary)" : "") : "";
    $("#r-reason").innerHTML = h.reason ? "<b>" + esc(h.reason) + "</b>: " + esc(h.message) : esc(h.message || "");
    const c = h.counters || {}, st = h.strategy || {}, a = h.accepted || {};
    const f = (c.failed || 0) - (a.failed || 0), u = (c.unreachable || 0) - (a.unreachable || 0);
    let b = '<span class="' + (f > st.max_failed ? "spent" : "") + '">failure budget: <b data-budget=failed>' + f + "</b> failed of " + st.max_failed + " allowed</span>" +
      '<span class="' + (u > st.max_unreachable ? "spent" : "") + '"><b data-budget=unreachable>' + u + "</b> unreachable of " + st.max_unreachable + " allowed</span>";
    if (st.wave_max_failed >= 0 || st.wave_max_unreachable >= 0) {
      b += "<span class=muted>this wave: " + (c.wave_failed || 0) + " failed" + (st.wave_max_failed >= 0 ? " of " + st.wave_max_failed : "") + ", " + (c.wave_unreachable || 0) + " unreachable" + (st.wave_max_unreachable >= 0 ? " of " + st.wave_max_unreachable : "") + "</span>";
    }
    $("#r-budget").innerHTML = b;
    $("#r-counters").textContent = c.sites + " sites: " + (c.converged || 0) + " converged, " + (c.in_flight || 0) + " in flight, " + (c.pending || 0) + " pending, " + (c.failed || 0) + " failed, " + (c.unreachable || 0) + " unreachable, " + (c.skipped || 0) + " skipped" +
      (c.cancelled ? ", " + c.cancelled + " cancelled" : "") + (c.restored || c.restore_pending || c.restore_failed ? "; restores: " + (c.restored || 0) + " done, " + (c.restore_pending || 0) + " pending, " + (c.restore_failed || 0) + " failed" : "");
    const terminal = ["succeeded", "failed", "rolled_back", "aborted"].includes(h.phase);
    const can = { pause: h.phase === "running", resume: h.phase === "paused", abort: !terminal && h.phase !== "aborting", rollback: h.phase !== "rolled_back" && h.phase !== "rolling_back" };
    for (const btn of $("#actions").querySelectorAll("button")) btn.disabled = !can[btn.dataset.verb];
    $("#actions").hidden = S.readOnly;
    $("#r-history").innerHTML = (h.messages || []).slice(-8).reverse().map((m) => "<li>" + esc(clock(m.at)) + " " + esc(m.message) + "</li>").join("");
    for (const w of $("#waves").children) w.classList.toggle("current", Number(w.dataset.wave) === h.wave && !terminal);
  }
  function buildWaves() {
    const h = S.rollouts.get(S.current);
    const waves = new Map();
    for (const s of S.rsites.values()) {
      const w = s.wave || 0;
      if (!waves.has(w)) waves.set(w, []);
      waves.get(w).push(s);
    }
    const el = $("#waves");
    el.innerHTML = "";
    S.cells.clear();
    const keys = Array.from(waves.keys()).sort((a, b) => (a === 0) - (b === 0) || a - b);
    for (const w of keys) {
      const sites = waves.get(w).sort((a, b) => a.index - b.index);
      const box = document.createElement("div");
      box.className = "wave";
      box.dataset.wave = String(w);
      const label = w === 0 ? "skipped" : h && h.canary && w === 1 ? "canary" : "wave " + w;
      box.innerHTML = "<h3>" + esc(label) + " <span class=count></span></h3>";
      const cells = document.createElement("div");
      cells.className = "cells" + (S.rsites.size <= 40 ? " big" : "");
      for (const s of sites) {
        const c = document.createElement("span");
        c.dataset.site = s.site;
        c.addEventListener("click", () => openDetail(s.site));
        S.cells.set(s.site, c);
        cells.appendChild(c);
        paintCell(s);
      }
      box.appendChild(cells);
      el.appendChild(box);
    }
    waveCounts();
  }
  function paintCell(s) {
    const c = S.cells.get(s.site);
    if (!c) return false;
    c.className = "cell o-" + s.outcome;
    c.dataset.outcome = s.outcome;
    c.title = s.site + ": " + s.outcome + (s.message ? " — " + s.message : "");
    if (c.parentNode.classList.contains("big")) c.textContent = s.site;
    return true;
  }
  function waveCounts() {
    for (const box of $("#waves").children) {
      const cells = box.querySelectorAll(".cell");
      let done = 0;
      for (const c of cells) if (c.dataset.outcome !== "pending" && c.dataset.outcome !== "in_flight") done++;
      box.querySelector(".count").textContent = done + "/" + cells.length;
    }
  }
  function putRSite(s) {
    const prev = S.rsites.get(s.site);
    S.rsites.set(s.site, s);
    return !prev || prev.wave !== s.wave || !paintCell(s);
  }

  // ---- site detail ----
  async function openDetail(site) {
    S.detail = site;
    $("#detail").hidden = false;
    $("#d-site").textContent = site;
    await loadDetail();
    $("#detail").scrollIntoView({ behavior: "instant", block: "start" });
  }
  let detailBusy = false, detailAgain = false;
  async function loadDetail() {
    if (!S.detail) return;
    if (detailBusy) { detailAgain = true; return; }
    detailBusy = true;
    try {
      const r = await fetch("/api/site/" + encodeURIComponent(S.detail));
      if (!r.ok) { $("#d-body").textContent = await r.text(); return; }
      renderDetail(await r.json());
    } finally {
      detailBusy = false;
      if (detailAgain) { detailAgain = false; loadDetail(); }
    }
  }
  function evidence(r, title, cls) {
    let out = '<div class="' + cls + '"><h4>' + esc(title) + "</h4>";
    out += "<p>revision " + r.revision + ": <b class=" + (r.outcome === "converged" ? "ok" : r.outcome === "awaiting_probe" ? "warn" : "bad") + ">" + esc(r.outcome) + "</b>" + (r.reason ? " — " + esc(r.reason) : "") +
      "<br><span class=muted>" + esc(new Date(r.finished_at).toLocaleString()) + ", took " + dur(Date.parse(r.finished_at) - Date.parse(r.started_at)) + (r.rollout ? ", rollout " + esc(r.rollout) : "") + "</span></p>";
    out += "<p>trunk " + esc(r.trunk.state) + " " + (r.trunk.rtt_ms ? r.trunk.rtt_ms.toFixed(1) + " ms" : "") + (r.probe ? "; probe " + esc(r.probe.number) + ": " + esc(r.probe.dial_status) + ":" + r.probe.hangup_cause + " (" + esc(r.probe.verdict) + ")" : "") + "</p>";
    for (const c of r.checks || []) {
      out += '<div class=check data-check="' + esc(c.name) + '"><b class=' + (c.passed ? "ok" : "bad") + ">" + (c.passed ? "pass" : "FAIL") + "</b> <span class=mono>" + esc(c.name) + "</span> " + esc(c.detail) + "</div>";
      if (c.raw && c.raw.length) out += "<details" + (c.passed ? "" : " open") + "><summary class=muted>CLI lines (" + c.raw.length + ")</summary><pre class=raw>" + esc(c.raw.join("\n")) + "</pre></details>";
    }
    if (r.files && r.files.length) {
      out += "<h4>Managed files</h4><table>" + r.files.map((f) => "<tr><td class=mono>" + esc(f.name) + '</td><td class="mono muted hash">' + esc(f.sha256) + "</td></tr>").join("") + "</table>";
    }
    return out + "</div>";
  }
  function renderDetail(d) {
    let out = '<div class=nodes>';
    for (const nd of d.node_details || []) {
      const r = nd.last;
      out += '<div class=node data-node="' + esc(nd.node) + '"><h3 class=mono>' + esc(nd.node) + "</h3>";
      if (!r) { out += "<p class=muted>no result yet</p></div>"; continue; }
      out += evidence(r, "Last result: checks and the CLI lines that proved them", "last");
      if (nd.last_failure) out += evidence(nd.last_failure, "Last failure", "failure");
      if (nd.history && nd.history.length > 1) {
        out += "<h4>Results before</h4><table>" + nd.history.slice(1).map((h) => "<tr><td>r" + h.revision + "</td><td>" + esc(h.outcome) + "</td><td>" + esc(h.probe || "") + "</td><td class=muted>" + esc(new Date(h.finished_at).toLocaleString()) + "</td><td>" + esc(h.reason || "") + "</td></tr>").join("") + "</table>";
      }
      out += "</div>";
    }
    out += "</div><h4>Revision history</h4><table><thead><tr><th>Rollout</th><th>Phase</th><th>Site outcome</th><th>Nodes</th><th>Started</th></tr></thead><tbody>";
    for (const rv of d.revisions || []) {
      const nodes = (rv.site.nodes || []).map((n) => esc(n.role) + " r" + n.revision + (n.prev_revision ? " (was r" + n.prev_revision + ")" : "") + (n.result ? " " + esc(n.result.outcome) : "") + (n.restore_revision ? ", restored as r" + n.restore_revision + (n.restore ? " " + esc(n.restore.outcome) : "") : "")).join("; ");
      out += "<tr><td class=mono>" + esc(rv.rollout) + (rv.origin ? " (" + esc(rv.origin) + ")" : "") + '</td><td><span class="phase ' + esc(rv.phase) + '">' + esc(rv.phase) + '</span></td><td><span class="cell o-' + esc(rv.site.outcome) + '"></span> ' + esc(rv.site.outcome) + (rv.site.message ? " — " + esc(rv.site.message) : "") + "</td><td>" + nodes + "</td><td>" + esc(new Date(rv.created_at).toLocaleString()) + "</td></tr>";
    }
    out += "</tbody></table>";
    $("#d-body").innerHTML = out;
    $("#detail").dataset.loaded = d.site;
  }

  // ---- actions ----
  async function act(verb) {
    const h = S.rollouts.get(S.current);
    if (!h) return;
    const what = { pause: "Pause rollout " + h.id + "? Sites in flight finish; no new site starts.", resume: "Resume rollout " + h.id + "?", abort: "Abort rollout " + h.id + "? Sites that converged keep the new revision; the others are restored.", rollback: "Roll back rollout " + h.id + "? Every node it touched gets its previous intent back." }[verb];
    if (!window.confirm(what)) return;
    $("#r-msg").textContent = "";
    const r = await fetch("/api/rollout/" + verb, { method: "POST", headers: { "Content-Type": "application/json", "X-Pbxfleet-Action": "1" }, body: JSON.stringify({ id: h.id }) });
    if (!r.ok) {
      let msg = r.status + "";
      try { msg = (await r.json()).error; } catch (e) { msg = await r.text().catch(() => msg); }
      $("#r-msg").textContent = verb + ": " + msg;
    }
  }
  for (const b of document.querySelectorAll("#actions button")) b.addEventListener("click", () => act(b.dataset.verb));
  $("#d-close").addEventListener("click", () => { S.detail = ""; $("#detail").hidden = true; });
  for (const id of ["#f-unhealthy", "#f-scenario", "#f-text"]) $(id).addEventListener("input", refilter);

  // ---- live ----
  function snapshot(s) {
    S.readOnly = s.read_only;
    $("#logout").hidden = !s.auth;
    $("#actions").hidden = S.readOnly;
    S.skew = Date.now() - Date.parse(s.now);
    document.body.dataset.readonly = s.read_only ? "1" : "0";
    const keep = new Set(s.sites.map((v) => v.site));
    for (const id of Array.from(S.sites.keys())) if (!keep.has(id)) dropSite(id);
    const body = $("#sites tbody");
    if (S.rows.size === 0) {
      // First load: build every row off the document, then attach once.
      const frag = document.createDocumentFragment();
      for (const v of s.sites) {
        const tr = document.createElement("tr");
        tr.className = "site";
        tr.dataset.site = v.site;
        tr.addEventListener("click", () => openDetail(v.site));
        S.rows.set(v.site, tr);
        frag.appendChild(tr);
        S.sites.set(v.site, v);
        tr.innerHTML = rowHTML(v);
        tr.dataset.healthy = v.healthy ? "1" : "0";
        tr.classList.add(v.healthy ? "good" : "bad");
        tr.hidden = !matches(v);
      }
      body.appendChild(frag);
    } else {
      for (const v of s.sites) putSite(v);
    }
    S.rollouts.clear();
    for (const h of s.rollouts) putRollout(h);
    S.current = s.current || "";
    S.rsites.clear();
    for (const ss of s.current_sites || []) S.rsites.set(ss.site, ss);
    buildWaves();
    renderCurrent();
    renderRollouts();
    counts();
    loadDetail();
    document.body.dataset.ready = "1";
  }
  function batch(items) {
    let sites = false, rollouts = false, waves = false, cells = false, detail = false;
    for (const it of items) {
      switch (it.t) {
        case "site": putSite(it.v); sites = true; if (it.id === S.detail) detail = true; break;
        case "site_gone": dropSite(it.id); sites = true; break;
        case "rollout": putRollout(it.v); rollouts = true; break;
        case "rollout_gone": S.rollouts.delete(it.id); rollouts = true; break;
        case "current":
          S.current = it.id || "";
          S.rsites.clear();
          for (const ss of it.v || []) S.rsites.set(ss.site, ss);
          waves = rollouts = true;
          break;
        case "rsite":
          if (it.id !== S.current) break;
          if (putRSite(it.v)) waves = true; else cells = true;
          if (it.v.site === S.detail) detail = true;
          break;
      }
    }
    if (waves) buildWaves(); else if (cells) waveCounts();
    if (rollouts || waves) { renderCurrent(); renderRollouts(); }
    if (sites) counts();
    if (detail) loadDetail();
  }
  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("open", () => { $("#conn").textContent = "live"; $("#conn").className = "conn on"; });
    es.addEventListener("error", () => { $("#conn").textContent = "reconnecting…"; $("#conn").className = "conn off"; });
    es.addEventListener("snapshot", (e) => snapshot(JSON.parse(e.data)));
    es.addEventListener("batch", (e) => batch(JSON.parse(e.data)));
  }
  setInterval(() => {
    for (const el of document.querySelectorAll("#sites .ago")) if (el.dataset.t) el.textContent = ago(el.dataset.t);
    for (const el of document.querySelectorAll("#rollouts td.running")) el.textContent = dur(Date.now() - S.skew - Date.parse(el.dataset.start));
  }, 1000);
  connect();
})();
