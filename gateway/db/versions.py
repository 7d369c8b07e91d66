"""The schema, as plain versioned SQL: each version runs once, in order, in one transaction.

Append a new version to change the schema; never edit one that has shipped.
"""

from __future__ import annotations

VERSIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "usage ledger, keys, experiment feedback, stored responses",
        """
        CREATE TABLE usage_ledger (
            entry_id          uuid PRIMARY KEY,  -- minted by the gateway: retries never duplicate
            at                timestamptz NOT NULL,  -- when the request finished
            request_id        text NOT NULL,  -- may come from the client (x-request-id)
            key_id            text NOT NULL,
            team              text,
            user_name         text,
            requested_alias   text NOT NULL,
            target_alias      text NOT NULL,
            deployment        text NOT NULL,
            endpoint          text NOT NULL,
            ingress           text NOT NULL,
            stream            boolean NOT NULL,
            status            smallint NOT NULL,
            prompt_tokens     integer NOT NULL,
            completion_tokens integer NOT NULL,
            cached_tokens     integer NOT NULL,
            cost_usd          double precision NOT NULL,
            latency_ms        double precision NOT NULL,
            cache             text,
            experiment        text,
            variant           text
        );
        CREATE INDEX usage_ledger_at ON usage_ledger (at);
        CREATE INDEX usage_ledger_key_at ON usage_ledger (key_id, at);
        CREATE INDEX usage_ledger_team_at ON usage_ledger (team, at) WHERE team IS NOT NULL;
        CREATE INDEX usage_ledger_request ON usage_ledger (request_id);

        CREATE TABLE api_keys (
            digest     text PRIMARY KEY,  -- sha256 hex of the key: the key itself is never kept
            id         text NOT NULL UNIQUE,
            record     jsonb NOT NULL,  -- id, hash, created_at, policy (as the state has it)
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE experiment_feedback (
            request_id text NOT NULL,
            experiment text NOT NULL,
            variant    text NOT NULL,
            key_id     text NOT NULL,
            outcome    text,  -- accepted, rejected, corrected; or only a score
            score      double precision,
            at         timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (request_id, experiment)
        );

        CREATE TABLE stored_responses (
            key_id     text NOT NULL,
            id         text NOT NULL,
            data       jsonb NOT NULL,
            expires_at timestamptz,
            PRIMARY KEY (key_id, id)
        );
        CREATE INDEX stored_responses_expiry ON stored_responses (expires_at)
            WHERE expires_at IS NOT NULL;
        """,
    ),
    (
        2,
        "teams and their policies (admin API; YAML teams stay in the config file)",
        """
        CREATE TABLE IF NOT EXISTS teams (
            name       text PRIMARY KEY,
            policy     jsonb NOT NULL,  -- a TeamConfig as the YAML writes it (budget, ...)
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
)
