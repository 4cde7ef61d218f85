"""Signals other stage apps listen to; ``devices`` never imports them.

Both are sent inside the transaction that made the change, so a receiver's writes commit with it.
"""

from django.dispatch import Signal

# A device became enrolled. Arguments: ``device``.
device_enrolled = Signal()
# A device checked in. Arguments: ``device``, ``inventory_changed`` (bool), ``first`` (the enrolment reply).
device_checked_in = Signal()
# A device group's membership may have changed (members or rules). Arguments: ``group``.
device_group_changed = Signal()
