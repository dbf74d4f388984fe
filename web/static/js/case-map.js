/* gridmgr: the small map of a case page — the case's point and its cell. Needs Leaflet (served locally). */
(function () {
  "use strict";
  var el = document.getElementById("case-map");
  if (!el) { return; }
  if (!window.L) { el.hidden = true; return; }  // the map assets are not installed: the facts remain
  var lat = parseFloat(el.dataset.lat), lon = parseFloat(el.dataset.lon);
  if (!isFinite(lat) || !isFinite(lon)) { return; }
  var map = L.map(el, { scrollWheelZoom: false });
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 19 }).addTo(map);
  }
  var bounds = L.latLngBounds([[lat, lon], [lat, lon]]), cell = null;
  if (el.dataset.cell) {
    try {
      cell = L.geoJSON(JSON.parse(el.dataset.cell), { style: { color: "#1d4ed8", weight: 2, fillOpacity: 0.08 } });
      bounds = cell.getBounds().extend([lat, lon]);
    } catch (e) { cell = null; }  /* a map without the cell outline is still a map */
  }
  // the view first: Leaflet cannot draw vectors on a map that has none yet
  map.fitBounds(bounds.pad(0.6), { maxZoom: 18 });
  if (cell) { cell.addTo(map); }
  L.circleMarker([lat, lon], { radius: 7, color: "#b91c1c", fillOpacity: 0.8 }).addTo(map);
})();
