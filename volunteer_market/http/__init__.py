"""Request-level pieces that both the JSON API and the pages use.

``api/`` and ``web/`` never import each other; what they share and what needs the
Flask request (so it cannot live in ``services/``) lives here, below both:

* :mod:`.uploads` -- where uploaded images are stored and how they are sent back.
* :mod:`.throttles` -- the failed-login and failed-rating-code limits.
* :mod:`.rating_codes` -- a recorded delivery's one-time rating codes with their
  links and QR codes (the links are absolute, built from the request's host).
"""
