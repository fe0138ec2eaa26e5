"""Control-plane behaviour the official SDK relies on, without needing a VM."""

import pytest
from e2b import Sandbox
from e2b.exceptions import AuthenticationException, NotFoundException, SandboxException

UNKNOWN = "i00000000000000000000"


def test_wrong_api_key_raises_authentication_exception(sandboxd):
    wrong = "e2b_" + "0" * 40
    with pytest.raises(AuthenticationException):
        Sandbox.list(api_key=wrong).next_items()
    with pytest.raises(AuthenticationException):
        Sandbox.create("base", api_key=wrong)


def test_unknown_sandbox(sandboxd):
    assert Sandbox.kill(UNKNOWN) is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(UNKNOWN)
    with pytest.raises(NotFoundException):
        Sandbox.set_timeout(UNKNOWN, 30)
    with pytest.raises(NotFoundException):
        Sandbox.create_snapshot(UNKNOWN)
    with pytest.raises(NotFoundException):
        Sandbox.connect(UNKNOWN)


def test_unknown_template_is_an_error(sandboxd):
    with pytest.raises(SandboxException) as e:
        Sandbox.create("no-such-template")
    assert "404" in str(e.value)


def test_template_exists_knows_the_templates_directory(sandboxd, base_template):
    from e2b import Template

    # `base` (templates directory) exists, as E2B's public `base` does; unknown names do not.
    assert Template.exists("base") is True
    assert Template.exists("no-such-template") is False


def test_unknown_snapshot_delete_is_false_and_listing_is_empty(sandboxd):
    assert Sandbox.delete_snapshot("abcdefghij:default") is False
    assert Sandbox.delete_snapshot("local/nothing:default") is False
    paginator = Sandbox.list_snapshots(name="nothing")
    assert paginator.next_items() == []
    assert paginator.has_next is False
