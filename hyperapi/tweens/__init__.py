"""The tweens, and the one place that states their order.

From the outside in (a request meets them in this order, a response in the reverse):

1. negotiation  renders every error as problem+json or, for browsers, HTML
2. ratelimit    counts the request against its policy and may answer 429; it runs inside
               pyramid_tm because counting per user authenticates the request
3. conditional  answers 304 (or 412) for GET/HEAD whose preconditions say so, and sets
               Cache-Control and Vary: Accept; an item's 304 whose row came with the
               authentication is answered here before the router

``ptweens development.ini`` shows the order in force.
"""

from __future__ import annotations

from pyramid.tweens import EXCVIEW, INGRESS

NEGOTIATION = "hyperapi.tweens.negotiation.negotiation_tween_factory"
#: pyramid_tm's tween, which sits over Pyramid's exception views.
TRANSACTION = "pyramid_tm.tm_tween_factory"
RATELIMIT = "hyperapi.tweens.ratelimit.ratelimit_tween_factory"
CONDITIONAL = "hyperapi.tweens.conditional.conditional_tween_factory"


def includeme(config) -> None:
    # Each tween is added by its own issue; the order above is the contract.
    # Outermost, and outside the transaction, so that it also renders what a commit raises.
    config.add_tween(NEGOTIATION, under=INGRESS, over=TRANSACTION)
    # Inside the transaction (request.identity reads the database), over the exception
    # views so that every error response it lets through carries the RateLimit fields.
    config.add_tween(RATELIMIT, under=TRANSACTION, over=EXCVIEW)
    # Innermost: it sees the view's (or exception view's) response first, so a 304 it makes
    # is what the outer tweens annotate.
    config.add_tween(CONDITIONAL, under=RATELIMIT, over=EXCVIEW)
