# SPDX-License-Identifier: Apache-2.0
"""Who may do what: roles, API keys and OIDC bearer tokens."""
