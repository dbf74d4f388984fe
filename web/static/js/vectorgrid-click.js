/*
 * gridmgr: make Leaflet.VectorGrid 1.3.0 clickable on Leaflet 1.9.
 *
 * Load after Leaflet.VectorGrid.bundled(.min).js; web/assets.py adds it to every page that uses
 * folium.plugins.VectorGridProtobuf or leaflet_urls("vectorgrid").
 *
 * Why: the npm release 1.3.0 ends L.Canvas.Tile's _onClick with `L.DomEvent.fakeStop(e)`, a function
 * Leaflet removed in 1.8, so a click on an interactive vector-tile feature throws
 * "L.DomEvent.fakeStop is not a function" (Leaflet/Leaflet.VectorGrid issues #274 and #181). The fix
 * upstream (PR #288) is merged but not released, and we do not pin an old Leaflet for it.
 *
 * What: _onClick rewritten the way Leaflet 1.9 writes L.Canvas's own (a canvas container is marked
 * `_leaflet_disable_events`, so the map ignores DOM events on it and the renderer must hand every
 * event on to the map itself):
 *   - a click on a feature fires on that feature, then bubbles to the VectorGrid layer and the map;
 *   - a click on an empty part of an interactive tile still fires the map's own click, so a map-level
 *     click handler (e.g. "which cell is here?" through our API) works over vector tiles too;
 *   - nothing stops the DOM event, so dragging the map from a feature keeps working.
 * Remove this file once a VectorGrid release without fakeStop is on npm.
 */
(function () {
  'use strict';
  if (typeof L === 'undefined' || !L.Canvas || !L.Canvas.Tile) {
    return; // VectorGrid is not on this page
  }
  if (typeof L.DomEvent.fakeStop === 'function') {
    return; // Leaflet < 1.8: the released code works as it is
  }

  L.Canvas.Tile.include({
    _onClick: function (e) {
      if (!this._map) { return; }
      // tile renderers are positioned per tile: layer points are relative to the tile's corner
      var point = this._map.mouseEventToLayerPoint(e).subtract(this.getOffset());
      var layer, clickedLayer;
      for (var id in this._layers) {
        layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point)) {
          // as Leaflet 1.9's L.Canvas: a drag that ends over a feature is not a click on it
          if (!(e.type === 'click' || e.type === 'preclick') || !this._map._draggableMoved(layer)) {
            clickedLayer = layer;
          }
        }
      }
      // false: no feature here, the map (and its click handlers) get the event
      this._fireEvent(clickedLayer ? [clickedLayer] : false, e);
    }
  });
})();
