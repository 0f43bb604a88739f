"""Unit tests of the VOS CLI client's pure parts (no SSH): names, screen text, transcripts."""

from __future__ import annotations

from cckit.vos.base import VersionInfo


def test_has_cop_ignores_the_sgn_of_the_signed_file():
    # `show version active` lists installed COPs without `.sgn` (public transcripts)
    v = VersionInfo("11.5.1.12900-21", ("cmterm-devicepack9.1.2.13070-1.cop",
                                        "ciscouccx.1151.ES01.ecdsa-disable.cop"))
    assert v.has_cop("ciscouccx.1151.ES01.ecdsa-disable.cop.sgn")
    assert v.has_cop("cmterm-devicepack9.1.2.13070-1.cop")
    assert not v.has_cop("ciscouccx.1151.ES01.ecdsa-rollback.cop.sgn")
    # a node that does print the .sgn still matches
    assert VersionInfo("11.5", ("x.cop.sgn",)).has_cop("x.cop.sgn")
    assert not VersionInfo("11.5", ()).has_cop("x.cop.sgn")
