"""The lab's names resolve to its published port for every test of the lab."""

from lab_support import lab_names  # noqa: F401  (an autouse fixture)
