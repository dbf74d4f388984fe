/* gridmgr: the planner page. Zones on a Leaflet map coloured by status; for planners, Geoman's tools
   to draw a kerb line or a lot (folium's Draw sends nothing back, so this script hooks the draw
   events itself); a live capacity estimate while drawing; the server's measure, rule checks and
   demand evidence (POST /planner/preview); save (POST or PATCH /api/v1/parking/zones) and the
   lifecycle actions, every write with the page's CSRF token. Server text goes in with textContent. */
(function () {
  "use strict";
  var el = document.getElementById("planner-map");
  var cfgEl = document.getElementById("planner-config");
  if (!el || !cfgEl) { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  // the page's words in its language (web/views/planner.py page_text), {name}s filled in
  function say(key, values) {
    return (cfg.text[key] || key).replace(/\{(\w+)\}/g, function (all, name) {
      return values && values[name] !== undefined ? String(values[name]) : all;
    });
  }
  if (!window.L || !window.fetch) { el.textContent = say("noAssets"); return; }
  var Cap = window.PlannerCapacity;
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var form = document.getElementById("zone-form");
  var $ = function (id) { return document.getElementById(id); };
  var colours = {}, labels = {};
  cfg.statuses.forEach(function (s) { colours[s.key] = s.colour; labels[s.key] = s.label; });
  var angleLabels = {};
  cfg.angles.forEach(function (a) { angleLabels[a.key] = a.label; });
  function unitList(units) {
    return units.map(function (u) { return (cfg.duties[u.duty] || u.duty_label) + say("colon") + u.name; })
      .join(say("listSep"));
  }

  // ------------------------------------------------------------ the map
  var map = L.map(el, { maxZoom: 20 });
  if (cfg.tiles) { L.tileLayer(cfg.tiles, { maxZoom: 20 }).addTo(map); }
  if (cfg.bounds) {
    map.fitBounds([[cfg.bounds[1], cfg.bounds[0]], [cfg.bounds[3], cfg.bounds[2]]]);
  } else {
    map.setView([39.9, 116.4], 15);
  }
  var zonesLayer = L.geoJSON(null, {
    pmIgnore: true,
    style: function (f) {
      var line = f.geometry.type === "LineString";
      return { color: colours[f.properties.status] || "#2563eb", weight: line ? 6 : 2, fillOpacity: 0.25,
               dashArray: f.properties.status === "draft" ? "6 4" : null };
    },
    onEachFeature: function (f, layer) {
      layer.bindTooltip(function () {
        var span = document.createElement("span");
        span.textContent = f.properties.zone_no + " " + f.properties.name + " · " + (labels[f.properties.status] || "") +
          " · " + say("spaces", {n: f.properties.capacity});
        return span;
      });
      layer.on("click", function (e) { L.DomEvent.stopPropagation(e); selectZone(f.properties.id); });
    }
  }).addTo(map);
  var casesLayer = L.layerGroup().addTo(map);
  var cellsLayer = L.layerGroup().addTo(map);

  // ------------------------------------------------------------ state
  var current = { layer: null, kind: null, zone: null, edited: false };
  var drawing = null, drawKind = null, previewTimer = null, previewSerial = 0;

  function api(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return { status: r.status, data: data }; },
                           function () { return { status: r.status, data: {} }; });
    });
  }
  function line(parent, text, cls) {
    var p = document.createElement("p");
    if (cls) { p.className = cls; }
    p.textContent = text;
    parent.appendChild(p);
    return p;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function cell(tr, text, tag) {
    var td = document.createElement(tag || "td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    tr.appendChild(td);
    return td;
  }

  function loadZones() {
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); });
    return api("GET", cfg.urls.zones + "?bbox=" + bbox.join(",")).then(function (res) {
      if (res.status !== 200) { return; }
      zonesLayer.clearLayers();
      res.data.items.forEach(function (z) {
        zonesLayer.addData({ type: "Feature", geometry: z.geometry, properties: z });
      });
      if (current.layer && current.layer.bringToFront) { current.layer.bringToFront(); }  // the selection on top
      window.planner.zonesLoaded = res.data.items.length;
    });
  }
  var moveTimer = null;
  map.on("moveend", function () { clearTimeout(moveTimer); moveTimer = setTimeout(loadZones, 200); });

  // ------------------------------------------------------------ live capacity
  function angle() {
    return current.kind === "lot" ? "perpendicular" : form.elements.namedItem("parking_angle").value;
  }
  function showLive(kind, latlngs, live) {
    var out = $("live-capacity");
    clear(out);
    var m = kind === "lot" ? Cap.ringArea(latlngs) : Cap.lineLength(latlngs);
    var a = kind === "lot" ? null : form.elements.namedItem("parking_angle").value;
    var n = Cap.estimate(cfg.capacity, kind, a, kind === "lot" ? 0 : m, kind === "lot" ? m : 0);
    out.appendChild(document.createTextNode(
      (kind === "lot" ? say("lotArea", {m: m.toFixed(1)}) : say("kerbLength", {m: m.toFixed(1), angle: angleLabels[a]})) +
      " → "));
    // "{n} spaces": the count in bold where the phrase has {n}
    var parts = say("spaces").split("{n}");
    var b = document.createElement("b");
    b.id = "live-count";
    b.textContent = String(n);
    out.appendChild(document.createTextNode(parts[0]));
    out.appendChild(b);
    out.appendChild(document.createTextNode((parts[1] || "") + say(live ? "drawing" : "estimate")));
    return n;
  }
  function shapeLatLngs(layer, kind) {
    var ll = layer.getLatLngs();
    return kind === "lot" ? ll[0] : ll;
  }
  function onDrawMove(e) {
    if (!drawing) { return; }
    var ll = drawing.getLatLngs().slice();
    if (!ll.length) { return; }
    ll.push(e.latlng);
    showLive(drawKind, ll, true);
  }

  // ------------------------------------------------------------ drawing (planners)
  if (cfg.can_draw) {
    map.pm.setLang("zh");
    map.pm.addControls({ position: "topleft", drawMarker: false, drawCircleMarker: false, drawCircle: false,
                         drawText: false, drawRectangle: false, drawPolyline: true, drawPolygon: true,
                         editMode: true, dragMode: false, cutPolygon: false, removalMode: true, rotateMode: false });
    map.pm.setGlobalOptions({ snappable: true, snapDistance: 12, allowSelfIntersection: false });
    map.on("pm:drawstart", function (e) {
      drawing = e.workingLayer;
      drawKind = e.shape === "Polygon" ? "lot" : "kerb";
      map.on("mousemove", onDrawMove);
    });
    map.on("pm:drawend", function () { map.off("mousemove", onDrawMove); drawing = null; });
    map.on("pm:create", function (e) {
      var kind = e.shape === "Polygon" ? "lot" : "kerb";
      resetSelection(true);
      setCurrent(e.layer, kind, null);
      current.edited = true;
      changed();
      form.elements.namedItem("name").focus();
    });
    map.on("pm:remove", function (e) {
      if (e.layer !== current.layer) { return; }
      var z = current.zone;
      if (z && z.allowed_actions.indexOf("retire") >= 0 &&
          window.confirm(say("retire", {zone: z.zone_no}))) {
        current.layer = null;
        takeAction("retire");
      } else if (z) {
        e.layer.addTo(map);  // a saved zone is retired, never just deleted
      } else {
        resetSelection(true);
      }
    });
    form.elements.namedItem("parking_angle").addEventListener("change", function () { if (current.layer) { changed(); } });
    ["street_side", "valid_from", "valid_to"].forEach(function (n) {
      form.elements.namedItem(n).addEventListener("change", function () { if (current.layer) { schedulePreview(); } });
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); save(); });
    $("new-zone").addEventListener("click", function () { resetSelection(true); });
  }
  $("evidence-distance").addEventListener("change", function () { if (current.layer) { schedulePreview(); } });

  function setCurrent(layer, kind, zone) {
    current = { layer: layer, kind: kind, zone: zone, edited: false };
    form.elements.namedItem("parking_angle").disabled = kind === "lot";
    $("save-zone").disabled = !cfg.can_draw;
    layer.on("pm:edit", function () { current.edited = true; changed(); });
    window.planner.current = current;
  }
  function changed() {
    if (!current.layer) { return; }
    showLive(current.kind, shapeLatLngs(current.layer, current.kind), false);
    schedulePreview();
  }
  function resetSelection(clearForm) {
    if (current.layer) { map.removeLayer(current.layer); }
    current = { layer: null, kind: null, zone: null, edited: false };
    window.planner.current = current;
    casesLayer.clearLayers();
    cellsLayer.clearLayers();
    $("zone-panel").hidden = true;
    $("confirm-box").hidden = true;
    clear($("check-result"));
    clear($("save-result"));
    if (clearForm && cfg.can_draw) {
      form.reset();
      form.elements.namedItem("parking_angle").disabled = false;
      $("form-title").textContent = say("newZone");
      $("zone-facts").textContent = "";
      $("save-zone").disabled = true;
    }
  }

  // ------------------------------------------------------------ the server's checks and evidence
  function geometry() { return current.layer.toGeoJSON(9).geometry; }  // Leaflet's default 6 decimals is 11 cm
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(runPreview, 250);
  }
  function runPreview() {
    if (!current.layer) { return; }
    var serial = ++previewSerial;
    var body = { geometry: geometry(), parking_angle: angle(), distance_m: parseInt($("evidence-distance").value, 10) };
    if (cfg.can_draw) {
      body.street_side = form.elements.namedItem("street_side").value || null;
      body.valid_from = form.elements.namedItem("valid_from").value || null;
      body.valid_to = form.elements.namedItem("valid_to").value || null;
    }
    if (current.zone) { body.zone_id = current.zone.id; }
    api("POST", cfg.urls.preview, body).then(function (res) {
      if (serial !== previewSerial) { return; }  // a newer shape is being checked
      showCheck(res);
      window.planner.checked = (window.planner.checked || 0) + 1;
    });
  }
  function showCheck(res) {
    var box = $("check-result");
    clear(box);
    if (res.status !== 200) { line(box, (res.data.error || {}).message || say("checkFailed"), "problem"); return; }
    var d = res.data;
    if (d.measure) {
      var m = d.measure;
      line(box, say("measured", {m: m.kind === "lot" ? m.area_m2 + " m²" : m.length_m + " m", n: m.capacity_estimated}),
        "ok").id = "server-capacity";
      var cap = form.elements.namedItem("capacity");
      if (cap) { cap.placeholder = say("estimateN", {n: m.capacity_estimated}); }
    }
    d.problems.forEach(function (p) { line(box, p.message, "problem"); });
    if (!d.problems.length && d.measure) { line(box, say("rulesPass"), "ok"); }
    d.warnings.forEach(function (w) {
      line(box, say("crossesSite", {permit: w.permit_no, project: w.project_name, m2: w.overlap_m2}), "warning");
    });
    $("confirm-box").hidden = !d.warnings.length;
    showEvidence(d.evidence);
  }
  function showEvidence(ev) {
    var body = $("evidence-body");
    clear(body);
    casesLayer.clearLayers();
    cellsLayer.clearLayers();
    if (!ev) { return; }
    line(body, say("evidenceCases", {d: ev.distance_m, days: ev.days, n: ev.cases})).id = "evidence-cases";
    ev.case_points.forEach(function (c) {
      L.circleMarker([c.lat, c.lon], { radius: 4, color: "#b91c1c", weight: 1, fillOpacity: 0.7, pmIgnore: true })
        .addTo(casesLayer);
    });
    line(body, say("nearby", {zones: ev.zones.length, capacity: ev.capacity_nearby, spaces: ev.spaces}));
    if (ev.zones.length) {
      var t = document.createElement("table"), tb = document.createElement("tbody");
      t.className = "small";
      var h = document.createElement("tr");
      ["colNo", "colName", "colStatus", "colSpaces", "colDistance"].forEach(function (s) { cell(h, say(s), "th"); });
      tb.appendChild(h);
      ev.zones.forEach(function (z) {
        var tr = document.createElement("tr");
        [z.zone_no, z.name, labels[z.status], z.capacity, z.distance_m].forEach(function (v) { cell(tr, v); });
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      body.appendChild(t);
    }
    line(body, say("cellsTouched", {n: ev.cells.length}));
    var ct = document.createElement("table"), cb = document.createElement("tbody");
    ct.className = "small";
    ct.id = "evidence-cells";
    ev.cells.forEach(function (c) {
      if (c.geometry) {
        L.geoJSON(c.geometry, { pmIgnore: true, interactive: false,
                                style: { color: "#0f2a5c", weight: 1, dashArray: "4 4", fill: false } }).addTo(cellsLayer);
      }
      var tr = document.createElement("tr");
      cell(tr, c.code);
      cell(tr, Math.round(c.share * 100) + "%");
      cell(tr, (c.street || "") + " " + (c.community || ""));
      cell(tr, unitList(c.units));
      cb.appendChild(tr);
    });
    ct.appendChild(cb);
    body.appendChild(ct);
  }

  // ------------------------------------------------------------ save, select, act
  function formBody() {
    var f = form.elements, b = {};
    ["name", "street_name", "fee_rule", "capacity_reason"].forEach(function (n) { b[n] = f.namedItem(n).value.trim() || null; });
    b.street_side = f.namedItem("street_side").value || null;
    if (current.kind !== "lot") { b.parking_angle = f.namedItem("parking_angle").value; }
    var cap = f.namedItem("capacity").value.trim();
    b.capacity = cap === "" ? null : parseInt(cap, 10);
    var days = Array.prototype.filter.call(form.querySelectorAll('input[name="days"]'), function (i) { return i.checked; })
      .map(function (i) { return i.value; });
    b.time_rules = days.length ? [{ days: days, from: f.namedItem("time_from").value, to: f.namedItem("time_to").value }] : null;
    b.valid_from = f.namedItem("valid_from").value || null;
    b.valid_to = f.namedItem("valid_to").value || null;
    b.confirm_construction = f.namedItem("confirm_construction").checked;
    return b;
  }
  function save() {
    if (!current.layer) { return; }
    var body = formBody(), out = $("save-result");
    clear(out);
    var z = current.zone;
    if (!z || current.edited) { body.geometry = geometry(); }
    $("save-zone").disabled = true;
    api(z ? "PATCH" : "POST", z ? cfg.urls.zones + "/" + z.id : cfg.urls.zones, body).then(function (res) {
      $("save-zone").disabled = false;
      if (res.status === 200 || res.status === 201) {
        showZone(res.data);
        line(out, say(z && res.data.id !== z.id ? "savedVersion" : "saved") + res.data.zone_no, "ok").id = "saved";
        window.planner.saved = res.data;
        loadZones();
        return;
      }
      var err = res.data.error || {};
      if (err.needs_confirmation) { $("confirm-box").hidden = false; }
      line(out, err.message || say("notSaved", {status: res.status}), "problem");
    });
  }
  function selectZone(id) {
    return api("GET", cfg.urls.zones + "/" + id).then(function (res) {
      if (res.status === 200) { showZone(res.data); }
    });
  }
  function showZone(z) {
    resetSelection(false);
    var editable = cfg.can_draw && ["draft", "approved", "painted"].indexOf(z.status) >= 0;
    var layer = L.geoJSON(z.geometry, { pmIgnore: !editable, style: { color: "#dc2626", weight: 5, fillOpacity: 0.2 } })
      .getLayers()[0];
    layer.addTo(map);
    setCurrent(layer, z.kind, z);
    fillForm(z);  // the form is hidden for readers; it still holds the zone's angle for the estimate
    $("save-zone").disabled = !editable;
    $("form-title").textContent = say(editable ? "editZone" : "zone") + z.zone_no;
    $("zone-facts").textContent = labels[z.status] + " · " + (z.kind === "lot" ? z.area_m2 + " m²" : z.length_m + " m") +
      " · " + say("facts", {estimate: z.capacity_estimated, capacity: z.capacity}) +
      (z.prev_zone_id ? say("previous", {id: z.prev_zone_id}) : "");
    $("zone-panel").hidden = false;
    $("zone-title").textContent = z.zone_no + " " + z.name + " · " + labels[z.status];
    var acts = $("zone-actions");
    clear(acts);
    z.allowed_actions.forEach(function (a) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.dataset.action = a;
      btn.textContent = cfg.actions[a];
      btn.addEventListener("click", function () { takeAction(a); });
      acts.appendChild(btn);
    });
    var cells = $("zone-cells");
    clear(cells);
    z.cells.forEach(function (c) {
      var tr = document.createElement("tr");
      cell(tr, c.code);
      cell(tr, Math.round(c.share * 100) + "%");
      cell(tr, unitList(c.units));
      cells.appendChild(tr);
    });
    var events = $("zone-events");
    clear(events);
    z.events.forEach(function (e) {
      var li = document.createElement("li");
      li.textContent = e.at.replace("T", " ").slice(0, 16) + " " + e.actor + " · " +
        (cfg.events[e.action] || e.action) + " " + (labels[e.from_status] || e.from_status || "") + " → " +
        (labels[e.to_status] || e.to_status) + (e.note ? " · " + e.note : "");
      events.appendChild(li);
    });
    map.fitBounds(layer.getBounds().pad(0.5), { maxZoom: 19 });
    changed();
  }
  function fillForm(z) {
    var f = form.elements;
    ["name", "street_name", "fee_rule", "capacity_reason", "valid_from", "valid_to"].forEach(function (n) {
      f.namedItem(n).value = z[n] || "";
    });
    f.namedItem("street_side").value = z.street_side || "";
    f.namedItem("parking_angle").value = z.parking_angle;
    f.namedItem("capacity").value = z.capacity !== z.capacity_estimated ? z.capacity : "";
    var rule = Array.isArray(z.time_rules) && z.time_rules.length ? z.time_rules[0] : null;
    form.querySelectorAll('input[name="days"]').forEach(function (i) {
      i.checked = !!rule && rule.days.indexOf(i.value) >= 0;
    });
    if (rule) { f.namedItem("time_from").value = rule.from; f.namedItem("time_to").value = rule.to; }
    f.namedItem("confirm_construction").checked = false;
  }
  function takeAction(name) {
    var z = current.zone;
    if (!z) { return; }
    api("POST", cfg.urls.zones + "/" + z.id + "/actions/" + name, {}).then(function (res) {
      var out = $("save-result");
      clear(out);
      if (res.status === 200) {
        showZone(res.data.zone);
        loadZones();
        line(out, cfg.actions[name] + say("colon") + res.data.zone.zone_no, "ok");
      } else {
        line(out, (res.data.error || {}).message || ("HTTP " + res.status), "problem");
        if (!$("zone-panel").hidden) { line($("check-result"), (res.data.error || {}).message || "", "problem"); }
      }
    });
  }

  window.planner = { map: map, current: current, reload: loadZones, select: selectZone, zonesLoaded: null };
  loadZones();
})();
