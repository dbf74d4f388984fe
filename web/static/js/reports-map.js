/*
 * gridmgr: choropleths on the cell vector tiles (/tiles/cells/{z}/{x}/{y}.pbf), styled from a small
 * code → value JSON (web/views/reports.py: /reports/values.json, /hotspots/values.json). The grid is never
 * sent as GeoJSON.
 *
 * web/views/reports.py passes `gridmgrChoropleth(config)` as the options of folium's VectorGridProtobuf:
 *   config.valuesUrl  the JSON to fetch: {key, prefix?, values, classes?, breaks?, labels?,
 *                     categorical?, legend?, title}
 *   config.legend     id of the element the legend goes into
 *   config.palette    colours of the classes, light to dark
 *   config.colours    class name → colour, for categorical maps (hot/cold spots, change)
 *   config.link       URL with {code}: where a click on a feature leads (optional)
 * How a feature finds its value (`key` in the JSON): "prefix" — the first `prefix` digits of its code
 * (cells, communities and streets of the tiles roll up to the report's level); "unit" — the cell's
 * territorial unit; "cell" — the cell's own code. Features without a value are drawn as outlines.
 * Values arrive after the first tiles: the layer is then redrawn.
 */
(function () {
  'use strict';

  var OUTLINE = { weight: 0.6, color: '#64748b', opacity: 0.7, fill: true, fillColor: '#ffffff', fillOpacity: 0 };
  var layers = [];  // [layer, state] pairs, filled by the init hook below

  if (typeof L !== 'undefined' && L.VectorGrid) {
    L.VectorGrid.addInitHook(function () {
      var state = this.options && this.options.gridmgrState;
      if (state) {
        layers.push([this, state]);
        state.layer = this;
        if (state.data) { this.redraw(); }
      }
    });
  }

  function lookupKey(state, props) {
    var data = state.data, code = props && props.code;
    if (!data || code === undefined || code === null) { return null; }
    code = String(code);
    if (data.key === 'prefix') {
      return code.length >= data.prefix ? code.slice(0, data.prefix) : null;
    }
    if (data.key === 'unit') { return props.unit ? String(props.unit) : null; }
    return code.length === 15 ? code : null;
  }

  function fillFor(state, key) {
    var data = state.data;
    if (key === null || !data || !Object.prototype.hasOwnProperty.call(data.values, key)) { return null; }
    var value = data.values[key];
    if (value === null || value === undefined) { return null; }
    if (data.categorical) {
      return state.config.colours[value] || null;
    }
    var cls = data.classes ? data.classes[key] : undefined;
    if (cls === undefined) { return null; }
    var palette = state.config.palette;
    return palette[Math.min(cls, palette.length - 1)];
  }

  function styler(state) {
    return function (props) {
      var colour = fillFor(state, lookupKey(state, props));
      if (!colour) { return OUTLINE; }
      return { weight: 0.6, color: '#475569', opacity: 0.8, fill: true, fillColor: colour, fillOpacity: 0.7 };
    };
  }

  function text(el, value) { el.textContent = value; return el; }

  function swatch(colour) {
    var s = document.createElement('span');
    s.className = 'swatch';
    s.style.background = colour;
    return s;
  }

  function legend(state) {
    var box = document.getElementById(state.config.legend);
    var data = state.data;
    if (!box || !data) { return; }
    box.textContent = '';
    box.appendChild(text(document.createElement('strong'), data.title || ''));
    var list = document.createElement('ul');
    var items = [];
    if (data.categorical) {
      (data.legend || []).forEach(function (entry) {
        items.push([state.config.colours[entry[0]] || '#ffffff', entry[1]]);
      });
    } else {
      var labels = data.labels || [];
      labels.forEach(function (label, i) {
        var lowTxt = i === 0 ? '' : labels[i - 1] + ' – ';
        items.push([state.config.palette[Math.min(i, state.config.palette.length - 1)], (i === 0 ? '≤ ' : lowTxt) + label]);
      });
      if (!labels.length) { items.push(['#ffffff', state.config.text.noData]); }
      if (data.better === 'lower') { items.push([null, state.config.text.lowerBetter]); }
    }
    items.push(['#ffffff', '— ' + state.config.text.noValue]);
    items.forEach(function (item) {
      var li = document.createElement('li');
      if (item[0]) { li.appendChild(swatch(item[0])); }
      li.appendChild(text(document.createElement('span'), item[1]));
      list.appendChild(li);
    });
    box.appendChild(list);
  }

  function load(state) {
    fetch(state.config.valuesUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.json();
      })
      .then(function (data) {
        state.data = data;
        legend(state);
        if (state.layer) { state.layer.redraw(); }
      })
      .catch(function (err) {
        var box = document.getElementById(state.config.legend);
        if (box) { box.textContent = state.config.text.loadFailed + err.message; }
      });
  }

  function followLinks(state) {
    // a click on a cell: its page, or the area one level down (needs vectorgrid-click.js on Leaflet 1.9)
    if (!state.config.link) { return; }
    var wait = setInterval(function () {
      if (!state.layer) { return; }
      clearInterval(wait);
      state.layer.on('click', function (e) {
        var key = lookupKey(state, e.layer && e.layer.properties);
        if (key && state.data && state.data.key !== 'unit') {
          window.location.href = state.config.link.replace('{code}', encodeURIComponent(key));
        }
      });
    }, 50);
  }

  window.gridmgrChoropleth = function (config) {
    var state = { config: config, data: null, layer: null };
    var style = styler(state);
    load(state);
    followLinks(state);
    return {
      interactive: !!config.link,
      maxNativeZoom: 18,
      getFeatureId: function (f) { return f.properties && f.properties.code; },
      vectorTileLayerStyles: { cells: style, communities: style, streets: style },
      gridmgrState: state
    };
  };
})();
