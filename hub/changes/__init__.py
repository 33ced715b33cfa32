# SPDX-License-Identifier: Apache-2.0
"""One change feed: committed changes -> one snapshot load -> (entity, topics) -> every sink.

Layers (tests/test_layers.py checks them): hub.http and hub.mqtt import this package, this
package imports hub.store, hub.query and hub.render, never the layers above it.
"""
