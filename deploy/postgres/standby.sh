#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Entry point of db-replica: on first start copy the primary with pg_basebackup -R (a base backup
# plus standby.signal and primary_conninfo), holding the primary's WAL for it in a replication slot;
# then run PostgreSQL as a hot standby that serves reads. PGPASSWORD comes from the environment.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    rm -rf "${PGDATA:?}"/*
    until pg_isready -h db -U twinhub -d twinhub -q; do sleep 1; done
    # The slot survives a removed volume: create it the first time, reuse it after.
    pg_basebackup -h db -U twinhub -D "$PGDATA" -R -X stream -c fast -C -S standby1 \
        || { rm -rf "${PGDATA:?}"/*; pg_basebackup -h db -U twinhub -D "$PGDATA" -R -X stream -c fast -S standby1; }
    chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on
