# SPDX-License-Identifier: Apache-2.0
"""The demo city: a simulator of devices in their own formats, and `twinhub demo` around it."""


class DemoError(RuntimeError):
    """The demo or the simulator cannot go on; the message says why, for the user."""
