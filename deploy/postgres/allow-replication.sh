#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Run once by the PostgreSQL image when it creates the database (/docker-entrypoint-initdb.d):
# let the standby (db-replica) stream WAL as the twinhub role, with its password. "all" in
# pg_hba.conf does not cover replication connections.
set -eu
echo "host replication twinhub all scram-sha-256" >>"$PGDATA/pg_hba.conf"
