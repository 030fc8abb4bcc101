"""Setup for the library's tests: a signing key of their own, never the user's."""
import pytest

from lightning_wm.signing import ENV_VAR


@pytest.fixture(autouse=True, scope="session")
def _private_secret_key(tmp_path_factory):
    # env state in checkpoints is signed with a per-user key (lightning_wm.signing); tests must
    # neither create nor read the real one
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, str(tmp_path_factory.mktemp("key") / "secret"))
        yield
