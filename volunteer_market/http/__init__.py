"""Request-level pieces that both the JSON API and the pages use.

``api/`` and ``web/`` never import each other; what they share and what needs the
Flask request (so it cannot live in ``services/``) lives here, below both:

* :mod:`.uploads` -- where uploaded images are stored and how they are sent back.
* :mod:`.throttles` -- the failed-login and failed-rating-code limits.
* :mod:`.links` -- absolute links handed out as QR codes: a recorded delivery's rating
  codes with their links, a redemption's pickup link.
"""
