/* gridmgr: the planner's live capacity estimate while drawing. The constants are not here: they come
   from the page config (gridmgr.layers.parking's KERB_PER_STALL, LOT_M2_PER_STALL, MARGIN), so the
   browser and the server count stalls the same way (docs/domain.md §7). Lengths and areas are on a sphere
   here; the server measures on the ellipsoid, and its figure replaces this one once the shape is checked. */
(function (root) {
  "use strict";
  var R = 6371008.8;  // the mean Earth radius, metres
  var RAD = Math.PI / 180;

  function distance(a, b) {
    var dLat = (b.lat - a.lat) * RAD, dLon = (b.lng - a.lng) * RAD;
    var h = Math.pow(Math.sin(dLat / 2), 2) +
            Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.pow(Math.sin(dLon / 2), 2);
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  /* metres along a list of {lat, lng} */
  function lineLength(latlngs) {
    var total = 0;
    for (var i = 1; i < latlngs.length; i++) { total += distance(latlngs[i - 1], latlngs[i]); }
    return total;
  }

  /* square metres inside a ring of {lat, lng} (spherical polygon area) */
  function ringArea(latlngs) {
    var n = latlngs.length, area = 0;
    if (n < 3) { return 0; }
    for (var i = 0; i < n; i++) {
      var p1 = latlngs[i], p2 = latlngs[(i + 1) % n];
      area += (p2.lng - p1.lng) * RAD * (2 + Math.sin(p1.lat * RAD) + Math.sin(p2.lat * RAD));
    }
    return Math.abs(area * R * R / 2);
  }

  /* stalls in a kerb line of some length (by angle) or in a lot of some area: the layer's rule */
  function estimate(constants, kind, angle, lengthM, areaM2) {
    var grow = 1 + constants.margin;
    if (kind === "lot") { return Math.floor(areaM2 * grow / constants.lot_m2_per_stall); }
    var per = constants.kerb_per_stall[angle];
    return per ? Math.floor(lengthM * grow / per) : 0;
  }

  root.PlannerCapacity = { distance: distance, lineLength: lineLength, ringArea: ringArea, estimate: estimate };
})(window);
