"""The failed-authentication guard: a per-address budget checked before any password hash.

``hyperapi.security.basic`` asks the guard (``registry.authentication_guard``) before it
verifies a password and tells it when a verification failed. Verifying an argon2id hash costs
tens of milliseconds of CPU by design, so an address that has used up its budget of failures
is refused with 429 before any hash is computed: guessing Basic passwords cannot burn the
server's CPU, nor go on for long. Successful verifications cost nothing from the budget.
"""

from __future__ import annotations

from .limiter import Limiter, Outcome, limiter_unavailable, quota_exceeded
from .policies import Policy


class FailedAuthenticationGuard:
    def __init__(self, limiter: Limiter, policy: Policy):
        self.limiter = limiter
        self.policy = policy

    @staticmethod
    def key(request) -> str:
        return "addr:" + request.client_address

    def before_password_check(self, request) -> None:
        """Raise 429 when this address has failed too often (503 if failing closed)."""
        outcome = self.limiter.peek(self.policy, self.key(request))
        if outcome.allowed:
            return
        if not outcome.known:
            raise limiter_unavailable(outcome, self.limiter.retry_interval)
        raise quota_exceeded(
            outcome,
            f"Too many failed authentications from this address: {self.policy.quota} are "
            f"allowed every {self.policy.window} seconds. Retry in "
            f"{max(1, outcome.reset_after or 1)} seconds.",
        )

    def failed(self, request) -> Outcome:
        """Count one failed verification against this address."""
        return self.limiter.hit(self.policy, self.key(request))
