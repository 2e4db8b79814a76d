"""Stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test bootstraps pip into each virtual environment it makes with a
get-pip.py script downloaded from its own file host, which only package
registries can be reached from here. scripts/test.sh puts this file where
ansible-test caches that script; it installs pip with the standard library's
ensurepip, then asks pip for the exact packages ansible-test requested.
"""

from __future__ import annotations

import subprocess
import sys

# Options only get-pip.py understands.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

if __name__ == "__main__":
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=False).returncode)
