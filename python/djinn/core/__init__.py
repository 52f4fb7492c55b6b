# SPDX-License-Identifier: BSD-3-Clause
"""The original system's package layout: djinn.core.coordinator."""
