# SPDX-License-Identifier: Apache-2.0
"""The only package that talks to PostgreSQL: pool, migrations, reads and writes."""
