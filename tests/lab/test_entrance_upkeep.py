"""The entrance keeps itself patched and guarded (issues 15 and 18), in either layout.

The lab turns apt's daily run off (inventories: unattended_upgrades_enabled
false), so that no upgrade starts in the middle of a test; the policy the
role writes is the production one, and unattended-upgrade itself reads it
here in a dry run.
"""

from __future__ import annotations

import re

from lab_support import entrance


def test_unattended_upgrade_reads_the_security_policy():
    policy = entrance("cat", "/etc/apt/apt.conf.d/52parrotpark-unattended-upgrades").stdout
    assert "Debian-Security" in policy, policy
    # The lab's switch: the daily run is off, and says so in apt's own terms.
    periodic = entrance("apt-config", "dump", "APT::Periodic").stdout
    assert 'APT::Periodic::Unattended-Upgrade "0";' in periodic, periodic
    dry = entrance("unattended-upgrade", "--dry-run", "--debug", timeout=300, check=False)
    output = dry.stdout + dry.stderr
    assert dry.returncode == 0, output[-3000:]
    allowed = re.search(r"Allowed origins are: (.*)", output)
    assert allowed, output[-3000:]
    assert "label=Debian-Security" in allowed.group(1), allowed.group(1)
    # Only the security archive: the plain stable release is not allowed by default.
    assert "label=Debian'" not in allowed.group(1) and "label=Debian," not in allowed.group(1), allowed.group(1)
    reboot = entrance("apt-config", "dump", "Unattended-Upgrade::Automatic-Reboot").stdout
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in reboot, reboot


def test_the_firewall_unit_loads_the_table_at_boot():
    """Enabled, and the table is the one the unit loaded (a restart of the entrance keeps it)."""
    assert entrance("systemctl", "is-enabled", "parrotpark-firewall.service").stdout.strip() == "enabled"
    assert entrance("systemctl", "is-active", "parrotpark-firewall.service").stdout.strip() == "active"
    rules = entrance("nft", "list", "table", "inet", "parrotpark_firewall").stdout
    assert "policy drop" in rules, rules
