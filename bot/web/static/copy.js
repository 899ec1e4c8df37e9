/* "Copy to record": progressive enhancement. Without JavaScript the block is a
   read-only text area whose text can be selected and copied by hand; with it,
   each block's Copy button (hidden until now) copies the text to the clipboard. */
(function () {
  "use strict";

  function copyText(area) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(area.value);
    }
    return new Promise(function (resolve, reject) {
      area.focus();
      area.select();
      if (document.execCommand && document.execCommand("copy")) {
        resolve();
      } else {
        reject(new Error("copy refused"));
      }
    });
  }

  var buttons = document.querySelectorAll("[data-copy-target]");
  Array.prototype.forEach.call(buttons, function (button) {
    var area = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (!area) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(area).then(
        function () {
          if (status) { status.textContent = "Copied. Paste it into the patient's record."; }
        },
        function () {
          area.focus();
          area.select();
          if (status) { status.textContent = "Could not copy: the text is selected, press Ctrl+C."; }
        }
      );
    });
  });
})();
