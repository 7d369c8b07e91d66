"""RequestContext: everything the pipeline knows about one request."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.auth.principal import ANONYMOUS, Principal
from gateway.config.access import CapsConfig
from gateway.dispatch.deadline import Deadline
from gateway.formats import Endpoint, Ingress
from gateway.request import CanonicalRequest


@dataclass(eq=False, slots=True)
class RequestContext:
    request_id: str
    endpoint: Endpoint
    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names; the client's, never forwarded upstream
    client_ip: str
    # The client's wire format. `body` is always the canonical (Chat-Completions-shaped)
    # request every stage reads; `raw_body` keeps the client's original body for ingress
    # formats other than OpenAI's, so a deployment that speaks that format natively can
    # receive it untouched but for the pipeline's decisions (model, output bound).
    ingress: Ingress = "openai"
    raw_body: dict[str, Any] | None = None
    started: float = field(default_factory=time.perf_counter)
    alias: str = ""  # the model the client asked for
    target_alias: str = ""  # the alias after routing / experiments
    deployment: str = ""  # provider/model that answered (or was last tried)
    provider: str = ""
    principal: Principal = ANONYMOUS  # set by the auth stage
    prompt_tokens_estimate: int = 0  # counted before the call (limits, caps, cut streams)
    caps: CapsConfig | None = None  # the key's and target's caps, merged (request_caps)
    upstream_seconds: float = 0.0  # time spent waiting on providers (for overhead)
    first_byte: float | None = None  # perf_counter when the first stream event left
    response_headers: dict[str, str] = field(default_factory=dict)
    # Response headers in ASGI's form already (lower-case latin-1 names and values), sent
    # before `response_headers`: the rate-limit ones, encoded once per rule, not per reply.
    encoded_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    log_fields: dict[str, Any] = field(default_factory=dict)  # extra access-log fields
    dry_run: bool = False  # POST /v1/route/dry-run: the route stage answers with its decision
    # Set when the client disconnects before its reply is sent; dispatch then expires the
    # upstream wait it has open (`upstream_wait`) so the provider call is cut at once.
    client_gone: bool = False
    upstream_wait: Deadline | None = None
    _request: CanonicalRequest | None = field(default=None, repr=False)

    @property
    def request(self) -> CanonicalRequest:
        """The canonical reading of `body`: a new view whenever a stage replaced the body
        (bodies are replaced, never changed in place, once the pipeline has them)."""
        view = self._request
        if view is None or view.body is not self.body or view.endpoint != self.endpoint:
            view = self._request = CanonicalRequest(self.endpoint, self.body)
        return view

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def client_wants_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
