/* sidebar-widgets embed: <div data-sidebar-widget="prices" data-items="sekee,price_dollar_rl"
   data-theme="auto">fallback</div><script async src="https://SERVICE/embed.js"></script>
   Each div gets its widget in a Shadow DOM (host CSS and ours never meet), refreshed no faster
   than the widget's Cache-Control max-age; a failed refresh keeps what is shown, and the div's
   own fallback content stays until the first success. The service's iframes on the page are sized
   to the height their page reports. Loaded twice (two snippets pasted), it runs once.
   No dependencies. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  /* A symbol, not a plain window property: an element with that id cannot stand in for it. */
  var RUNNING = Symbol.for("sidebar-widgets embed.js " + base);
  if (typeof window[RUNNING] === "function") {
    window[RUNNING]();  // a later copy: only boxes added since the first copy looked
    return;
  }
  /* Every fragment option an iframe embed takes (prices: columns, chart, layout; news: show_time; air: forecast_hours). */
  var OPTIONS = ["items", "days", "theme", "unit", "heading", "columns", "chart", "layout", "show_time", "forecast_hours"];
  /* Options whose empty value means something: columns="" is the price alone. */
  var EMPTY_ALLOWED = ["columns"];
  var MIN_SECONDS = 30;
  /* A day at most: past 2^31 ms (24.8 days) setTimeout overflows and fires at once, and a CDN's
     long max-age would make every reader's page refetch without pause. */
  var MAX_SECONDS = 86400;
  var RETRY_SECONDS = 60;
  var URL_ATTRIBUTES = ["src", "href", "srcset", "poster", "action"];
  /* A widget directly after another gets a gap; the host page's own CSS for the div still wins. */
  var STYLE = "<style>:host{display:block;max-width:100%}" +
    ":host([data-sidebar-widget-stacked]){margin-top:16px}</style>";
  /* Elements that draw nothing: a box pasted with its own <script> still follows the box before. */
  var UNSEEN = ["SCRIPT", "STYLE", "LINK", "NOSCRIPT", "TEMPLATE"];
  /* A frame's height as reported by its page: a few lines at least, never a runaway. */
  var FRAME_MIN = 40;
  var FRAME_MAX = 4000;

  function widgetUrl(el) {
    var query = [];
    OPTIONS.forEach(function (name) {
      var value = el.getAttribute("data-" + name);
      if (value || (value === "" && EMPTY_ALLOWED.indexOf(name) >= 0)) {
        query.push(name + "=" + encodeURIComponent(value));
      }
    });
    var name = encodeURIComponent(el.getAttribute("data-sidebar-widget"));
    return base + "/widgets/" + name + ".html" + (query.length ? "?" + query.join("&") : "");
  }

  /* The fragment, with its root-relative URLs (/widgets/satellite.jpg, /embed/...) made absolute
     against the service, so images and links work without the service knowing its public URL.
     Parsed in an inert <template>: nothing is fetched from the host page's origin meanwhile. */
  function fromService(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var nodes = template.content.querySelectorAll("[src], [href], [srcset], [poster], [action]");
    for (var i = 0; i < nodes.length; i++) {
      URL_ATTRIBUTES.forEach(function (name) {
        var value = nodes[i].getAttribute(name);
        if (value === null) return;
        if (name === "srcset") {
          nodes[i].setAttribute(name, value.split(",").map(function (candidate) {
            return absolute(candidate.trim());
          }).join(", "));
        } else {
          nodes[i].setAttribute(name, absolute(value));
        }
      });
    }
    return template.content;
  }

  function absolute(value) {
    return value.charAt(0) === "/" && value.charAt(1) !== "/" ? base + value : value;
  }

  function maxAge(response) {
    var match = /max-age=(\d+)/.exec(response.headers.get("Cache-Control") || "");
    return Math.min(MAX_SECONDS, Math.max(MIN_SECONDS, match ? parseInt(match[1], 10) : RETRY_SECONDS));
  }

  function later(el, seconds) {
    setTimeout(function () { load(el); }, seconds * 1000);
  }

  function load(el) {
    fetch(widgetUrl(el), { mode: "cors", credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        var wait = maxAge(response);
        return response.text().then(function (html) {
          var root = el.shadowRoot || el.attachShadow({ mode: "open" });
          root.innerHTML = STYLE;
          root.appendChild(fromService(html));
          el.setAttribute("data-sidebar-widget-state", "ready");
          later(el, wait);
        });
      })
      .catch(function () {
        later(el, RETRY_SECONDS);  // keep the last content, or the fallback, and try again
      });
  }

  function afterBox(el) {
    var previous = el.previousElementSibling;
    while (previous && UNSEEN.indexOf(previous.tagName) >= 0) previous = previous.previousElementSibling;
    return previous !== null && previous.hasAttribute("data-sidebar-widget");
  }

  function start() {
    var nodes = document.querySelectorAll("div[data-sidebar-widget]");
    for (var i = 0; i < nodes.length; i++) {
      if (!nodes[i].hasAttribute("data-sidebar-widget-state")) {
        if (afterBox(nodes[i])) nodes[i].setAttribute("data-sidebar-widget-stacked", "");
        nodes[i].setAttribute("data-sidebar-widget-state", "loading");
        load(nodes[i]);
      }
    }
    askFrames();
  }

  /* A frame that loaded before this script reported its height to nobody: ask again. A frame not
     loaded yet (not on the service's origin yet) does not get the message, and reports on load. */
  function askFrames() {
    var frames = document.getElementsByTagName("iframe");
    for (var i = 0; i < frames.length; i++) {
      var target = frames[i].contentWindow;
      if (target && String(frames[i].src).indexOf(base + "/embed/") === 0) {
        try {
          target.postMessage({ sidebarWidgetMeasure: true }, base);
        } catch (error) { /* a base no message can target (a file: page) */ }
      }
    }
  }

  /* Heights only from the service's own pages, and only for the frame that sent them. */
  function sizeFrame(event) {
    if (event.origin !== base) return;
    var data = event.data;
    if (!data || typeof data !== "object" || !data.sidebarWidget) return;
    var height = data.height;
    if (typeof height !== "number" || !isFinite(height)) return;
    height = Math.min(FRAME_MAX, Math.max(FRAME_MIN, Math.ceil(height)));
    var frames = document.getElementsByTagName("iframe");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === event.source) {
        frames[i].style.height = height + "px";
        return;
      }
    }
  }

  function whenParsed() {
    if (document.readyState !== "loading") start();
  }

  window[RUNNING] = whenParsed;
  window.addEventListener("message", sizeFrame);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
