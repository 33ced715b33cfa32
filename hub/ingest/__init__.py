# SPDX-License-Identifier: Apache-2.0
"""Ingest: received messages -> handlers (dispatch) -> validated Observations -> batches (writer)."""
