# SPDX-License-Identifier: Apache-2.0
"""The broker side of the hub: one connection (client), topic filters (topics), app wiring (service)."""
