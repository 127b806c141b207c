// Runs between require.js and embed-amd.js (the ipywidgets manager, html-manager 1.0.6)
// so that the widgets in the book's pages render offline.
(function () {
  // The manager loads its icon fonts from the folder of its own AMD module, which
  // RequireJS would place beside the page; point it at this folder, where they are.
  const here = document.currentScript.src.replace(/\/[^/]*$/, "");
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": here } });
  // The manager typesets widget labels with MathJax 2's `MathJax.Hub.Queue`; the book
  // loads MathJax 3 (deferred, so it is in place by DOMContentLoaded; widgets render
  // at the load event).
  document.addEventListener("DOMContentLoaded", function () {
    const mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup) return;
    mathjax.Hub = {
      Queue: function (job) {
        mathjax.startup.promise.then(function () { return mathjax.typesetPromise([job[2]]); });
      },
    };
  });
})();
