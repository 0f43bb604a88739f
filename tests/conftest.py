# --- vosmock fixtures (owned by the mock) ---
import pytest as _vosmock_pytest


@_vosmock_pytest.fixture
def mock_site(tmp_path):
    """A running VOS mock site (UCCX pub + sub + SocialMiner + SFTP) on free loopback ports.

    Yields cckit.vosmock.testing.RunningSite: .site_file, .known_hosts, .password, .nodes,
    .faults (set/clear), .control_url, .status(), .stop(). Restarts take 0 seconds.
    """
    from cckit.vosmock.testing import running_site

    with running_site(tmp_path / "vosmock", restart_seconds=0) as site:
        yield site


# --- end vosmock fixtures ---
