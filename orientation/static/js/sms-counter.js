// Live SMS length and segment count under a textarea[data-sms-counter]; mirrors
// notifications/sms.py (GSM-7: 160 / 153 per segment; one non-GSM character: UCS-2, 70 / 67).
(function () {
  "use strict";
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€\f";

  function measure(text) {
    var units = 0, offenders = {}, gsm = true, i, ch;
    for (i = 0; i < text.length; i++) {
      ch = text.charAt(i);
      if (EXTENDED.indexOf(ch) >= 0) { units += 2; }
      else if (BASIC.indexOf(ch) >= 0) { units += 1; }
      else { gsm = false; offenders[ch] = true; }
    }
    var single = 160, multi = 153, encoding = "GSM-7";
    if (!gsm) { units = text.length; single = 70; multi = 67; encoding = "UCS-2"; }
    var segments = units === 0 ? 0 : (units <= single ? 1 : Math.ceil(units / multi));
    return { units: units, segments: segments, encoding: encoding,
             offenders: Object.keys(offenders).sort().join("") };
  }

  function bind(area) {
    var out = document.getElementById(area.getAttribute("data-sms-counter"));
    if (!out) { return; }
    function update() {
      var m = measure(area.value);
      out.querySelector("[data-sms-units]").textContent = m.units;
      out.querySelector("[data-sms-segments]").textContent = m.segments;
      out.querySelector("[data-sms-encoding]").textContent = m.encoding;
      out.querySelector("[data-sms-offenders]").textContent = m.offenders
        ? "· caractères qui imposent l'UCS-2 : " + m.offenders : "";
    }
    area.addEventListener("input", update);
    update();
  }

  var areas = document.querySelectorAll("textarea[data-sms-counter]");
  for (var i = 0; i < areas.length; i++) { bind(areas[i]); }
})();
