/* sidebar-widgets iframe page: tells the page framing it how tall the widget is, so embed.js there
   can size the frame to it (any day's data: a holiday line, a longer list). Sent on load, on every
   change of the content's size (fonts, the picture, a narrower column) and whenever the framing
   page asks (its embed.js may have started after this page's first report). The height is no
   secret: the message goes to whichever page frames this one; that page's embed.js checks that it
   came from the service. */
(function () {
  "use strict";
  var script = document.currentScript;
  var name = (script && script.getAttribute("data-widget")) || "";
  var last = -1;

  function report(again) {
    if (parent === window) return;  // opened on its own: nobody to tell
    // The body's own height: the document's is never less than the frame it is in, so it could grow
    // the frame but never shrink it.
    var height = Math.ceil(document.body.getBoundingClientRect().height);
    if (height === last && !again) return;
    last = height;
    parent.postMessage({ sidebarWidget: name, height: height }, "*");
  }

  addEventListener("message", function (event) {
    var data = event.data;
    if (event.source === parent && data && data.sidebarWidgetMeasure === true) report(true);
  });
  addEventListener("load", function () { report(true); });
  if (window.ResizeObserver) new ResizeObserver(function () { report(false); }).observe(document.body);
  report(false);
})();
