/*
 * gridmgr map pages, the shared part: vector tile styles, clicks, popups, cell labels, and the hook that
 * colours the cells from a code → value JSON (`gridmgr.styleCells`). Needs Leaflet and
 * Leaflet.VectorGrid (served by the app: web/assets.py); loaded in the page head, before folium's
 * script, which builds the tile layers with `gridmgr.tileOptions(layer)`.
 *
 * The page's settings come from <script type="application/json" id="map-config"> (web/views/maps.py,
 * `_page_config`): tile URL, zoom thresholds, the registry's layer styles and the JSON endpoints.
 * They hold no data: cells and features arrive as vector tiles, the rest through small JSON calls.
 *
 * Clicks. The tile layers are NOT interactive: Leaflet.VectorGrid 1.3.0's click handling needs a fix
 * on Leaflet >= 1.8 (vectorgrid-click.js), and with several interactive canvas layers the top one
 * swallows the clicks meant for features of the layers below it. Instead one map-level click handler
 * hit-tests the features drawn in the clicked tile of every visible layer (points first, then lines,
 * then areas) with Leaflet's own geometry tests, and when it finds none asks the server which cell
 * covers the point (`/map/cell`, gridmgr.grid.assign's one rule). The hit test reads VectorGrid's
 * per-tile feature store (`_vectorTiles`, `_features`, kept because `getFeatureId` is set): an
 * internal of the pinned 1.3.0 that tests/test_map_browser.py exercises on every run.
 *
 * Text from the server is only ever put in the page with textContent: nothing is parsed as HTML.
 *
 * ---------------------------------------------------------------------------------------------
 * THE CELL STYLING HOOK (for choropleths):
 *
 *   gridmgr.styleCells(source[, options]) -> Promise<{cells, colors, breaks}>
 *   gridmgr.styleCells(null)                 clears it
 *   /map?style=/some/local/url.json          does the same when the page opens (URL-encode the value)
 *
 * `source` is a same-origin URL (fetched with the session cookie, GET, Accept: application/json) or
 * an object already in hand. The JSON is either a flat mapping
 *     {"110101001001001": 12, "110101001001002": "#bd0026", ...}
 * or an object with the mapping under "values" and optional settings:
 *     {"values": {code: value, ...},
 *      "title":   "结案率 close rate",                 legend heading
 *      "colors":  ["#ffffb2", "#fd8d3c", "#bd0026"], one colour per class, low to high
 *      "breaks":  [0.5, 0.8, 1.0],                   upper bound of each class (as many as colors)
 *      "labels":  ["≤ 50%", "50–80%", "> 80%"],       legend text of each class (default: from breaks)
 *      "legend":  [["#b2182b", "热点 hot spot"], ...], legend rows for colour or category values
 *      "opacity": 0.6,                               fill opacity
 *      "format":  "percent",                         legend numbers as 12.5% (default: plain)
 *      "key":     "prefix", "prefix": 12}            how a drawn feature finds its value (below)
 * `options` takes the same settings and wins over the JSON's. A value is a number (classed: the first
 * class whose upper bound it does not exceed; without breaks, equal intervals between the smallest and
 * the largest value, or one class per value for a few whole numbers), a CSS colour ("#rgb", "#rrggbb",
 * "rgb(...)", "hsl(...)") used as it is, or a category key when "colors" is an object {key: colour}
 * (then "legend" rows may name keys instead of colours).
 * By default a feature's value is the one under its own code: cell codes (15 digits; the tiles draw
 * cells from zoom `cellZoom`), community codes (12) or street codes (9; drawn below `cellZoom`), so
 * one mapping may colour every level. "key": "prefix" with "prefix": N looks up the first N digits of
 * the feature's code instead (a community-level report colours each cell with its community's value);
 * "key": "unit" looks up the cell's territorial unit code (the tiles' `unit` property).
 * Codes missing from the mapping, and null values, keep the plain outline. The legend shows the
 * classes under the title. Only the cells' fill changes; outlines keep marking the selected cell and
 * the supervisor's own cells. The page's own source is /map/values/<metric> (web/views/maps.py).
 * ---------------------------------------------------------------------------------------------
 */
