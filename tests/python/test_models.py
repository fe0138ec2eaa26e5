"""`WriteInfo.from_dict` / `EntryInfo.from_dict`: the official SDK's helper constructors."""

import datetime

import pytest
from e2b import EntryInfo, WriteInfo


def test_write_info_from_an_upload_response_entry():
    w = WriteInfo.from_dict({"name": "a.txt", "type": "file", "path": "/home/user/a.txt", "metadata": {"k": "v"}})
    assert (w.name, w.type, w.path, w.metadata) == ("a.txt", "file", "/home/user/a.txt", {"k": "v"})
    bare = WriteInfo.from_dict({"name": "d", "path": "/d", "type": "weird", "metadata": None})
    assert bare.type is None and bare.metadata == {}


def test_missing_keys_are_key_errors_and_wrong_types_are_refused():
    with pytest.raises(KeyError, match="name"):
        WriteInfo.from_dict({"path": "/x"})
    with pytest.raises(KeyError, match="path"):
        EntryInfo.from_dict({"name": "x"})
    with pytest.raises(ValueError, match="metadata"):
        WriteInfo.from_dict({"name": "x", "path": "/x", "metadata": {"k": 1}})
    with pytest.raises(TypeError, match="dict"):
        WriteInfo.from_dict([("name", "x")])


def test_entry_info_from_a_dict_with_every_field():
    when = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    e = EntryInfo.from_dict({
        "name": "l", "type": "symlink", "path": "/tmp/l", "size": 12, "mode": 0o777,
        "permissions": "lrwxrwxrwx", "owner": "user", "group": "user", "modified_time": when,
        "symlink_target": "/etc/hosts",
    })
    assert (e.name, e.type, e.size, e.mode, e.owner, e.symlink_target) == ("l", "symlink", 12, 0o777, "user", "/etc/hosts")
    assert e.modified_time == when
    with pytest.raises(ValueError, match="modified_time"):
        EntryInfo.from_dict({"name": "x", "path": "/x", "modified_time": "yesterday"})
