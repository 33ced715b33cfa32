# SPDX-License-Identifier: Apache-2.0
"""The HTTP face of twinhub: aiohttp only at this layer."""
