// Optional help: suggest the communes of the postal code as it is typed. The form works without it.
(function () {
  "use strict";
  var postal = document.getElementById("postal_code");
  var commune = document.getElementById("commune");
  if (!postal || !commune || commune.tagName !== "INPUT") { return; }
  var list = document.createElement("datalist");
  list.id = "communes-du-code-postal";
  commune.setAttribute("list", list.id);
  commune.parentNode.appendChild(list);
  postal.addEventListener("input", function () {
    var code = postal.value.replace(/\s/g, "");
    if (!/^\d{5}$/.test(code)) { return; }
    fetch("/api/v1/communes?postal_code=" + code)
      .then(function (r) { return r.ok ? r.json() : { communes: [] }; })
      .then(function (data) {
        list.textContent = "";
        data.communes.forEach(function (c) {
          var option = document.createElement("option");
          option.value = c.name;
          list.appendChild(option);
        });
        if (data.communes.length === 1 && !commune.value) { commune.value = data.communes[0].name; }
      })
      .catch(function () {});
  });
})();
