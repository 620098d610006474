"""``--allow-origin`` with an IPv6 host: browsers send ``Origin`` with the address as the WHATWG URL
serializer writes it (compressed, lower case, no dotted IPv4 part), so an origin written another
way ("[0:0:0:0:0:0:0:1]") must be read as that one ("[::1]"), or its page's every call is
silently refused; a broken one is refused naming it, not with urllib's bare "Invalid IPv6 URL"."""
from __future__ import annotations

import pytest

from ui.server import cors_origin


@pytest.mark.parametrize("given, sent", [
    ("http://[0:0:0:0:0:0:0:1]:3000", "http://[::1]:3000"),
    ("http://[::1]:5173", "http://[::1]:5173"),
    ("HTTP://[2001:DB8:0:0:1:0:0:1]:8080/", "http://[2001:db8::1:0:0:1]:8080"),
    ("https://[2001:0db8:0000:0000:0000:0000:0000:0042]:443", "https://[2001:db8::42]"),
    ("http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]"),
    ("http://[1:0:1:0:1:0:1:0]", "http://[1:0:1:0:1:0:1:0]"),
])
def test_an_ipv6_origin_is_read_as_browsers_send_it(given, sent):
    assert cors_origin(given) == sent


@pytest.mark.parametrize("bad", ["http://[::1", "http://[::1:3000", "http://[fe80::1%25eth0]:3000"])
def test_a_broken_ipv6_origin_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="is not an origin") as e:
        cors_origin(bad)
    assert bad in str(e.value)
