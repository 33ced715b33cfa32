# SPDX-License-Identifier: Apache-2.0
"""The SensorThings data model and the validation derived from it."""
