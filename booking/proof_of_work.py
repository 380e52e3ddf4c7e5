"""Proof of work before taking seats, when the line is in force or an address tries too often.

A challenge of the ``altcha`` library (its v1 form: find the number whose SHA-256 with the salt
is the challenge; signed with a key of the installation's, expiring in minutes; no outside
service). A browser solves it with /static/pow.js, an API client with any altcha solver (the
library's ``solve_challenge_v1``). A solution is good once (its signature is kept in Redis).

Without JavaScript: the check page asks the resident to wait a few seconds and press Continue;
its token, signed with the time it was given, is good only after that wait and only once. It
costs a bot time rather than work, which the per-client limits then bound; the ward accepts it
so that a resident without JavaScript (or with an old phone) is never shut out.

Redis away: no proof is asked (nothing to count attempts or spend solutions with), logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from altcha.v1 import ChallengeOptions, create_challenge, verify_solution
from fastapi import Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from redis import Redis
from redis.exceptions import RedisError

from booking.errors import BookingError
from booking.waiting_room import PREFIX, WaitingRoom

log = logging.getLogger(__name__)
CHALLENGE_MINUTES = 10
TRIES_WINDOW_SECONDS = 3600
# The header an API client sends its solution in (the altcha payload, base64 JSON).
HEADER = "Altcha"


@dataclass(frozen=True)
class ProofOfWork:
    """The installation's challenges and what they are asked for."""

    key: bytes = field(repr=False)
    redis: Redis
    room: WaitingRoom | None
    max_number: int
    wait_seconds: int
    after_attempts: int
    prefix: str = PREFIX

    def challenge(self) -> dict[str, Any]:
        """A fresh challenge, as the altcha widget and solvers take it."""
        made = create_challenge(
            ChallengeOptions(
                hmac_key=self.key,
                max_number=self.max_number,
                expires=datetime.now(UTC) + timedelta(minutes=CHALLENGE_MINUTES),
            )
        )
        result: dict[str, Any] = made.to_dict()
        return result

    def needed(self, address: str) -> bool:
        """Count one hold or booking by this address; whether it must prove work: the line is
        in force, or the address has tried more than ``after_attempts`` times this hour."""
        if self.room is not None and self.room.in_force():
            return True
        client = hmac.new(self.key, address.encode(), hashlib.sha256).hexdigest()[:32]
        try:
            with self.redis.pipeline() as pipe:
                pipe.incr(self.prefix + "pow:tries:" + client)
                pipe.expire(self.prefix + "pow:tries:" + client, TRIES_WINDOW_SECONDS, nx=True)
                tries = int(pipe.execute()[0])
        except RedisError as exc:
            log.warning("proof of work: Redis unreachable, none asked: %s", exc)
            return False
        return tries > self.after_attempts

    def solved(self, payload: str | None) -> bool:
        """A valid, unexpired solution of one of our challenges, used for the first time."""
        if not payload or len(payload) > 2000:
            return False
        try:
            ok, _ = verify_solution(payload, self.key, check_expires=True)
        except (ValueError, TypeError, KeyError):
            return False
        return ok and self._first_use(payload)

    def wait_token(self) -> str:
        """The no-JavaScript page's token: good after ``wait_seconds``, once."""
        return self._waits().dumps(secrets.token_urlsafe(12))

    def waited(self, token: str | None) -> int | None:
        """None when the token is good (and now spent); else the seconds still to wait (0 for
        a token that is no good at all: a fresh one is needed)."""
        if not token or len(token) > 200:
            return 0
        try:
            _, signed_at = self._waits().loads(
                token, max_age=CHALLENGE_MINUTES * 60, return_timestamp=True
            )
        except (SignatureExpired, BadSignature):
            return 0
        age = (datetime.now(UTC) - signed_at).total_seconds()
        if age < self.wait_seconds:
            return max(1, int(self.wait_seconds - age + 0.999))
        return None if self._first_use(token) else 0

    def _waits(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.key, salt="pow-wait")

    def _first_use(self, proof: str) -> bool:
        spent = self.prefix + "pow:spent:" + hashlib.sha256(proof.encode()).hexdigest()[:32]
        try:
            return bool(self.redis.set(spent, 1, nx=True, ex=CHALLENGE_MINUTES * 60))
        except RedisError as exc:
            log.warning("proof of work: Redis unreachable, a solution taken unspent: %s", exc)
            return True


def refuse_without_proof(request: Request) -> None:
    """The API's form: 428 when a proof is needed and the Altcha header holds no good one."""
    proof: ProofOfWork | None = getattr(request.app.state, "proof_of_work", None)
    if proof is None:
        return
    address = request.client.host if request.client else "unknown"
    if proof.needed(address) and not proof.solved(request.headers.get(HEADER)):
        raise BookingError("proof_of_work_needed")
