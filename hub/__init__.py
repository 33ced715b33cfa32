# SPDX-License-Identifier: Apache-2.0
"""twinhub: an OGC SensorThings API v1.1 hub for urban digital twins."""
