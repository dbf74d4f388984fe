/* gridmgr: the report form. Shows, before saving, the cell and the unit the dispatch rules would choose
   (POST /cases/preview with the page's CSRF token), and lets the user pick the point on a small map when
   Leaflet is there. Without scripts the form still works: typed coordinates or a cell code, and a
   Preview button answered by the server. Server text is put in with textContent, never as HTML. */
(function () {
  "use strict";
  var form = document.getElementById("case-report");
  if (!form || !window.fetch) { return; }
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var box = document.getElementById("preview");
  var body = document.getElementById("preview-body");
  var button = document.getElementById("preview-button");
  if (button) { button.hidden = true; }  // the live preview replaces it
  var CELL_STYLE = { color: "#1d4ed8", weight: 2, fillOpacity: 0.08 };
  // the page's words in its language (report.html writes them; the server's own preview uses the same)
  var TEXT = JSON.parse((document.getElementById("case-report-text") || {}).textContent || "{}");
  var map = null, marker = null, outline = null, timer = null, serial = 0;

  function field(name) { return form.elements.namedItem(name); }
  function value(name) { var f = field(name); return f ? (f.value || "").trim() : ""; }
  function mode() {
    var checked = form.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "point";
  }
  function setMode(m) {
    var r = form.querySelector('input[name="mode"][value="' + m + '"]');
    if (r) { r.checked = true; }
  }
  function line(parent, text, cls) {
    var p = document.createElement("p");
    if (cls) { p.className = cls; }
    p.textContent = text;
    parent.appendChild(p);
    return p;
  }

  function show(data) {
    body.textContent = "";
    box.classList.toggle("bad", !data.ok);
    if (!data.ok) { line(body, data.error || TEXT.cannotPreview); return; }
    line(body, TEXT.point + data.point.lon + ", " + data.point.lat);
    if (data.cell) {
      var p = line(body, TEXT.cell);
      var a = document.createElement("a");
      a.href = data.cell.url;
      a.textContent = data.cell.code;
      p.appendChild(a);
      p.appendChild(document.createTextNode(" · " + (data.cell.street || "") + " " + (data.cell.community || "")));
    } else {
      line(body, TEXT.outOfGrid, "overdue");
    }
    if (data.unit) {
      line(body, TEXT.dispatchTo + data.unit.name + " (" + data.unit.kind_label + ") — " + data.rule);
    } else if (data.category && data.cell) {
      line(body, TEXT.noUnit, "overdue");
    } else if (!data.category) {
      line(body, TEXT.chooseCategory, "hint");
    }
    if (data.first_step) {
      var step = data.first_step;
      line(body, TEXT.nextStep + step.label + TEXT.due + step.deadline);
    }
    drawOnMap(data);
  }

  function drawOnMap(data) {
    if (!map) { return; }
    var ll = [data.point.lat, data.point.lon];
    if (marker) {
      marker.setLatLng(ll);
    } else {
      marker = L.circleMarker(ll, { radius: 7, color: "#b91c1c" }).addTo(map);
    }
    if (outline) { map.removeLayer(outline); outline = null; }
    if (data.cell && data.cell.geometry) {
      outline = L.geoJSON(JSON.parse(data.cell.geometry), { style: CELL_STYLE }).addTo(map);
    }
    if (!map.getBounds().contains(ll)) { map.setView(ll, Math.max(map.getZoom(), 16)); }
  }

  function payload() {
    return { mode: mode(), lon: value("lon"), lat: value("lat"), crs: value("crs"), cell: value("cell"),
             category: value("category"), urgency: value("urgency"), source: value("source") };
  }
  function ready(p) { return p.mode === "cell" ? /^[0-9]{15}$/.test(p.cell) : (p.lon !== "" && p.lat !== ""); }

  function preview() {
    var p = payload();
    if (!ready(p)) { return; }
    var mine = ++serial;  // answers can arrive out of order: keep only the latest
    fetch(form.dataset.previewUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
      body: JSON.stringify(p)
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, error: "HTTP " + r.status }; });
    }).then(function (data) {
      if (mine === serial) { show(data.error && data.error.message ? { ok: false, error: data.error.message } : data); }
    }).catch(function () {
      if (mine === serial) { show({ ok: false, error: TEXT.networkError }); }
    });
  }
  function later() { clearTimeout(timer); timer = setTimeout(preview, 350); }

  form.addEventListener("change", later);
  form.addEventListener("input", function (ev) {
    if (ev.target.name === "cell") { setMode("cell"); }
    if (ev.target.name === "lon" || ev.target.name === "lat") { setMode("point"); }
    later();
  });

  var el = document.getElementById("report-map");
  if (el && !window.L) { el.hidden = true; }  // no map assets: typed coordinates and cell codes remain
  if (el && window.L) {
    map = L.map(el);
    if (el.dataset.tiles) { L.tileLayer(el.dataset.tiles, { maxZoom: 19 }).addTo(map); }
    var b = null;
    try { b = JSON.parse(el.dataset.bounds || "null"); } catch (e) { b = null; }
    if (b) { map.fitBounds([[b[1], b[0]], [b[3], b[2]]]); } else { map.fitBounds([[18, 73], [54, 135]]); }
    map.on("click", function (ev) {
      field("lon").value = ev.latlng.lng.toFixed(7);
      field("lat").value = ev.latlng.lat.toFixed(7);
      field("crs").value = "wgs84";  // the map is drawn in WGS84
      setMode("point");
      preview();
    });
  }
  preview();  // a re-shown form (after an error) previews what it holds
})();
