/*
 * gridmgr: the supervisor map (/map). Needs map-core.js. Adds to the folium map of the page:
 * the side panel of a clicked cell (/map/cell), the search box (/map/search), "my cells" (/map/mine),
 * the cases' filter (the tile URL's status / overdue / period parameters) and "colour cells by" (a
 * layer metric per cell through gridmgr.styleCells). Every server text goes in with textContent.
 */
(function () {
  'use strict';
  var G = window.gridmgr;
  var panelAsked = 0;

  function c() { return G.config(); }

  // ---------------------------------------------------------------- the side panel

  function section(title) {
    var s = G.el('section', 'panel-section');
    s.appendChild(G.el('h3', null, title));
    return s;
  }

  function phoneLink(phone) {
    return phone ? G.link('tel:' + phone.replace(/[^0-9+\-]/g, ''), phone, 'phone') : G.el('span', 'muted', '—');
  }

  /* a section of the cell's units or people: each with its duty or post, name and phone */
  function contacts(title, rows, tagKey) {
    var part = section(title);
    if (!rows.length) { part.appendChild(G.el('p', 'muted', G.t('noneAssigned'))); }
    rows.forEach(function (r) {
      var row = G.el('div', 'person');
      row.appendChild(G.el('span', 'tag', r[tagKey]));
      row.appendChild(G.el('span', 'name', r.name));
      row.appendChild(phoneLink(r.phone));
      part.appendChild(row);
    });
    return part;
  }


  function renderPanel(data) {
    var panel = document.getElementById('map-panel');
    var body = panel.querySelector('.panel-body');
    body.textContent = '';
    var head = G.el('header', 'panel-head');
    head.appendChild(G.el('div', 'muted', G.t('cell')));
    var code = G.el('h2', 'cell-code', data.code);
    code.dataset.code = data.code;
    head.appendChild(code);
    var where = [data.district, data.street, data.community].filter(Boolean)
      .map(function (r) { return r.name + ' ' + r.code; });
    where.forEach(function (w) { head.appendChild(G.el('div', 'where', w)); });
    body.appendChild(head);

    body.appendChild(contacts(G.t('units'), data.units, 'duty_label'));
    var people = contacts(G.t('people'), data.people, 'post_label');
    if (data.duty_grids.length) {
      people.appendChild(G.el('div', 'muted', G.t('dutyGrids') + data.duty_grids.map(function (g) {
        return g.name + ' (' + g.code + ')';
      }).join('、')));
    }
    body.appendChild(people);

    var stock = section(G.t('inventory'));
    var table = G.el('table', 'inventory');
    data.inventory.forEach(function (m) {
      var tr = G.el('tr');
      tr.appendChild(G.el('th', null, m.label));
      tr.appendChild(G.el('td', m.value ? 'num strong' : 'num', m.value));
      table.appendChild(tr);
    });
    stock.appendChild(table);
    body.appendChild(stock);

    var cases = section(G.t('openCases', {n: data.open_cases.total}));
    var list = G.el('ul', 'case-list');
    data.open_cases.items.forEach(function (k) {
      var li = G.el('li', k.overdue ? 'overdue' : null);
      li.appendChild(G.link(c().api.casePage + encodeURIComponent(k.case_no), k.case_no));
      li.appendChild(G.el('span', null, ' ' + k.category + ' · ' + k.status_label + (k.overdue ? ' · ' + G.t('overdue') : '')));
      if (k.description) { li.appendChild(G.el('div', 'muted', k.description)); }
      list.appendChild(li);
    });
    if (!data.open_cases.items.length) { cases.appendChild(G.el('p', 'muted', G.t('noneYouCanSee'))); }
    cases.appendChild(list);
    body.appendChild(cases);

    body.appendChild(G.link(data.url, G.t('cellPage'), 'button-link'));
    panel.hidden = false;
    panel.dataset.code = data.code;
    G.select(data.code);
    G.map.map.invalidateSize();
  }

  function showMessage(text) {
    var panel = document.getElementById('map-panel');
    var body = panel.querySelector('.panel-body');
    body.textContent = '';
    body.appendChild(G.el('p', 'muted', text));
    panel.hidden = false;
    panel.dataset.code = '';
    G.map.map.invalidateSize();
  }

  /** Open the panel of the cell at a point, or of a cell code. */
  G.openCell = function (where) {
    var ticket = ++panelAsked;  // a later click wins; earlier answers are ignored
    var q = typeof where === 'string' ? '?code=' + encodeURIComponent(where)
      : '?lat=' + where.lat.toFixed(7) + '&lon=' + where.lng.toFixed(7);
    return G.getJSON(c().api.cell + q).then(function (data) {
      if (ticket !== panelAsked) { return null; }
      if (!data.code) {  // outside the grid
        G.select(null);
        showMessage(data.message);
        return null;
      }
      renderPanel(data);
      return data;
    }).catch(function (err) {
      if (ticket !== panelAsked) { return null; }
      G.select(null);
      showMessage(err.status === 404 ? G.t('noCellHere') : err.message);
      return null;
    });
  };

  function closePanel() {
    var panel = document.getElementById('map-panel');
    panel.hidden = true;
    panel.dataset.code = '';
    G.select(null);
    G.map.map.invalidateSize();
  }

  // ---------------------------------------------------------------- search and my cells

  var marker = null;

  G.notice = function (text) {
    var out = document.getElementById('map-search-message');
    if (out) { out.textContent = text || ''; }
  };

  function goTo(result) {
    var map = G.map.map;
    if (marker) { map.removeLayer(marker); marker = null; }
    if (result.bounds) {
      map.fitBounds(result.bounds, {maxZoom: 18, padding: [20, 20]});
    } else if (result.point) {
      map.setView(result.point, Math.max(map.getZoom(), 18));
    }
    if (result.point) {
      marker = L.circleMarker(result.point, {radius: 9, color: '#dc2626', weight: 3, fill: false, interactive: false})
        .addTo(map);
    }
    if (result.kind === 'cell') {
      G.openCell(result.code);
    } else if (result.kind === 'case') {
      G.featurePopup({layer: c().caseLayer, tileLayer: c().caseLayer, properties: {id: result.case.id}},
                     L.latLng(result.point[0], result.point[1]));
    } else if (result.kind === 'point' && result.code) {
      G.openCell(result.code);
    }
  }

  G.search = function (q) {
    G.notice('');
    return G.getJSON(c().api.search + '?q=' + encodeURIComponent(q)).then(function (result) {
      if (!result.kind) {  // nothing found: the server says what to try
        G.notice(result.message);
        return null;
      }
      G.notice(result.label);
      goTo(result);
      return result;
    }).catch(function (err) {
      G.notice(err.message);
      return null;
    });
  };

  G.showMine = function () {
    return G.getJSON(c().api.mine).then(function (data) {
      G.setMine(data.codes);
      if (data.bounds) {
        G.map.map.fitBounds(data.bounds, {padding: [20, 20]});
        G.notice(G.t('mineCount', {n: data.codes.length}));
      } else {
        G.notice(G.t('noDutyGrid'));
      }
      return data;
    });
  };

  function searchControl() {
    var control = L.control({position: 'topleft'});
    control.onAdd = function () {
      var box = G.el('div', 'leaflet-control map-search');
      var form = G.el('form');
      form.setAttribute('role', 'search');
      var input = G.el('input');
      input.type = 'search';
      input.name = 'q';
      input.id = 'map-search-input';
      input.placeholder = G.t('searchPlaceholder');
      input.setAttribute('aria-label', G.t('search'));
      input.value = c().query || '';
      form.appendChild(input);
      var go = G.el('button', null, G.t('search'));
      go.type = 'submit';
      form.appendChild(go);
      if (c().hasMine) {
        var mineButton = G.el('button', 'mine', G.t('myCellsButton'));
        mineButton.type = 'button';
        mineButton.id = 'map-mine';
        mineButton.addEventListener('click', function () { G.showMine(); });
        form.appendChild(mineButton);
      }
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        if (input.value.trim()) { G.search(input.value.trim()); }
      });
      box.appendChild(form);
      var out = G.el('div', 'message');
      out.id = 'map-search-message';
      out.setAttribute('aria-live', 'polite');
      box.appendChild(out);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    return control;
  }

  // ---------------------------------------------------------------- cases filter and colouring

  function monthPeriod(d) {
    return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0');
  }

  function caseFilters() {
    var now = new Date();
    return [
      ['', G.t('allCases', {days: c().caseWindowDays})],
      ['status=' + c().openStates.join(','), G.t('open')],
      ['overdue=true', G.t('overdue')],
      ['period=' + monthPeriod(now), G.t('thisMonth')],
      ['period=' + now.getFullYear(), G.t('thisYear')]
    ];
  }

  function select(label, options, onChange, id) {
    var wrap = G.el('label', 'legend-select');
    wrap.appendChild(G.el('span', null, label));
    var s = G.el('select');
    s.id = id;
    options.forEach(function (o) {
      var opt = G.el('option', null, o[1]);
      opt.value = o[0];
      s.appendChild(opt);
    });
    s.addEventListener('change', function () { onChange(s.value); });
    wrap.appendChild(s);
    return wrap;
  }

  function legendExtras(box) {
    box.appendChild(select(G.t('casesFilter'), caseFilters(), function (qs) {
      var layer = G.map.layers[c().caseLayer];
      if (!layer) { return; }
      var url = c().tileUrl.replace('{layer}', c().caseLayer);
      layer.setUrl(qs ? url + '?' + qs : url);
    }, 'map-case-filter'));
    var metrics = [['', G.t('none')]].concat((c().metrics || []).map(function (m) { return [m.name, m.label]; }));
    box.appendChild(select(G.t('colourCells'), metrics, function (name) {
      G.styleCells(name ? c().api.values + encodeURIComponent(name) : null)
        .catch(function (err) { G.notice(err.message); });
    }, 'map-colour-by'));
  }

  // ---------------------------------------------------------------- start

  function start() {
    if (c().mode !== 'supervisor' || !window.L) { return; }
    var m = G.attach(function (latlng) { G.openCell(latlng); }, legendExtras);
    if (!m) { return; }
    searchControl().addTo(m.map);
    var close = document.querySelector('#map-panel .panel-close');
    if (close) { close.addEventListener('click', closePanel); }
    if (c().hasMine) {
      G.getJSON(c().api.mine).then(function (data) { G.setMine(data.codes); }).catch(function () {});
    }
    if (c().query) { G.search(c().query); }
    G.ready = true;
    document.dispatchEvent(new CustomEvent('gridmgr:mapready'));
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
