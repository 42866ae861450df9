// Sort a table.sortable by the clicked column (numbers numerically, missing values last).
// The only script of report.html, allowed by its hash in the Content-Security-Policy.
document.documentElement.classList.add("js");
document.addEventListener("click", function (event) {
  var th = event.target.closest("table.sortable th");
  if (!th) return;
  var body = th.closest("table").tBodies[0], index = th.cellIndex;
  var numeric = th.classList.contains("num");
  var up = th.getAttribute("aria-sort") !== "ascending";
  Array.from(th.parentNode.cells).forEach(function (h) { h.removeAttribute("aria-sort"); });
  th.setAttribute("aria-sort", up ? "ascending" : "descending");
  function key(row) {
    var text = row.cells[index].textContent.trim();
    return numeric ? parseFloat(text.replace(/,/g, "")) : text;
  }
  function order(a, b) {
    if (!numeric) return a.localeCompare(b, undefined, {numeric: true});
    if (isNaN(a) || isNaN(b)) return isNaN(a) - isNaN(b);
    return a - b;
  }
  var rows = Array.from(body.rows).map(function (row) { return [key(row), row]; });
  rows.sort(function (a, b) {
    var missing = numeric && (isNaN(a[0]) || isNaN(b[0]));
    return missing || up ? order(a[0], b[0]) : order(b[0], a[0]);
  });
  rows.forEach(function (pair) { body.appendChild(pair[1]); });
});
