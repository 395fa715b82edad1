"""The verification cache: a bounded, expiring, thread-safe memory."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from zope.interface import implementer

from ..interfaces import IVerificationCache


@implementer(IVerificationCache)
class MemoryCache:
    def __init__(self, max_entries: int = 10000, clock=time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self.clock():
                del self.entries[key]
                return None
            self.entries.move_to_end(key)
            return value

    def set(self, key: str, value: str, ttl: float) -> None:
        with self.lock:
            self.entries[key] = (self.clock() + ttl, value)
            self.entries.move_to_end(key)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
