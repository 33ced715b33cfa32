-- SPDX-License-Identifier: Apache-2.0
-- API keys managed with `twinhub keys`: looked up by id, compared by the SHA-256 of the
-- whole key (the key itself is shown once and never stored). Revoked keys stay listed.
CREATE TABLE api_keys (
    id         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{10}$'),
    name       text NOT NULL,
    roles      text[] NOT NULL
               CHECK (roles <@ ARRAY['read', 'create', 'update', 'delete', 'admin']::text[]),
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
