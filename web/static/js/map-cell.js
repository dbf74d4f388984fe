/*
 * gridmgr: the cell page (/cells/<code>). Needs map-core.js. The small map marks the cell among its
 * neighbours; a click on a feature opens its popup, a click on another cell goes to that cell's page.
 * The month's indicators come as an HTML fragment rendered (and escaped) by the server.
 */
(function () {
  'use strict';
  var G = window.gridmgr;

  function start() {
    var c = G.config();
    if (c.mode !== 'cell' || !window.L) { return; }
    var m = G.attach(function (latlng) {
      G.getJSON(c.api.cell + '?lat=' + latlng.lat.toFixed(7) + '&lon=' + latlng.lng.toFixed(7))
        .then(function (data) {
          if (data.code && data.code !== c.selected) { window.location.href = data.url; }
        })
        .catch(function () {});
    });
    if (m) {
      G.select(c.selected);
      G.ready = true;
      document.dispatchEvent(new CustomEvent('gridmgr:mapready'));
    }
  }

  function indicators() {
    var box = document.getElementById('cell-indicators');
    if (!box || !box.dataset.src) { return; }
    fetch(box.dataset.src, {credentials: 'same-origin', headers: {Accept: 'text/html'}})
      .then(function (resp) {
        return resp.text().then(function (body) {
          if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
          return body;
        });
      })
      .then(function (html) { box.innerHTML = html; })  // our own server's escaped fragment
      .catch(function (err) {
        box.textContent = G.t('indicatorsFailed') + err.message;
      });
  }

  function ready() {
    start();
    indicators();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', ready);
  } else {
    ready();
  }
})();
