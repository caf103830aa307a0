// cnh-hub pages: live co-financing status changes (server-sent events from the GraphQL subscription), without reload.
"use strict";
(function () {
  var list = document.getElementById("evolutions");
  if (!list || !window.EventSource) { return; }
  var labels = {
    BALANCED: "Équilibrée", AWAITING_COFINANCER: "En attente du cofinanceur", AMOUNT_MISMATCH: "Montants discordants",
    SHARE_MISMATCH: "Parts discordantes", CAPACITY_MISMATCH: "Capacités discordantes",
    SCHEDULE_MISMATCH: "Calendriers discordants", ABANDONED: "Abandonnée",
    UNEXPECTED_COFINANCER: "Cofinanceur inattendu", SINGLE_FUNDER: "Financeur unique"
  };
  function label(code) { return code ? (labels[code] || code) : "—"; }
  // The status counts follow the changes: a status seen for the first time gets its row.
  function bump(status, delta) {
    if (!status) { return; }
    var cell = document.querySelector('[data-status-count="' + CSS.escape(status) + '"]');
    var body = document.getElementById("comptes-statuts");
    if (!cell && body && delta > 0) {
      var row = document.createElement("tr");
      var head = document.createElement("th");
      head.setAttribute("scope", "row");
      var link = document.createElement("a");
      link.href = "/tableau/mesures?statut=" + encodeURIComponent(status);
      link.textContent = label(status);
      head.appendChild(link);
      cell = document.createElement("td");
      cell.className = "nombre";
      cell.setAttribute("data-status-count", status);
      cell.textContent = "0";
      row.appendChild(head);
      row.appendChild(cell);
      body.appendChild(row);
    }
    if (cell) { cell.textContent = String(Math.max(0, parseInt(cell.textContent, 10) + delta)); }
  }
  var source = new EventSource(list.getAttribute("data-live"));
  // The hub refused or ended the stream for good (session over): stop asking again.
  source.addEventListener("erreur", function () { source.close(); });
  source.addEventListener("statut", function (message) {
    var change = JSON.parse(message.data);
    var item = document.createElement("li");
    var link = document.createElement("a");
    link.href = "/tableau/mesures/" + encodeURIComponent(change.measureId);
    link.textContent = "mesure " + change.measureId;
    item.appendChild(document.createTextNode(new Date(change.at).toLocaleTimeString("fr-FR") + " — "));
    item.appendChild(link);
    item.appendChild(document.createTextNode(" (" + change.departementCode + ") : " + label(change.previousStatus) +
      " → " + label(change.status)));
    item.setAttribute("data-status", change.status || "");
    list.insertBefore(item, list.firstChild);
    var cell = document.querySelector('[data-measure-status="' + CSS.escape(change.measureId) + '"]');
    if (cell) { cell.textContent = label(change.status); }
    var findings = document.querySelector('[data-measure-findings="' + CSS.escape(change.measureId) + '"]');
    if (findings) { findings.textContent = (change.findingCodes || []).join(", "); }
    bump(change.previousStatus, -1);
    bump(change.status, 1);
  });
})();
