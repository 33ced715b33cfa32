# SPDX-License-Identifier: Apache-2.0
"""Parsing of STA resource paths and query options."""
