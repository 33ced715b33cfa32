# SPDX-License-Identifier: Apache-2.0
"""`twinhub import`: bulk backfills of Observations from CSV and JSON files."""