(function () {
  'use strict';
  var G = window.gridmgr = window.gridmgr || {};
  var config = null;
  var seq = 0;
  var state = {
    fill: {},             // key -> fill colour (styleCells)
    key: 'code',          // how a feature finds its key: 'code', 'prefix' (first `prefix` digits), 'unit'
    prefix: 0,
    opacity: 0.6,
    mine: {},             // code -> true: the supervisor's cells
    selected: null,       // the code of the cell whose panel is open
    legend: null          // the choropleth's legend: {title, rows: [[colour, text]]}
  };
  var DEFAULT_COLORS = ['#ffffb2', '#fecc5c', '#fd8d3c', '#f03b20', '#bd0026'];
  var COLOUR = /^(#[0-9a-f]{3}|#[0-9a-f]{4}|#[0-9a-f]{6}|#[0-9a-f]{8}|(rgb|rgba|hsl|hsla)\([0-9.,%\s]+\))$/i;

  G.config = function () {
    if (!config) {
      var el = document.getElementById('map-config');
      config = el ? JSON.parse(el.textContent) : {};
    }
    return config;
  };

  /** A phrase of the page's language (the server puts them in the config's `text`), {name}s filled in. */
  G.t = function (key, values) {
    var text = (G.config().text || {})[key];
    if (text === undefined) { return key; }
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return values && values[name] !== undefined ? String(values[name]) : all;
    });
  };

  G.layerSpec = function (name) {
    var layers = G.config().layers || [];
    for (var i = 0; i < layers.length; i++) {
      if (layers[i].name === name) { return layers[i]; }
    }
    return null;
  };

  // ---------------------------------------------------------------- DOM helpers (text only)

  G.el = function (tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  };

  G.link = function (href, text, className) {
    var a = G.el('a', className, text);
    a.href = href;
    return a;
  };

  G.getJSON = function (url, signal) {
    return fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}, signal: signal})
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          if (!resp.ok) {
            var err = new Error((body && body.error && body.error.message) || ('HTTP ' + resp.status));
            err.status = resp.status;
            throw err;
          }
          return body;
        });
      });
  };

  // ---------------------------------------------------------------- styles

  function lookupKey(props, code) {
    if (state.key === 'prefix') { return code.length >= state.prefix ? code.slice(0, state.prefix) : null; }
    if (state.key === 'unit') { return props.unit ? String(props.unit) : null; }
    return code;
  }

  function cellStyle(weight) {
    return function (props) {
      var code = props.code === undefined || props.code === null ? '' : String(props.code);
      var s = {weight: weight, color: '#1e3a8a', opacity: 0.75, fill: false, fillOpacity: 0};
      var fill = state.fill[lookupKey(props, code)];
      if (fill) {
        s.fill = true;
        s.fillColor = fill;
        s.fillOpacity = state.opacity;
      }
      if (state.mine[code]) {
        s.color = '#0f766e';
        s.weight = weight + 1.5;
        s.opacity = 1;
      }
      if (code && code === state.selected) {
        s.color = '#dc2626';
        s.weight = weight + 2.5;
        s.opacity = 1;
      }
      return s;
    };
  }

  function statusColours(spec) {
    var out = {};
    (spec.byStatus || []).forEach(function (s) { out[s.key] = s.color; });
    return out;
  }

  function flagged(spec, props) {
    return (spec.flags || []).some(function (f) { return props[f.key] === true || props[f.key] === 1; });
  }

  function caseStyle(spec) {
    var colours = statusColours(spec);
    var radius = spec.style.radius || 5;
    return function (props) {
      var s = {radius: radius, fill: true, fillColor: colours[props.status] || spec.style.color || '#dc2626',
               fillOpacity: 0.9, color: '#ffffff', weight: 1, opacity: 1};
      if (flagged(spec, props)) {  // overdue: bigger, with a dark red ring
        s.radius = radius + 2.5;
        s.color = '#7f1d1d';
        s.weight = 3;
      }
      return s;
    };
  }

  function featureStyle(spec) {
    var colours = statusColours(spec);
    var base = spec.style || {};
    return function (props) {
      var colour = colours[props.status] || base.color || '#2563eb';
      var s = L.extend({}, base, {color: colour, fillColor: colour, opacity: 1});
      if (spec.kind === 'point') {
        s = {radius: base.radius || 4, fill: true, fillColor: colour, fillOpacity: 0.9, color: '#ffffff',
             weight: 1, opacity: 1};
      } else if (spec.kind === 'mixed') {  // points and areas in one layer: options that draw both
        s = {radius: base.radius || 4, fill: true, fillColor: colour, fillOpacity: 0.5, color: colour,
             weight: base.weight || 1.5, opacity: 1};
      } else {
        s.weight = base.weight || 2;
        if (s.fill === undefined) { s.fill = spec.kind === 'polygon'; }
      }
      if (flagged(spec, props)) {  // e.g. a billboard whose permit expired
        s.color = '#dc2626';
        s.weight = (spec.kind === 'point' ? 2.5 : s.weight + 1);
        if (spec.kind === 'point') { s.radius += 1.5; } else { s.dashArray = '5 3'; }
      }
      return s;
    };
  }

  function countStyle(spec) {
    var colour = (spec.style && spec.style.color) || '#2563eb';
    return function (props) {
      var n = props.count || 0;
      var alert = (spec.flags || []).some(function (f) { return (props[f.key] || 0) > 0; });
      return {radius: Math.min(4 + 1.6 * Math.sqrt(n), 24), fill: true, fillColor: colour, fillOpacity: 0.45,
              color: alert ? '#7f1d1d' : colour, weight: alert ? 2.5 : 1, opacity: 0.9};
    };
  }

  /** The options of a layer's L.vectorGrid.protobuf (folium passes `gridmgr.tileOptions("<layer>")`). */
  G.tileOptions = function (name) {
    var c = G.config();
    var styles = {};
    var minZoom = 0;
    if (name === c.cellLayer) {
      styles.cells = cellStyle(1);
      styles.communities = cellStyle(1.5);
      styles.streets = cellStyle(2);
    } else {
      var spec = G.layerSpec(name) || {name: name, kind: 'point', style: {}, flags: []};
      styles[name] = name === c.caseLayer ? caseStyle(spec) : featureStyle(spec);
      styles[name + '_counts'] = countStyle(spec);
      minZoom = spec.minZoom || 0;
    }
    return {
      rendererFactory: L.canvas.tile,
      interactive: false,          // see the header: one map-level click handler instead
      vectorTileLayerStyles: styles,
      getFeatureId: function () { seq += 1; return seq; },  // keeps the per-tile store the hit test reads
      tolerance: 4,                // px of slack around features for clicks
      maxZoom: c.maxZoom || 19,
      minZoom: minZoom
    };
  };

  /** Re-apply the style functions to every feature drawn (after the cell styling state changed). */
  G.restyle = function (layer) {
    if (!layer || !layer._vectorTiles) { return; }
    var styles = layer.options.vectorTileLayerStyles;
    Object.keys(layer._vectorTiles).forEach(function (key) {
      var tile = layer._vectorTiles[key];
      var features = tile._features || {};
      Object.keys(features).forEach(function (id) {
        var data = features[id];
        if (styles[data.layerName]) { layer._updateStyles(data.feature, tile, styles[data.layerName]); }
      });
    });
  };

  function restyleCells() {
    if (G.map && G.map.layers) { G.restyle(G.map.layers[G.config().cellLayer]); }
  }

  G.setMine = function (codes) {
    state.mine = {};
    (codes || []).forEach(function (c) { state.mine[c] = true; });
    restyleCells();
  };

  G.select = function (code) {
    state.selected = code || null;
    restyleCells();
  };

  // ---------------------------------------------------------------- the styling hook

  function formatter(format) {
    if (format === 'percent') {
      return function (v) { return (Math.round(v * 1000) / 10) + '%'; };
    }
    return function (v) { return String(Math.round(v * 100) / 100); };
  }

  function validColour(c) {
    return typeof c === 'string' && COLOUR.test(c) ? c : null;
  }

  /** Numbers into classes of colours; colour strings as they are; category keys through a colours object. */
  function classify(values, settings) {
    var byKey = settings.colors && !Array.isArray(settings.colors) && typeof settings.colors === 'object'
      ? settings.colors : null;  // categorical: {class key: colour}
    var colors = Array.isArray(settings.colors) ? settings.colors.filter(validColour) : [];
    if (!colors.length) { colors = DEFAULT_COLORS; }
    var numbers = [];
    Object.keys(values).forEach(function (code) {
      var v = values[code];
      if (typeof v === 'number' && isFinite(v)) { numbers.push(v); }
    });
    var labels = Array.isArray(settings.labels) ? settings.labels : null;
    var breaks = Array.isArray(settings.breaks) && settings.breaks.length ? settings.breaks.map(Number) : null;
    var min = Math.min.apply(null, numbers), max = Math.max.apply(null, numbers);
    if (!breaks && numbers.length) {
      breaks = [];
      var whole = numbers.every(function (v) { return v === Math.round(v); });
      if (whole && max - min + 1 <= colors.length) {
        // a few whole numbers (counts): one class each, the colours spread over the palette
        var picked = [];
        for (var w = min; w <= max; w++) {
          breaks.push(w);
          picked.push(colors[max === min ? colors.length - 1 : Math.round((w - min) * (colors.length - 1) / (max - min))]);
        }
        colors = picked;
        labels = labels || breaks.map(String);
      } else {  // equal intervals between the smallest and the largest value
        for (var i = 1; i <= colors.length; i++) {
          var b = min + (max - min) * i / colors.length;
          breaks.push(whole ? Math.round(b) : b);
        }
      }
    }
    var fill = {};
    Object.keys(values).forEach(function (code) {
      var v = values[code];
      if (typeof v === 'number' && isFinite(v)) {
        var k = 0;
        while (k < breaks.length - 1 && k < colors.length - 1 && v > breaks[k]) { k += 1; }
        fill[code] = colors[k];
      } else if (typeof v === 'string') {
        var c = validColour(v) || (byKey && validColour(byKey[v]));
        if (c) { fill[code] = c; }
      }
    });
    var fmt = formatter(settings.format);
    var rows = [];
    if (numbers.length) {
      for (var j = 0; j < colors.length && j < breaks.length; j++) {
        var given = labels && labels[j] !== undefined && labels[j] !== null;
        rows.push([colors[j], given ? String(labels[j])
          : j === 0 ? '≤ ' + fmt(breaks[0]) : fmt(breaks[j - 1]) + ' – ' + fmt(breaks[j])]);
      }
    }
    if (Array.isArray(settings.legend)) {  // categories: [[colour or class key, text], ...]
      settings.legend.forEach(function (pair) {
        var c = Array.isArray(pair) && (validColour(pair[0]) || (byKey && validColour(byKey[pair[0]])));
        if (c) { rows.push([c, String(pair[1])]); }
      });
    }
    return {fill: fill, colors: numbers.length ? colors : [], breaks: breaks || [], rows: rows};
  }

  /** Colour the cells (and communities, streets) from a code → value JSON: see the header. */
  G.styleCells = function (source, options) {
    if (source === null || source === undefined || source === '') {
      state.fill = {};
      state.key = 'code';
      state.legend = null;
      restyleCells();
      G.drawLegend();
      return Promise.resolve({cells: 0, colors: [], breaks: []});
    }
    var load = typeof source === 'string' ? G.getJSON(source) : Promise.resolve(source);
    return load.then(function (body) {
      body = body || {};
      var hasValues = body.values && typeof body.values === 'object';
      var settings = L.extend({}, hasValues ? body : {}, options || {});
      var out = classify(hasValues ? body.values : body, settings);
      state.fill = out.fill;
      state.key = settings.key === 'prefix' || settings.key === 'unit' ? settings.key : 'code';
      state.prefix = parseInt(settings.prefix, 10) || 0;
      state.opacity = typeof settings.opacity === 'number' ? settings.opacity : 0.6;
      state.legend = {title: settings.title || G.t('colour'), rows: out.rows};
      restyleCells();
      G.drawLegend();
      return {cells: Object.keys(out.fill).length, colors: out.colors, breaks: out.breaks};
    });
  };

  // ---------------------------------------------------------------- the legend

  G.drawLegend = function () {
    var box = document.getElementById('map-legend-choropleth');
    if (!box) { return; }
    box.textContent = '';
    box.hidden = !state.legend;
    if (!state.legend) { return; }
    box.appendChild(G.el('div', 'legend-title', state.legend.title));
    state.legend.rows.forEach(function (row) {
      var line = G.el('div', 'legend-row');
      var sw = G.el('span', 'swatch square');
      sw.style.background = row[0];
      line.appendChild(sw);
      line.appendChild(G.el('span', null, row[1]));
      box.appendChild(line);
    });
  };

  function swatch(kind, colour, ring) {
    var sw = G.el('span', 'swatch ' + (kind === 'point' ? 'dot' : kind === 'line' ? 'line' : 'square'));
    if (kind === 'line') { sw.style.borderTopColor = colour; } else { sw.style.background = colour; }
    if (ring) { sw.style.boxShadow = '0 0 0 2px ' + ring; }
    return sw;
  }

  /** The legend control: the cells, every layer (cases by status, flags), the choropleth, extras. */
  G.legendControl = function (extra) {
    var control = L.control({position: 'bottomright'});
    control.onAdd = function () {
      var c = G.config();
      var outer = G.el('div', 'leaflet-control map-legend');
      outer.id = 'map-legend';
      var box = G.el('details');  // folds away on a small screen
      box.open = c.legendOpen !== false && window.innerHeight > 560;
      box.appendChild(G.el('summary', null, G.t('legend')));
      outer.appendChild(box);
      var row = G.el('div', 'legend-row');
      var cellSw = G.el('span', 'swatch square outline');
      row.appendChild(cellSw);
      row.appendChild(G.el('span', null, G.t('cells')));
      box.appendChild(row);
      if (c.hasMine) {
        var mineRow = G.el('div', 'legend-row');
        var mineSw = G.el('span', 'swatch square outline mine');
        mineRow.appendChild(mineSw);
        mineRow.appendChild(G.el('span', null, G.t('myCells')));
        box.appendChild(mineRow);
      }
      (c.layers || []).slice().reverse().forEach(function (spec) {
        var colour = (spec.style && spec.style.color) || '#2563eb';
        var head = G.el('div', 'legend-row legend-layer');
        head.appendChild(swatch(spec.kind, colour));
        head.appendChild(G.el('span', null, spec.title));
        box.appendChild(head);
        if (spec.name === c.caseLayer) {
          spec.byStatus.forEach(function (s) {
            var r = G.el('div', 'legend-row sub');
            r.appendChild(swatch('point', s.color));
            r.appendChild(G.el('span', null, s.label));
            box.appendChild(r);
          });
          var other = G.el('div', 'legend-row sub');
          other.appendChild(swatch('point', colour));
          other.appendChild(G.el('span', null, G.t('otherStates')));
          box.appendChild(other);
        }
        (spec.flags || []).forEach(function (f) {
          var r = G.el('div', 'legend-row sub');
          r.appendChild(swatch(spec.kind, spec.name === c.caseLayer ? colour : 'transparent',
                               spec.name === c.caseLayer ? '#7f1d1d' : '#dc2626'));
          r.appendChild(G.el('span', null, f.label));
          box.appendChild(r);
        });
      });
      box.appendChild(G.el('div', 'legend-note', G.t('caseWindow', {days: c.caseWindowDays, zoom: c.casePointZoom})));
      var choropleth = G.el('div', 'legend-choropleth');
      choropleth.id = 'map-legend-choropleth';
      choropleth.hidden = true;
      box.appendChild(choropleth);
      if (extra) { extra(box); }
      L.DomEvent.disableClickPropagation(outer);
      L.DomEvent.disableScrollPropagation(outer);
      return outer;
    };
    return control;
  };

  // ---------------------------------------------------------------- hit test and popups

  function hitLayer(map, name, layer, latlng) {
    var z = layer._tileZoom;
    if (z === undefined || !layer._vectorTiles) { return null; }
    var size = layer.getTileSize();
    var p = map.project(latlng, z);
    var coords = p.unscaleBy(size).floor();
    coords.z = z;
    var tile = layer._vectorTiles[layer._tileCoordsToKey(coords)];
    if (!tile || !tile._features) { return null; }
    var local = p.subtract(coords.scaleBy(size));
    var found = null;
    Object.keys(tile._features).forEach(function (id) {
      var data = tile._features[id];
      var f = data.feature;
      if (!f._containsPoint || !f._renderer) { return; }
      var had = f._pxBounds;
      if (f.makeInteractive) { f.makeInteractive(); }  // the bounds _containsPoint needs
      var inside = f._containsPoint(local);
      if (!had) { delete f._pxBounds; }  // partial redraws rely on bounds: leave none behind
      if (inside) { found = {layer: name, tileLayer: data.layerName, properties: f.properties || {}}; }
    });
    return found;  // the last drawn wins: it is on top
  }

  /** The feature drawn at a point, topmost visible layer first (points, then lines, then areas). */
  G.hitTest = function (latlng) {
    var m = G.map;
    if (!m) { return null; }
    var names = (G.config().layers || []).map(function (s) { return s.name; }).reverse();
    for (var i = 0; i < names.length; i++) {
      var layer = m.layers[names[i]];
      if (layer && m.map.hasLayer(layer)) {
        var hit = hitLayer(m.map, names[i], layer, latlng);
        if (hit) { return hit; }
      }
    }
    return null;
  };

  function fieldTable(fields) {
    var dl = G.el('dl', 'popup-fields');
    (fields || []).forEach(function (f) {
      dl.appendChild(G.el('dt', null, f.label));
      dl.appendChild(G.el('dd', null, f.value));
    });
    return dl;
  }

  /** Open the popup of a feature found by the hit test: counts at once, features from /map/features. */
  G.featurePopup = function (hit, latlng) {
    var m = G.map;
    var c = G.config();
    var spec = G.layerSpec(hit.layer) || {title: hit.layer};
    var box = G.el('div', 'map-popup');
    var popup = L.popup({maxWidth: 340, minWidth: 200}).setLatLng(latlng).setContent(box);
    if (hit.tileLayer !== hit.layer) {  // a count square: how many, and zoom in
      var p = hit.properties;
      box.appendChild(G.el('h3', null, spec.title));
      box.appendChild(G.el('p', null, G.t('here', {n: p.count || 0})));
      (spec.flags || []).forEach(function (f) {
        if (p[f.key]) { box.appendChild(G.el('p', 'flag', f.label + ': ' + p[f.key])); }
      });
      var zoom = G.el('button', 'link', G.t('zoomIn'));
      zoom.type = 'button';
      zoom.addEventListener('click', function () {
        m.map.closePopup();
        m.map.setView(latlng, Math.max(m.map.getZoom() + 2, spec.name === c.caseLayer ? c.casePointZoom : 0));
      });
      box.appendChild(zoom);
      popup.openOn(m.map);
      return popup;
    }
    box.appendChild(G.el('p', 'muted', G.t('loading')));
    popup.openOn(m.map);
    G.getJSON(c.api.feature + encodeURIComponent(hit.layer) + '/' + encodeURIComponent(hit.properties.id))
      .then(function (data) {
        box.textContent = '';
        box.appendChild(G.el('h3', null, data.title));
        (data.flags || []).forEach(function (f) { box.appendChild(G.el('p', 'flag', f)); });
        box.appendChild(fieldTable(data.fields));
        if (data.note) { box.appendChild(G.el('p', 'muted', data.note)); }
        if (data.url) {
          box.appendChild(G.link(data.url, G.t(data.layer === c.caseLayer ? 'casePage' : 'itsCell')));
        }
        popup.update();
      })
      .catch(function (err) {
        box.textContent = '';
        box.appendChild(G.el('p', 'flag', err.message));
      });
    return popup;
  };

  // ---------------------------------------------------------------- cell labels at high zoom

  function labelLayer(map) {
    var group = L.layerGroup().addTo(map);
    var asked = 0, timer = null;
    function refresh() {
      var c = G.config();
      var z = map.getZoom();
      var cells = G.map.layers[c.cellLayer];
      var ticket = ++asked;  // a newer view makes older answers stale (they are ignored, not aborted)
      if (z < c.labelZoom || !cells || !map.hasLayer(cells)) {
        group.clearLayers();
        return;
      }
      var b = map.getBounds().pad(0.1);
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); });
      G.getJSON(c.api.labels + '?bbox=' + bbox.join(',')).then(function (data) {
        if (ticket !== asked) { return; }
        group.clearLayers();
        var full = map.getZoom() >= c.fullLabelZoom;
        data.cells.forEach(function (cell) {
          var span = G.el('span', null, full ? cell[0] : '…' + cell[0].slice(-3));
          group.addLayer(L.marker([cell[1], cell[2]], {
            icon: L.divIcon({className: 'map-cell-label', html: span, iconSize: null}),
            interactive: false, keyboard: false
          }));
        });
      }).catch(function () {
        if (ticket === asked) { group.clearLayers(); }
      });
    }
    function soon() {  // one call for a burst of moves
      clearTimeout(timer);
      timer = setTimeout(refresh, 120);
    }
    map.on('moveend overlayadd overlayremove', soon);
    soon();
    return group;
  }

  // ---------------------------------------------------------------- start

  /**
   * Take over the folium map of the page: find it and its tile layers (their JS names are in the config),
   * add the legend, labels and the click handler; `onCell(latlng)` handles clicks on no feature.
   */
  G.attach = function (onCell, legendExtra) {
    var c = G.config();
    var map = window[c.mapName];
    if (!map) { return null; }
    var layers = {};
    Object.keys(c.layerNames || {}).forEach(function (k) { layers[k] = window[c.layerNames[k]]; });
    G.map = {map: map, layers: layers};
    map.getContainer().classList.add('gridmgr-map');
    G.legendControl(legendExtra).addTo(map);
    G.map.labels = labelLayer(map);
    map.on('click', function (e) {
      var hit = G.hitTest(e.latlng);
      if (hit) {
        G.featurePopup(hit, e.latlng);
      } else if (onCell) {
        onCell(e.latlng);
      }
    });
    // a pointer over a feature, as interactive layers would show
    var framed = false;
    map.on('mousemove', function (e) {
      if (framed) { return; }
      framed = true;
      L.Util.requestAnimFrame(function () {
        framed = false;
        map.getContainer().classList.toggle('over-feature', !!G.hitTest(e.latlng));
      });
    });
    if (c.style) {
      G.styleCells(c.style).catch(function (err) { G.notice && G.notice(G.t('colouringFailed') + err.message); });
    }
    G.drawLegend();
    return G.map;
  };
})();
