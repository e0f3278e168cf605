/* neuron-atlas explorer: tooltips, table search and sort, chart switching, copy buttons. Vanilla JS, no network. */
(function () {
  "use strict";
  var tip = document.createElement("div");
  tip.id = "tip";
  document.body.appendChild(tip);

  function show(text, ev) {
    tip.textContent = text;
    tip.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) { x = ev.clientX - tip.offsetWidth - 10; }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function hide() { tip.style.display = "none"; }

  // Decode a matrix stored as base64 little-endian integers (u2 or u4) in data-values, once per chart.
  function matrix(svg) {
    if (!svg._values) {
      var bin = atob(svg.getAttribute("data-values")), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
      svg._values = svg.getAttribute("data-dtype") === "u2" ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer);
      svg._rows = svg.getAttribute("data-rows").split(",");
      svg._cols = svg.getAttribute("data-cols").split(",");
    }
    return svg._values;
  }

  document.addEventListener("mousemove", function (ev) {
    var el = ev.target;
    if (!(el instanceof Element)) { hide(); return; }
    var tipped = el.closest("[data-tip]");
    if (tipped) { show(tipped.getAttribute("data-tip"), ev); return; }
    var svg = el.closest("svg.raster");
    if (svg && el.tagName.toLowerCase() === "image") {
      var ctm = svg.getScreenCTM();
      if (!ctm) { hide(); return; }
      var pt = svg.createSVGPoint();
      pt.x = ev.clientX; pt.y = ev.clientY;
      var p = pt.matrixTransform(ctm.inverse());
      var col = Math.floor((p.x - +svg.getAttribute("data-x0")) / +svg.getAttribute("data-cw"));
      var row = Math.floor((p.y - +svg.getAttribute("data-y0")) / +svg.getAttribute("data-ch"));
      var nrows = +svg.getAttribute("data-nrows"), ncols = +svg.getAttribute("data-ncols");
      if (row < 0 || col < 0 || row >= nrows || col >= ncols) { hide(); return; }
      var values = matrix(svg), scale = +(svg.getAttribute("data-scale") || 1);
      var v = values[row * ncols + col] / scale;
      var text = svg._rows[row] + " · " + svg._cols[col] + ": " + (scale > 1 ? v.toFixed(3) : String(v)) + " " + svg.getAttribute("data-unit");
      show(text, ev);
      return;
    }
    hide();
  });

  // Search: an input with data-filter="TABLE_ID" hides the rows whose text does not contain every typed word.
  function count(table) {
    var shown = 0, rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) { if (!rows[i].hidden) { shown++; } }
    document.querySelectorAll('[data-count-for="' + table.id + '"]').forEach(function (el) {
      el.textContent = shown + " of " + rows.length + " languages";
    });
  }
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) { return; }
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean), rows = table.tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        var text = (rows[i].textContent + " " + (rows[i].getAttribute("data-search") || "")).toLowerCase();
        rows[i].hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      }
      count(table);
    }
    input.addEventListener("input", apply);
    apply();
  });

  // Sort: click a header of a table.sortable; th.num columns sort as numbers (data-sort on the cell if present).
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;  // sortable from the keyboard too (Enter or Space)
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); th.click(); }
      });
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending", numeric = th.classList.contains("num");
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        function key(row) {
          var cell = row.cells[col], raw = cell.getAttribute("data-sort");
          raw = raw === null ? cell.textContent.trim() : raw;
          return numeric ? (raw === "" ? -Infinity : parseFloat(raw)) : raw.toLowerCase();
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // Chart switching: <select data-switch="CONTAINER_ID"> shows the child with the matching data-variant.
  document.querySelectorAll("select[data-switch]").forEach(function (select) {
    var box = document.getElementById(select.getAttribute("data-switch"));
    function apply() {
      box.querySelectorAll("[data-variant]").forEach(function (el) {
        el.hidden = el.getAttribute("data-variant") !== select.value;
      });
    }
    select.addEventListener("change", apply);
    apply();
  });

  // Copy buttons: copy the code block's text; fall back to selecting it where the clipboard is unavailable.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var pre = document.getElementById(button.getAttribute("data-copy"));
      var text = pre.textContent;
      function selectIt() {
        var range = document.createRange();
        range.selectNodeContents(pre);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        button.textContent = "selected: press Ctrl+C";
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { button.textContent = "copied"; }, selectIt);
      } else {
        selectIt();
      }
    });
  });
})();
