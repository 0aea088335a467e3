// Post/Redirect/Get for the few pages that must answer a POST themselves (rating codes are
// shown once and never stored, so there is nothing to redirect to): turn this history entry
// into a GET of the page named by <meta name="vm-replace-url">, so that back and reload
// show that page instead of the browser's "confirm form resubmission" error.
(function () {
  var meta = document.querySelector('meta[name="vm-replace-url"]');
  if (meta && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", meta.getAttribute("content"));
  }
})();
