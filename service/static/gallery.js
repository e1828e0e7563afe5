/* The gallery's copy buttons. navigator.clipboard exists only in a secure context (https, or
   localhost): a gallery reached over plain http at another name has none, and a browser may also
   refuse the write. Then the snippet's text is selected instead, for the reader's own Ctrl+C, and
   the status next to the button says so. */
(function () {
  "use strict";
  var COPIED = "کپی شد.";
  var SELECTED = "کپی خودکار ممکن نشد؛ متن انتخاب شد: Ctrl+C (در مک ‎⌘+C) را بزنید.";

  function select(code) {
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(button) {
    var block = button.closest(".gl-snippet");
    var code = block.querySelector("code");
    var status = block.querySelector(".gl-status");
    function selectInstead() {
      select(code);
      status.textContent = SELECTED;
    }
    var clipboard = navigator.clipboard;
    if (!clipboard || typeof clipboard.writeText !== "function") {
      selectInstead();
      return;
    }
    var writing;
    try {
      writing = clipboard.writeText(code.textContent);
    } catch (error) {
      selectInstead();
      return;
    }
    Promise.resolve(writing).then(function () { status.textContent = COPIED; }, selectInstead);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest(".gl-copy") : null;
    if (button) copy(button);
  });
})();
