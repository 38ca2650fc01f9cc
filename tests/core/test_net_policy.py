"""Cloud metadata stays out of reach of every checked client, whatever the operator allowed."""

from __future__ import annotations

import ipaddress

import pytest

from core.errors import Forbidden
from core.net_policy import is_metadata
from core.net import address_allowed, pin


@pytest.mark.parametrize("addr", ["169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                                  "2002:a9fe:a9fe::1", "fd00:ec2::254", "100.100.100.200", "169.254.170.2"])
def test_metadata_in_any_spelling(addr):
    assert is_metadata(ipaddress.ip_address(addr))
    assert not address_allowed(ipaddress.ip_address(addr), allow_private=True)  # ABR_ALLOW_PRIVATE_URLS=1


@pytest.mark.parametrize("addr", ["169.254.169.1", "10.0.0.1", "8.8.8.8", "fd00:ec2::1"])
def test_other_addresses_are_not_metadata(addr):
    assert not is_metadata(ipaddress.ip_address(addr))
    assert address_allowed(ipaddress.ip_address(addr), allow_private=True)


def test_imports_and_webhooks_never_reach_metadata_even_with_private_urls_allowed():
    with pytest.raises(Forbidden):
        pin("http://169.254.169.254/latest/meta-data/iam/", allow_private=True)
    with pytest.raises(Forbidden):
        pin("http://[fd00:ec2::254]/latest/api/token", allow_private=True, what="webhook url")
