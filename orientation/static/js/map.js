/*
 * Orientation map: Leaflet, configured only by data-* attributes of its container, so any page
 * can reuse it without inline script (the CSP forbids it).
 *
 *   data-geojson-url       GeoJSON to draw: the territory outline (properties.kind "outline")
 *                          and doctor points (properties: n name, s a|f|s, p places, c index in
 *                          the collection's "communes" list, v home-visit radius, u/e/d
 *                          patients not taken, m step-free access, x 1 on a secondary site)
 *                          and, in the collection's "sites" list, [id, lon, lat, c] for each
 *                          other site of a doctor drawn above (same properties, x set)
 *   data-doctor-url        optional: a doctor's page URL ending in /0, the id replaces the 0
 *   data-patient-lat/-lon  optional: the patient's point (data-patient-title: its tooltip)
 *   data-patient-move-url  optional: makes the patient marker draggable; its new position is
 *                          POSTed there as JSON {lat, lon} with the token of data-csrf
 *   data-highlight-ids     optional: comma-separated doctor ids drawn larger, with a thick
 *                          outline and on top (e.g. the doctors ranked for a request); each
 *                          gets a tooltip with its rank
 *   data-reload-on-move    optional: reload the page once the new position is recorded
 *   data-place-url         optional: a click on the map POSTs lat/lon there (form-encoded, with
 *                          data-csrf), e.g. to place a doctor whose address found no point
 *   data-place-select      optional: the id of a <select> whose value, when set, replaces
 *                          data-place-url (e.g. to choose which of a doctor's sites to place)
 *
 * OpenStreetMap tiles are drawn when online; when they fail, the outline and points still
 * draw on the container's plain background.
 */
