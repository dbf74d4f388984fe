/*
 * gridmgr: sortable report tables and clickable rows (web/templates/reports/reports.html).
 *
 * A <table class="sortable"> sorts on a click on a header: numbers by each cell's data-sort (empty =
 * "—", always last), text by its content in Chinese collation. The total sits in <tfoot> and stays.
 * A row with data-href opens it on a click (links inside the row keep working as links).
 */
(function () {
  'use strict';

  function keyOf(cell, numeric) {
    var raw = cell.getAttribute('data-sort');
    if (numeric) { return raw === null || raw === '' ? null : parseFloat(raw); }
    return cell.textContent.trim();
  }

  function sortBy(table, index, th) {
    var body = table.tBodies[0];
    var numeric = th.getAttribute('data-type') === 'num';
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    var collator = new Intl.Collator('zh-CN', { numeric: true });
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = keyOf(a.cells[index], numeric), y = keyOf(b.cells[index], numeric);
      if (x === null || x === '') { return (y === null || y === '') ? 0 : 1; }
      if (y === null || y === '') { return -1; }
      var order = numeric ? x - y : collator.compare(x, y);
      return ascending ? order : -order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  }

  function init(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, i) {
      th.tabIndex = 0;
      th.title = table.dataset.sortHint || '';  // the page's language (reports.html, hotspots.html)
      th.addEventListener('click', function () { sortBy(table, i, th); });
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(table, i, th); }
      });
    });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var href = row.getAttribute('data-href');
      if (!href) { return; }
      row.classList.add('link');
      row.addEventListener('click', function (e) {
        if (e.target.closest('a')) { return; }
        window.location.href = href;
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), init);
  });
})();