(function () {
  "use strict";

  var COLOURS = { a: "#1e8a3e", f: "#c0392b", s: "#9e9e9e" };
  var STATUS = {
    a: "Accepte de nouveaux patients",
    f: "Complet ou en pause",
    s: "Disponibilité à confirmer"
  };

  function line(parent, text, strong) {
    var el = document.createElement(strong ? "strong" : "div");
    el.textContent = text;
    parent.appendChild(el);
    return el;
  }

  function popup(props, communes, doctorUrl) {
    var box = document.createElement("div");
    line(box, "Dr " + (props.n || ""), true);
    var commune = communes && props.c !== undefined ? communes[props.c] : "";
    if (props.x) { line(box, "Site secondaire" + (commune ? " : " + commune : "")); }
    else if (commune) { line(box, commune); }
    line(box, STATUS[props.s] || "");
    if (props.s === "a") { line(box, props.p + " place(s) annoncée(s)"); }
    var no = [];
    if (props.u) { no.push("moins de 6 ans"); }
    if (props.e) { no.push("personnes âgées dépendantes"); }
    if (props.d) { no.push("suivi ALD"); }
    if (no.length) { line(box, "Ne prend pas : " + no.join(", ")); }
    if (props.v !== undefined) { line(box, "Visites à domicile jusqu'à " + props.v + " km"); }
    if (props.m) { line(box, "Accès de plain-pied"); }
    if (doctorUrl && props.id) {
      var a = document.createElement("a");
      a.href = doctorUrl.replace(/\/0$/, "/" + props.id);
      a.textContent = "Fiche du médecin";
      box.appendChild(a);
    }
    return box;
  }

  function setStatus(container, text) {
    var status = document.getElementById(container.id + "-status");
    if (status) { status.textContent = text; }
  }

  function init(container) {
    if (typeof L === "undefined") { return null; }
    var data = container.dataset;
    var map = L.map(container, { preferCanvas: true }).setView([50.6, 2.9], 10);
    var tiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 18,
      attribution: "&copy; contributeurs OpenStreetMap"
    });
    var tileErrors = 0;
    tiles.on("tileerror", function () {
      tileErrors += 1;
      if (tileErrors === 1) { setStatus(container, "Fond de carte indisponible : le territoire et les médecins restent affichés."); }
    });
    tiles.addTo(map);

    var patient = null;
    if (data.patientLat && data.patientLon) {
      var movable = Boolean(data.patientMoveUrl);
      patient = L.marker([parseFloat(data.patientLat), parseFloat(data.patientLon)], {
        draggable: movable, title: data.patientTitle || "Domicile du patient", keyboard: true
      }).addTo(map);
      if (movable) {
        var from = patient.getLatLng();
        patient.on("dragstart", function () { from = patient.getLatLng(); });
        patient.on("dragend", function () {
          var at = patient.getLatLng();
          fetch(data.patientMoveUrl, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": data.csrf || "", "Accept": "application/json" },
            body: JSON.stringify({ lat: at.lat, lon: at.lng })
          }).then(function (response) {
            return response.json().catch(function () { return {}; }).then(function (answer) {
              container.dispatchEvent(new CustomEvent("patient-moved", { detail: { ok: response.ok, lat: at.lat, lon: at.lng } }));
              if (!response.ok) {
                patient.setLatLng(from);  // the server kept the old point: show it
                setStatus(container, answer.error || "La position n'a pas pu être enregistrée.");
              } else if (data.reloadOnMove) {
                // The territory check, the ranking and the timeline all follow the point.
                window.location.reload();
              } else {
                setStatus(container, "Position du patient enregistrée.");
              }
            });
          });
        });
      }
    }

    if (data.placeUrl) {
      var placed = null;
      var chooser = data.placeSelect ? document.getElementById(data.placeSelect) : null;
      map.on("click", function (event) {
        var target = (chooser && chooser.value) || data.placeUrl;
        var body = new URLSearchParams();
        body.set("lat", event.latlng.lat.toFixed(6));
        body.set("lon", event.latlng.lng.toFixed(6));
        body.set("csrf_token", data.csrf || "");
        fetch(target, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Accept": "application/json" },
          body: body
        }).then(function (response) {
          return response.json().then(function (answer) {
            if (response.ok) {
              if (placed) { map.removeLayer(placed); }
              var what = target === data.placeUrl ? "Cabinet" : "Site";
              placed = L.marker([answer.lat, answer.lon], { title: what + " placé ici" }).addTo(map);
              setStatus(container, what + " placé ici (" + answer.lat + ", " + answer.lon + ").");
            } else {
              setStatus(container, answer.error || "Ce point n'a pas pu être enregistré.");
            }
          });
        });
      });
    }

    if (data.geojsonUrl) {
      fetch(data.geojsonUrl, { credentials: "same-origin", headers: { "Accept": "application/geo+json" } })
        .then(function (response) { return response.json(); })
        .then(function (collection) {
          var outline = collection.features.filter(function (f) { return f.properties.kind === "outline"; });
          var doctors = collection.features.filter(function (f) { return f.properties.kind !== "outline"; });
          // Secondary sites come as [id, lon, lat, c]: they share their doctor's properties.
          var byId = {};
          doctors.forEach(function (f) { byId[f.properties.id] = f.properties; });
          (collection.sites || []).forEach(function (site) {
            var base = byId[site[0]];
            if (!base) { return; }
            var props = Object.assign({}, base, { x: 1, c: site[3] });
            doctors.push({ type: "Feature", geometry: { type: "Point", coordinates: [site[1], site[2]] }, properties: props });
          });
          var outlineLayer = L.geoJSON(outline, {
            style: { color: "#00517a", weight: 2, fillColor: "#00517a", fillOpacity: 0.06 },
            interactive: false
          }).addTo(map);
          var highlighted = (data.highlightIds || "").split(",").filter(Boolean);
          var highlightedMarkers = [];
          var layer = L.geoJSON(doctors, {
            pointToLayer: function (feature, at) {
              var rank = highlighted.indexOf(String(feature.properties.id));
              // With a ranking to show, the other doctors step back so the ranked ones stand out.
              var quiet = highlighted.length > 0;
              var marker = L.circleMarker(at, {
                radius: rank >= 0 ? 11 : (quiet ? 5 : 7), weight: rank >= 0 ? 4 : (quiet ? 1 : 2),
                color: rank >= 0 ? "#00517a" : "#1b1b1b",
                fillColor: COLOURS[feature.properties.s] || "#9e9e9e",
                fillOpacity: rank >= 0 || !quiet ? 0.9 : 0.5
              });
              if (rank >= 0) {
                // Leaflet inserts a string tooltip as HTML: the name goes in as text.
                var tip = document.createElement("span");
                tip.textContent = String(rank + 1) + ". Dr " + (feature.properties.n || "");
                marker.bindTooltip(tip);
                highlightedMarkers.push(marker);
              }
              return marker;
            },
            onEachFeature: function (feature, marker) {
              marker.bindPopup(function () { return popup(feature.properties, collection.communes, data.doctorUrl); });
            }
          }).addTo(map);
          highlightedMarkers.forEach(function (m) { m.bringToFront(); });
          container.dataset.highlightedCount = String(highlightedMarkers.length);
          var bounds = outlineLayer.getBounds();
          if (!bounds.isValid()) { bounds = layer.getBounds(); }
          if (patient) { bounds = bounds.isValid() ? bounds.extend(patient.getLatLng()) : L.latLngBounds([patient.getLatLng()]); }
          if (bounds.isValid()) { map.fitBounds(bounds, { padding: [12, 12], animate: false }); }
          container.dataset.doctorCount = String(doctors.length);
          container.dispatchEvent(new CustomEvent("map-loaded", { detail: { doctors: doctors.length } }));
        })
        .catch(function () { setStatus(container, "Les données de la carte n'ont pas pu être chargées."); });
    }
    var instance = { map: map, patient: patient, container: container };
    window.OrientationMap.instances.push(instance);
    return instance;
  }

  window.OrientationMap = { init: init, instances: [] };
  document.addEventListener("DOMContentLoaded", function () {
    var containers = document.querySelectorAll("[data-geojson-url], [data-patient-lat]");
    Array.prototype.forEach.call(containers, function (c) { init(c); });
  });
}());
